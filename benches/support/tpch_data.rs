//! The TPC-H data the `tpch` and `htap` benchmarks share.

use std::path::PathBuf;

use anyhow::{Result, bail};

/// The TPC-H data, DuckDB's answers and DuckDB's times at `scale` in
/// `target/tpch-sf<scale>`, generated on first use.
pub fn tpch_data(scale: f64) -> Result<PathBuf> {
    if let Some(why) = crate::tpch::tools_missing() {
        bail!("{why}");
    }
    let data = crate::harness::target_dir().join(format!("tpch-sf{scale}"));
    if !data.join("q22.secs").is_file() {
        std::fs::create_dir_all(&data)?;
        println!("generating TPC-H scale {scale} into {}", data.display());
        crate::tpch::prepare(&scale.to_string(), &data);
    }
    Ok(data)
}
