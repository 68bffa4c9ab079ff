//! The catalog: table definitions stored as ordinary keys in the catalog's key space, so every
//! DDL is a WAL record and the schema is versioned by LSN together with the data.

use crate::error::{Result, user_error};
use crate::txn::ReadView;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use thunderdb_common::keys::{encode_datum, encode_key, index_prefix, prefix_end};
use thunderdb_common::row::{decode_row, encode_row};
use thunderdb_common::{Datum, IndexId, SqlState, SqlType, TableId, ThunderError};

const TABLES: IndexId = IndexId(1);
const COUNTERS: IndexId = IndexId(2);
const SEQUENCES: IndexId = IndexId(3);
const VIEWS: IndexId = IndexId(4);
const ROLES: IndexId = IndexId(5);
const SCHEMAS: IndexId = IndexId(6);
const TYPES: IndexId = IndexId(7);
const ACLS: IndexId = IndexId(8);
const STATS: IndexId = IndexId(9);
/// Version of a stored [`AclDef`].
const ACL_FORMAT: u8 = 1;
/// Version of a stored [`TableStats`].
const STATS_FORMAT: u8 = 1;
/// The key spaces [`Catalog::load`] reads.
const LOADED: [IndexId; 8] = [TABLES, SEQUENCES, VIEWS, ROLES, SCHEMAS, TYPES, ACLS, STATS];
/// The key spaces a SERIALIZABLE transaction depends on: all but the statistics, which only
/// guide plans (an ANALYZE must not fail concurrent transactions).
const TRACKED: [IndexId; 7] = [TABLES, SEQUENCES, VIEWS, ROLES, SCHEMAS, TYPES, ACLS];

fn catalog_prefix(space: IndexId) -> [u8; 8] {
    index_prefix(TableId::CATALOG, space)
        .try_into()
        .expect("an index prefix is 8 bytes")
}

/// The newest catalog loaded, by the LSN of the last catalog write it includes: every
/// snapshot whose newest catalog write is that one sees exactly this catalog, so statements
/// share it instead of scanning and decoding the catalog each.
#[derive(Default)]
pub struct CatalogCache {
    entry: parking_lot::Mutex<Option<(thunderdb_common::Lsn, Arc<Catalog>)>>,
}

/// Version of a stored [`EnumDef`].
const TYPE_FORMAT: u8 = 1;
/// Version of a stored [`SchemaDef`].
const SCHEMA_FORMAT: u8 = 1;
/// Version of a stored [`RoleDef`].
const ROLE_FORMAT: u8 = 1;
/// Version of a stored [`ViewDef`].
const VIEW_FORMAT: u8 = 1;
/// Version of a stored [`SequenceDef`].
const SEQUENCE_FORMAT: u8 = 1;
/// Version 2 added `TableDef::auto_increment`, version 3 `TableDef::foreign_keys`; entries
/// of versions 1 and 2 still decode.
const CATALOG_FORMAT: u8 = 3;

/// Name of the hidden column carrying each row's storage key in DML scans.
pub const KEY_COLUMN: &str = "__thunder_key";

/// A column of a table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ColumnDef {
    /// Stable id used in the row encoding; never reused within a table.
    pub id: u16,
    pub name: String,
    pub ty: SqlType,
    pub not_null: bool,
    /// Default expression as SQL text.
    pub default: Option<String>,
}

/// A secondary index. Entries are `table | index | indexed columns [| primary key]` → primary
/// key; unique indexes leave the primary key out of the key unless an indexed value is NULL.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IndexDef {
    pub id: IndexId,
    pub name: String,
    /// Positions in `TableDef::columns`.
    pub columns: Vec<usize>,
    pub unique: bool,
}

/// A CHECK constraint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CheckDef {
    pub name: String,
    pub expr: String,
}

/// What a foreign key does to referencing rows when the referenced row goes away.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum FkAction {
    NoAction,
    Restrict,
    Cascade,
    SetNull,
}

