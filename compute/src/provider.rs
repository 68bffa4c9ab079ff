//! DataFusion's view of ThunderDB tables: a catalog provider whose tables read at the
//! statement's snapshot through the transaction's overlay, turning primary-key and index
//! predicates into point reads and key ranges.

use crate::catalog::{Catalog, IndexDef, TableDef};
use crate::convert::{build_array, datum_at};
use crate::error::to_df;
use crate::txn::ReadView;
use crate::types::arrow_type;
use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, BinaryArray, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::memory::{MemorySchemaProvider, MemorySourceConfig};
use datafusion::catalog::{CatalogProvider, SchemaProvider, Session, TableProvider};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use thunderdb_common::keys::{encode_datum, index_prefix, prefix_end};
use thunderdb_common::{Datum, IndexId, SqlType, TableId};

pub(crate) const BATCH_ROWS: usize = 8192;
/// Most point lookups one scan expands an IN list into before falling back to a range.
const MAX_POINTS: usize = 4096;

/// What the statement being planned reads: the catalog and view of its snapshot.
pub struct StatementEnv {
    pub catalog: Arc<Catalog>,
    pub view: ReadView,
    /// The DML target whose scans also return each row's storage key.
    pub key_table: Option<TableId>,
}

/// The session's `public` schema; its tables follow the current statement's environment.
/// It also carries the session's `search_path`, for the catalog functions.
#[derive(Debug, Default)]
pub struct PublicSchema {
    env: RwLock<Option<Arc<StatementEnv>>>,
    search_path: RwLock<Vec<String>>,
}

impl std::fmt::Debug for StatementEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StatementEnv(snapshot {})", self.view.snapshot)
    }
}

impl PublicSchema {
    pub fn set_env(&self, env: Option<Arc<StatementEnv>>) {
        *self.env.write() = env;
    }

    pub(crate) fn env(&self) -> Option<Arc<StatementEnv>> {
        self.env.read().clone()
    }

    pub(crate) fn set_search_path(&self, path: Vec<String>) {
        *self.search_path.write() = path;
    }

    /// The schemas of the session's `search_path` (`$user` resolved), existing or not.
    pub(crate) fn search_path(&self) -> Vec<String> {
        self.search_path.read().clone()
    }
}

