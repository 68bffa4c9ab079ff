//! The gRPC services and messages, generated from `proto/` at build time.

/// The WAL service and the Raft messages of a WAL group (`proto/thunderdb/wal.proto`).
pub mod wal {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("thunderdb.wal.v1");
}

/// The pageserver's reads and segments (`proto/thunderdb/page.proto`).
pub mod page {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("thunderdb.page.v1");
}