/// A FOREIGN KEY constraint of the table holding it (the referencing table).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ForeignKeyDef {
    pub name: String,
    /// Positions in the referencing table's columns.
    pub columns: Vec<usize>,
    pub ref_table: String,
    /// The referenced columns (its primary key or a unique index), by name.
    pub ref_columns: Vec<String>,
    pub on_delete: FkAction,
    pub on_update: FkAction,
}

/// A table's definition as of some LSN.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TableDef {
    pub id: TableId,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    /// Positions of the primary key columns; empty means a hidden row id is the key.
    pub primary_key: Vec<usize>,
    pub pk_name: Option<String>,
    pub indexes: Vec<IndexDef>,
    pub checks: Vec<CheckDef>,
    pub schema_version: u32,
    pub next_column_id: u16,
    pub next_index_id: u32,
    /// The id of the AUTO_INCREMENT column (MySQL), whose missing values come from the
    /// table's counter.
    pub auto_increment: Option<u16>,
    pub foreign_keys: Vec<ForeignKeyDef>,
}

/// A table definition as catalog format 2 stored it.
#[derive(Deserialize)]
struct TableDefV2 {
    id: TableId,
    name: String,
    columns: Vec<ColumnDef>,
    primary_key: Vec<usize>,
    pk_name: Option<String>,
    indexes: Vec<IndexDef>,
    checks: Vec<CheckDef>,
    schema_version: u32,
    next_column_id: u16,
    next_index_id: u32,
    auto_increment: Option<u16>,
}

impl From<TableDefV2> for TableDef {
    fn from(v: TableDefV2) -> TableDef {
        TableDef {
            id: v.id,
            name: v.name,
            columns: v.columns,
            primary_key: v.primary_key,
            pk_name: v.pk_name,
            indexes: v.indexes,
            checks: v.checks,
            schema_version: v.schema_version,
            next_column_id: v.next_column_id,
            next_index_id: v.next_index_id,
            auto_increment: v.auto_increment,
            foreign_keys: Vec::new(),
        }
    }
}

/// A table definition as catalog format 1 stored it.
#[derive(Deserialize)]
struct TableDefV1 {
    id: TableId,
    name: String,
    columns: Vec<ColumnDef>,
    primary_key: Vec<usize>,
    pk_name: Option<String>,
    indexes: Vec<IndexDef>,
    checks: Vec<CheckDef>,
    schema_version: u32,
    next_column_id: u16,
    next_index_id: u32,
}

impl From<TableDefV1> for TableDef {
    fn from(v: TableDefV1) -> TableDef {
        TableDef {
            id: v.id,
            name: v.name,
            columns: v.columns,
            primary_key: v.primary_key,
            pk_name: v.pk_name,
            indexes: v.indexes,
            checks: v.checks,
            schema_version: v.schema_version,
            next_column_id: v.next_column_id,
            next_index_id: v.next_index_id,
            auto_increment: None,
            foreign_keys: Vec::new(),
        }
    }
}

impl TableDef {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The storage key of a row; `row_id` is used when the table has no primary key.
    pub fn row_key(&self, row: &[Datum], row_id: i64) -> Vec<u8> {
        if self.primary_key.is_empty() {
            encode_key(self.id, IndexId::PRIMARY, &[Datum::Int64(row_id)])
        } else {
            let mut key = index_prefix(self.id, IndexId::PRIMARY);
            for &i in &self.primary_key {
                encode_datum(&mut key, &row[i]);
            }
            key
        }
    }

    pub fn encode_row(&self, row: &[Datum]) -> Vec<u8> {
        let cols: Vec<(u16, &Datum)> = self
            .columns
            .iter()
            .zip(row)
            .map(|(c, d)| (c.id, d))
            .collect();
        encode_row(self.schema_version, &cols)
    }

    pub fn decode_row(&self, bytes: &[u8]) -> Result<Vec<Datum>> {
        let row = decode_row(bytes)?;
        Ok(self.columns.iter().map(|c| row.get(c.id)).collect())
    }

    /// The index entry key for `row` whose storage key is `pk`.
    pub fn index_key(&self, index: &IndexDef, row: &[Datum], pk: &[u8]) -> Vec<u8> {
        let mut key = index_prefix(self.id, index.id);
        let mut has_null = false;
        for &i in &index.columns {
            has_null |= row[i].is_null();
            encode_datum(&mut key, &row[i]);
        }
        // NULLs never collide in a unique index (NULLS DISTINCT), so they get the key suffix.
        if !index.unique || has_null {
            key.extend_from_slice(&pk[8..]);
        }
        key
    }

