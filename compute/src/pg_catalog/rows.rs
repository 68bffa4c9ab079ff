//! The rows of the `pg_catalog` tables, from the catalog of the statement.

use super::model::{self as m, CatalogView, Relation};
use super::tables::{N, TABLES, V, b, i, o, spec, t};
use super::types as ty;
use crate::catalog::RoleDef;

/// A table ThunderDB has nothing for.
pub fn none(_: &CatalogView) -> Vec<Vec<V>> {
    Vec::new()
}

fn owner(_: &CatalogView) -> i64 {
    m::SUPERUSER_OID
}

pub fn namespaces(v: &CatalogView) -> Vec<Vec<V>> {
    v.namespaces
        .iter()
        .map(|(oid, name)| {
            let owner = match v.catalog.schemas.get(name) {
                Some(s) => v.role_oid(&s.owner).unwrap_or_else(|| owner(v)),
                None if *oid == m::PUBLIC_NAMESPACE => m::DATABASE_OWNER_ROLE_OID,
                None => owner(v),
            };
            vec![o(*oid), t(name.clone()), o(owner), N]
        })
        .collect()
}

/// A `pg_class` row: `kind` is `r` (table), `i` (index) or `v` (view).
struct ClassRow<'a> {
    oid: i64,
    name: &'a str,
    namespace: i64,
    am: i64,
    kind: &'static str,
    natts: usize,
    checks: usize,
    has_index: bool,
    /// PostgreSQL implements foreign keys with triggers; psql lists them only then.
    has_triggers: bool,
    owner: i64,
    /// `relacl`, once something was granted or revoked.
    acl: Option<Vec<String>>,
    /// `relpages` and `reltuples` as `ANALYZE` measured them (0 and -1 before).
    pages: i64,
    tuples: f64,
}

impl ClassRow<'_> {
    fn cells(self) -> Vec<V> {
        let filenode = if self.kind == "v" { 0 } else { self.oid };
        let replident = if self.kind == "i" { "n" } else { "d" };
        vec![
            o(self.oid),
            t(self.name),
            o(self.namespace),
            o(0),
            o(0),
            o(self.owner),
            o(self.am),
            o(filenode),
            o(0),
            i(self.pages),
            V::Float(self.tuples as f32),
            i(0),
            o(0),
            b(self.has_index),
            b(false),
            t("p"),
            t(self.kind),
            i(self.natts as i64),
            i(self.checks as i64),
            b(false),
            b(self.has_triggers),
            b(false),
            b(false),
            b(false),
            b(true),
            t(replident),
            b(false),
            o(0),
            i(0),
            i(0),
            self.acl.map_or(N, V::Texts),
            N,
            N,
        ]
    }
}