#[async_trait]
impl SchemaProvider for PublicSchema {
    fn table_names(&self) -> Vec<String> {
        self.env()
            .map(|e| e.catalog.tables.keys().cloned().collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(env) = self.env() else {
            return Ok(None);
        };
        let Some(def) = env.catalog.tables.get(name) else {
            return Ok(None);
        };
        let with_key = env.key_table == Some(def.id);
        Ok(Some(Arc::new(ThunderTable {
            schema: def.arrow_schema(with_key),
            def: def.clone(),
            view: env.view.clone(),
            stats: env.catalog.stats_of(def).cloned(),
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.env()
            .is_some_and(|e| e.catalog.tables.contains_key(name))
    }
}

/// The database as a DataFusion catalog: `public`, `pg_catalog` and an internal scratch schema.
#[derive(Debug)]
pub struct DatabaseCatalog {
    pub public: Arc<PublicSchema>,
    pub pg_catalog: Arc<dyn SchemaProvider>,
    pub information_schema: Option<Arc<dyn SchemaProvider>>,
    /// Redis data as read-only tables.
    pub redis: Arc<dyn SchemaProvider>,
    /// Statement-scoped in-memory tables (RETURNING, ON CONFLICT, CHECK evaluation).
    pub scratch: Arc<MemorySchemaProvider>,
}

pub const SCRATCH_SCHEMA: &str = "__thunder";

impl CatalogProvider for DatabaseCatalog {
    fn schema_names(&self) -> Vec<String> {
        vec![
            "public".into(),
            "pg_catalog".into(),
            "information_schema".into(),
            "redis".into(),
        ]
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        match name {
            "public" => Some(self.public.clone()),
            "pg_catalog" => Some(self.pg_catalog.clone()),
            "information_schema" => self.information_schema.clone(),
            crate::redis::sql::SCHEMA => Some(self.redis.clone()),
            SCRATCH_SCHEMA => Some(self.scratch.clone()),
            _ => None,
        }
    }
}

/// One table at one snapshot.
#[derive(Debug)]
pub struct ThunderTable {
    def: Arc<TableDef>,
    view: ReadView,
    schema: SchemaRef,
    /// What `ANALYZE` measured, for the planner's column statistics.
    stats: Option<Arc<crate::catalog::TableStats>>,
}

impl std::fmt::Debug for ReadView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReadView@{}", self.snapshot)
    }
}

/// How a scan reaches its rows.
enum Access {
    /// Storage keys to fetch one by one.
    Points(Vec<Vec<u8>>),
    /// A range of storage keys.
    Range(Vec<u8>, Vec<u8>),
    /// A range of the named index's entries, whose values are storage keys.
    Index(Vec<u8>, Vec<u8>, String),
}

impl Access {
    /// Whether every row of `def` is read.
    fn is_full_scan(&self, def: &TableDef) -> bool {
        let (start, end) = def.row_range();
        matches!(self, Access::Range(s, e) if *s == start && *e == end)
    }

    /// Why the row path reads this way, for EXPLAIN.
    fn describe(&self, def: &TableDef) -> String {
        match self {
            Access::Points(keys) => format!("primary key lookup of {} key(s)", keys.len()),
            Access::Range(..) if self.is_full_scan(def) => "full scan".into(),
            Access::Range(..) => "primary key range".into(),
            Access::Index(_, _, name) => format!("range of index {name}"),
        }
    }
}

/// Per-column constraints gathered from the pushed-down filters.
#[derive(Default, Clone)]
struct ColumnBounds {
    points: Option<Vec<Datum>>,
    lower: Option<(Datum, bool)>,
    upper: Option<(Datum, bool)>,
}

impl ThunderTable {
    fn column_of(&self, e: &Expr) -> Option<usize> {
        match e {
            Expr::Column(c) => self.def.column_index(&c.name),
            Expr::Cast(c) => self.column_of(&c.expr),
            _ => None,
        }
    }

    fn literal(&self, e: &Expr, col: usize) -> Option<Datum> {
        let Expr::Literal(v, _) = e else { return None };
        scalar_datum(v, &self.def.columns[col].ty)
    }

    fn bounds(&self, filters: &[Expr]) -> HashMap<usize, ColumnBounds> {
        let mut out: HashMap<usize, ColumnBounds> = HashMap::new();
        for f in filters {
            self.collect_bounds(f, &mut out);
        }
        out
    }

    fn collect_bounds(&self, f: &Expr, out: &mut HashMap<usize, ColumnBounds>) {
        match f {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => {
                self.collect_bounds(left, out);
                self.collect_bounds(right, out);
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (col, lit, op) = match (self.column_of(left), self.column_of(right)) {
                    (Some(c), None) => (c, right.as_ref(), *op),
                    (None, Some(c)) => match op.swap() {
                        Some(op) => (c, left.as_ref(), op),
                        None => return,
                    },
                    _ => return,
                };
                let Some(d) = self.literal(lit, col) else {
                    return;
                };
                if d.is_null() {
                    return;
                }
                let b = out.entry(col).or_default();
                match op {
                    Operator::Eq => b.points = Some(vec![d]),
                    Operator::Gt => b.lower = Some((d, false)),
                    Operator::GtEq => b.lower = Some((d, true)),
                    Operator::Lt => b.upper = Some((d, false)),
                    Operator::LtEq => b.upper = Some((d, true)),
                    _ => {}
                }
            }
            Expr::InList(list) if !list.negated => {
                let Some(col) = self.column_of(&list.expr) else {
                    return;
                };
                let points: Option<Vec<Datum>> = list
                    .list
                    .iter()
                    .map(|e| self.literal(e, col).filter(|d| !d.is_null()))
                    .collect();
                if let Some(points) = points {
                    out.entry(col).or_default().points = Some(points);
                }
            }
            Expr::Between(b) if !b.negated => {
                let Some(col) = self.column_of(&b.expr) else {
                    return;
                };
                if let (Some(lo), Some(hi)) =
                    (self.literal(&b.low, col), self.literal(&b.high, col))
                {
                    let e = out.entry(col).or_default();
                    e.lower = Some((lo, true));
                    e.upper = Some((hi, true));
                }
            }
            _ => {}
        }
    }

    /// Chooses point reads, a primary-key range, an index range, or a full scan.
    fn access(&self, filters: &[Expr]) -> Access {
        let bounds = self.bounds(filters);
        let def = &self.def;
        let (start, end) = def.row_range();
        if !def.primary_key.is_empty() {
            let prefix = index_prefix(def.id, IndexId::PRIMARY);
            if let Some(keys) = point_keys(&prefix, &def.primary_key, &bounds) {
                return Access::Points(keys);
            }
            if let Some((s, e)) = key_range(&prefix, &def.primary_key, &bounds) {
                return Access::Range(s, e);
            }
        }
        // The index whose leading columns the filters pin down best.
        let best = def
            .indexes
            .iter()
            .map(|idx: &IndexDef| {
                (
                    idx,
                    idx.columns
                        .iter()
                        .take_while(|c| {
                            bounds
                                .get(c)
                                .is_some_and(|b| b.points.as_ref().is_some_and(|p| p.len() == 1))
                        })
                        .count(),
                )
            })
            .filter(|(_, n)| *n > 0)
            .max_by_key(|(_, n)| *n);
        if let Some((idx, _)) = best {
            let prefix = index_prefix(def.id, idx.id);
            if let Some((s, e)) = key_range(&prefix, &idx.columns, &bounds) {
                return Access::Index(s, e, idx.name.clone());
            }
        }
        if let Some(idx) = def.indexes.iter().find(|idx| {
            bounds
                .get(&idx.columns[0])
                .is_some_and(|b| b.lower.is_some() || b.upper.is_some())
        }) {
            let prefix = index_prefix(def.id, idx.id);
            if let Some((s, e)) = key_range(&prefix, &idx.columns, &bounds) {
                return Access::Index(s, e, idx.name.clone());
            }
        }
        Access::Range(start, end)
    }

    async fn fetch(
        &self,
        access: Access,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> crate::error::Result<Vec<(Vec<u8>, thunderdb_pageserver::Value)>> {
        Ok(match access {
            Access::Points(keys) => {
                let mut rows = Vec::with_capacity(keys.len());
                for k in keys {
                    if let Some(v) = self.view.get(&k).await? {
                        rows.push((k, v));
                    }
                }
                rows
            }
            Access::Range(s, e) => {
                self.view
                    .scan(&s, &e, if filters.is_empty() { limit } else { None })
                    .await?
            }
            Access::Index(s, e, _) => {
                let entries = self.view.scan(&s, &e, None).await?;
                let mut rows = Vec::with_capacity(entries.len());
                for (_, pk) in entries {
                    if let Some(v) = self.view.get(&pk).await? {
                        rows.push((pk.to_vec(), v));
                    }
                }
                rows
            }
        })
    }
}

/// Every full storage key the filters allow, when each key column is pinned to a few values.
fn point_keys(
    prefix: &[u8],
    cols: &[usize],
    bounds: &HashMap<usize, ColumnBounds>,
) -> Option<Vec<Vec<u8>>> {
    let mut keys = vec![prefix.to_vec()];
    for c in cols {
        let points = bounds.get(c)?.points.as_ref()?;
        if keys.len() * points.len() > MAX_POINTS {
            return None;
        }
        keys = keys
            .iter()
            .flat_map(|k| {
                points.iter().map(move |p| {
                    let mut k = k.clone();
                    encode_datum(&mut k, p);
                    k
                })
            })
            .collect();
    }
    keys.sort();
    keys.dedup();
    Some(keys)
}

/// A key range from equalities on leading columns and bounds on the next one.
fn key_range(
    prefix: &[u8],
    cols: &[usize],
    bounds: &HashMap<usize, ColumnBounds>,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut base = prefix.to_vec();
    let mut pinned = 0;
    for c in cols {
        match bounds.get(c).and_then(|b| b.points.as_ref()) {
            Some(p) if p.len() == 1 => {
                encode_datum(&mut base, &p[0]);
                pinned += 1;
            }
            _ => break,
        }
    }
    let next = cols.get(pinned).and_then(|c| bounds.get(c));
    let (lower, upper) = next
        .map(|b| (b.lower.clone(), b.upper.clone()))
        .unwrap_or((None, None));
    if pinned == 0 && lower.is_none() && upper.is_none() {
        return None;
    }
    let end_of = |k: &[u8]| prefix_end(k).expect("key prefix is never all 0xFF");
    let start = match &lower {
        Some((d, inclusive)) => {
            let mut k = base.clone();
            encode_datum(&mut k, d);
            if *inclusive { k } else { end_of(&k) }
        }
        None => base.clone(),
    };
    let end = match &upper {
        Some((d, inclusive)) => {
            let mut k = base.clone();
            encode_datum(&mut k, d);
            if *inclusive { end_of(&k) } else { k }
        }
        None => end_of(&base),
    };
    Some((start, end))
}

/// A filter literal as a datum of the column's type, when it converts exactly.
fn scalar_datum(v: &ScalarValue, ty: &SqlType) -> Option<Datum> {
    let target = arrow_type(ty);
    let cast = if v.data_type() == target {
        v.clone()
    } else {
        v.cast_to(&target).ok()?
    };
    // A lossy conversion (1.5 to an integer column) must not narrow the scan.
    if let (Ok(back), true) = (cast.cast_to(&v.data_type()), v.data_type().is_numeric())
        && back != *v
    {
        return None;
    }
    let arr = cast.to_array().ok()?;
    datum_at(&arr, 0, ty).ok()
}

#[async_trait]
impl TableProvider for ThunderTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Filters only narrow which keys are read; DataFusion still applies them to the rows.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let projection: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        // ANALYZE's distinct counts and NULL fractions of the projected columns.
        let measured: Arc<[Option<crate::catalog::ColumnStats>]> = projection
            .iter()
            .map(|&i| {
                let column = self.def.columns.get(i)?;
                let stats = self.stats.as_ref()?;
                stats
                    .columns
                    .iter()
                    .find(|c| c.column == column.id)
                    .cloned()
            })
            .collect();
        let access = self.access(filters);
        let mut why = access.describe(&self.def);
        if access.is_full_scan(&self.def) {
            // Large scans read the columnar segment when there is one that fits.
            match crate::columnar::scan(
                state,
                &self.def,
                &self.view,
                &projection,
                filters,
                measured.clone(),
            )
            .await
            .map_err(to_df)?
            {
                Ok(plan) => return Ok(plan),
                Err(not) => why = format!("{why}; {not}"),
            }
        }
        let rows = self.fetch(access, filters, limit).await.map_err(to_df)?;
        let projected = Arc::new(self.schema.project(&projection)?);
        let batches = rows
            .chunks(BATCH_ROWS)
            .map(|chunk| rows_batch(&self.def, chunk, &projection, &projected).map_err(to_df))
            .collect::<DfResult<Vec<_>>>()?;
        let input = MemorySourceConfig::try_new_exec(&[batches], projected, None)
            .map_err(|e: DataFusionError| e)?;
        Ok(Arc::new(crate::columnar::ThunderScanExec::rows(
            input,
            self.def.name.clone(),
            why,
            measured,
        )))
    }
}

/// Rows as one batch of `schema`: `projection` indexes the table's columns, and
/// `columns.len()` stands for the storage key.
pub(crate) fn rows_batch(
    def: &TableDef,
    rows: &[(Vec<u8>, thunderdb_pageserver::Value)],
    projection: &[usize],
    schema: &SchemaRef,
) -> crate::error::Result<RecordBatch> {
    let ncols = def.columns.len();
    let mut columns: Vec<Vec<Datum>> = vec![Vec::with_capacity(rows.len()); ncols];
    for (_, value) in rows {
        let row = def.decode_row(value)?;
        for (i, d) in row.into_iter().enumerate() {
            columns[i].push(d);
        }
    }
    let arrays: Vec<ArrayRef> = projection
        .iter()
        .map(|&p| {
            if p < ncols {
                build_array(&def.columns[p].ty, &columns[p])
            } else {
                Arc::new(
                    rows.iter()
                        .map(|(k, _)| Some(k.as_slice()))
                        .collect::<BinaryArray>(),
                ) as ArrayRef
            }
        })
        .collect();
    RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )
    .map_err(|e| thunderdb_common::ThunderError::internal(e.to_string()))
}