    /// Arrow schema of the table; with `with_key`, plus the hidden storage key column.
    pub fn arrow_schema(&self, with_key: bool) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| crate::types::field(&c.name, &c.ty, !c.not_null))
            .collect();
        if with_key {
            fields.push(Field::new(KEY_COLUMN, DataType::Binary, false));
        }
        Arc::new(Schema::new(fields))
    }

    /// The key range holding the rows.
    pub fn row_range(&self) -> (Vec<u8>, Vec<u8>) {
        let start = index_prefix(self.id, IndexId::PRIMARY);
        let end = prefix_end(&start).expect("index prefix is never all 0xFF");
        (start, end)
    }

    /// Every relation name this table owns (itself, its primary key and its indexes).
    pub fn relation_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str())
            .chain(self.pk_name.as_deref())
            .chain(self.indexes.iter().map(|i| i.name.as_str()))
    }
}

/// A sequence's definition; its current value is a counter outside transactions
/// (`sequence.rs`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SequenceDef {
    /// Allocated from the table id space, so a relation OID of its own.
    pub id: TableId,
    pub name: String,
    /// `smallint`, `integer` or `bigint`.
    pub ty: SqlType,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cycle: bool,
    /// The column whose default (SERIAL) or identity this sequence is: dropped with it.
    pub owned_by: Option<(String, String)>,
    /// GENERATED ALWAYS AS IDENTITY: the owning column takes no explicit values.
    pub identity_always: bool,
}

/// A view: its query as SQL text and the columns it yields (name, PostgreSQL type OID).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ViewDef {
    /// From the table id space, for a relation OID of its own.
    pub id: TableId,
    pub name: String,
    pub query: String,
    pub columns: Vec<(String, i64)>,
}

/// Who owns a relation and who may do what with it (`pg_class.relowner`, `relacl`). Roles
/// are named by OID, so renaming a role keeps its grants.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AclDef {
    pub relation: String,
    pub owner: i64,
    /// `None` until the first GRANT or REVOKE: the owner's default privileges (all of them).
    pub grants: Option<Vec<AclItem>>,
}

/// One `aclitem`: privileges (and which of them may be granted on) that `grantor` gave.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AclItem {
    /// 0 is PUBLIC.
    pub grantee: i64,
    pub grantor: i64,
    /// Bits of [`crate::privileges::Privilege`].
    pub privileges: u16,
    pub grant_options: u16,
}

/// What `ANALYZE` measured of a table (`pg_class.reltuples`, `pg_stats`), keyed by table id
/// so that a rename keeps it and a table made again under the same name starts without.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TableStats {
    pub table: TableId,
    pub rows: u64,
    /// Estimated bytes of the rows (`relpages` is this in 8 KiB pages).
    pub bytes: u64,
    pub columns: Vec<ColumnStats>,
}

/// One column's statistics, by its stable [`ColumnDef::id`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ColumnStats {
    pub column: u16,
    pub null_frac: f64,
    pub avg_width: u32,
    /// Estimated number of distinct non-null values.
    pub distinct: u64,
    /// Whether the values are known unique (a one-column primary key or unique index).
    pub unique: bool,
}

impl ColumnStats {
    /// `pg_stats.n_distinct` as PostgreSQL states it: a count when the number of distinct
    /// values looks fixed, minus the fraction of the rows when it grows with the table (more
    /// than a tenth of them distinct), minus the non-null fraction for a unique column.
    pub fn n_distinct(&self, rows: u64) -> f64 {
        if self.unique {
            return -(1.0 - self.null_frac);
        }
        if rows > 0 && self.distinct as f64 > rows as f64 * 0.1 {
            -(self.distinct as f64 / rows as f64).min(1.0)
        } else {
            self.distinct as f64
        }
    }
}

