//! Sequences in SQL: CREATE/DROP SEQUENCE, the sequences behind SERIAL and identity columns,
//! and `nextval`, `currval`, `setval`, `lastval` — async functions, since each call commits
//! the sequence's new state on its own (`sequence.rs`).

use crate::catalog::{self, Catalog, SequenceDef};
use crate::engine::Engine;
use crate::error::{Result, user_error};
use crate::provider::PublicSchema;
use crate::session::{CommandTag, QueryOutput, Session};
use crate::sql::{ident_name, object_name};
use crate::txn::ReadView;
use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::async_udf::{AsyncScalarUDF, AsyncScalarUDFImpl};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::{self, Expr, ObjectName, SequenceOptions};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use thunderdb_common::{SqlState, SqlType, TableId};

/// The range of a sequence's type.
fn type_bounds(ty: &SqlType) -> (i64, i64) {
    match ty {
        SqlType::Int16 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        SqlType::Int32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    }
}

pub(crate) fn option_number(e: &Expr, what: &str) -> Result<i64> {
    let text = e.to_string().replace([' ', '(', ')'], "");
    text.parse().map_err(|_| {
        user_error(
            SqlState::SYNTAX_ERROR,
            format!("syntax error: {what} must be an integer, not {e}"),
        )
    })
}

/// A sequence's definition from its options, with PostgreSQL's defaults and checks.
pub(crate) fn sequence_def(
    id: TableId,
    name: String,
    ty: SqlType,
    options: &[SequenceOptions],
    owned_by: Option<(String, String)>,
    identity_always: bool,
) -> Result<SequenceDef> {
    let (type_min, type_max) = type_bounds(&ty);
    let (mut increment, mut min, mut max, mut start, mut cycle) = (1, None, None, None, false);
    for o in options {
        match o {
            SequenceOptions::IncrementBy(e, _) => increment = option_number(e, "INCREMENT")?,
            SequenceOptions::MinValue(e) => {
                min = e
                    .as_ref()
                    .map(|e| option_number(e, "MINVALUE"))
                    .transpose()?
            }
            SequenceOptions::MaxValue(e) => {
                max = e
                    .as_ref()
                    .map(|e| option_number(e, "MAXVALUE"))
                    .transpose()?
            }
            SequenceOptions::StartWith(e, _) => start = Some(option_number(e, "START")?),
            SequenceOptions::Cache(e) => {
                if option_number(e, "CACHE")? < 1 {
                    return Err(user_error(
                        SqlState::INVALID_PARAMETER_VALUE,
                        "CACHE must be greater than zero",
                    ));
                }
            }
            // sqlparser's `Cycle(true)` is NO CYCLE.
            SequenceOptions::Cycle(no_cycle) => cycle = !*no_cycle,
        }
    }
    let invalid = |m: String| user_error(SqlState::INVALID_PARAMETER_VALUE, m);
    if increment == 0 {
        return Err(invalid("INCREMENT must not be zero".into()));
    }
    let min = min.unwrap_or(if increment > 0 { 1 } else { type_min });
    let max = max.unwrap_or(if increment > 0 { type_max } else { -1 });
    let type_name = ty.pg_name();
    for (what, v) in [("MINVALUE", min), ("MAXVALUE", max)] {
        if v < type_min || v > type_max {
            return Err(invalid(format!(
                "{what} ({v}) is out of range for sequence data type {type_name}"
            )));
        }
    }
    if min >= max {
        return Err(invalid(format!(
            "MINVALUE ({min}) must be less than MAXVALUE ({max})"
        )));
    }
    let start = start.unwrap_or(if increment > 0 { min } else { max });
    if start < min {
        return Err(invalid(format!(
            "START value ({start}) cannot be less than MINVALUE ({min})"
        )));
    }
    if start > max {
        return Err(invalid(format!(
            "START value ({start}) cannot be greater than MAXVALUE ({max})"
        )));
    }
    Ok(SequenceDef {
        id,
        name,
        ty,
        start,
        increment,
        min,
        max,
        cycle,
        owned_by,
        identity_always,
    })
}

