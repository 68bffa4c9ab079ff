//! ThunderDB's catalog as PostgreSQL's system catalogs number and name it: stable OIDs for
//! namespaces, relations, constraints and defaults, and the text `pg_get_indexdef` and
//! `pg_get_constraintdef` print.

use crate::catalog::{Catalog, RoleDef, TableDef};
use std::collections::HashMap;
use std::sync::Arc;
use thunderdb_common::TableId;

pub const PG_CATALOG_NAMESPACE: i64 = 11;
pub const PG_TOAST_NAMESPACE: i64 = 99;
pub const PUBLIC_NAMESPACE: i64 = 2200;
pub const INFORMATION_SCHEMA_NAMESPACE: i64 = 13000;

/// The session's user is PostgreSQL's bootstrap superuser: ThunderDB has no object owners yet.
pub const SUPERUSER_OID: i64 = 10;
/// PostgreSQL 15's `pg_database_owner`, owner of schema `public`.
pub const DATABASE_OWNER_ROLE_OID: i64 = 6171;
pub const DATABASE_OWNER_ROLE: &str = "pg_database_owner";

pub const DATABASE_OID: i64 = 16384;
pub const HEAP_AM: i64 = 2;
pub const BTREE_AM: i64 = 403;
pub const HASH_AM: i64 = 405;
pub const DEFAULT_TABLESPACE: i64 = 1663;
pub const GLOBAL_TABLESPACE: i64 = 1664;
pub const DEFAULT_COLLATION: i64 = 100;
pub const C_COLLATION: i64 = 950;
pub const POSIX_COLLATION: i64 = 951;
/// `pg_encoding_to_char(6)` is `UTF8`.
pub const UTF8_ENCODING: i32 = 6;

/// Each user table owns a block of OIDs: the table itself, its indexes, its CHECK constraints
/// and its column defaults, so every OID stays the same for as long as the object exists.
const OIDS_PER_TABLE: i64 = 4096;
const INDEX_SLOTS: i64 = 1;
const CHECK_SLOTS: i64 = 2048;
const DEFAULT_SLOTS: i64 = 2560;
const FOREIGN_KEY_SLOTS: i64 = 3584;

pub(crate) fn table_oid_of(id: TableId) -> i64 {
    table_block(id)
}

fn table_block(id: TableId) -> i64 {
    DATABASE_OID + OIDS_PER_TABLE * (i64::from(id.0) - i64::from(TableId::FIRST_USER) + 1)
}

