//! What every benchmark harness needs: the thunderdb binary to measure and numeric knobs.

use anyhow::{Result, bail};
use std::path::PathBuf;

/// A numeric setting from the environment, `default` when unset.
pub fn env_number<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(raw) => raw
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={raw:?} is not a number")),
        Err(_) => Ok(default),
    }
}

/// `THUNDERDB_BIN`, else the binary cargo built for the bench (release), else
/// `target/release/thunderdb`.
pub fn thunderdb_bin() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("THUNDERDB_BIN") {
        return Ok(PathBuf::from(path));
    }
    for candidate in [
        PathBuf::from(env!("CARGO_BIN_EXE_thunderdb")),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/thunderdb"),
    ] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!("no thunderdb binary: build it with `cargo build --release` or set THUNDERDB_BIN")
}

/// ThunderDB from `bin` for a benchmark: the release binary, no watchdog to speak of.
pub fn start_thunderdb(bin: PathBuf) -> crate::harness::TestServer {
    crate::harness::TestServer::start_with(crate::harness::ServerOptions {
        backend: crate::harness::Backend::ThunderDb,
        bin,
        deadline: std::time::Duration::from_secs(24 * 3600),
        env: Vec::new(),
    })
}