/// `CREATE SEQUENCE`.
pub(crate) async fn create_sequence(
    s: &mut Session,
    if_not_exists: bool,
    name: &ObjectName,
    data_type: Option<&ast::DataType>,
    options: &[SequenceOptions],
    owned_by: Option<&ObjectName>,
) -> Result<QueryOutput> {
    crate::ddl::check_schema(name)?;
    let seq_name = object_name(name);
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    let done = Ok(QueryOutput::Command(CommandTag::new("CREATE SEQUENCE")));
    if env.catalog.relation_exists(&seq_name) {
        if if_not_exists {
            return done;
        }
        return Err(user_error(
            SqlState::DUPLICATE_TABLE,
            format!("relation \"{seq_name}\" already exists"),
        ));
    }
    let ty = match data_type {
        None => SqlType::Int64,
        Some(t) => match crate::types::sql_type(t)? {
            ty if ty.is_integer() => ty,
            _ => {
                return Err(user_error(
                    SqlState::INVALID_PARAMETER_VALUE,
                    "sequence type must be smallint, integer, or bigint",
                ));
            }
        },
    };
    let owner = match owned_by {
        None => None,
        Some(o) if o.to_string().eq_ignore_ascii_case("none") => None,
        Some(o) => Some(owner_column(&env.catalog, o)?),
    };
    let id = catalog::allocate_table_id(&env.view).await?;
    let def = sequence_def(id, seq_name, ty, options, owner, false)?;
    catalog::put_sequence(&env.view, &def)?;
    crate::privileges::set_owner(s, &env.view, &env.catalog, &def.name)?;
    s.note_write(env.view.snapshot);
    done
}

/// `OWNED BY table.column`: both must exist.
fn owner_column(catalog: &Catalog, o: &ObjectName) -> Result<(String, String)> {
    let parts: Vec<String> =
        o.0.iter()
            .map(|p| {
                p.as_ident()
                    .map(ident_name)
                    .unwrap_or_else(|| p.to_string())
            })
            .collect();
    let [.., table, column] = parts.as_slice() else {
        return Err(user_error(
            SqlState::SYNTAX_ERROR,
            "invalid OWNED BY option: specify OWNED BY table.column or OWNED BY NONE",
        ));
    };
    let def = catalog.table(table)?;
    if def.column_index(column).is_none() {
        return Err(user_error(
            SqlState::UNDEFINED_COLUMN,
            format!("column \"{column}\" of relation \"{table}\" does not exist"),
        ));
    }
    Ok((table.clone(), column.clone()))
}

/// The sequence of a SERIAL or identity column `table.column`, named `table_column_seq`
/// (with a number added if that is taken, as PostgreSQL does); written in the transaction.
pub(crate) async fn column_sequence(
    view: &ReadView,
    catalog: &Catalog,
    table: &str,
    column: &str,
    ty: SqlType,
    options: &[SequenceOptions],
    identity_always: bool,
) -> Result<SequenceDef> {
    let base = format!("{table}_{column}_seq");
    let mut name = base.clone();
    let mut n = 0;
    while catalog.relation_exists(&name) {
        n += 1;
        name = format!("{base}{n}");
    }
    let id = catalog::allocate_table_id(view).await?;
    let def = sequence_def(
        id,
        name,
        ty,
        options,
        Some((table.to_string(), column.to_string())),
        identity_always,
    )?;
    catalog::put_sequence(view, &def)?;
    Ok(def)
}

/// The integer type of a SERIAL pseudo-type (`serial`, `bigserial` …), if it is one.
pub(crate) fn serial_type(dt: &ast::DataType) -> Option<SqlType> {
    match dt.to_string().to_lowercase().as_str() {
        "serial" | "serial4" => Some(SqlType::Int32),
        "bigserial" | "serial8" => Some(SqlType::Int64),
        "smallserial" | "serial2" => Some(SqlType::Int16),
        _ => None,
    }
}

/// The default expression of a column fed by `seq`, as PostgreSQL writes it.
pub(crate) fn nextval_default(seq: &SequenceDef) -> String {
    format!(
        "nextval('{}'::regclass)",
        crate::schemas::quote_key(&seq.name).replace('\'', "''")
    )
}

/// What `currval` and `lastval` remember in a session.
#[derive(Default, Debug)]
pub(crate) struct SessionSequences {
    current: HashMap<TableId, i64>,
    /// The sequence nextval advanced last: lastval is its currval.
    last: Option<TableId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Next,
    Curr,
    Set,
    Last,
}

/// One of the sequence functions, bound to a session.
struct SequenceFunction {
    kind: Kind,
    signature: Signature,
    engine: Arc<Engine>,
    public: Arc<PublicSchema>,
    session: Arc<Mutex<SessionSequences>>,
    /// The session's role, whose privileges on the sequences are checked.
    user: String,
}

impl std::fmt::Debug for SequenceFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SequenceFunction({:?})", self.kind)
    }
}

impl PartialEq for SequenceFunction {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && Arc::ptr_eq(&self.session, &other.session)
    }
}

impl Eq for SequenceFunction {}

impl std::hash::Hash for SequenceFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
    }
}

