//! `EXPLAIN [ANALYZE] query` as PostgreSQL clients read it: one text column, `QUERY PLAN`, a row
//! per line of the physical plan (with each operator's measured metrics after ANALYZE, which
//! runs the query), and the execution time.

use crate::error::{Result, user_error};
use crate::session::{QueryOutput, Session};
use datafusion::arrow::array::{Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{Expr, Statement, UtilityOption, Value};
use std::sync::Arc;
use thunderdb_common::SqlState;

pub(crate) async fn explain(
    s: &mut Session,
    mut stmt: Statement,
    params: &[ScalarValue],
) -> Result<QueryOutput> {
    let Statement::Explain {
        analyze,
        statement,
        format,
        options,
        ..
    } = &mut stmt
    else {
        unreachable!("called for EXPLAIN")
    };
    for o in options.iter().flatten() {
        match (o.name.value.to_lowercase().as_str(), flag(o)) {
            ("analyze", Some(on)) => *analyze = on,
            (
                "verbose" | "costs" | "buffers" | "timing" | "summary" | "settings" | "wal",
                Some(_),
            ) => {}
            ("format", _)
                if o.arg
                    .as_ref()
                    .is_some_and(|a| a.to_string().eq_ignore_ascii_case("text")) => {}
            ("format", _) => return Err(unsupported("EXPLAIN formats other than TEXT")),
            (other, _) => {
                return Err(user_error(
                    SqlState::SYNTAX_ERROR,
                    format!("unrecognized EXPLAIN option \"{other}\""),
                ));
            }
        }
    }
    if format.is_some() {
        return Err(unsupported("EXPLAIN formats other than TEXT"));
    }
    if !matches!(**statement, Statement::Query(_)) {
        return Err(unsupported("EXPLAIN of statements other than queries"));
    }
    // The options are read above; DataFusion plans the rest.
    *options = None;
    let analyze = *analyze;
    let started = std::time::Instant::now();
    let QueryOutput::Rows { batches, .. } = s.query(stmt, params).await? else {
        return Err(thunderdb_common::ThunderError::internal(
            "EXPLAIN returned no rows",
        ));
    };
    let wanted = if analyze {
        "Plan with Metrics"
    } else {
        "physical_plan"
    };
    let mut lines: Vec<String> = Vec::new();
    for batch in &batches {
        let (Some(kinds), Some(plans)) = (
            batch.column(0).as_any().downcast_ref::<StringArray>(),
            batch.column(1).as_any().downcast_ref::<StringArray>(),
        ) else {
            continue;
        };
        for row in 0..batch.num_rows() {
            if kinds.is_valid(row) && kinds.value(row) == wanted && plans.is_valid(row) {
                lines.extend(
                    plans
                        .value(row)
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(str::to_string),
                );
            }
        }
    }
    if analyze {
        lines.push(format!(
            "Execution Time: {:.3} ms",
            started.elapsed().as_secs_f64() * 1000.0
        ));
    }
    let schema = Arc::new(Schema::new(vec![Field::new(
        "QUERY PLAN",
        DataType::Utf8,
        false,
    )]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(lines))])
        .map_err(|e| thunderdb_common::ThunderError::internal(e.to_string()))?;
    Ok(QueryOutput::Rows {
        schema,
        batches: vec![batch],
        command: "EXPLAIN",
    })
}

/// The one column EXPLAIN answers with.
pub(crate) fn query_plan_schema() -> datafusion::arrow::datatypes::SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "QUERY PLAN",
        DataType::Utf8,
        false,
    )]))
}

/// The boolean of `(ANALYZE)`, `(ANALYZE true)`, `(ANALYZE off)` …
fn flag(o: &UtilityOption) -> Option<bool> {
    match &o.arg {
        None => Some(true),
        Some(Expr::Value(v)) => match &v.value {
            Value::Boolean(b) => Some(*b),
            Value::Number(n, _) => Some(n != "0"),
            Value::SingleQuotedString(t) => parse_bool(t),
            _ => None,
        },
        Some(Expr::Identifier(i)) => parse_bool(&i.value),
        _ => None,
    }
}

fn parse_bool(t: &str) -> Option<bool> {
    match t.to_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Some(true),
        "off" | "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

fn unsupported(what: &str) -> thunderdb_common::ThunderError {
    user_error(
        SqlState::FEATURE_NOT_SUPPORTED,
        format!("{what} are not supported yet"),
    )
}
