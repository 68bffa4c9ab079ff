//! Redis's own test suite (the Tcl tests of redis 7.0, from Debian's source package) against
//! ThunderDB's RESP frontend, unit by unit, as the project's issue asks:
//! `runtest --host 127.0.0.1 --port P --singledb --tags -needs:debug …`.
//!
//! `scripts/test` fetches the source into `target/redis-src` (or set
//! `THUNDERDB_REDIS_SUITE_DIR` to an unpacked `redis-7.0.x`); without it, or without `tclsh`,
//! the test reports itself skipped. Tests that need Redis's internals are left out by tag
//! (DEBUG, replication, maxmemory …) or by name below, each with its reason; every other test
//! of the unit must pass. Per-unit counts go to `target/redis-suite/<unit>.txt`.

use super::{RespServer, skip};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The units the issue names.
const UNITS: &[&str] = &[
    "unit/type/string",
    "unit/type/incr",
    "unit/type/hash",
    "unit/type/list",
    "unit/type/set",
    "unit/type/zset",
    "unit/keyspace",
    "unit/expire",
];

/// Tags of tests that need a server's internals: DEBUG, replication, memory limits, RDB/AOF
/// files, a server restart, or a configuration file.
const SKIPPED_TAGS: &[&str] = &[
    "needs:debug",
    "needs:repl",
    "needs:config-maxmemory",
    "needs:save",
    "needs:reset",
    "needs:pfdebug",
];

/// Tests left out by name, with the reason. Each is about a Redis internal, a feature outside
/// ThunderDB's Redis surface, or an ordering only a single-threaded server gives.
const SKIPPED_TESTS: &[(&str, &str)] = &[
    (
        "SMOVE only notify dstset when the addition is successful",
        "keyspace notifications (notify-keyspace-events) are not supported",
    ),
    (
        "/.*ziplist of various encodings.*",
        "uses DUMP/RESTORE, which carry Redis's RDB serialization format",
    ),
    (
        "/.*(DUMP|RESTORE|MIGRATE).*",
        "DUMP/RESTORE carry Redis's RDB serialization format",
    ),
    (
        "/.*[Ss]tream.*",
        "streams (XADD …) are not part of ThunderDB's Redis surface",
    ),
    (
        "/.*[Pp]ropagat.*",
        "command propagation is Redis replication's; ThunderDB replicates its WAL",
    ),
    (
        "BRPOPLPUSH with multiple blocked clients",
        "sends two blocking commands on two connections without waiting for the first to \
         block and expects that one to be first in line (single-threaded Redis runs them in \
         the order sent); ThunderDB runs connections concurrently, so on a loaded machine the \
         second can block first, take the element, and leave the first waiting forever",
    ),
];

/// An unpacked redis 7.0 source tree with its Tcl tests.
fn suite_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("THUNDERDB_REDIS_SUITE_DIR") {
        let dir = PathBuf::from(dir);
        return dir.join("tests/test_helper.tcl").is_file().then_some(dir);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/redis-src");
    std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("redis-7."))
                && p.join("tests/test_helper.tcl").is_file()
        })
}

/// What one unit printed.
struct UnitRun {
    passed: usize,
    failed: Vec<String>,
    skipped: usize,
    exception: Option<String>,
    seconds: f64,
}