/// A role (`CREATE ROLE`), keyed by name. Its password is kept only in a stored form.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RoleDef {
    pub oid: i64,
    pub name: String,
    pub superuser: bool,
    pub inherit: bool,
    pub create_role: bool,
    pub create_db: bool,
    pub login: bool,
    pub replication: bool,
    pub bypass_rls: bool,
    /// -1 for no limit.
    pub connection_limit: i32,
    /// Microseconds since the Unix epoch after which the password no longer works.
    pub valid_until: Option<i64>,
    /// `pg_authid.rolpassword`: a SCRAM-SHA-256 verifier or an MD5 hash.
    pub password: Option<String>,
    /// MySQL's SHA1(SHA1(password)), when the password was given in clear.
    pub mysql_native: Option<Vec<u8>>,
}

impl RoleDef {
    /// Whether `VALID UNTIL` has passed: the password no longer works.
    pub fn expired(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        self.valid_until.is_some_and(|t| t < now)
    }

    /// The stored password, if any.
    pub fn secret(&self) -> Option<thunderdb_common::password::Secret> {
        self.password
            .as_deref()
            .and_then(thunderdb_common::password::Secret::parse)
    }
}

/// A schema (`CREATE SCHEMA`) besides `public`. Relations in it are keyed `schema.name`
/// ([`relation_key`]); `public`'s keep their bare names.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SchemaDef {
    pub oid: i64,
    pub name: String,
    pub owner: String,
}

/// An enum type (`CREATE TYPE … AS ENUM`), keyed like a relation (`schema.name` outside
/// `public`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EnumDef {
    pub oid: i64,
    pub name: String,
    pub labels: Vec<String>,
}

impl EnumDef {
    /// The column type of this enum.
    pub fn sql_type(&self) -> SqlType {
        SqlType::Enum {
            name: self.name.clone(),
            oid: self.oid,
            labels: self.labels.clone(),
        }
    }
}

/// The catalog key of relation `name` in `schema`.
pub fn relation_key(schema: &str, name: &str) -> String {
    if schema == "public" {
        name.to_string()
    } else {
        format!("{schema}.{name}")
    }
}

/// The schema and bare name of a relation key.
pub fn split_relation_key(key: &str) -> (&str, &str) {
    key.split_once('.').unwrap_or(("public", key))
}

/// All tables, sequences, views, roles and schemas visible at one snapshot.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub tables: BTreeMap<String, Arc<TableDef>>,
    pub sequences: BTreeMap<String, Arc<SequenceDef>>,
    pub views: BTreeMap<String, Arc<ViewDef>>,
    pub roles: BTreeMap<String, Arc<RoleDef>>,
    pub schemas: BTreeMap<String, Arc<SchemaDef>>,
    pub types: BTreeMap<String, Arc<EnumDef>>,
    /// Owners and privileges of relations (tables, views, sequences) by relation key; a
    /// relation without an entry belongs to the bootstrap superuser with default privileges.
    pub acls: BTreeMap<String, Arc<AclDef>>,
    /// `ANALYZE`'s statistics by table id.
    pub stats: BTreeMap<TableId, Arc<TableStats>>,
}

pub(crate) fn table_key(name: &str) -> Vec<u8> {
    encode_key(TableId::CATALOG, TABLES, &[Datum::Text(name.to_string())])
}

pub(crate) fn counter_key(name: &str) -> Vec<u8> {
    encode_key(TableId::CATALOG, COUNTERS, &[Datum::Text(name.to_string())])
}

fn corrupt(e: impl std::fmt::Display) -> ThunderError {
    ThunderError::internal(format!("corrupt catalog entry: {e}"))
}