pub fn classes(v: &CatalogView) -> Vec<Vec<V>> {
    // Owner and privileges of the relation (indexes have their table's owner and no ACL).
    let privileges = |key: &str, with_acl: bool| {
        let acl = with_acl
            .then(|| {
                crate::privileges::acl_text(&v.catalog, key, |oid| {
                    v.role_name(oid).unwrap_or_default().to_string()
                })
            })
            .flatten();
        (crate::privileges::owner(&v.catalog, key), acl)
    };
    // A table's size as ANALYZE measured it; its indexes have as many entries.
    let measured = |def: &crate::catalog::TableDef| match v.catalog.stats_of(def) {
        Some(st) => (st.bytes.div_ceil(8192) as i64, st.rows as f64),
        None => (0, -1.0),
    };
    v.relations
        .iter()
        .map(|(oid, rel)| (oid, rel, v.placed(rel)))
        .map(|(oid, rel, (namespace, name))| {
            let (owner, acl) = match rel {
                Relation::Table(def) => privileges(&def.name, true),
                Relation::View(view) => privileges(&view.name, true),
                Relation::Sequence(seq) => privileges(&seq.name, true),
                Relation::Index(idx) => privileges(&idx.table.name, false),
                Relation::System { .. } => (m::SUPERUSER_OID, None),
            };
            match rel {
                Relation::Table(def) => ClassRow {
                    oid: *oid,
                    name,
                    namespace,
                    am: m::HEAP_AM,
                    kind: "r",
                    natts: def.columns.len(),
                    checks: def.checks.len(),
                    has_index: !def.primary_key.is_empty() || !def.indexes.is_empty(),
                    has_triggers: !def.foreign_keys.is_empty()
                        || crate::foreign_key::is_referenced(&v.catalog, &def.name),
                    owner,
                    acl,
                    pages: measured(def).0,
                    tuples: measured(def).1,
                },
                Relation::View(view) => ClassRow {
                    oid: *oid,
                    name,
                    namespace,
                    am: 0,
                    kind: "v",
                    natts: view.columns.len(),
                    checks: 0,
                    has_index: false,
                    has_triggers: false,
                    owner,
                    acl,
                    pages: 0,
                    tuples: -1.0,
                },
                Relation::Sequence(_) => ClassRow {
                    oid: *oid,
                    name,
                    namespace,
                    am: 0,
                    kind: "S",
                    natts: 3,
                    checks: 0,
                    has_index: false,
                    has_triggers: false,
                    owner,
                    acl,
                    pages: 1,
                    tuples: 1.0,
                },
                Relation::Index(idx) => ClassRow {
                    oid: *oid,
                    name,
                    namespace,
                    am: m::BTREE_AM,
                    kind: "i",
                    natts: idx.columns.len(),
                    checks: 0,
                    has_index: false,
                    has_triggers: false,
                    owner,
                    acl,
                    // Index sizes are not measured; its entries are the table's rows.
                    pages: 0,
                    tuples: measured(&idx.table).1,
                },
                Relation::System { name, view } => ClassRow {
                    oid: *oid,
                    name,
                    namespace: m::PG_CATALOG_NAMESPACE,
                    am: if *view { 0 } else { m::HEAP_AM },
                    kind: if *view { "v" } else { "r" },
                    natts: spec(name).map_or(0, |s| s.columns().len()),
                    checks: 0,
                    has_index: false,
                    has_triggers: false,
                    owner,
                    acl,
                    pages: 0,
                    tuples: -1.0,
                },
            }
        })
        .map(ClassRow::cells)
        .collect()
}

/// A `pg_attribute` row.
struct AttributeRow<'a> {
    relid: i64,
    name: &'a str,
    type_oid: i64,
    typmod: i32,
    num: i16,
    not_null: bool,
    has_default: bool,
}

impl AttributeRow<'_> {
    fn cells(self) -> Vec<V> {
        let (len, byval, align, storage) = ty::type_storage(self.type_oid);
        let dims = i32::from(ty::is_array(self.type_oid));
        vec![
            o(self.relid),
            t(self.name),
            o(self.type_oid),
            i(-1),
            i(len),
            i(self.num),
            i(dims),
            i(-1),
            i(self.typmod),
            b(byval),
            t(align),
            t(storage),
            t(""),
            b(self.not_null),
            b(self.has_default),
            b(false),
            t(""),
            t(""),
            b(false),
            b(true),
            i(0),
            o(ty::type_collation(self.type_oid)),
            N,
            N,
            N,
            N,
        ]
    }
}

