//! TPC-H at scale 0.1: data from `tpchgen-cli`, loaded with COPY, all 22 queries compared
//! with DuckDB's answers on the same files (PyPI `duckdb`, its TPC-H extension loaded from the
//! `duckdb-extension-tpch` wheel for the query texts). `benches/tpch.rs` uses the same pieces
//! to time ThunderDB, DuckDB and PostgreSQL at scale 1.

use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
#[cfg(test)]
use std::time::Instant;

use futures::SinkExt;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::harness::run_child;
#[cfg(test)]
use crate::harness::{ServerOptions, TestServer, skip};

#[cfg(test)]
const TEST: &str = "tpch::all_22_queries_answer_as_duckdb_does_at_scale_0_1";

pub const SCHEMA: &str = "
CREATE TABLE region (r_regionkey INTEGER PRIMARY KEY, r_name CHAR(25) NOT NULL,
    r_comment VARCHAR(152));
CREATE TABLE nation (n_nationkey INTEGER PRIMARY KEY, n_name CHAR(25) NOT NULL,
    n_regionkey INTEGER NOT NULL, n_comment VARCHAR(152));
CREATE TABLE part (p_partkey INTEGER PRIMARY KEY, p_name VARCHAR(55) NOT NULL,
    p_mfgr CHAR(25) NOT NULL, p_brand CHAR(10) NOT NULL, p_type VARCHAR(25) NOT NULL,
    p_size INTEGER NOT NULL, p_container CHAR(10) NOT NULL, p_retailprice DECIMAL(15,2) NOT NULL,
    p_comment VARCHAR(23) NOT NULL);
CREATE TABLE supplier (s_suppkey INTEGER PRIMARY KEY, s_name CHAR(25) NOT NULL,
    s_address VARCHAR(40) NOT NULL, s_nationkey INTEGER NOT NULL, s_phone CHAR(15) NOT NULL,
    s_acctbal DECIMAL(15,2) NOT NULL, s_comment VARCHAR(101) NOT NULL);
CREATE TABLE partsupp (ps_partkey INTEGER NOT NULL, ps_suppkey INTEGER NOT NULL,
    ps_availqty INTEGER NOT NULL, ps_supplycost DECIMAL(15,2) NOT NULL,
    ps_comment VARCHAR(199) NOT NULL, PRIMARY KEY (ps_partkey, ps_suppkey));
CREATE TABLE customer (c_custkey INTEGER PRIMARY KEY, c_name VARCHAR(25) NOT NULL,
    c_address VARCHAR(40) NOT NULL, c_nationkey INTEGER NOT NULL, c_phone CHAR(15) NOT NULL,
    c_acctbal DECIMAL(15,2) NOT NULL, c_mktsegment CHAR(10) NOT NULL,
    c_comment VARCHAR(117) NOT NULL);
CREATE TABLE orders (o_orderkey INTEGER PRIMARY KEY, o_custkey INTEGER NOT NULL,
    o_orderstatus CHAR(1) NOT NULL, o_totalprice DECIMAL(15,2) NOT NULL,
    o_orderdate DATE NOT NULL, o_orderpriority CHAR(15) NOT NULL, o_clerk CHAR(15) NOT NULL,
    o_shippriority INTEGER NOT NULL, o_comment VARCHAR(79) NOT NULL);
CREATE TABLE lineitem (l_orderkey INTEGER NOT NULL, l_partkey INTEGER NOT NULL,
    l_suppkey INTEGER NOT NULL, l_linenumber INTEGER NOT NULL,
    l_quantity DECIMAL(15,2) NOT NULL, l_extendedprice DECIMAL(15,2) NOT NULL,
    l_discount DECIMAL(15,2) NOT NULL, l_tax DECIMAL(15,2) NOT NULL,
    l_returnflag CHAR(1) NOT NULL, l_linestatus CHAR(1) NOT NULL, l_shipdate DATE NOT NULL,
    l_commitdate DATE NOT NULL, l_receiptdate DATE NOT NULL, l_shipinstruct CHAR(25) NOT NULL,
    l_shipmode CHAR(10) NOT NULL, l_comment VARCHAR(44) NOT NULL,
    PRIMARY KEY (l_orderkey, l_linenumber));
";

pub const TABLES: &[&str] = &[
    "region", "nation", "part", "supplier", "partsupp", "customer", "orders", "lineitem",
];

