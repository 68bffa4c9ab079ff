//! Columnar segments, the analytic path: each table's rows at one LSN as Parquet files in
//! object storage, written by a background compactor, and the scan that reads them with
//! DataFusion's Parquet reader and merges, key by key, what changed after the segment's LSN up
//! to the statement's snapshot (and the transaction's own writes). A segment is a cache of the
//! row pages: a scan that cannot use one reads the rows instead, with the same answer.

use crate::catalog::ColumnStats;
use crate::catalog::{Catalog, KEY_COLUMN, TableDef};
use crate::error::Result;
use crate::txn::ReadView;
use datafusion::arrow::array::{Array, BinaryArray, BooleanArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result as DfResult, Statistics};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, utils::conjunction};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildStats, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, StatisticsArgs,
};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use parking_lot::Mutex;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;
use thunderdb_common::config::ColumnarConfig;
use thunderdb_common::{Lsn, ThunderError};
use thunderdb_pageserver::{
    PageError, PageService, SegmentChange, SegmentFile, SegmentMeta, Value,
};

/// The object-store URL under which every session reads segment files.
const STORE_URL: &str = "thunderdb://segments/";
/// Rows the compactor reads from the pageserver at a time.
const SCAN_CHUNK: usize = 8192;
/// A segment file is closed at about this size (it is uploaded from memory).
const FILE_BYTES: usize = 256 << 20;
/// A segment found unchanged is moved up to the current LSN once it is this old, so it stays
/// above the history horizon (reads below it are refused).
const REBASE_AFTER: Duration = Duration::from_secs(60);
/// A segment with fewer changes than the threshold is rewritten anyway once this old.
const REWRITE_AFTER: Duration = Duration::from_secs(1800);

/// Makes segment files readable in `ctx` through `store`.
pub(crate) fn register_store(ctx: &SessionContext, store: Arc<dyn object_store::ObjectStore>) {
    let url = ObjectStoreUrl::parse(STORE_URL).expect("the segment store URL parses");
    ctx.register_object_store(url.as_ref(), store);
}

/// What a segment file holds for `def`: its columns' ids, names, types and nullability. A
/// scan uses a segment only when its table definition has the same fingerprint.
pub fn fingerprint(def: &TableDef) -> String {
    let cols: Vec<_> = def
        .columns
        .iter()
        .map(|c| (c.id, c.name.as_str(), &c.ty, c.not_null))
        .collect();
    let bytes = bincode::serialize(&cols).expect("column definitions serialize");
    // FNV-1a: stable across processes and versions, unlike the standard hasher.
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("v1-{hash:016x}")
}

/// The newest segment of `def` that a scan at `view`'s snapshot can use, or why there is none.
fn usable_segment(
    def: &TableDef,
    view: &ReadView,
) -> std::result::Result<Arc<SegmentMeta>, &'static str> {
    let seg = view
        .pages
        .segments()
        .into_iter()
        .find(|s| s.table == def.id.0)
        .ok_or("the table has no columnar segment yet")?;
    if seg.schema != fingerprint(def) {
        return Err("the columnar segment predates the table's definition");
    }
    if seg.exact_from() > view.snapshot {
        return Err("the columnar segment is newer than the snapshot");
    }
    Ok(seg)
}