pub fn attributes(v: &CatalogView) -> Vec<Vec<V>> {
    let mut rows = Vec::new();
    for (oid, rel) in &v.relations {
        match rel {
            Relation::Table(def) => {
                for (pos, c) in def.columns.iter().enumerate() {
                    let (type_oid, typmod) = ty::column_type(&c.ty);
                    rows.push(AttributeRow {
                        relid: *oid,
                        name: &c.name,
                        type_oid,
                        typmod,
                        num: m::attnum(pos),
                        not_null: c.not_null,
                        has_default: c.default.is_some(),
                    });
                }
            }
            Relation::Index(idx) => {
                for (k, &pos) in idx.columns.iter().enumerate() {
                    let c = &idx.table.columns[pos];
                    let (type_oid, typmod) = ty::column_type(&c.ty);
                    rows.push(AttributeRow {
                        relid: *oid,
                        name: &c.name,
                        type_oid,
                        typmod,
                        num: m::attnum(k),
                        not_null: false,
                        has_default: false,
                    });
                }
            }
            Relation::View(view) => {
                for (k, (name, type_oid)) in view.columns.iter().enumerate() {
                    rows.push(AttributeRow {
                        relid: *oid,
                        name,
                        type_oid: *type_oid,
                        typmod: -1,
                        num: m::attnum(k),
                        not_null: false,
                        has_default: false,
                    });
                }
            }
            Relation::Sequence(_) => {
                for (k, (name, type_oid)) in
                    [("last_value", 20), ("log_cnt", 20), ("is_called", 16)]
                        .into_iter()
                        .enumerate()
                {
                    rows.push(AttributeRow {
                        relid: *oid,
                        name,
                        type_oid,
                        typmod: -1,
                        num: m::attnum(k),
                        not_null: true,
                        has_default: false,
                    });
                }
            }
            Relation::System { name, .. } => {
                let columns = spec(name).map(|s| s.columns()).unwrap_or_default();
                for (k, (col, col_type)) in columns.into_iter().enumerate() {
                    rows.push(AttributeRow {
                        relid: *oid,
                        name: col,
                        type_oid: col_type.pg_type(),
                        typmod: -1,
                        num: m::attnum(k),
                        not_null: false,
                        has_default: false,
                    });
                }
            }
        }
    }
    rows.into_iter().map(AttributeRow::cells).collect()
}

pub fn pg_types(v: &CatalogView) -> Vec<Vec<V>> {
    let enums = v.catalog.types.values().map(|e| {
        let (schema, bare) = crate::catalog::split_relation_key(&e.name);
        (
            ty::PgTypeRow {
                oid: e.oid,
                name: bare.to_string(),
                len: 4,
                byval: true,
                kind: "e",
                category: "E",
                preferred: false,
                align: "i",
                storage: "p",
                collation: 0,
                elem: 0,
                array: 0,
            },
            v.namespace_oid(schema).unwrap_or(m::PUBLIC_NAMESPACE),
        )
    });
    ty::all_types()
        .into_iter()
        .map(|row| (row, m::PG_CATALOG_NAMESPACE))
        .chain(enums)
        .map(|(row, namespace)| {
            let is_array = row.category == "A" && row.elem != 0;
            let proc = |suffix: &str| {
                if is_array {
                    format!("array_{suffix}")
                } else {
                    format!("{}{suffix}", row.name)
                }
            };
            let subscript = if is_array {
                "array_subscript_handler"
            } else {
                "-"
            };
            let analyze = if is_array { "array_typanalyze" } else { "-" };
            let io = if row.kind == "e" { "enum" } else { "" };
            let proc = |suffix: &str| {
                if io.is_empty() {
                    proc(suffix)
                } else {
                    format!("{io}_{suffix}")
                }
            };
            vec![
                o(row.oid),
                t(row.name.clone()),
                o(namespace),
                o(owner(v)),
                i(row.len),
                b(row.byval),
                t(row.kind),
                t(row.category),
                b(row.preferred),
                b(true),
                t(","),
                o(0),
                t(subscript),
                o(row.elem),
                o(row.array),
                t(proc("in")),
                t(proc("out")),
                t(proc("recv")),
                t(proc("send")),
                t("-"),
                t("-"),
                t(analyze),
                t(row.align),
                t(row.storage),
                b(false),
                o(0),
                i(-1),
                i(0),
                o(row.collation),
                N,
                N,
                N,
            ]
        })
        .collect()
}