impl Catalog {
    /// Reads the catalog through `view` (the snapshot plus the transaction's own DDL).
    /// The catalog as `view` sees it, shared through `cache` with every other statement whose
    /// snapshot sees the same catalog writes.
    pub async fn at(view: &ReadView, cache: &CatalogCache) -> Result<Arc<Catalog>> {
        let prefixes = LOADED.map(catalog_prefix);
        // The transaction's own catalog writes make a catalog no other statement sees.
        if prefixes.iter().any(|p| view.writes_under(p)) {
            return Catalog::load(view).await.map(Arc::new);
        }
        let newest = view.pages.newest_write(&prefixes, view.snapshot).await?;
        let cached = cache
            .entry
            .lock()
            .as_ref()
            .filter(|(at, _)| *at == newest)
            .map(|(_, c)| c.clone());
        if let Some(catalog) = cached {
            // As the scans of `load` would: a SERIALIZABLE transaction depends on what it read.
            for p in TRACKED.map(catalog_prefix) {
                view.note_read_range(&p, &prefix_end(&p).expect("catalog prefix"));
            }
            return Ok(catalog);
        }
        let catalog = Arc::new(Catalog::load(view).await?);
        let mut entry = cache.entry.lock();
        // An old snapshot does not push out the catalog current statements use.
        if entry.as_ref().is_none_or(|(at, _)| *at < newest) {
            *entry = Some((newest, catalog.clone()));
        }
        Ok(catalog)
    }

    pub async fn load(view: &ReadView) -> Result<Catalog> {
        let start = index_prefix(TableId::CATALOG, TABLES);
        let end = prefix_end(&start).expect("catalog prefix");
        let mut tables = BTreeMap::new();
        for (_, value) in view.scan(&start, &end, None).await? {
            let def = decode_table(&value)?;
            tables.insert(def.name.clone(), Arc::new(def));
        }
        Ok(Catalog {
            tables,
            sequences: load_entries(view, SEQUENCES, SEQUENCE_FORMAT, |d: &SequenceDef| {
                d.name.clone()
            })
            .await?,
            views: load_entries(view, VIEWS, VIEW_FORMAT, |d: &ViewDef| d.name.clone()).await?,
            roles: load_entries(view, ROLES, ROLE_FORMAT, |d: &RoleDef| d.name.clone()).await?,
            schemas: load_entries(view, SCHEMAS, SCHEMA_FORMAT, |d: &SchemaDef| d.name.clone())
                .await?,
            types: load_entries(view, TYPES, TYPE_FORMAT, |d: &EnumDef| d.name.clone()).await?,
            acls: load_entries(view, ACLS, ACL_FORMAT, |d: &AclDef| d.relation.clone()).await?,
            stats: {
                let tracked = view.pause_read_tracking();
                let stats = load_entries(view, STATS, STATS_FORMAT, |d: &TableStats| d.table).await;
                view.resume_read_tracking(tracked);
                stats?
            },
        })
    }

    /// Whether `name` is `public` or a schema made with `CREATE SCHEMA`.
    pub fn schema_exists(&self, name: &str) -> bool {
        name == "public" || self.schemas.contains_key(name)
    }

    /// Whether a table, key, index or sequence is called `name`.
    pub fn relation_exists(&self, name: &str) -> bool {
        self.relation_owner(name).is_some()
            || self.sequences.contains_key(name)
            || self.views.contains_key(name)
    }

    /// The sequences owned by columns of `table`.
    pub fn owned_sequences<'a>(
        &'a self,
        table: &'a str,
    ) -> impl Iterator<Item = &'a Arc<SequenceDef>> {
        self.sequences
            .values()
            .filter(move |s| s.owned_by.as_ref().is_some_and(|(t, _)| t == table))
    }

    pub fn table(&self, name: &str) -> Result<&Arc<TableDef>> {
        self.tables.get(name).ok_or_else(|| {
            if self.views.contains_key(name) {
                return user_error(
                    SqlState::WRONG_OBJECT_TYPE,
                    format!("\"{name}\" is a view, not a table"),
                );
            }
            user_error(
                SqlState::UNDEFINED_TABLE,
                format!("relation \"{name}\" does not exist"),
            )
        })
    }

    /// The table owning a relation (table, primary key or index) of this name.
    pub fn relation_owner(&self, name: &str) -> Option<&Arc<TableDef>> {
        self.tables
            .values()
            .find(|t| t.relation_names().any(|n| n == name))
    }
}