/// A full scan of `def` through its segment, or why it reads rows instead. `projection`
/// indexes the table's columns (`columns.len()` is the storage key, with `with_key`).
pub(crate) async fn scan(
    state: &dyn Session,
    def: &TableDef,
    view: &ReadView,
    projection: &[usize],
    filters: &[Expr],
    measured: Arc<[Option<ColumnStats>]>,
) -> Result<std::result::Result<Arc<dyn ExecutionPlan>, &'static str>> {
    let seg = match usable_segment(def, view) {
        Ok(seg) => seg,
        Err(why) => return Ok(Err(why)),
    };
    let (start, end) = def.row_range();
    let changed = match view
        .pages
        .changes(
            &start,
            &end,
            seg.lsn.min(view.snapshot),
            view.snapshot,
            None,
        )
        .await
    {
        Ok(c) => c,
        Err(PageError::SnapshotTooOld { .. }) => {
            return Ok(Err("the columnar segment is below the history horizon"));
        }
        Err(e) => return Err(e.into()),
    };
    // The transaction's own writes come last: they win over everything committed.
    let mut delta: BTreeMap<Vec<u8>, Option<Value>> = changed.into_iter().collect();
    {
        let t = view.txn.lock();
        for (k, v) in t.writes.range::<[u8], _>((
            std::ops::Bound::Included(&start[..]),
            std::ops::Bound::Excluded(&end[..]),
        )) {
            delta.insert(k.clone(), v.clone());
        }
    }
    view.note_read_range(&start, &end);

    let ncols = def.columns.len();
    let file_schema = def.arrow_schema(true);
    let out_schema = Arc::new(file_schema.project(projection).map_err(to_df_err)?);
    let hidden: HashSet<Vec<u8>> = delta.keys().cloned().collect();
    let live: Vec<(Vec<u8>, Value)> = delta
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let delta = live
        .chunks(crate::provider::BATCH_ROWS)
        .map(|chunk| crate::provider::rows_batch(def, chunk, projection, &out_schema))
        .collect::<Result<Vec<_>>>()?;
    // The files are read with the key column whenever rows must be hidden by it, and with at
    // least one column (the key) so batches carry their row counts.
    let mut file_projection = projection.to_vec();
    let key_pos = match projection.iter().position(|&p| p == ncols) {
        Some(i) => Some(i),
        None if !hidden.is_empty() || projection.is_empty() => {
            file_projection.push(ncols);
            Some(file_projection.len() - 1)
        }
        None => None,
    };
    let extra_key = key_pos.is_some() && !projection.contains(&ncols);
    let input: Arc<dyn ExecutionPlan> = if seg.files.is_empty() {
        let schema = Arc::new(file_schema.project(&file_projection).map_err(to_df_err)?);
        Arc::new(datafusion::physical_plan::empty::EmptyExec::new(schema))
    } else {
        let mut source = ParquetSource::new(file_schema.clone());
        if let Some(predicate) = predicate(state, &file_schema, filters) {
            source = source.with_predicate(predicate);
        }
        let remote = view.pages.object_storage();
        let files = seg
            .files
            .iter()
            .map(|f| PartitionedFile::new(remote.object_name(&f.name), f.size))
            .collect();
        let config = FileScanConfigBuilder::new(
            ObjectStoreUrl::parse(STORE_URL).map_err(to_df_err)?,
            Arc::new(source),
        )
        .with_file_group(FileGroup::new(files))
        .with_projection_indices(Some(file_projection))
        .map_err(to_df_err)?
        .build();
        DataSourceExec::from_data_source(config)
    };
    let detail = format!(
        "segment_lsn={}, snapshot={}, files={}, segment_rows={}, changed_rows={}",
        seg.lsn,
        view.snapshot,
        seg.files.len(),
        seg.rows,
        hidden.len()
    );
    let label = ScanLabel {
        table: def.name.clone(),
        path: "columnar",
        why: "a full scan reads the Parquet segment and the rows changed since".into(),
        detail,
    };
    Ok(Ok(Arc::new(ThunderScanExec::new(
        input,
        label,
        measured,
        Some(Merge {
            hidden: Arc::new(hidden),
            key_pos,
            drop_key: extra_key,
            delta,
            rows_estimate: seg.rows as usize + live.len(),
            schema: out_schema,
            _segment: seg.clone(),
        }),
    ))))
}

fn to_df_err(e: impl std::fmt::Display) -> ThunderError {
    ThunderError::internal(e.to_string())
}