pub fn indexes(v: &CatalogView) -> Vec<Vec<V>> {
    v.relations
        .iter()
        .filter_map(|(_, rel)| match rel {
            Relation::Index(idx) => Some(idx),
            _ => None,
        })
        .map(|idx| {
            let n = idx.columns.len() as i64;
            let collations = idx
                .columns
                .iter()
                .map(|&c| ty::type_collation(ty::column_type(&idx.table.columns[c].ty).0))
                .collect();
            vec![
                o(idx.oid),
                o(m::table_oid(&idx.table)),
                i(n),
                i(n),
                b(idx.unique),
                b(false),
                b(idx.primary),
                b(false),
                b(true),
                b(false),
                b(true),
                b(false),
                b(true),
                b(true),
                b(false),
                V::Ints(idx.attnums().into_iter().map(i64::from).collect()),
                V::Ints(collations),
                V::Ints(vec![0; idx.columns.len()]),
                V::Ints(vec![0; idx.columns.len()]),
                N,
                N,
            ]
        })
        .collect()
}

pub fn constraints(v: &CatalogView) -> Vec<Vec<V>> {
    v.constraints
        .iter()
        .map(|c| {
            let key = if c.kind == "c" {
                N
            } else {
                V::Ints(c.columns.iter().map(|&p| i64::from(m::attnum(p))).collect())
            };
            let check = c.check.clone().map_or(N, t);
            let action = |a: crate::catalog::FkAction| match a {
                crate::catalog::FkAction::NoAction => "a",
                crate::catalog::FkAction::Restrict => "r",
                crate::catalog::FkAction::Cascade => "c",
                crate::catalog::FkAction::SetNull => "n",
            };
            let parent = c
                .foreign
                .as_ref()
                .and_then(|f| v.catalog.tables.get(&f.ref_table));
            let (ref_oid, upd, del, matching, ref_key) = match (&c.foreign, parent) {
                (Some(f), Some(p)) => (
                    m::table_oid(p),
                    action(f.on_update),
                    action(f.on_delete),
                    "s",
                    V::Ints(
                        f.ref_columns
                            .iter()
                            .filter_map(|n| p.column_index(n))
                            .map(|pos| i64::from(m::attnum(pos)))
                            .collect(),
                    ),
                ),
                _ => (0, " ", " ", " ", N),
            };
            vec![
                o(c.oid),
                t(crate::catalog::split_relation_key(&c.name).1),
                o(m::PUBLIC_NAMESPACE),
                t(c.kind),
                b(false),
                b(false),
                b(true),
                o(m::table_oid(&c.table)),
                o(0),
                o(c.index.unwrap_or(0)),
                o(0),
                o(ref_oid),
                t(upd),
                t(del),
                t(matching),
                b(true),
                i(0),
                b(false),
                key,
                ref_key,
                N,
                N,
                N,
                N,
                N,
                check,
            ]
        })
        .collect()
}

pub fn defaults(v: &CatalogView) -> Vec<Vec<V>> {
    let mut rows = Vec::new();
    for def in v.catalog.tables.values() {
        for (pos, c) in def.columns.iter().enumerate() {
            if let Some(expr) = &c.default {
                rows.push(vec![
                    o(m::default_oid(def, pos)),
                    o(m::table_oid(def)),
                    i(m::attnum(pos)),
                    t(expr.clone()),
                ]);
            }
        }
    }
    rows
}

pub fn access_methods(_: &CatalogView) -> Vec<Vec<V>> {
    vec![
        vec![o(m::HEAP_AM), t("heap"), t("heap_tableam_handler"), t("t")],
        vec![o(m::BTREE_AM), t("btree"), t("bthandler"), t("i")],
        vec![o(m::HASH_AM), t("hash"), t("hashhandler"), t("i")],
    ]
}