/// Registers `nextval`, `currval`, `setval` and `lastval` for a session.
pub(crate) fn register(
    ctx: &SessionContext,
    engine: Arc<Engine>,
    public: Arc<PublicSchema>,
    session: Arc<Mutex<SessionSequences>>,
    user: &str,
) {
    for kind in [Kind::Next, Kind::Curr, Kind::Set, Kind::Last] {
        let f = SequenceFunction {
            kind,
            signature: match kind {
                Kind::Last => Signature::nullary(Volatility::Volatile),
                _ => Signature::variadic_any(Volatility::Volatile),
            },
            engine: engine.clone(),
            public: public.clone(),
            session: session.clone(),
            user: user.to_string(),
        };
        ctx.register_udf(AsyncScalarUDF::new(Arc::new(f)).into_scalar_udf());
    }
}

fn df(e: thunderdb_common::ThunderError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl ScalarUDFImpl for SequenceFunction {
    fn name(&self) -> &str {
        match self.kind {
            Kind::Next => "nextval",
            Kind::Curr => "currval",
            Kind::Set => "setval",
            Kind::Last => "lastval",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        let ok = match self.kind {
            Kind::Next | Kind::Curr => args.len() == 1,
            Kind::Set => args.len() == 2 || args.len() == 3,
            Kind::Last => args.is_empty(),
        };
        if !ok {
            return Err(df(user_error(
                SqlState::UNDEFINED_FUNCTION,
                format!(
                    "function {}({}) does not exist",
                    self.name(),
                    args.iter()
                        .map(|_| "unknown")
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )));
        }
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        Err(DataFusionError::Internal(
            "sequence functions run asynchronously".into(),
        ))
    }
}

/// Argument `i` of every row as an array of `ty`.
fn column(args: &ScalarFunctionArgs, i: usize, ty: &DataType) -> DfResult<ArrayRef> {
    let array = args.args[i].to_array(args.number_rows)?;
    Ok(cast(&array, ty)?)
}

impl SequenceFunction {
    /// The sequence a `regclass` argument names: text (`'s'`, `'public.s'`, `'"S"'`) or OID.
    fn resolve(&self, catalog: &Catalog, arg: &ScalarValue) -> Result<Arc<SequenceDef>> {
        let seq = self.find(catalog, arg)?;
        // nextval needs USAGE or UPDATE, currval USAGE or SELECT, setval UPDATE (whether the
        // sequence is named by text, `::regclass` or OID).
        let any_of = match self.kind {
            Kind::Next => &[crate::privileges::USAGE, crate::privileges::UPDATE][..],
            Kind::Curr | Kind::Last => &[crate::privileges::USAGE, crate::privileges::SELECT][..],
            Kind::Set => &[crate::privileges::UPDATE][..],
        };
        crate::privileges::check_sequence(
            catalog,
            self.engine.superuser(),
            &self.user,
            &seq.name,
            any_of,
        )?;
        Ok(seq)
    }

    fn find(&self, catalog: &Catalog, arg: &ScalarValue) -> Result<Arc<SequenceDef>> {
        let text = match arg {
            ScalarValue::Int64(Some(oid)) => {
                return catalog
                    .sequences
                    .values()
                    .find(|s| crate::pg_catalog::relation_oid(s.id) == *oid)
                    .cloned()
                    .ok_or_else(|| {
                        user_error(
                            SqlState::UNDEFINED_TABLE,
                            format!("could not open relation with OID {oid}"),
                        )
                    });
            }
            ScalarValue::Utf8(Some(t)) => t.clone(),
            other => other.to_string(),
        };
        let name = crate::schemas::resolve_text_name(catalog, &self.public.search_path(), &text);
        if let Some(seq) = catalog.sequences.get(&name) {
            return Ok(seq.clone());
        }
        if catalog.relation_exists(&name) {
            return Err(user_error(
                SqlState::WRONG_OBJECT_TYPE,
                format!("\"{name}\" is not a sequence"),
            ));
        }
        Err(user_error(
            SqlState::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        ))
    }

    async fn run(&self, args: ScalarFunctionArgs) -> Result<ArrayRef> {
        let rows = args.number_rows;
        let catalog = match self.public.env() {
            Some(env) => env.catalog.clone(),
            None => {
                return Err(thunderdb_common::ThunderError::internal(
                    "no statement catalog",
                ));
            }
        };
        if self.kind == Kind::Last {
            let last = {
                let session = self.session.lock();
                session
                    .last
                    .and_then(|id| session.current.get(&id).map(|v| (id, *v)))
            };
            let (id, v) = last.ok_or_else(|| {
                user_error(
                    SqlState("55000"),
                    "lastval is not yet defined in this session",
                )
            })?;
            // As currval: USAGE or SELECT on the sequence it reports.
            let oid = crate::pg_catalog::relation_oid(id);
            self.resolve(&catalog, &ScalarValue::Int64(Some(oid)))?;
            return Ok(Arc::new(Int64Array::from(vec![v; rows])));
        }
        let to_thunder =
            |e: DataFusionError| thunderdb_common::ThunderError::internal(e.to_string());
        // A constant sequence argument (the usual case) takes all the rows' values at once.
        if let ColumnarValue::Scalar(arg) = &args.args[0]
            && self.kind == Kind::Next
        {
            let arg = arg.cast_to(&arg_type(arg)).map_err(to_thunder)?;
            if arg.is_null() {
                return Ok(Arc::new(Int64Array::from(vec![None::<i64>; rows])));
            }
            let seq = self.resolve(&catalog, &arg)?;
            let values = crate::sequence::next_values(&self.engine, &seq, rows).await?;
            if let Some(&v) = values.last() {
                let mut session = self.session.lock();
                session.current.insert(seq.id, v);
                session.last = Some(seq.id);
            }
            return Ok(Arc::new(Int64Array::from(values)));
        }
        let names = args.args[0].to_array(rows).map_err(to_thunder)?;
        let values = match self.kind {
            Kind::Set => Some(column(&args, 1, &DataType::Int64).map_err(to_thunder)?),
            _ => None,
        };
        let called = match (self.kind, args.args.len()) {
            (Kind::Set, 3) => Some(column(&args, 2, &DataType::Boolean).map_err(to_thunder)?),
            _ => None,
        };
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let arg = ScalarValue::try_from_array(&names, row).map_err(to_thunder)?;
            let arg = arg.cast_to(&arg_type(&arg)).map_err(to_thunder)?;
            if arg.is_null() {
                out.push(None);
                continue;
            }
            let seq = self.resolve(&catalog, &arg)?;
            let value = match self.kind {
                Kind::Next => {
                    let v = crate::sequence::next_values(&self.engine, &seq, 1).await?[0];
                    let mut session = self.session.lock();
                    session.current.insert(seq.id, v);
                    session.last = Some(seq.id);
                    Some(v)
                }
                Kind::Curr => Some(*self.session.lock().current.get(&seq.id).ok_or_else(|| {
                    user_error(
                        SqlState("55000"),
                        format!(
                            "currval of sequence \"{}\" is not yet defined in this session",
                            seq.name
                        ),
                    )
                })?),
                Kind::Set => {
                    let values = values.as_ref().expect("setval has a value");
                    if values.is_null(row) {
                        out.push(None);
                        continue;
                    }
                    let v = values
                        .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                        .value(row);
                    // setval is strict: a NULL argument does nothing and answers NULL.
                    if called.as_ref().is_some_and(|c| c.is_null(row)) {
                        out.push(None);
                        continue;
                    }
                    let is_called = called.as_ref().is_none_or(|c| c.as_boolean().value(row));
                    crate::sequence::set_value(&self.engine, &seq, v, is_called).await?;
                    // currval follows setval; lastval stays the last nextval (PostgreSQL's).
                    if is_called {
                        self.session.lock().current.insert(seq.id, v);
                    }
                    Some(v)
                }
                Kind::Last => unreachable!("handled above"),
            };
            out.push(value);
        }
        Ok(Arc::new(Int64Array::from(out)))
    }
}

/// Text stays text; any number is an OID.
fn arg_type(v: &ScalarValue) -> DataType {
    match v.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            DataType::Utf8
        }
        _ => DataType::Int64,
    }
}