/// The scan's filters as one physical predicate over the file schema, for pruning row groups
/// and pages by their statistics (the rows are filtered again above the scan). Filters on
/// floating-point columns are left out: Parquet statistics leave NaN out of min/max, so
/// pruning by them could drop a NaN row that the filter keeps (NaN sorts above every number).
fn predicate(
    state: &dyn Session,
    schema: &SchemaRef,
    filters: &[Expr],
) -> Option<Arc<dyn PhysicalExpr>> {
    let is_float = |name: &str| {
        schema
            .field_with_name(name)
            .map_or(true, |f| f.data_type().is_floating())
    };
    let unqualified: Vec<Expr> = filters
        .iter()
        .filter(|f| f.column_refs().iter().all(|c| !is_float(&c.name)))
        .filter_map(|f| {
            f.clone()
                .transform(|e| match e {
                    Expr::Column(c) if c.relation.is_some() => Ok(Transformed::yes(Expr::Column(
                        datafusion::common::Column::new_unqualified(c.name),
                    ))),
                    other => Ok(Transformed::no(other)),
                })
                .ok()
                .map(|t| t.data)
        })
        .collect();
    let expr = conjunction(unqualified)?;
    let df_schema = DFSchema::try_from(Schema::clone(schema)).ok()?;
    state.create_physical_expr(expr, &df_schema).ok()
}

/// How a columnar scan corrects its segment: rows whose key changed are hidden, and the
/// changed rows that live are added.
#[derive(Debug, Clone)]
struct Merge {
    hidden: Arc<HashSet<Vec<u8>>>,
    /// Position of the key column in the input's batches.
    key_pos: Option<usize>,
    /// The key column was read only to hide rows: the output leaves it out.
    drop_key: bool,
    /// The changed rows that live, in the output schema (emitted by partition 0).
    delta: Vec<RecordBatch>,
    rows_estimate: usize,
    schema: SchemaRef,
    /// Held while the plan lives, so the pageserver keeps its files.
    _segment: Arc<SegmentMeta>,
}

/// What EXPLAIN says of a scan: its table, its path, why, and the path's particulars.
#[derive(Debug, Clone)]
struct ScanLabel {
    table: String,
    path: &'static str,
    why: String,
    detail: String,
}

/// A scan of one table, as EXPLAIN shows it: which path it takes and why. The row path passes
/// its input through; the columnar path merges the changed rows into the segment's.
#[derive(Debug)]
pub(crate) struct ThunderScanExec {
    input: Arc<dyn ExecutionPlan>,
    label: ScanLabel,
    /// `ANALYZE`'s statistics of each output column, where it measured them.
    measured: Arc<[Option<ColumnStats>]>,
    merge: Option<Merge>,
    properties: Arc<PlanProperties>,
}

impl ThunderScanExec {
    fn new(
        input: Arc<dyn ExecutionPlan>,
        label: ScanLabel,
        measured: Arc<[Option<ColumnStats>]>,
        merge: Option<Merge>,
    ) -> ThunderScanExec {
        let properties = match &merge {
            None => input.properties().clone(),
            Some(m) => Arc::new(PlanProperties::new(
                datafusion::physical_expr::EquivalenceProperties::new(m.schema.clone()),
                datafusion::physical_plan::Partitioning::UnknownPartitioning(
                    input.properties().partitioning.partition_count().max(1),
                ),
                datafusion::physical_plan::execution_plan::EmissionType::Incremental,
                datafusion::physical_plan::execution_plan::Boundedness::Bounded,
            )),
        };
        ThunderScanExec {
            input,
            label,
            measured,
            merge,
            properties,
        }
    }

    /// The row path's scan: `input` holds the rows read.
    pub(crate) fn rows(
        input: Arc<dyn ExecutionPlan>,
        table: String,
        why: String,
        measured: Arc<[Option<ColumnStats>]>,
    ) -> ThunderScanExec {
        let label = ScanLabel {
            table,
            path: "row",
            why,
            detail: String::new(),
        };
        ThunderScanExec::new(input, label, measured, None)
    }
}

impl DisplayAs for ThunderScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match t {
            DisplayFormatType::TreeRender => {
                write!(f, "table={}\npath={}", self.label.table, self.label.path)
            }
            _ => {
                let l = &self.label;
                write!(
                    f,
                    "ThunderScan: table={}, path={} ({})",
                    l.table, l.path, l.why
                )?;
                if !l.detail.is_empty() {
                    write!(f, ", {}", l.detail)?;
                }
                Ok(())
            }
        }
    }
}

