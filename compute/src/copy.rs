//! `COPY … TO STDOUT` and `COPY … FROM STDIN`: compute resolves what is copied and inserts the
//! rows; the frontend reads and writes the data stream (text and CSV are wire formats).

use crate::error::{Result, user_error};
use crate::session::{QueryOutput, Session, quote_ident};
use crate::utility::CopyFormat;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::sql::sqlparser::ast::{
    CopyOption, CopySource, CopyTarget, Ident, ObjectName, Statement,
};
use std::sync::Arc;
use thunderdb_common::SqlState;

/// The table and columns a `COPY … FROM STDIN` fills, and how its data is written.
#[derive(Clone, Debug)]
pub struct CopyInTarget {
    pub table: String,
    /// The columns the data lines hold, in order, with their types.
    pub schema: SchemaRef,
    pub format: CopyFormat,
}

/// Resolves a COPY statement: rows to send for `TO STDOUT`, a target for `FROM STDIN`.
pub(crate) async fn copy(
    s: &mut Session,
    source: CopySource,
    to: bool,
    target: CopyTarget,
    options: Vec<CopyOption>,
) -> Result<QueryOutput> {
    if !matches!(target, CopyTarget::Stdin | CopyTarget::Stdout) {
        return Err(user_error(
            SqlState::INSUFFICIENT_PRIVILEGE,
            "COPY to or from a file or program on the server is not allowed; use COPY FROM STDIN or COPY TO STDOUT (psql's \\copy)",
        ));
    }
    if to != matches!(target, CopyTarget::Stdout) {
        return Err(user_error(
            SqlState::SYNTAX_ERROR,
            "syntax error: COPY reads FROM STDIN and writes TO STDOUT",
        ));
    }
    if to {
        copy_to(s, source, &options).await
    } else {
        let CopySource::Table {
            table_name,
            columns,
        } = source
        else {
            unreachable!("the parser takes only a table for COPY FROM")
        };
        copy_from_target(s, &table_name, &columns, &options).await
    }
}

async fn copy_to(
    s: &mut Session,
    source: CopySource,
    options: &[CopyOption],
) -> Result<QueryOutput> {
    let query = match source {
        CopySource::Query(q) => *q,
        CopySource::Table {
            table_name,
            columns,
        } => {
            let cols = if columns.is_empty() {
                "*".to_string()
            } else {
                columns
                    .iter()
                    .map(|c| quote_ident(&crate::sql::ident_name(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let sql = format!("SELECT {cols} FROM {table_name}");
            match crate::utility::parse_sql(&sql)?.pop() {
                Some(Statement::Query(q)) => *q,
                _ => unreachable!("a SELECT parses as a query"),
            }
        }
    };
    match s
        .run_in_block(Statement::Query(Box::new(query)), &[])
        .await?
    {
        QueryOutput::Rows {
            schema, batches, ..
        } => {
            let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
            let format = CopyFormat::from_options(options, &names, true)?;
            Ok(QueryOutput::CopyOut {
                schema,
                batches,
                format,
            })
        }
        _ => Err(user_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            "COPY query must have a RETURNING clause",
        )),
    }
}

async fn copy_from_target(
    s: &mut Session,
    table_name: &ObjectName,
    columns: &[Ident],
    options: &[CopyOption],
) -> Result<QueryOutput> {
    crate::ddl::check_schema(table_name)?;
    let (env, _) = s.statement_env(None).await?;
    let table = crate::sql::object_name(table_name);
    let def = env.catalog.table(&table)?.clone();
    let positions: Vec<usize> = if columns.is_empty() {
        (0..def.columns.len()).collect()
    } else {
        let mut seen = std::collections::HashSet::new();
        columns
            .iter()
            .map(|c| {
                let name = crate::sql::ident_name(c);
                let pos = def.column_index(&name).ok_or_else(|| {
                    user_error(
                        SqlState::UNDEFINED_COLUMN,
                        format!("column \"{name}\" of relation \"{table}\" does not exist"),
                    )
                })?;
                if !seen.insert(pos) {
                    return Err(user_error(
                        SqlState::DUPLICATE_COLUMN,
                        format!("column \"{name}\" specified more than once"),
                    ));
                }
                Ok(pos)
            })
            .collect::<Result<_>>()?
    };
    let full = def.arrow_schema(false);
    let fields: Vec<Field> = positions
        .iter()
        .map(|&i| full.field(i).clone().with_nullable(true))
        .collect();
    let names: Vec<String> = fields.iter().map(|f| f.name().clone()).collect();
    let format = CopyFormat::from_options(options, &names, false)?;
    Ok(QueryOutput::CopyIn(Arc::new(CopyInTarget {
        table,
        schema: Arc::new(Schema::new(fields)),
        format,
    })))
}

impl Session {
    /// Inserts the rows a `COPY … FROM STDIN` read (as `INSERT INTO t (cols) SELECT …`, so
    /// defaults, constraints and indexes apply); returns how many.
    pub async fn copy_in(
        &mut self,
        target: &CopyInTarget,
        batches: Vec<RecordBatch>,
    ) -> Result<u64> {
        const SCRATCH: &str = "__copy_in";
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        if rows == 0 {
            return Ok(0);
        }
        let source = self.scratch_table(SCRATCH, target.schema.clone(), batches)?;
        let cols: Vec<String> = target
            .schema
            .fields()
            .iter()
            .map(|f| quote_ident(f.name()))
            .collect();
        let sql = format!(
            "INSERT INTO {} ({}) SELECT * FROM {source}",
            quote_ident(&target.table),
            cols.join(", ")
        );
        let result = match crate::utility::parse_sql(&sql)?.pop() {
            Some(stmt) => self.run_statement(stmt, &[]).await,
            None => unreachable!("one INSERT"),
        };
        self.drop_scratch(SCRATCH);
        match result? {
            QueryOutput::Command(tag) => Ok(tag.rows.unwrap_or(rows as u64)),
            _ => Ok(rows as u64),
        }
    }
}