fn decode_table(bytes: &[u8]) -> Result<TableDef> {
    match bytes.split_first() {
        Some((&CATALOG_FORMAT, body)) => bincode::deserialize(body).map_err(corrupt),
        Some((2, body)) => bincode::deserialize::<TableDefV2>(body)
            .map(TableDef::from)
            .map_err(corrupt),
        Some((1, body)) => bincode::deserialize::<TableDefV1>(body)
            .map(TableDef::from)
            .map_err(corrupt),
        _ => Err(corrupt("unknown format")),
    }
}

/// The entries of one catalog key space stored as `format` byte + bincode, by name.
async fn load_entries<T: serde::de::DeserializeOwned, K: Ord>(
    view: &ReadView,
    space: IndexId,
    format: u8,
    name: impl Fn(&T) -> K,
) -> Result<BTreeMap<K, Arc<T>>> {
    let start = index_prefix(TableId::CATALOG, space);
    let end = prefix_end(&start).expect("catalog prefix");
    let mut out = BTreeMap::new();
    for (_, value) in view.scan(&start, &end, None).await? {
        let def: T = match value.split_first() {
            Some((f, body)) if *f == format => bincode::deserialize(body).map_err(corrupt)?,
            _ => return Err(corrupt("unknown entry format")),
        };
        out.insert(name(&def), Arc::new(def));
    }
    Ok(out)
}

/// Writes (or replaces) a table definition in the transaction.
pub fn put_table(view: &ReadView, def: &TableDef) -> Result<()> {
    put_entry(view, table_key(&def.name), CATALOG_FORMAT, def)
}

fn sequence_key(name: &str) -> Vec<u8> {
    encode_key(
        TableId::CATALOG,
        SEQUENCES,
        &[Datum::Text(name.to_string())],
    )
}

/// Writes (or replaces) one catalog entry as its format byte and bincode.
fn put_entry<T: Serialize>(view: &ReadView, key: Vec<u8>, format: u8, def: &T) -> Result<()> {
    let mut bytes = vec![format];
    bytes.extend(bincode::serialize(def).map_err(corrupt)?);
    view.put(key, bytes);
    Ok(())
}

/// Writes (or replaces) a sequence definition in the transaction.
pub fn put_sequence(view: &ReadView, def: &SequenceDef) -> Result<()> {
    put_entry(view, sequence_key(&def.name), SEQUENCE_FORMAT, def)
}

fn view_key(name: &str) -> Vec<u8> {
    encode_key(TableId::CATALOG, VIEWS, &[Datum::Text(name.to_string())])
}

/// Writes (or replaces) a view definition in the transaction.
pub fn put_view(view: &ReadView, def: &ViewDef) -> Result<()> {
    put_entry(view, view_key(&def.name), VIEW_FORMAT, def)
}

pub(crate) fn role_key(name: &str) -> Vec<u8> {
    encode_key(TableId::CATALOG, ROLES, &[Datum::Text(name.to_string())])
}

/// Writes (or replaces) a role in the transaction.
pub fn put_role(view: &ReadView, def: &RoleDef) -> Result<()> {
    put_entry(view, role_key(&def.name), ROLE_FORMAT, def)
}

pub fn delete_role(view: &ReadView, name: &str) {
    view.delete(role_key(name));
}

/// Decodes a stored role (the frontends' login lookup reads it outside any session).
pub fn decode_role(bytes: &[u8]) -> Result<RoleDef> {
    match bytes.split_first() {
        Some((&ROLE_FORMAT, body)) => bincode::deserialize(body).map_err(corrupt),
        _ => Err(corrupt("unknown role format")),
    }
}

pub(crate) fn schema_key(name: &str) -> Vec<u8> {
    encode_key(TableId::CATALOG, SCHEMAS, &[Datum::Text(name.to_string())])
}

/// Writes (or replaces) a schema in the transaction.
pub fn put_schema(view: &ReadView, def: &SchemaDef) -> Result<()> {
    put_entry(view, schema_key(&def.name), SCHEMA_FORMAT, def)
}

pub(crate) fn type_key(name: &str) -> Vec<u8> {
    encode_key(TableId::CATALOG, TYPES, &[Datum::Text(name.to_string())])
}

/// Writes (or replaces) an enum type in the transaction.
pub fn put_type(view: &ReadView, def: &EnumDef) -> Result<()> {
    put_entry(view, type_key(&def.name), TYPE_FORMAT, def)
}