impl ExecutionPlan for ThunderScanExec {
    fn name(&self) -> &str {
        "ThunderScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let input = children.pop().ok_or_else(|| {
            datafusion::common::DataFusionError::Internal("ThunderScanExec has one input".into())
        })?;
        Ok(Arc::new(ThunderScanExec::new(
            input,
            self.label.clone(),
            self.measured.clone(),
            self.merge.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let Some(m) = &self.merge else {
            return self.input.execute(partition, context);
        };
        let input = if partition < self.input.properties().partitioning.partition_count() {
            Some(self.input.execute(partition, context)?)
        } else {
            None
        };
        let hidden = m.hidden.clone();
        let (key_pos, drop_key, schema) = (m.key_pos, m.drop_key, m.schema.clone());
        // The stream holds the segment: DataFusion may drop the plan while the files are
        // still being read.
        let segment = m._segment.clone();
        let fix = move |batch: RecordBatch| -> DfResult<RecordBatch> {
            let _ = &segment;
            let mut batch = batch;
            if let Some(k) = key_pos
                && !hidden.is_empty()
            {
                let keys = batch
                    .column(k)
                    .as_any()
                    .downcast_ref::<BinaryArray>()
                    .ok_or_else(|| {
                        datafusion::common::DataFusionError::Internal(
                            "segment key column is not binary".into(),
                        )
                    })?;
                let keep: BooleanArray = (0..keys.len())
                    .map(|i| Some(keys.is_null(i) || !hidden.contains(keys.value(i))))
                    .collect();
                batch = filter_record_batch(&batch, &keep)?;
            }
            if drop_key && let Some(k) = key_pos {
                let rows = batch.num_rows();
                let mut columns = batch.columns().to_vec();
                columns.remove(k);
                batch = RecordBatch::try_new_with_options(
                    schema.clone(),
                    columns,
                    &RecordBatchOptions::new().with_row_count(Some(rows)),
                )?;
            }
            Ok(batch)
        };
        let from_files = futures::stream::iter(input)
            .flatten()
            .map(move |b| b.and_then(&fix));
        let delta = if partition == 0 {
            m.delta.clone()
        } else {
            Vec::new()
        };
        let delta = delta.into_iter().map(Ok);
        let stream = from_files.chain(futures::stream::iter(delta));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            m.schema.clone(),
            stream,
        )))
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        match self.merge {
            None => vec![ChildStats::At(partition)],
            Some(_) => vec![ChildStats::Skip],
        }
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        let stats = match &self.merge {
            None => input_stats
                .first()
                .cloned()
                .unwrap_or_else(|| Arc::new(Statistics::new_unknown(&self.schema()))),
            Some(m) => {
                let mut stats = Statistics::new_unknown(&m.schema);
                if args.partition().is_none() {
                    stats.num_rows = Precision::Inexact(m.rows_estimate);
                }
                Arc::new(stats)
            }
        };
        if args.partition().is_some() || self.measured.iter().all(Option::is_none) {
            return Ok(stats);
        }
        // ANALYZE's measures, scaled to the rows there are now: the join estimates use the
        // distinct counts.
        let mut stats = Statistics::clone(&stats);
        let rows = stats.num_rows.get_value().copied();
        for (column, measured) in stats.column_statistics.iter_mut().zip(self.measured.iter()) {
            let (Some(m), Some(rows)) = (measured, rows) else {
                continue;
            };
            if m.unique {
                column.distinct_count = Precision::Inexact(rows);
            } else if m.distinct > 0 {
                column.distinct_count = Precision::Inexact((m.distinct as usize).min(rows.max(1)));
            }
            if column.null_count == Precision::Absent {
                column.null_count = Precision::Inexact((m.null_frac * rows as f64) as usize);
            }
        }
        Ok(Arc::new(stats))
    }
}

