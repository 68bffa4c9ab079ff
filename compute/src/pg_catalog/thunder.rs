//! ThunderDB's own system views: the pageserver's storage and the cluster's nodes.

use super::model::CatalogView;
use super::tables::{N, V, b, i, t};

/// `thunder_storage`: where the pageserver keeps its layers and how far behind the WAL they
/// are.
pub fn storage(v: &CatalogView) -> Vec<Vec<V>> {
    let Some(pages) = &v.pages else {
        return Vec::new();
    };
    let r = pages.storage_report();
    let lsn = |l: thunderdb_common::Lsn| i(l.0 as i64);
    let sum = |kinds: &[&str]| -> i64 {
        r.layers
            .iter()
            .filter(|l| kinds.contains(&l.kind))
            .map(|l| l.bytes as i64)
            .sum()
    };
    let count = |kind: &str| r.layers.iter().filter(|l| l.kind == kind).count() as i64;
    vec![vec![
        t(r.location.clone()),
        lsn(r.applied_lsn),
        lsn(r.consistent_lsn),
        i(r.applied_lsn.0.saturating_sub(r.consistent_lsn.0) as i64),
        lsn(r.min_readable_lsn),
        i(sum(&["memory", "frozen"])),
        i(count("delta")),
        i(count("image")),
        i(sum(&["delta", "image"])),
    ]]
}

/// `thunder_storage_layers`: the pageserver's layers, in memory and in object storage.
pub fn storage_layers(v: &CatalogView) -> Vec<Vec<V>> {
    let Some(pages) = &v.pages else {
        return Vec::new();
    };
    let or_null = |s: &str| if s.is_empty() { N } else { t(s.to_string()) };
    pages
        .storage_report()
        .layers
        .iter()
        .map(|l| {
            vec![
                t(l.kind),
                or_null(&l.name),
                i(l.lsn_start.0 as i64),
                i(l.lsn_end.0 as i64),
                i(l.bytes as i64),
                i(l.entries as i64),
                or_null(&l.key_start),
                or_null(&l.key_last),
            ]
        })
        .collect()
}

/// `thunder_storage_segments`: each table's columnar segment, and how far its LSN is behind
/// the newest applied (the compaction lag).
pub fn storage_segments(v: &CatalogView) -> Vec<Vec<V>> {
    let Some(pages) = &v.pages else {
        return Vec::new();
    };
    let r = pages.storage_report();
    r.segments
        .iter()
        .map(|s| {
            let name = v
                .catalog
                .tables
                .values()
                .find(|d| d.id.0 == s.table)
                .map_or(N, |d| t(d.name.clone()));
            vec![
                name,
                i(s.table as i64),
                i(s.lsn.0 as i64),
                i(r.applied_lsn.0.saturating_sub(s.lsn.0) as i64),
                i(s.rows as i64),
                i(s.files.len() as i64),
                i(s.bytes() as i64),
            ]
        })
        .collect()
}

/// `thunder_cluster_nodes`: the WAL group's nodes (state, Raft term and leadership, applied
/// LSN), the pageserver, and this compute node.
pub fn cluster_nodes(v: &CatalogView) -> Vec<Vec<V>> {
    let mut rows = Vec::new();
    if let Some(wal) = &v.wal {
        for n in wal.group_view() {
            let state = if n.reachable {
                n.state.clone()
            } else {
                "unreachable".into()
            };
            rows.push(vec![
                if n.id == 0 {
                    N
                } else {
                    t(format!("wal-{}", n.id))
                },
                t("walservice".to_string()),
                t(n.address.clone()),
                t(state),
                if n.reachable { i(n.term as i64) } else { N },
                if n.reachable {
                    b(n.state == "leader")
                } else {
                    N
                },
                if n.reachable {
                    i(n.applied_lsn.0 as i64)
                } else {
                    N
                },
            ]);
        }
    }
    if let Some(pages) = &v.pages {
        let up = pages.reachable();
        rows.push(vec![
            t("pageserver".to_string()),
            t("pageserver".to_string()),
            t(pages.address()),
            t(if up { "up" } else { "unreachable" }.to_string()),
            N,
            N,
            if up {
                i(pages.applied_lsn().0 as i64)
            } else {
                N
            },
        ]);
    }
    rows.push(vec![
        t(format!("compute-{}", std::process::id())),
        t("compute".to_string()),
        N,
        t("up".to_string()),
        N,
        N,
        N,
    ]);
    rows
}