pub fn delete_type(view: &ReadView, name: &str) {
    view.delete(type_key(name));
}

pub fn delete_schema(view: &ReadView, name: &str) {
    view.delete(schema_key(name));
}

pub(crate) fn acl_key(relation: &str) -> Vec<u8> {
    encode_key(TableId::CATALOG, ACLS, &[Datum::Text(relation.to_string())])
}

/// Writes (or replaces) a relation's owner and privileges in the transaction.
pub fn put_acl(view: &ReadView, def: &AclDef) -> Result<()> {
    put_entry(view, acl_key(&def.relation), ACL_FORMAT, def)
}

/// A relation's owner and privileges as the transaction sees them now (its own GRANTs of
/// this statement included).
pub async fn get_acl(view: &ReadView, relation: &str) -> Result<Option<AclDef>> {
    match view.get(&acl_key(relation)).await? {
        Some(bytes) => match bytes.split_first() {
            Some((&ACL_FORMAT, body)) => bincode::deserialize(body).map(Some).map_err(corrupt),
            _ => Err(corrupt("unknown acl format")),
        },
        None => Ok(None),
    }
}

fn stats_key(table: TableId) -> Vec<u8> {
    encode_key(TableId::CATALOG, STATS, &[Datum::Int64(i64::from(table.0))])
}

/// Writes (or replaces) a table's statistics in the transaction.
pub fn put_stats(view: &ReadView, stats: &TableStats) -> Result<()> {
    put_entry(view, stats_key(stats.table), STATS_FORMAT, stats)
}

/// Forgets a table's statistics (the table is dropped or emptied).
pub fn delete_stats(view: &ReadView, table: TableId) {
    view.delete(stats_key(table));
}

/// Carries a table's statistics over to the new storage id it moves its rows to (ADD PRIMARY
/// KEY, a key column's new type): the rows are the same.
pub async fn move_stats(view: &ReadView, from: TableId, to: TableId) -> Result<()> {
    let tracked = view.pause_read_tracking();
    let entry = view.get(&stats_key(from)).await;
    view.resume_read_tracking(tracked);
    let Some(bytes) = entry? else {
        return Ok(());
    };
    let mut stats: TableStats = match bytes.split_first() {
        Some((&STATS_FORMAT, body)) => bincode::deserialize(body).map_err(corrupt)?,
        _ => return Err(corrupt("unknown statistics format")),
    };
    stats.table = to;
    delete_stats(view, from);
    put_stats(view, &stats)
}

impl Catalog {
    /// `ANALYZE`'s statistics of `def`, when they were taken of this table.
    pub fn stats_of(&self, def: &TableDef) -> Option<&Arc<TableStats>> {
        self.stats.get(&def.id)
    }
}

/// Deletes a view with its owner and privileges.
pub fn delete_view(view: &ReadView, name: &str) {
    view.delete(view_key(name));
    view.delete(acl_key(name));
}

/// Deletes a sequence with its owner and privileges.
pub fn delete_sequence(view: &ReadView, name: &str) {
    view.delete(sequence_key(name));
    view.delete(acl_key(name));
}

/// Deletes a table with its owner and privileges (a rename puts them back under the new name).
pub fn delete_table(view: &ReadView, name: &str) {
    view.delete(table_key(name));
    view.delete(acl_key(name));
}

/// Drops a table: its definition, owner, privileges and statistics.
pub fn drop_table(view: &ReadView, def: &TableDef) {
    delete_table(view, &def.name);
    delete_stats(view, def.id);
}

/// Allocates the next table id. The counter is a key like any other, so two transactions that
/// create tables concurrently conflict instead of sharing an id.
pub async fn allocate_table_id(view: &ReadView) -> Result<TableId> {
    let key = counter_key("table_id");
    let next = match view.get(&key).await? {
        Some(v) => u32::from_le_bytes(v.as_ref().try_into().map_err(corrupt)?),
        None => TableId::FIRST_USER,
    };
    view.put(key, (next + 1).to_le_bytes().to_vec());
    Ok(TableId(next))
}