/// Why a table's segment could not be written.
enum WriteError {
    /// Its rows do not fit Parquet (a column type the writer does not take): the table keeps
    /// the row path until its definition changes.
    Unsupported(String),
    Other(ThunderError),
}

impl From<ThunderError> for WriteError {
    fn from(e: ThunderError) -> Self {
        WriteError::Other(e)
    }
}

impl From<PageError> for WriteError {
    fn from(e: PageError) -> Self {
        WriteError::Other(e.into())
    }
}

impl From<parquet::errors::ParquetError> for WriteError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        WriteError::Unsupported(e.to_string())
    }
}

/// What a look at one table came to.
enum Outcome {
    Unchanged,
    /// Its segment is still exact at a newer LSN: this change says so.
    Rebased(SegmentChange),
    Written,
}

/// What the compactor does with one table.
enum Action {
    /// Nothing yet.
    Wait,
    /// The segment is still exact at the new LSN: only its LSN moves.
    Rebase,
    /// Write a new segment.
    Write,
}

/// Writes and replaces tables' segments in the background (and on `CHECKPOINT`).
pub(crate) struct Compactor {
    pages: Arc<dyn PageService>,
    cfg: ColumnarConfig,
    /// Per table, the pageserver's row-write count when it was last looked at.
    seen: Mutex<HashMap<u32, u64>>,
    /// Tables whose definition (by fingerprint) Parquet cannot hold.
    unsupported: Mutex<HashMap<u32, String>>,
    /// One pass at a time.
    pass: tokio::sync::Mutex<()>,
}