fn run_unit(dir: &Path, port: u16, unit: &str) -> UnitRun {
    // The suite's own ports (its test server listens just below `--baseport`): one range per
    // unit, so units run side by side.
    let index = UNITS.iter().position(|u| *u == unit).unwrap_or(0);
    let baseport = 21111 + 200 * index;
    let mut cmd = Command::new("tclsh");
    cmd.current_dir(dir)
        .arg("tests/test_helper.tcl")
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--singledb",
            "--ignore-encoding",
            "--ignore-digest",
            "--clients",
            "1",
        ])
        .args(["--timeout", "300"])
        .args(["--baseport", &baseport.to_string(), "--portcount", "100"]);
    for tag in SKIPPED_TAGS {
        cmd.args(["--tags", &format!("-{tag}")]);
    }
    for (name, _) in SKIPPED_TESTS {
        cmd.args(["--skiptest", name]);
    }
    cmd.args(["--single", unit]);
    let started = Instant::now();
    let out = cmd.output().expect("run tclsh");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // The suite colours its markers: `[ok]` is `[\x1b[0;32;49mok\x1b[0m]`.
    let plain: String = strip_ansi(&stdout);
    let mut run = UnitRun {
        passed: 0,
        failed: Vec::new(),
        skipped: 0,
        exception: None,
        seconds: started.elapsed().as_secs_f64(),
    };
    let lines: Vec<&str> = plain.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("[ok]: ") {
            run.passed += 1;
        } else if line.starts_with("[skip]: ") || line.starts_with("[ignore]: ") {
            run.skipped += 1;
        } else if let Some(rest) = line.strip_prefix("[err]: ") {
            let detail = lines.get(i + 1).copied().unwrap_or_default();
            run.failed.push(format!("{rest}\n      {detail}"));
        } else if line.starts_with("[TIMEOUT]: ") && run.exception.is_none() {
            // A test that did not finish within --timeout: the report names the test.
            let context: Vec<&str> = lines[i..lines.len().min(i + 12)].to_vec();
            run.exception = Some(context.join("\n"));
        } else if line.starts_with("[exception]: ") && run.exception.is_none() {
            let context: Vec<&str> = lines[i..lines.len().min(i + 12)].to_vec();
            run.exception = Some(context.join("\n"));
        }
    }
    if !out.status.success() && run.exception.is_none() && run.failed.is_empty() {
        run.exception = Some(format!(
            "the suite exited with {:?}\n{}",
            out.status.code(),
            plain.lines().rev().take(20).collect::<Vec<_>>().join("\n")
        ));
    }
    if run.passed == 0 && run.exception.is_none() && run.failed.is_empty() {
        run.exception = Some(format!(
            "no test ran (exit {:?})\n{}\n{}",
            out.status.code(),
            plain.lines().rev().take(20).collect::<Vec<_>>().join("\n"),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    run
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs one unit against its own server and fails with every problem it found. Each unit is
/// its own test, so each has the e2e watchdog's whole budget and the units can run side by side.
fn run_suite_unit(unit: &str) {
    let test = format!("redis::suite::{}", unit.rsplit('/').next().unwrap_or(unit));
    let Some(dir) = suite_dir() else {
        skip(
            &test,
            "the redis 7.0 source (target/redis-src or THUNDERDB_REDIS_SUITE_DIR) is not there",
        );
        return;
    };
    if Command::new("tclsh").arg("/dev/null").output().is_err() {
        skip(&test, "tclsh is not installed");
        return;
    }
    // One request thread, as Redis has: the suite's deferred clients expect commands sent one
    // after another on different connections to be taken up in that order, which several
    // threads do not promise.
    let env = vec![("THUNDERDB_WORKER_THREADS".to_string(), "1".to_string())];
    let Some(mut server) = RespServer::start_with(&test, env) else {
        return;
    };
    let run = run_unit(&dir, server.port(), unit);
    server.assert_running(unit);
    let mut problems = Vec::new();
    for f in &run.failed {
        problems.push(format!("{unit}: {f}"));
    }
    if let Some(e) = &run.exception {
        problems.push(format!("{unit}: the unit stopped:\n{e}"));
    }
    let mut report = format!(
        "{unit}: {} passed, {} failed, {} skipped ({:.0} s){}\n",
        run.passed,
        run.failed.len(),
        run.skipped,
        run.seconds,
        if run.exception.is_some() {
            ", stopped by an exception"
        } else {
            ""
        }
    );
    report.push_str("left out by name:\n");
    for (name, why) in SKIPPED_TESTS {
        report.push_str(&format!("  {name}: {why}\n"));
    }
    // One file per unit: `target/redis-suite/<unit>.txt`.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/redis-suite");
    let _ = std::fs::create_dir_all(&target);
    let _ = std::fs::write(
        target.join(format!("{}.txt", unit.replace('/', "_"))),
        &report,
    );
    println!("{report}");
    assert!(
        problems.is_empty(),
        "Redis's test suite found {} problems:\n{}\n\n{report}",
        problems.len(),
        problems.join("\n")
    );
}

/// One `#[test]` per unit, named after it.
macro_rules! unit_tests {
    ($($name:ident => $unit:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_suite_unit($unit);
            }
        )*
    };
}

unit_tests! {
    string => "unit/type/string",
    incr => "unit/type/incr",
    hash => "unit/type/hash",
    list => "unit/type/list",
    set => "unit/type/set",
    zset => "unit/type/zset",
    keyspace => "unit/keyspace",
    expire => "unit/expire",
}