/// DuckDB's side: loads the CSV files, writes each query's text to `q<N>.sql`, its rows to
/// `q<N>.out` (cells separated by a unit separator, NULL as `NULL`) and its time in seconds to
/// `q<N>.secs`.
const DUCKDB_SCRIPT: &str = r#"
import duckdb, glob, os, sys, time
import duckdb_extension_tpch as ext
data = sys.argv[1]
con = duckdb.connect(config={'allow_unsigned_extensions': 'true'})
# Its progress bar (on stdout, for longer queries) would hide the final "ok".
con.execute("SET enable_progress_bar = false")
path = glob.glob(os.path.join(os.path.dirname(ext.__file__), 'extensions', '*', 'tpch.duckdb_extension'))[0]
con.execute(f"LOAD '{path}'")
queries = con.execute("SELECT query_nr, query FROM tpch_queries() ORDER BY query_nr").fetchall()
con.execute("CALL dbgen(sf=0)")
for t in ['region', 'nation', 'part', 'supplier', 'partsupp', 'customer', 'orders', 'lineitem']:
    con.execute(f"INSERT INTO {t} SELECT * FROM read_csv('{data}/{t}.csv', header=true)")
def cell(v):
    return 'NULL' if v is None else str(v)
for n, q in queries:
    with open(os.path.join(data, f'q{n}.sql'), 'w') as f:
        f.write(q)
    started = time.perf_counter()
    rows = con.execute(q).fetchall()
    with open(os.path.join(data, f'q{n}.secs'), 'w') as f:
        f.write(str(time.perf_counter() - started))
    with open(os.path.join(data, f'q{n}.out'), 'w') as f:
        for r in rows:
            f.write('\x1f'.join(cell(v) for v in r) + '\n')
print('ok')
"#;

/// Why TPC-H cannot run here (a tool is missing), if it cannot.
pub fn tools_missing() -> Option<String> {
    let ok = |cmd: &mut Command| {
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok(Command::new("tpchgen-cli").arg("--version")) {
        return Some("tpchgen-cli is not installed (pip install tpchgen-cli)".into());
    }
    if !ok(Command::new("python3").args(["-c", "import duckdb, duckdb_extension_tpch"])) {
        return Some(
            "duckdb or duckdb-extension-tpch is not installed (pip install duckdb \
             duckdb-extension-tpch)"
                .into(),
        );
    }
    None
}

/// Two cells agree when equal as text (trailing blanks of CHAR(n) aside) or, for numbers,
/// within one unit of the last decimal the less precise side printed (a numeric cut to its
/// scale against DuckDB's double: ThunderDB's `avg` of a numeric has 6 decimals, truncated,
/// where PostgreSQL prints about 16 significant digits) or a relative 1e-9 (two doubles).
pub fn same_cell(ours: &str, theirs: &str) -> bool {
    let (a, b) = (ours.trim_end(), theirs.trim_end());
    if a == b {
        return true;
    }
    let unit = |s: &str| match s.split_once('.') {
        Some((_, frac)) if !frac.contains(['e', 'E']) => Some(10f64.powi(-(frac.len() as i32))),
        _ => None,
    };
    // The less precise side's unit; an integer has none (it must be exact).
    let tolerance = match (unit(a), unit(b)) {
        (Some(x), Some(y)) => x.max(y),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => 0.0,
    };
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => {
            let diff = (x - y).abs();
            diff <= tolerance * 1.000_001 || diff <= 1e-9 * x.abs().max(y.abs())
        }
        _ => false,
    }
}