impl Compactor {
    /// A compactor; with `cfg.enabled`, also its background task, which ends when the
    /// compactor is dropped.
    pub(crate) fn start(pages: Arc<dyn PageService>, cfg: ColumnarConfig) -> Arc<Compactor> {
        let enabled = cfg.enabled;
        let interval = Duration::from_secs(cfg.compact_interval_secs.max(1));
        let c = Arc::new(Compactor {
            pages,
            cfg,
            seen: Default::default(),
            unsupported: Default::default(),
            pass: Default::default(),
        });
        if enabled && tokio::runtime::Handle::try_current().is_ok() {
            let weak: Weak<Compactor> = Arc::downgrade(&c);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(interval).await;
                    let Some(c) = weak.upgrade() else { return };
                    if let Err(e) = c.run(false).await {
                        tracing::warn!(error = %e.message, "columnar compaction");
                    }
                }
            });
        }
        c
    }

    /// One pass over every table: writes the segments that are due (with `force`, of every
    /// table with rows that changed since its segment). Returns how many were written. A
    /// table that fails is logged and tried again on the next pass; the others go on.
    pub(crate) async fn run(&self, force: bool) -> Result<usize> {
        if !self.cfg.enabled {
            return Ok(0);
        }
        let _pass = self.pass.lock().await;
        let pages = &self.pages;
        let view = ReadView {
            pages: pages.clone(),
            snapshot: pages.applied_lsn(),
            txn: Default::default(),
        };
        let catalog = Catalog::load(&view).await?;
        let segments: HashMap<u32, Arc<SegmentMeta>> =
            pages.segments().into_iter().map(|s| (s.table, s)).collect();
        // Dropped tables' segments and the segments found still exact change in one
        // manifest write at the end.
        let mut changes: Vec<SegmentChange> = segments
            .values()
            .filter(|s| !catalog.tables.values().any(|d| d.id.0 == s.table))
            .map(|s| SegmentChange {
                table: s.table,
                previous: Some(s.lsn),
                segment: None,
            })
            .collect();
        let writes = pages.row_writes();
        let mut written = 0;
        let mut first_error = None;
        for def in catalog.tables.values() {
            let count = writes.get(&def.id.0).copied().unwrap_or(0);
            match self
                .compact(def, segments.get(&def.id.0), count, force)
                .await
            {
                Ok(Outcome::Unchanged) => {}
                Ok(Outcome::Rebased(change)) => changes.push(change),
                Ok(Outcome::Written) => written += 1,
                Err(e) => {
                    tracing::warn!(table = %def.name, error = %e.message, "columnar compaction");
                    first_error.get_or_insert(e);
                }
            }
        }
        if !changes.is_empty() {
            pages.change_segments(changes).await?;
        }
        // CHECKPOINT says when a table could not be brought up to date.
        match first_error {
            Some(e) if force => Err(e),
            _ => Ok(written),
        }
    }

    /// Looks at one table: writes its segment when due, or finds the one it has still exact.
    async fn compact(
        &self,
        def: &TableDef,
        seg: Option<&Arc<SegmentMeta>>,
        writes: u64,
        force: bool,
    ) -> Result<Outcome> {
        let pages = &self.pages;
        let id = def.id.0;
        let moved = self.seen.lock().get(&id) != Some(&writes);
        let fp = fingerprint(def);
        if self.unsupported.lock().get(&id) == Some(&fp) {
            return Ok(Outcome::Unchanged);
        }
        let lsn = pages.applied_lsn();
        let now = chrono::Utc::now().timestamp_micros();
        let (start, end) = def.row_range();
        let action = match seg {
            // Written above what this pageserver has applied yet (it restarted): wait.
            Some(seg) if seg.lsn > lsn => return Ok(Outcome::Unchanged),
            Some(seg) if seg.schema == fp => {
                let age =
                    Duration::from_micros(now.saturating_sub(seg.checked_micros).max(0) as u64);
                if !force && !moved && age < REBASE_AFTER {
                    return Ok(Outcome::Unchanged);
                }
                // Changes due: the configured count, or a twentieth of a large table.
                let due = self.cfg.compact_after_rows.max(seg.rows / 20) as usize;
                match pages.changes(&start, &end, seg.lsn, lsn, Some(due)).await {
                    Ok(c) if c.is_empty() => {
                        if force || age >= REBASE_AFTER {
                            Action::Rebase
                        } else {
                            Action::Wait
                        }
                    }
                    Ok(c) if force || c.len() >= due || age >= REWRITE_AFTER => Action::Write,
                    Ok(_) => Action::Wait,
                    Err(PageError::SnapshotTooOld { .. }) => Action::Write,
                    Err(e) => return Err(e.into()),
                }
            }
            // A segment of another definition is replaced at once.
            Some(_) => Action::Write,
            None => {
                if !force && !moved {
                    return Ok(Outcome::Unchanged);
                }
                let want = if force {
                    1
                } else {
                    self.cfg.compact_after_rows as usize
                };
                let probe = pages.scan(&start, &end, lsn, Some(want)).await?.len();
                if probe > 0 && probe >= want {
                    Action::Write
                } else {
                    Action::Wait
                }
            }
        };
        let previous = seg.map(|s| s.lsn);
        let outcome = match action {
            Action::Wait => Outcome::Unchanged,
            // The files stay exact from the LSN they were written at.
            Action::Rebase => Outcome::Rebased(SegmentChange {
                table: id,
                previous,
                segment: seg.map(|s| SegmentMeta {
                    lsn,
                    exact_from: Some(s.exact_from()),
                    checked_micros: now,
                    ..SegmentMeta::clone(s)
                }),
            }),
            Action::Write => match self.write(def, &fp, lsn).await {
                Ok(new) => {
                    let (rows, files, bytes) = (new.rows, new.files.clone(), new.bytes());
                    let change = SegmentChange {
                        table: id,
                        previous,
                        segment: Some(new),
                    };
                    let applied = pages.change_segments(vec![change]).await;
                    match applied.as_deref() {
                        Ok([true]) => {}
                        // Replaced meanwhile by another writer: the files are nobody's.
                        Ok(_) => {
                            let remote = pages.object_storage();
                            for f in &files {
                                let _ = remote.delete(&f.name).await;
                            }
                            return Ok(Outcome::Unchanged);
                        }
                        // The manifest may hold them even so (a write that failed after it
                        // landed): they stay.
                        Err(_) => {
                            applied?;
                        }
                    }
                    tracing::info!(table = %def.name, lsn = %lsn, rows, files = files.len(), bytes, "columnar segment written");
                    Outcome::Written
                }
                Err(WriteError::Unsupported(why)) => {
                    tracing::warn!(table = %def.name, error = %why, "table stays on the row path: Parquet cannot hold it");
                    self.unsupported.lock().insert(id, fp);
                    Outcome::Unchanged
                }
                Err(WriteError::Other(e)) => return Err(e),
            },
        };
        self.seen.lock().insert(id, writes);
        Ok(outcome)
    }

    /// Writes `def`'s rows at `lsn` as Parquet files (about `file_rows` rows each) into
    /// object storage, reading them a chunk at a time.
    async fn write(
        &self,
        def: &TableDef,
        fp: &str,
        lsn: Lsn,
    ) -> std::result::Result<SegmentMeta, WriteError> {
        let schema = def.arrow_schema(true);
        let all: Vec<usize> = (0..=def.columns.len()).collect();
        let props = writer_properties(def, &self.cfg);
        let remote = self.pages.object_storage();
        let uid: u64 = rand::random();
        let (mut after, end) = def.row_range();
        let mut files: Vec<SegmentFile> = Vec::new();
        let mut writer: Option<ArrowWriter<Vec<u8>>> = None;
        let (mut file_rows, mut total) = (0u64, 0u64);
        let result: std::result::Result<(), WriteError> = async {
            loop {
                let chunk = self.pages.scan(&after, &end, lsn, Some(SCAN_CHUNK)).await?;
                let last = chunk.len() < SCAN_CHUNK;
                if let Some((k, _)) = chunk.last() {
                    after = k.clone();
                    after.push(0);
                    let batch = crate::provider::rows_batch(def, &chunk, &all, &schema)?;
                    let w = match writer.take() {
                        Some(w) => w,
                        None => {
                            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone()))?
                        }
                    };
                    let w = tokio::task::spawn_blocking(move || {
                        let mut w = w;
                        w.write(&batch).map(|_| w)
                    })
                    .await
                    .map_err(|e| WriteError::Other(ThunderError::internal(e.to_string())))??;
                    writer = Some(w);
                    file_rows += chunk.len() as u64;
                    total += chunk.len() as u64;
                }
                let full = writer
                    .as_ref()
                    .is_some_and(|w| w.bytes_written() + w.in_progress_size() >= FILE_BYTES);
                if (last || full || file_rows >= self.cfg.file_rows)
                    && let Some(w) = writer.take()
                {
                    let bytes = tokio::task::spawn_blocking(move || w.into_inner())
                        .await
                        .map_err(|e| WriteError::Other(ThunderError::internal(e.to_string())))??;
                    let name = format!(
                        "segments/t{}/{:016x}-{uid:016x}-{}.parquet",
                        def.id.0,
                        lsn.0,
                        files.len()
                    );
                    let size = bytes.len() as u64;
                    remote.put(&name, bytes::Bytes::from(bytes)).await?;
                    files.push(SegmentFile {
                        name,
                        size,
                        rows: file_rows,
                    });
                    file_rows = 0;
                }
                if last {
                    return Ok(());
                }
                tokio::task::yield_now().await;
            }
        }
        .await;
        if let Err(e) = result {
            // Files of a segment never published are nobody's.
            for f in &files {
                let _ = remote.delete(&f.name).await;
            }
            return Err(e);
        }
        Ok(SegmentMeta {
            table: def.id.0,
            lsn,
            exact_from: None,
            schema: fp.to_string(),
            rows: total,
            files,
            checked_micros: chrono::Utc::now().timestamp_micros(),
        })
    }
}

/// zstd, row groups of `row_group_rows`, statistics down to pages (the page index), and bloom
/// filters on the storage key and the primary key's columns.
fn writer_properties(def: &TableDef, cfg: &ColumnarConfig) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(cfg.row_group_rows))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_bloom_filter_enabled(ColumnPath::from(KEY_COLUMN), true);
    for &i in &def.primary_key {
        b = b.set_column_bloom_filter_enabled(ColumnPath::from(def.columns[i].name.as_str()), true);
    }
    b.build()
}