pub fn databases(v: &CatalogView) -> Vec<Vec<V>> {
    vec![vec![
        o(m::DATABASE_OID),
        t(v.database.clone()),
        o(owner(v)),
        i(m::UTF8_ENCODING),
        t("c"),
        b(false),
        b(true),
        i(-1),
        i(0),
        i(0),
        o(m::DEFAULT_TABLESPACE),
        t("C"),
        t("C"),
        N,
        N,
        N,
    ]]
}

fn valid_until(r: &RoleDef) -> V {
    r.valid_until.map_or(N, i)
}

pub fn authids(v: &CatalogView) -> Vec<Vec<V>> {
    v.roles
        .iter()
        .map(|r| {
            vec![
                o(r.oid),
                t(r.name.clone()),
                b(r.superuser),
                b(r.inherit),
                b(r.create_role),
                b(r.create_db),
                b(r.login),
                b(r.replication),
                b(r.bypass_rls),
                i(r.connection_limit),
                match &r.password {
                    Some(p) if v.viewer_is_superuser => t(p.clone()),
                    _ => N,
                },
                valid_until(r),
            ]
        })
        .collect()
}

pub fn roles(v: &CatalogView) -> Vec<Vec<V>> {
    v.roles
        .iter()
        .map(|r| {
            vec![
                t(r.name.clone()),
                b(r.superuser),
                b(r.inherit),
                b(r.create_role),
                b(r.create_db),
                b(r.login),
                b(r.replication),
                i(r.connection_limit),
                t("********"),
                valid_until(r),
                b(r.bypass_rls),
                N,
                o(r.oid),
            ]
        })
        .collect()
}

pub fn users(v: &CatalogView) -> Vec<Vec<V>> {
    v.roles
        .iter()
        .filter(|r| r.login)
        .map(|r| {
            vec![
                t(r.name.clone()),
                o(r.oid),
                b(r.create_db),
                b(r.superuser),
                b(r.replication),
                b(r.bypass_rls),
                t("********"),
                valid_until(r),
                N,
            ]
        })
        .collect()
}

pub fn enums(v: &CatalogView) -> Vec<Vec<V>> {
    let mut out = Vec::new();
    for e in v.catalog.types.values() {
        for (k, label) in e.labels.iter().enumerate() {
            out.push(vec![
                o(e.oid + 1 + k as i64),
                o(e.oid),
                V::Float(k as f32 + 1.0),
                t(label.clone()),
            ]);
        }
    }
    out
}

pub fn collations(v: &CatalogView) -> Vec<Vec<V>> {
    [
        (m::DEFAULT_COLLATION, "default", "d", N, N),
        (m::C_COLLATION, "C", "c", t("C"), t("C")),
        (m::POSIX_COLLATION, "POSIX", "c", t("POSIX"), t("POSIX")),
    ]
    .into_iter()
    .map(|(oid, name, provider, collate, ctype)| {
        vec![
            o(oid),
            t(name),
            o(m::PG_CATALOG_NAMESPACE),
            o(owner(v)),
            t(provider),
            b(true),
            i(-1),
            collate,
            ctype,
            N,
            N,
        ]
    })
    .collect()
}

/// Server-wide settings as a new session starts with them.
pub fn settings(_: &CatalogView) -> Vec<Vec<V>> {
    [
        ("client_encoding", "UTF8", "string", "user"),
        ("DateStyle", "ISO, MDY", "string", "user"),
        (
            "default_transaction_isolation",
            "repeatable read",
            "enum",
            "user",
        ),
        ("integer_datetimes", "on", "bool", "internal"),
        ("IntervalStyle", "postgres", "enum", "user"),
        ("max_identifier_length", "63", "integer", "internal"),
        ("search_path", "\"$user\", public", "string", "user"),
        ("server_encoding", "UTF8", "string", "internal"),
        (
            "server_version",
            super::SERVER_VERSION,
            "string",
            "internal",
        ),
        (
            "server_version_num",
            super::SERVER_VERSION_NUM,
            "integer",
            "internal",
        ),
        ("standard_conforming_strings", "on", "bool", "user"),
        ("TimeZone", "UTC", "string", "user"),
    ]
    .into_iter()
    .map(|(name, value, vartype, context)| {
        vec![
            t(name),
            t(value),
            N,
            t(""),
            t(""),
            N,
            t(context),
            t(vartype),
            t("default"),
            N,
            N,
            N,
            t(value),
            t(value),
            N,
            N,
            b(false),
        ]
    })
    .collect()
}

