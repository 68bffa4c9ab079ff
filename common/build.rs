//! Compiles the gRPC protos with protox (a Rust protobuf compiler: no system `protoc` needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(
        ["proto/thunderdb/wal.proto", "proto/thunderdb/page.proto"],
        ["proto"],
    )?;
    tonic_prost_build::configure().compile_fds(files)?;
    Ok(())
}
