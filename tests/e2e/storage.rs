//! Storage: the pageserver's layers live in object storage (a local directory or S3), its own
//! disk is only a cache, and a pageserver whose disk is gone answers every query as before.
//! Full scans read the tables' columnar segments (Parquet, in the same object storage) merged
//! with the rows changed since, and answer exactly as the rows do at every snapshot.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::harness::{ServerOptions, TestServer, skip};
use crate::sql::{exec, exec_count, expect_error, query_lines, query_value};

/// Small layers, so a few thousand rows make several delta layers and an image generation.
fn small_layers() -> Vec<(String, String)> {
    [
        ("THUNDERDB_PAGESERVER_FREEZE_BYTES", "65536"),
        ("THUNDERDB_PAGESERVER_IMAGE_AFTER_DELTA_BYTES", "262144"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Rows, updates and deletes in many transactions; returns what the queries below answer.
async fn write_history(c: &Client) {
    exec(
        c,
        "CREATE TABLE acct (id INT PRIMARY KEY, owner TEXT NOT NULL, balance BIGINT NOT NULL)",
    )
    .await;
    exec(c, "CREATE INDEX acct_owner ON acct (owner)").await;
    for batch in 0..20 {
        let values: Vec<String> = (0..200)
            .map(|i| {
                let id = batch * 200 + i;
                format!(
                    "({id}, 'owner {} {}', {})",
                    id % 37,
                    "p".repeat(60),
                    id * 10
                )
            })
            .collect();
        exec(c, &format!("INSERT INTO acct VALUES {}", values.join(","))).await;
    }
    for k in 0..10 {
        exec(
            c,
            &format!("UPDATE acct SET balance = balance + {k} WHERE id % 10 = {k}"),
        )
        .await;
    }
    exec(c, "DELETE FROM acct WHERE id % 13 = 0").await;
}

const QUERIES: &[&str] = &[
    "SELECT count(*), sum(balance), min(id), max(id) FROM acct",
    "SELECT owner, count(*), sum(balance) FROM acct GROUP BY owner ORDER BY owner LIMIT 5",
    "SELECT id, balance FROM acct WHERE id IN (0, 1, 13, 1999, 2000, 3999) ORDER BY id",
    "SELECT id FROM acct WHERE owner = 'owner 5 pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp' ORDER BY id LIMIT 4",
    "SELECT id, balance FROM acct WHERE id BETWEEN 1500 AND 1510 ORDER BY id",
];

async fn answers(c: &Client) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for q in QUERIES {
        out.push(query_lines(c, q).await);
    }
    out
}

async fn storage_row(c: &Client) -> Vec<String> {
    query_value(
        c,
        "SELECT applied_lsn, consistent_lsn, upload_lag_lsn, delta_layers, image_layers \
         FROM thunder_storage",
    )
    .await
    .split('|')
    .map(str::to_string)
    .collect()
}

/// Waits until the background image generation is listed (it follows the delta layers).
async fn wait_for_image(c: &Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = storage_row(c).await;
        if row[4] != "0" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no image layer was written: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The plan EXPLAIN prints for `sql`, one string.
async fn plan(c: &Client, sql: &str) -> String {
    query_lines(c, &format!("EXPLAIN {sql}")).await.join("\n")
}

/// Writes, checkpoints, loses the pageserver's disk, and checks the answers.
async fn lose_the_disk_and_compare(server: &mut TestServer) {
    let c = server.connect().await;
    write_history(&c).await;
    let before = answers(&c).await;
    assert_eq!(before[0], vec!["3692|73850476|1|3999".to_string()]);
    assert!(plan(&c, QUERIES[0]).await.contains("path=row"));
    exec(&c, "CHECKPOINT").await;
    // CHECKPOINT also wrote the table's columnar segment, which full scans now read.
    assert_eq!(
        query_value(
            &c,
            "SELECT table_name, row_count, files FROM thunder_storage_segments"
        )
        .await,
        "acct|3692|1"
    );
    assert!(plan(&c, QUERIES[0]).await.contains("path=columnar"));
    assert_eq!(answers(&c).await, before);
    let row = storage_row(&c).await;
    assert_eq!(
        row[0], row[1],
        "CHECKPOINT left the storage behind: {row:?}"
    );
    assert_eq!(row[2], "0");
    assert!(row[3].parse::<u32>().unwrap() >= 2, "{row:?}");
    wait_for_image(&c).await;
    let kinds = query_lines(
        &c,
        "SELECT DISTINCT kind FROM thunder_storage_layers WHERE name IS NOT NULL ORDER BY kind",
    )
    .await;
    assert_eq!(kinds, vec!["delta", "image"]);
    // Writes after the checkpoint are in the WAL only until the next one.
    exec(&c, "UPDATE acct SET balance = -1 WHERE id = 1").await;
    let after = answers(&c).await;
    drop(c);

    server.kill9();
    let local = server.data_dir().join("pageserver");
    assert!(
        local.is_dir(),
        "no pageserver directory at {}",
        local.display()
    );
    std::fs::remove_dir_all(&local).expect("remove the pageserver's directory");
    server.restart_same_dir();
    assert!(
        server
            .logs()
            .contains("restored layers from object storage"),
        "{}",
        server.log_tail(40)
    );
    let c = server.connect().await;
    assert_eq!(answers(&c).await, after);
    // The segment came back from object storage too; the update after it is merged in.
    let explained = plan(&c, QUERIES[0]).await;
    assert!(
        explained.contains("path=columnar") && explained.contains("changed_rows=1"),
        "{explained}"
    );
    let row = storage_row(&c).await;
    assert!(
        row[4] != "0",
        "the image generation was not restored: {row:?}"
    );
    // It keeps going: new writes, another checkpoint.
    exec(&c, "INSERT INTO acct VALUES (100000, 'new', 5)").await;
    exec(&c, "CHECKPOINT").await;
    assert_eq!(
        query_value(&c, "SELECT balance FROM acct WHERE id = 100000").await,
        "5"
    );
}

/// SIGKILL, delete the pageserver's local directory, restart: every query answers as before,
/// from the layers in object storage (a local directory here) plus the WAL after them.
#[tokio::test]
async fn a_pageserver_that_lost_its_disk_restores_from_object_storage() {
    let mut server = TestServer::start_with(ServerOptions {
        env: small_layers(),
        ..Default::default()
    });
    lose_the_disk_and_compare(&mut server).await;
    let objects = server.data_dir().join("objects/pageserver");
    assert!(objects.join("manifest.json").is_file());
    assert!(
        std::fs::read_dir(objects.join("layers"))
            .expect("layer objects")
            .count()
            >= 3
    );
    // CHECKPOINT is for superusers, as in PostgreSQL 15.
    let c = server.connect().await;
    exec(&c, "CREATE ROLE plain LOGIN PASSWORD 'pw'").await;
    let plain = server.connect_as("plain", "pw").await.expect("connect");
    let msg = expect_error(&plain, "CHECKPOINT", &SqlState::INSUFFICIENT_PRIVILEGE).await;
    assert!(msg.contains("CHECKPOINT"), "{msg}");
}

/// Every file under `dir`, as paths.
fn walk_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

/// A moto S3 server on a free loopback port, stopped by its PID when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const S3_ENV: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "thunder"),
    ("AWS_SECRET_ACCESS_KEY", "thunder-secret"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
];

/// Runs a boto3 snippet against `endpoint`; `s3` is the client.
fn boto3(endpoint: &str, code: &str) -> String {
    let script =
        format!("import boto3\ns3 = boto3.client('s3', endpoint_url={endpoint:?})\n{code}\n");
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .envs(S3_ENV.iter().copied())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn start_moto(dir: &Path) -> Moto {
    let port = crate::stock_postgres::free_port().expect("a free port");
    let log = std::fs::File::create(dir.join("moto.log")).expect("moto log");
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start moto_server");
    let endpoint = format!("http://127.0.0.1:{port}");
    let moto = Moto { child, endpoint };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

/// The same with S3 (moto on loopback): layers and the manifest appear as objects in the
/// bucket, and a pageserver with an empty disk restores from them.
#[tokio::test]
async fn layers_go_to_s3_and_a_new_pageserver_restores_from_them() {
    let moto_runs = Command::new("moto_server")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let boto3_imports = Command::new("python3")
        .args(["-c", "import boto3"])
        .status()
        .is_ok_and(|s| s.success());
    if !moto_runs || !boto3_imports {
        skip(
            "storage::layers_go_to_s3_and_a_new_pageserver_restores_from_them",
            "moto_server or boto3 is not installed (pip install 'moto[server]')",
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let moto = start_moto(dir.path());
    boto3(&moto.endpoint, "s3.create_bucket(Bucket='thunder')");
    let mut env = small_layers();
    for (k, v) in [
        ("THUNDERDB_STORAGE_KIND", "s3"),
        ("THUNDERDB_STORAGE_BUCKET", "thunder"),
        ("THUNDERDB_STORAGE_PREFIX", "cluster-a"),
        ("THUNDERDB_STORAGE_ENDPOINT", moto.endpoint.as_str()),
        ("THUNDERDB_STORAGE_ALLOW_HTTP", "true"),
        ("THUNDERDB_STORAGE_ACCESS_KEY_ID", "thunder"),
        ("THUNDERDB_STORAGE_SECRET_ACCESS_KEY", "thunder-secret"),
    ] {
        env.push((k.to_string(), v.to_string()));
    }
    let mut server = TestServer::start_with(ServerOptions {
        env,
        ..Default::default()
    });
    lose_the_disk_and_compare(&mut server).await;
    let listing = boto3(
        &moto.endpoint,
        "for o in s3.list_objects_v2(Bucket='thunder')['Contents']: print(o['Key'], o['Size'])",
    );
    assert!(
        listing.contains("cluster-a/pageserver/manifest.json"),
        "{listing}"
    );
    let layers = listing
        .lines()
        .filter(|l| l.starts_with("cluster-a/pageserver/layers/"))
        .count();
    assert!(layers >= 3, "{listing}");
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("cluster-a/pageserver/segments/") && l.contains(".parquet")),
        "{listing}"
    );
    let manifest = boto3(
        &moto.endpoint,
        "print(s3.get_object(Bucket='thunder', Key='cluster-a/pageserver/manifest.json')['Body'].read().decode())",
    );
    assert!(manifest.contains("\"image\""), "{manifest}");
    assert!(
        !server.data_dir().join("objects").exists(),
        "an S3 pageserver wrote a local object store"
    );
    // The scans after the restart read the segment from S3 once, then from the local cache.
    let cached = walk_files(&server.data_dir().join("compute/segments"));
    assert!(
        cached.iter().any(|p| p.ends_with(".parquet")),
        "no segment file in the local cache: {cached:?}"
    );
    drop(server);
}

/// Writers move money between accounts, open accounts and close them, as fast as they can,
/// while the in-memory layer is frozen and written out, image generations are written over
/// the deltas, and an analytic loop checks that the total and the count agree at every
/// snapshot.
#[tokio::test]
async fn totals_hold_at_every_snapshot_while_layers_are_written() {
    let mut env = small_layers();
    env.retain(|(k, _)| !k.starts_with("THUNDERDB_PAGESERVER"));
    env.push(("THUNDERDB_PAGESERVER_FREEZE_BYTES".into(), "32768".into()));
    env.push((
        "THUNDERDB_PAGESERVER_IMAGE_AFTER_DELTA_BYTES".into(),
        "65536".into(),
    ));
    // Segments rewritten every second or so while the writers run.
    env.push(("THUNDERDB_COLUMNAR_COMPACT_AFTER_ROWS".into(), "20".into()));
    env.push((
        "THUNDERDB_COLUMNAR_COMPACT_INTERVAL_SECS".into(),
        "1".into(),
    ));
    let server = TestServer::start_with(ServerOptions {
        env,
        ..Default::default()
    });
    let c = server.connect().await;
    exec(
        &c,
        "CREATE TABLE bank (id INT PRIMARY KEY, balance BIGINT NOT NULL, pad TEXT NOT NULL)",
    )
    .await;
    exec(
        &c,
        "INSERT INTO bank SELECT i, 1000, repeat('p', 200) FROM generate_series(0, 199) AS g(i)",
    )
    .await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let commits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..4i64 {
        let client = server.connect().await;
        let stop = stop.clone();
        let commits = commits.clone();
        writers.push(tokio::spawn(async move {
            let mut committed = 0u64;
            let mut n = 0i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let (a, b) = ((n * 7 + w * 13) % 200, (n * 11 + w * 29) % 200);
                let new_id = 1000 + w * 1_000_000 + n;
                let sql = match n % 3 {
                    // A transfer.
                    0 => format!(
                        "BEGIN; UPDATE bank SET balance = balance - 3 WHERE id = {a}; \
                         UPDATE bank SET balance = balance + 3 WHERE id = {b}; COMMIT"
                    ),
                    // A new account funded from an old one.
                    1 => format!(
                        "BEGIN; UPDATE bank SET balance = balance - 10 WHERE id = {a}; \
                         INSERT INTO bank VALUES ({new_id}, 10, repeat('q', 200)); COMMIT"
                    ),
                    // The account opened last time closes into another.
                    _ => format!(
                        "BEGIN; UPDATE bank SET balance = balance + \
                         (SELECT balance FROM bank WHERE id = {prev}) WHERE id = {b} \
                         AND EXISTS (SELECT 1 FROM bank WHERE id = {prev}); \
                         DELETE FROM bank WHERE id = {prev}; COMMIT",
                        prev = new_id - 1
                    ),
                };
                match client.batch_execute(&sql).await {
                    Ok(()) => {
                        committed += 1;
                        commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => {
                        let code = e.code().cloned();
                        let _ = client.batch_execute("ROLLBACK").await;
                        assert_eq!(code, Some(SqlState::T_R_SERIALIZATION_FAILURE), "{e:?}");
                    }
                }
            }
            committed
        }));
    }
    // At least 15 s, and on a slow machine on until the run has shown what it must (the
    // assertions after the loop), for at most 3 minutes.
    let start = Instant::now();
    let mut checks = 0;
    let mut segment_lsns = std::collections::BTreeSet::new();
    let mut columnar_checks = 0;
    let mut row = storage_row(&c).await;
    let shown = |row: &[String], checks: u32, columnar: u32, segments: usize| {
        row[3].parse::<u32>().unwrap() >= 3
            && row[4].parse::<u32>().unwrap() >= 2
            && checks > 10
            && columnar * 2 >= checks
            && segments >= 3
            && commits.load(std::sync::atomic::Ordering::Relaxed) > 100
    };
    while start.elapsed() < Duration::from_secs(15)
        || (!shown(&row, checks, columnar_checks, segment_lsns.len())
            && start.elapsed() < Duration::from_secs(180))
    {
        let total = query_value(&c, "SELECT sum(balance), count(*) > 0 FROM bank").await;
        assert_eq!(total, "200000|t", "the total moved at one snapshot");
        // Two statements of one REPEATABLE READ transaction see one snapshot: the first a
        // full scan (the columnar segment and the rows changed since, when the segment is
        // not newer than the snapshot), the second a key range (the rows).
        exec(&c, "BEGIN ISOLATION LEVEL REPEATABLE READ").await;
        if plan(&c, "SELECT count(*), sum(balance) FROM bank")
            .await
            .contains("path=columnar")
        {
            columnar_checks += 1;
        }
        let first = query_value(&c, "SELECT count(*), sum(balance) FROM bank").await;
        let by_key = query_value(
            &c,
            "SELECT count(*), sum(balance) FROM bank WHERE id >= 0 AND id < 2147483647",
        )
        .await;
        exec(&c, "COMMIT").await;
        assert_eq!(first, by_key, "one snapshot, two answers");
        assert!(first.ends_with("|200000"), "{first}");
        checks += 1;
        segment_lsns.extend(query_lines(&c, "SELECT lsn FROM thunder_storage_segments").await);
        row = storage_row(&c).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut committed = 0;
    for w in writers {
        committed += w.await.expect("writer");
    }
    assert!(
        committed > 100,
        "only {committed} writer transactions committed"
    );
    assert!(checks > 10, "only {checks} analytic checks ran");
    assert!(
        row[3].parse::<u32>().unwrap() >= 3 && row[4].parse::<u32>().unwrap() >= 2,
        "too few layers were written during the run: {row:?}"
    );
    assert!(
        segment_lsns.len() >= 3,
        "too few columnar segments were written during the run: {segment_lsns:?}"
    );
    assert!(
        columnar_checks * 2 >= checks,
        "only {columnar_checks} of {checks} checks read the columnar segment"
    );
    exec(&c, "CHECKPOINT").await;
    assert_eq!(
        query_value(&c, "SELECT sum(balance) FROM bank").await,
        "200000"
    );
}

/// A full scan reads the table's columnar segment plus what changed after it, so it sees
/// exactly its snapshot: the transaction's own writes, nothing committed after it, and the
/// rows of a new definition after ALTER TABLE. Point reads keep the row path; EXPLAIN says
/// which path a scan takes and why.
#[tokio::test]
async fn columnar_scans_see_exactly_their_snapshot() {
    let server = TestServer::start();
    let c = server.connect().await;
    exec(
        &c,
        "CREATE TABLE m (id INT PRIMARY KEY, grp INT NOT NULL, v BIGINT, note TEXT)",
    )
    .await;
    exec(
        &c,
        "INSERT INTO m SELECT i, i % 7, i * 3, CASE WHEN i % 5 = 0 THEN NULL ELSE 'n' || i END \
         FROM generate_series(1, 3000) AS g(i)",
    )
    .await;
    const TOTALS: &str = "SELECT count(*), sum(v), count(note), min(id), max(id) FROM m";
    const GROUPS: &str = "SELECT grp, count(*), sum(v) FROM m WHERE v BETWEEN 300 AND 6000 \
                          GROUP BY grp ORDER BY grp";
    let explained = plan(&c, TOTALS).await;
    assert!(
        explained.contains("path=row") && explained.contains("no columnar segment"),
        "{explained}"
    );
    let rows_totals = query_value(&c, TOTALS).await;
    let rows_groups = query_lines(&c, GROUPS).await;
    assert_eq!(rows_totals, "3000|13504500|2400|1|3000");
    exec(&c, "CHECKPOINT").await;
    assert_eq!(
        query_value(
            &c,
            "SELECT row_count, lag_lsn FROM thunder_storage_segments WHERE table_name = 'm'"
        )
        .await,
        "3000|0"
    );
    let explained = plan(&c, TOTALS).await;
    assert!(
        explained.contains("path=columnar") && explained.contains("changed_rows=0"),
        "{explained}"
    );
    assert!(
        plan(&c, "SELECT * FROM m WHERE id = 7")
            .await
            .contains("path=row (primary key lookup")
    );
    assert_eq!(query_value(&c, TOTALS).await, rows_totals);
    assert_eq!(query_lines(&c, GROUPS).await, rows_groups);

    // Changes after the segment, committed and the transaction's own.
    exec(&c, "UPDATE m SET v = v + 1 WHERE id <= 10").await;
    exec(&c, "DELETE FROM m WHERE id > 2990").await;
    exec(&c, "INSERT INTO m VALUES (5000, 1, 7, 'late')").await;
    let explained = plan(&c, TOTALS).await;
    assert!(explained.contains("changed_rows=21"), "{explained}");
    assert_eq!(query_value(&c, TOTALS).await, "2991|13414652|2393|1|5000");
    exec(&c, "BEGIN").await;
    exec(&c, "DELETE FROM m WHERE id <= 100").await;
    exec(&c, "UPDATE m SET v = 0 WHERE id = 5000").await;
    exec(&c, "INSERT INTO m VALUES (6000, 2, 1, NULL)").await;
    assert_eq!(query_value(&c, TOTALS).await, "2892|13399486|2313|101|6000");
    exec(&c, "ROLLBACK").await;
    assert_eq!(query_value(&c, TOTALS).await, "2991|13414652|2393|1|5000");

    // A REPEATABLE READ transaction keeps its snapshot while a newer segment is written.
    let other = server.connect().await;
    exec(&c, "BEGIN ISOLATION LEVEL REPEATABLE READ").await;
    let seen = query_value(&c, TOTALS).await;
    exec(&other, "UPDATE m SET v = 0").await;
    exec(&other, "CHECKPOINT").await;
    assert_eq!(query_value(&c, TOTALS).await, seen);
    let explained = plan(&c, TOTALS).await;
    assert!(explained.contains("newer than the snapshot"), "{explained}");
    exec(&c, "COMMIT").await;
    assert_eq!(query_value(&c, TOTALS).await, "2991|0|2393|1|5000");
    assert!(plan(&c, TOTALS).await.contains("path=columnar"));
    // A segment moved up to a newer LSN without rewriting (nothing changed) still serves
    // the older snapshots it is exact at.
    exec(&c, "BEGIN ISOLATION LEVEL REPEATABLE READ").await;
    let seen = query_value(&c, TOTALS).await;
    exec(&other, "CREATE TABLE elsewhere (x INT)").await;
    exec(&other, "INSERT INTO elsewhere VALUES (1)").await;
    exec(&other, "CHECKPOINT").await;
    let explained = plan(&c, TOTALS).await;
    assert!(explained.contains("path=columnar"), "{explained}");
    assert_eq!(query_value(&c, TOTALS).await, seen);
    exec(&c, "COMMIT").await;
    exec(&c, "DROP TABLE elsewhere").await;

    // A new definition: the old segment is not used; the next one has the new column.
    exec(&c, "ALTER TABLE m ADD COLUMN extra INT DEFAULT 4").await;
    let explained = plan(&c, "SELECT sum(extra) FROM m").await;
    assert!(
        explained.contains("predates the table's definition"),
        "{explained}"
    );
    assert_eq!(query_value(&c, "SELECT sum(extra) FROM m").await, "11964");
    exec(&c, "CHECKPOINT").await;
    assert!(
        plan(&c, "SELECT sum(extra) FROM m")
            .await
            .contains("path=columnar")
    );
    assert_eq!(
        query_value(&c, "SELECT sum(extra), count(*) FROM m").await,
        "11964|2991"
    );

    // DML whose scan reads the segment writes the right rows.
    exec_count(&c, "UPDATE m SET v = id", 2991).await;
    assert_eq!(query_value(&c, "SELECT sum(v) FROM m").await, "4476545");

    // A column type Parquet cannot hold keeps the table on the row path, correctly.
    exec(&c, "CREATE TABLE span (id INT PRIMARY KEY, d INTERVAL)").await;
    exec(&c, "INSERT INTO span VALUES (1, '1 day'), (2, '2 hours')").await;
    exec(&c, "CHECKPOINT").await;
    assert_eq!(
        query_value(&c, "SELECT sum(d) FROM span").await,
        "1 day 02:00:00"
    );
    assert!(
        plan(&c, "SELECT sum(d) FROM span")
            .await
            .contains("path=row")
    );

    // Parquet statistics leave NaN out of min/max: pruning by them must not lose it.
    exec(&c, "CREATE TABLE fl (id INT PRIMARY KEY, f FLOAT8)").await;
    exec(&c, "INSERT INTO fl VALUES (1, 1.0), (3, NULL)").await;
    exec(&c, "INSERT INTO fl VALUES (2, 'NaN')").await;
    exec(&c, "CHECKPOINT").await;
    assert!(
        plan(&c, "SELECT id FROM fl WHERE f > 2")
            .await
            .contains("path=columnar")
    );
    assert_eq!(
        query_lines(&c, "SELECT id FROM fl WHERE f > 2").await,
        vec!["2"]
    );
    assert_eq!(
        query_lines(&c, "SELECT id FROM fl WHERE f <> 1 ORDER BY id").await,
        vec!["2"]
    );
    exec(&c, "DROP TABLE fl").await;

    // A dropped table's segment goes with it.
    exec(&c, "DROP TABLE m").await;
    exec(&c, "CHECKPOINT").await;
    assert_eq!(
        query_value(&c, "SELECT count(*) FROM thunder_storage_segments").await,
        "0"
    );
}