pub fn tablespaces(v: &CatalogView) -> Vec<Vec<V>> {
    vec![
        vec![o(m::DEFAULT_TABLESPACE), t("pg_default"), o(owner(v)), N, N],
        vec![o(m::GLOBAL_TABLESPACE), t("pg_global"), o(owner(v)), N, N],
    ]
}

fn user_name(v: &CatalogView) -> String {
    v.role_name(m::SUPERUSER_OID)
        .unwrap_or_default()
        .to_string()
}

pub fn pg_tables(v: &CatalogView) -> Vec<Vec<V>> {
    let table = |schema: &str, name: &str, has_indexes: bool| {
        vec![
            t(schema),
            t(name),
            t(user_name(v)),
            N,
            b(has_indexes),
            b(false),
            b(false),
            b(false),
        ]
    };
    let user_tables = v.catalog.tables.values().map(|def| {
        let (schema, bare) = crate::catalog::split_relation_key(&def.name);
        table(
            schema,
            bare,
            !def.primary_key.is_empty() || !def.indexes.is_empty(),
        )
    });
    let system_tables = TABLES
        .iter()
        .filter(|s| !s.view)
        .map(|s| table("pg_catalog", s.name, false));
    user_tables.chain(system_tables).collect()
}

/// `pg_stats`: a row per column that `ANALYZE` measured.
pub fn pg_stats(v: &CatalogView) -> Vec<Vec<V>> {
    let mut rows = Vec::new();
    for def in v.catalog.tables.values() {
        let Some(stats) = v.catalog.stats_of(def) else {
            continue;
        };
        let (schema, bare) = crate::catalog::split_relation_key(&def.name);
        for c in &stats.columns {
            let Some(column) = def.columns.iter().find(|col| col.id == c.column) else {
                continue;
            };
            rows.push(vec![
                t(schema),
                t(bare),
                t(&column.name),
                b(false),
                V::Float(c.null_frac as f32),
                i(c.avg_width),
                V::Float(c.n_distinct(stats.rows) as f32),
                N,
                N,
                N,
                N,
                N,
                N,
                N,
            ]);
        }
    }
    rows
}

pub fn pg_indexes(v: &CatalogView) -> Vec<Vec<V>> {
    v.relations
        .iter()
        .filter_map(|(_, rel)| match rel {
            Relation::Index(idx) => Some(vec![
                t(crate::catalog::split_relation_key(&idx.table.name).0),
                t(crate::catalog::split_relation_key(&idx.table.name).1),
                t(idx.name.clone()),
                N,
                t(idx.definition()),
            ]),
            _ => None,
        })
        .collect()
}

pub fn sequences(v: &CatalogView) -> Vec<Vec<V>> {
    v.catalog
        .sequences
        .values()
        .map(|q| {
            vec![
                o(crate::pg_catalog::relation_oid(q.id)),
                o(ty::column_type(&q.ty).0),
                i(q.start),
                i(q.increment),
                i(q.max),
                i(q.min),
                i(1),
                b(q.cycle),
            ]
        })
        .collect()
}

pub fn views(v: &CatalogView) -> Vec<Vec<V>> {
    let owner = v
        .role_name(m::SUPERUSER_OID)
        .unwrap_or_default()
        .to_string();
    v.catalog
        .views
        .values()
        .map(|view| {
            let (schema, bare) = crate::catalog::split_relation_key(&view.name);
            vec![t(schema), t(bare), t(owner.clone()), t(view.query.clone())]
        })
        .collect()
}