/// PostgreSQL's `quote_ident`: quotes unless the name is a lower-case identifier and no keyword.
pub fn quote_ident(name: &str) -> String {
    // PostgreSQL 15's reserved and type-or-function-name keywords, which quote_ident quotes.
    const RESERVED: &str = "all analyse analyze and any array as asc asymmetric authorization between bigint \
         binary bit boolean both case cast char character check coalesce collate collation \
         column concurrently constraint create cross current_catalog current_date \
         current_role current_schema current_time current_timestamp current_user dec decimal \
         default deferrable desc distinct do else end except exists extract false fetch float \
         for foreign freeze from full grant greatest group grouping having ilike in initially \
         inner inout int integer intersect interval into is isnull join lateral leading least \
         left like limit localtime localtimestamp national natural nchar none normalize not \
         notnull null nullif numeric offset on only or order out outer overlaps overlay \
         placing position precision primary real references returning right row select \
         session_user setof similar smallint some substring symmetric system_user table \
         tablesample then time timestamp to trailing treat trim true union unique user using \
         values varchar variadic verbose when where window with xmlattributes xmlconcat \
         xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi xmlroot xmlserialize \
         xmltable";
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain && !RESERVED.split_whitespace().any(|w| w == name) {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// An index of a user table (its primary key included).
#[derive(Clone, Debug)]
pub struct IndexInfo {
    pub oid: i64,
    pub name: String,
    pub table: Arc<TableDef>,
    /// Positions in the table's columns.
    pub columns: Vec<usize>,
    pub unique: bool,
    pub primary: bool,
}

impl IndexInfo {
    /// `pg_get_indexdef(oid)`.
    pub fn definition(&self) -> String {
        format!(
            "CREATE {}INDEX {} ON {}.{} USING btree ({})",
            if self.unique { "UNIQUE " } else { "" },
            quote_ident(crate::catalog::split_relation_key(&self.name).1),
            quote_ident(crate::catalog::split_relation_key(&self.table.name).0),
            quote_ident(crate::catalog::split_relation_key(&self.table.name).1),
            self.column_list()
        )
    }

    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|&c| quote_ident(&self.table.columns[c].name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `attnum`s of the indexed columns.
    pub fn attnums(&self) -> Vec<i16> {
        self.columns.iter().map(|&c| attnum(c)).collect()
    }
}

/// A constraint `pg_constraint` lists.
#[derive(Clone, Debug)]
pub struct ConstraintInfo {
    pub oid: i64,
    pub name: String,
    pub table: Arc<TableDef>,
    /// `p` primary key, `c` check.
    pub kind: &'static str,
    /// The index enforcing a primary key.
    pub index: Option<i64>,
    pub columns: Vec<usize>,
    pub check: Option<String>,
    /// A foreign key: what it references and does.
    pub foreign: Option<crate::catalog::ForeignKeyDef>,
}

impl ConstraintInfo {
    /// `pg_get_constraintdef(oid)`.
    pub fn definition(&self) -> String {
        match self.kind {
            "p" | "u" => {
                let cols: Vec<String> = self
                    .columns
                    .iter()
                    .map(|&c| quote_ident(&self.table.columns[c].name))
                    .collect();
                let kind = if self.kind == "p" {
                    "PRIMARY KEY"
                } else {
                    "UNIQUE"
                };
                format!("{kind} ({})", cols.join(", "))
            }
            "f" => {
                let fk = self
                    .foreign
                    .as_ref()
                    .expect("a foreign key constraint has one");
                let cols: Vec<String> = self
                    .columns
                    .iter()
                    .map(|&c| quote_ident(&self.table.columns[c].name))
                    .collect();
                let refs: Vec<String> = fk.ref_columns.iter().map(|c| quote_ident(c)).collect();
                let mut out = format!(
                    "FOREIGN KEY ({}) REFERENCES {}({})",
                    cols.join(", "),
                    crate::schemas::quote_key(&fk.ref_table),
                    refs.join(", ")
                );
                for (on, action) in [("UPDATE", fk.on_update), ("DELETE", fk.on_delete)] {
                    let words = match action {
                        crate::catalog::FkAction::NoAction => continue,
                        crate::catalog::FkAction::Restrict => "RESTRICT",
                        crate::catalog::FkAction::Cascade => "CASCADE",
                        crate::catalog::FkAction::SetNull => "SET NULL",
                    };
                    out.push_str(&format!(" ON {on} {words}"));
                }
                out
            }
            _ => format!(
                "CHECK ({})",
                strip_parens(self.check.as_deref().unwrap_or_default())
            ),
        }
    }
}

/// `(a > 0)` → `a > 0`, so that `CHECK (…)` does not print two pairs of parentheses.
fn strip_parens(expr: &str) -> &str {
    let t = expr.trim();
    if !(t.starts_with('(') && t.ends_with(')')) {
        return t;
    }
    // Only when the first parenthesis closes at the very end: `(a) + (b)` keeps its own.
    let mut depth = 0i32;
    let mut in_string = false;
    for (i, ch) in t.char_indices() {
        match ch {
            '\'' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => {
                depth -= 1;
                if depth == 0 && i != t.len() - 1 {
                    return t;
                }
            }
            _ => {}
        }
    }
    t[1..t.len() - 1].trim()
}

/// A relation `pg_class` lists.
#[derive(Clone, Debug)]
pub enum Relation {
    Table(Arc<TableDef>),
    Sequence(Arc<crate::catalog::SequenceDef>),
    View(Arc<crate::catalog::ViewDef>),
    Index(IndexInfo),
    /// A `pg_catalog` table or view: its name and whether it is a view.
    System {
        name: &'static str,
        view: bool,
    },
}

/// `attnum` of the column at `position`.
pub fn attnum(position: usize) -> i16 {
    i16::try_from(position + 1).unwrap_or(i16::MAX)
}

/// The OID of a table's column default.
pub fn default_oid(table: &TableDef, position: usize) -> i64 {
    table_block(table.id) + DEFAULT_SLOTS + position as i64
}

pub fn table_oid(table: &TableDef) -> i64 {
    table_block(table.id)
}

/// The catalog of one statement, numbered the way PostgreSQL's system catalogs are.
pub struct CatalogView {
    pub catalog: Arc<Catalog>,
    pub database: String,
    pub roles: Vec<RoleDef>,
    /// The namespaces: the system ones, then the catalog's schemas.
    pub namespaces: Vec<(i64, String)>,
    /// Where unqualified names are looked up: `pg_catalog`, then the session's search path.
    lookup_path: Vec<i64>,
    /// Whether the session's role may read `pg_authid.rolpassword`.
    pub viewer_is_superuser: bool,
    pub relations: Vec<(i64, Relation)>,
    pub constraints: Vec<ConstraintInfo>,
    by_oid: HashMap<i64, usize>,
    /// The pageserver, for the storage views.
    pub pages: Option<Arc<dyn thunderdb_pageserver::PageService>>,
    /// The WAL group, for the cluster view.
    pub wal: Option<Arc<dyn thunderdb_walservice::WalService>>,
}

impl CatalogView {
    pub fn new(
        catalog: Arc<Catalog>,
        superuser: &str,
        viewer: &str,
        database: &str,
    ) -> CatalogView {
        let mut relations = Vec::new();
        let mut constraints = Vec::new();
        for spec in super::tables::TABLES {
            relations.push((
                spec.oid,
                Relation::System {
                    name: spec.name,
                    view: spec.view,
                },
            ));
        }
        for table in catalog.tables.values() {
            let base = table_block(table.id);
            relations.push((base, Relation::Table(table.clone())));
            if !table.primary_key.is_empty() {
                let index = IndexInfo {
                    oid: base + INDEX_SLOTS,
                    name: table
                        .pk_name
                        .clone()
                        .unwrap_or_else(|| format!("{}_pkey", table.name)),
                    table: table.clone(),
                    columns: table.primary_key.clone(),
                    unique: true,
                    primary: true,
                };
                constraints.push(ConstraintInfo {
                    oid: index.oid,
                    name: index.name.clone(),
                    table: table.clone(),
                    kind: "p",
                    index: Some(index.oid),
                    columns: index.columns.clone(),
                    check: None,
                    foreign: None,
                });
                relations.push((index.oid, Relation::Index(index)));
            }
            for idx in &table.indexes {
                let oid = base + INDEX_SLOTS + i64::from(idx.id.0);
                // A unique index is how a UNIQUE constraint is kept: list it as one.
                if idx.unique {
                    constraints.push(ConstraintInfo {
                        oid,
                        name: idx.name.clone(),
                        table: table.clone(),
                        kind: "u",
                        index: Some(oid),
                        columns: idx.columns.clone(),
                        check: None,
                        foreign: None,
                    });
                }
                relations.push((
                    oid,
                    Relation::Index(IndexInfo {
                        oid,
                        name: idx.name.clone(),
                        table: table.clone(),
                        columns: idx.columns.clone(),
                        unique: idx.unique,
                        primary: false,
                    }),
                ));
            }
            for (k, check) in table.checks.iter().enumerate() {
                constraints.push(ConstraintInfo {
                    oid: base + CHECK_SLOTS + k as i64,
                    name: check.name.clone(),
                    table: table.clone(),
                    kind: "c",
                    index: None,
                    columns: vec![],
                    check: Some(check.expr.clone()),
                    foreign: None,
                });
            }
            for (k, fk) in table.foreign_keys.iter().enumerate() {
                constraints.push(ConstraintInfo {
                    oid: base + FOREIGN_KEY_SLOTS + k as i64,
                    name: fk.name.clone(),
                    table: table.clone(),
                    kind: "f",
                    index: None,
                    columns: fk.columns.clone(),
                    check: None,
                    foreign: Some(fk.clone()),
                });
            }
        }
        for seq in catalog.sequences.values() {
            relations.push((table_block(seq.id), Relation::Sequence(seq.clone())));
        }
        for view in catalog.views.values() {
            relations.push((table_block(view.id), Relation::View(view.clone())));
        }
        let by_oid = relations
            .iter()
            .enumerate()
            .map(|(i, (oid, _))| (*oid, i))
            .collect();
        let roles = roles(&catalog, superuser);
        let viewer_is_superuser = roles.iter().any(|r| r.name == viewer && r.superuser);
        let namespaces = NAMESPACES
            .iter()
            .map(|(oid, n)| (*oid, n.to_string()))
            .chain(catalog.schemas.values().map(|s| (s.oid, s.name.clone())))
            .collect();
        CatalogView {
            lookup_path: vec![PG_CATALOG_NAMESPACE, PUBLIC_NAMESPACE],
            namespaces,
            roles,
            viewer_is_superuser,
            catalog,
            database: database.to_string(),
            relations,
            constraints,
            by_oid,
            pages: None,
            wal: None,
        }
    }

    pub fn relation(&self, oid: i64) -> Option<&Relation> {
        self.by_oid.get(&oid).map(|&i| &self.relations[i].1)
    }

    /// The namespace OID and bare name of a relation: user relations are keyed
    /// `schema.name` outside `public`; an index lives in its table's schema.
    pub fn placed<'r>(&self, r: &'r Relation) -> (i64, &'r str) {
        let in_schema = |key: &'r str| {
            let (schema, bare) = crate::catalog::split_relation_key(key);
            (self.namespace_oid(schema).unwrap_or(PUBLIC_NAMESPACE), bare)
        };
        match r {
            Relation::Table(t) => in_schema(&t.name),
            Relation::Sequence(s) => in_schema(&s.name),
            Relation::View(v) => in_schema(&v.name),
            Relation::Index(i) => in_schema(&i.name),
            Relation::System { name, .. } => (PG_CATALOG_NAMESPACE, *name),
        }
    }

    /// Looks unqualified names up through `path` (the existing schemas of `search_path`).
    pub fn with_path(mut self, path: Vec<String>) -> CatalogView {
        self.lookup_path = std::iter::once(PG_CATALOG_NAMESPACE)
            .chain(path.iter().filter_map(|s| self.namespace_oid(s)))
            .collect();
        self
    }

    /// `pg_table_is_visible`: the relation is what its bare name finds through the path.
    pub fn is_visible(&self, oid: i64) -> bool {
        self.relation(oid).is_some_and(|r| {
            let (_, bare) = self.placed(r);
            self.relation_by_name(&quote_ident(bare)) == Some(oid)
        })
    }

    /// The enum type of the catalog with OID `oid`.
    pub fn enum_type(&self, oid: i64) -> Option<&crate::catalog::EnumDef> {
        self.catalog
            .types
            .values()
            .find(|e| e.oid == oid)
            .map(|e| e.as_ref())
    }

    /// The OID of a namespace: the system ones and the catalog's schemas.
    pub fn namespace_oid(&self, name: &str) -> Option<i64> {
        self.namespaces
            .iter()
            .find(|(_, n)| n == name)
            .map(|(oid, _)| *oid)
    }

    /// The relation named `name` (optionally schema-qualified), as `'name'::regclass` finds it.
    pub fn relation_by_name(&self, name: &str) -> Option<i64> {
        let (schema, rel) = split_qualified(name);
        let find = |nsp: i64| {
            self.relations
                .iter()
                .find(|(_, r)| self.placed(r) == (nsp, rel.as_str()))
                .map(|(oid, _)| *oid)
        };
        match schema {
            Some(s) => find(self.namespace_oid(&s)?),
            None => self.lookup_path.iter().find_map(|nsp| find(*nsp)),
        }
    }

    /// The name `oid::regclass` prints: bare when the search path finds it so, else
    /// qualified.
    pub fn relation_name(&self, oid: i64) -> Option<String> {
        let r = self.relation(oid)?;
        let (nsp, bare) = self.placed(r);
        if self.is_visible(oid) {
            return Some(quote_ident(bare));
        }
        let schema = self
            .namespaces
            .iter()
            .find(|(o, _)| *o == nsp)
            .map(|(_, n)| n);
        Some(match schema {
            Some(s) => format!("{}.{}", quote_ident(s), quote_ident(bare)),
            None => quote_ident(bare),
        })
    }

    pub fn constraint(&self, oid: i64) -> Option<&ConstraintInfo> {
        self.constraints.iter().find(|c| c.oid == oid)
    }

    pub fn role_name(&self, oid: i64) -> Option<&str> {
        self.roles
            .iter()
            .find(|r| r.oid == oid)
            .map(|r| r.name.as_str())
    }

    pub fn role_oid(&self, name: &str) -> Option<i64> {
        self.roles.iter().find(|r| r.name == name).map(|r| r.oid)
    }
}

/// The roles `pg_authid` lists: the bootstrap superuser (unless the catalog has its entry), the
/// catalog's roles and `pg_database_owner`.
fn roles(catalog: &Catalog, superuser: &str) -> Vec<RoleDef> {
    let mut out = Vec::with_capacity(catalog.roles.len() + 2);
    if !catalog.roles.contains_key(superuser) {
        out.push(crate::roles::bootstrap_role(superuser));
    }
    out.extend(catalog.roles.values().map(|r| r.as_ref().clone()));
    let mut owner = crate::roles::bootstrap_role(DATABASE_OWNER_ROLE);
    owner.oid = DATABASE_OWNER_ROLE_OID;
    (
        owner.superuser,
        owner.create_role,
        owner.create_db,
        owner.login,
    ) = (false, false, false, false);
    (owner.replication, owner.bypass_rls) = (false, false);
    out.push(owner);
    out
}

/// The namespaces: `pg_catalog`, `public`, `information_schema`, `pg_toast`.
pub const NAMESPACES: &[(i64, &str)] = &[
    (PG_CATALOG_NAMESPACE, "pg_catalog"),
    (PG_TOAST_NAMESPACE, "pg_toast"),
    (PUBLIC_NAMESPACE, "public"),
    (INFORMATION_SCHEMA_NAMESPACE, "information_schema"),
];

/// `schema.name` or `name`, with PostgreSQL's identifier folding and quoting.
pub fn split_qualified(name: &str) -> (Option<String>, String) {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = name.trim().chars().peekable();
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            '.' if !quoted => {
                parts.push(std::mem::take(&mut current));
                was_quoted = false;
            }
            c if quoted || was_quoted => current.push(c),
            c => current.extend(c.to_lowercase()),
        }
    }
    parts.push(current);
    let rel = parts.pop().unwrap_or_default();
    (parts.pop(), rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_quote_like_postgres() {
        assert_eq!(quote_ident("orders"), "orders");
        assert_eq!(quote_ident("Orders"), "\"Orders\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(
            split_qualified("public.\"My Table\""),
            (Some("public".into()), "My Table".into())
        );
        assert_eq!(split_qualified("Orders"), (None, "orders".into()));
    }

    #[test]
    fn check_parentheses_are_not_doubled() {
        assert_eq!(strip_parens("(a > 0)"), "a > 0");
        assert_eq!(strip_parens("(a) + (b) > 0"), "(a) + (b) > 0");
        assert_eq!(strip_parens("total >= 0"), "total >= 0");
    }
}