/// The rows of `sql` as text, or the server's error.
pub async fn rows_of(c: &Client, sql: &str) -> Result<Vec<Vec<String>>, String> {
    let messages = c.simple_query(sql).await.map_err(|e| {
        e.as_db_error()
            .map(|d| format!("{}: {}", d.code().code(), d.message()))
            .unwrap_or_else(|| e.to_string())
    })?;
    Ok(messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

/// Creates the schema and loads every table from `data` with COPY.
pub async fn load(c: &Client, data: &Path) {
    c.batch_execute(SCHEMA).await.expect("create the schema");
    for t in TABLES {
        copy_csv(c, t, &data.join(format!("{t}.csv"))).await;
    }
}

/// Generates scale `scale` as CSV into `data`, then DuckDB's query texts, answers and times.
pub fn prepare(scale: &str, data: &Path) {
    let run = run_child(
        Command::new("tpchgen-cli")
            .args(["csv", "-s", scale, "--output-dir"])
            .arg(data),
        b"",
        Duration::from_secs(1200),
        "tpchgen-cli",
    );
    assert!(run.status.success(), "{}", run.describe());
    let run = run_child(
        Command::new("python3")
            .arg("-c")
            .arg(DUCKDB_SCRIPT)
            .arg(data),
        b"",
        Duration::from_secs(1800),
        "duckdb",
    );
    assert!(
        run.status.success() && run.stdout.trim() == "ok",
        "{}",
        run.describe()
    );
}

/// Query `n`'s text and DuckDB's rows for it.
pub fn query_and_answer(data: &Path, n: u32) -> (String, Vec<Vec<String>>) {
    let sql = std::fs::read_to_string(data.join(format!("q{n}.sql"))).expect("query text");
    let want = std::fs::read_to_string(data.join(format!("q{n}.out")))
        .expect("DuckDB's answer")
        .lines()
        .map(|l| l.split('\x1f').map(str::to_string).collect())
        .collect();
    (sql, want)
}

/// Whether our rows are DuckDB's, cell by cell.
pub fn same_rows(got: &[Vec<String>], want: &[Vec<String>]) -> bool {
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| g.len() == w.len() && g.iter().zip(w).all(|(a, b)| same_cell(a, b)))
}

async fn copy_csv(c: &Client, table: &str, file: &Path) {
    let sink = c
        .copy_in(&format!(
            "COPY {table} FROM STDIN WITH (FORMAT csv, HEADER true)"
        ))
        .await
        .unwrap_or_else(|e| panic!("COPY {table}: {e:?}"));
    let bytes = std::fs::read(file).expect("read the CSV file");
    let mut sink = std::pin::pin!(sink);
    for chunk in bytes.chunks(1 << 20) {
        sink.send(bytes::Bytes::copy_from_slice(chunk))
            .await
            .unwrap_or_else(|e| panic!("COPY {table}: {e:?}"));
    }
    sink.as_mut()
        .finish()
        .await
        .unwrap_or_else(|e| panic!("COPY {table}: {e:?}"));
}

#[tokio::test]
async fn all_22_queries_answer_as_duckdb_does_at_scale_0_1() {
    if let Some(why) = tools_missing() {
        skip(TEST, &why);
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data: PathBuf = dir.path().to_owned();
    prepare("0.1", &data);

    // Small layers, so the scans read an image generation, deltas and memory together.
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            (
                "THUNDERDB_PAGESERVER_FREEZE_BYTES".into(),
                "16777216".into(),
            ),
            (
                "THUNDERDB_PAGESERVER_IMAGE_AFTER_DELTA_BYTES".into(),
                "33554432".into(),
            ),
        ],
        ..Default::default()
    });
    let c = server.connect().await;
    let started = Instant::now();
    load(&c, &data).await;
    eprintln!("tpch: loaded in {:?}", started.elapsed());
    c.batch_execute("ANALYZE").await.expect("ANALYZE");
    // Every table gets its columnar segment; rows rewritten after it (same values, new
    // versions) make the scans merge the segment with the changes since.
    let started = Instant::now();
    c.batch_execute("CHECKPOINT").await.expect("CHECKPOINT");
    eprintln!("tpch: segments written in {:?}", started.elapsed());
    let segments = c
        .query_one("SELECT count(*) FROM thunder_storage_segments", &[])
        .await
        .expect("segments")
        .get::<_, i64>(0);
    assert_eq!(
        segments,
        TABLES.len() as i64,
        "a table has no columnar segment"
    );
    c.batch_execute(
        "UPDATE lineitem SET l_comment = l_comment WHERE l_orderkey < 3000; \
         UPDATE nation SET n_comment = n_comment; \
         DELETE FROM region WHERE r_regionkey = 4; \
         INSERT INTO region SELECT 4, 'MIDDLE EAST', r_comment FROM region WHERE r_regionkey = 3",
    )
    .await
    .expect("rewrite rows after the segments");
    let plan: Vec<String> = c
        .simple_query("EXPLAIN SELECT sum(l_quantity) FROM lineitem")
        .await
        .expect("EXPLAIN")
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    assert!(
        plan.iter()
            .any(|l| l.contains("path=columnar") && !l.contains("changed_rows=0")),
        "{plan:?}"
    );

    let mut failures = Vec::new();
    for n in 1..=22 {
        let (sql, want) = query_and_answer(&data, n);
        assert!(
            !want.is_empty(),
            "DuckDB has no rows for Q{n}: the data is not there"
        );
        let started = Instant::now();
        let got = rows_of(&c, &sql).await;
        eprintln!("tpch: Q{n} in {:?}", started.elapsed());
        match got {
            Err(e) => failures.push(format!("Q{n} failed: {e}")),
            Ok(got) if !same_rows(&got, &want) => failures.push(format!(
                "Q{n}: {} rows, DuckDB {} rows\n  first ours:   {:?}\n  first DuckDB: {:?}",
                got.len(),
                want.len(),
                got.first(),
                want.first()
            )),
            Ok(_) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 22 TPC-H queries differ from DuckDB:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