#[async_trait]
impl AsyncScalarUDFImpl for SequenceFunction {
    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        self.run(args).await.map(ColumnarValue::Array).map_err(df)
    }
}

/// `DROP SEQUENCE name`: `owned` sequences go only with their column (PostgreSQL refuses).
pub(crate) fn drop_sequence(
    view: &ReadView,
    catalog: &Catalog,
    name: &str,
    if_exists: bool,
) -> Result<()> {
    match catalog.sequences.get(name) {
        Some(seq) => {
            if let Some((table, column)) = &seq.owned_by
                && catalog.tables.get(table).is_some_and(|t| {
                    t.columns.iter().any(|c| {
                        c.name == *column
                            && c.default.as_deref() == Some(nextval_default(seq).as_str())
                    })
                })
            {
                return Err(user_error(
                    SqlState("2BP01"),
                    format!("cannot drop sequence {name} because other objects depend on it"),
                )
                .with_detail(format!(
                    "default value for column {column} of table {table} depends on sequence {name}"
                )));
            }
            catalog::delete_sequence(view, name);
            Ok(())
        }
        None if if_exists => Ok(()),
        None => Err(user_error(
            SqlState::UNDEFINED_TABLE,
            format!("sequence \"{name}\" does not exist"),
        )),
    }
}
