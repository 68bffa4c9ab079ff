//! Privileges on relations (tables, views, sequences): owners, `GRANT`/`REVOKE`,
//! `ALTER … OWNER TO`, and the check every statement passes before it runs (42501).
//!
//! As in PostgreSQL:
//! - Superusers pass every check. The owner of a relation may alter, drop, grant on it and
//!   (until revoked from itself) use it in every way; a relation nobody granted on has only
//!   its owner's privileges.
//! - A relation without an [`AclDef`] belongs to the bootstrap superuser; a relation a
//!   non-bootstrap role creates gets one naming that role as owner.
//! - A view is read with its owner's privileges on what it reads; the reader needs SELECT on
//!   the view only.
//!
//! Not here: column privileges, privileges on schemas, databases and functions, and role
//! membership (`GRANT role TO role`). The sequence functions check their own (USAGE, SELECT,
//! UPDATE) through [`check_sequence`].

use crate::catalog::{self, AclDef, AclItem, Catalog, RoleDef};
use crate::error::{Result, user_error};
use crate::session::{CommandTag, QueryOutput, Session};
use crate::sql::{ident_name, object_name};
use datafusion::sql::sqlparser::ast::{
    self, Action, GrantObjects, Grantee, GranteeName, GranteesType, ObjectType, Privileges,
    Statement, Visit, Visitor,
};
use std::collections::{BTreeMap, HashSet};
use std::ops::ControlFlow;
use thunderdb_common::{SqlState, ThunderError};

pub const SELECT: u16 = 1;
pub const INSERT: u16 = 1 << 1;
pub const UPDATE: u16 = 1 << 2;
pub const DELETE: u16 = 1 << 3;
pub const TRUNCATE: u16 = 1 << 4;
pub const REFERENCES: u16 = 1 << 5;
pub const TRIGGER: u16 = 1 << 6;
pub const USAGE: u16 = 1 << 7;

/// `aclitem` letters in the order PostgreSQL prints them, with their bits.
pub const LETTERS: [(char, u16); 8] = [
    ('a', INSERT),
    ('r', SELECT),
    ('w', UPDATE),
    ('d', DELETE),
    ('D', TRUNCATE),
    ('x', REFERENCES),
    ('t', TRIGGER),
    ('U', USAGE),
];

/// The bits of a privilege list as `has_table_privilege` takes it (`'SELECT, INSERT'`,
/// `'UPDATE WITH GRANT OPTION'` counts as UPDATE).
pub fn parse_privilege_list(text: &str) -> Result<u16> {
    let mut bits = 0;
    for word in text.split(',') {
        let word = word.trim().to_ascii_uppercase();
        let word = word
            .strip_suffix(" WITH GRANT OPTION")
            .unwrap_or(&word)
            .trim();
        bits |= match word {
            "SELECT" => SELECT,
            "INSERT" => INSERT,
            "UPDATE" => UPDATE,
            "DELETE" => DELETE,
            "TRUNCATE" => TRUNCATE,
            "REFERENCES" => REFERENCES,
            "TRIGGER" => TRIGGER,
            "USAGE" => USAGE,
            _ => {
                return Err(user_error(
                    SqlState::INVALID_PARAMETER_VALUE,
                    format!("unrecognized privilege type: \"{}\"", word.to_lowercase()),
                ));
            }
        };
    }
    Ok(bits)
}

/// The kinds of relation privileges apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Table,
    View,
    Sequence,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Table => "table",
            Kind::View => "view",
            Kind::Sequence => "sequence",
        }
    }

    /// Every privilege a relation of this kind has.
    fn all(self) -> u16 {
        match self {
            Kind::Table | Kind::View => {
                INSERT | SELECT | UPDATE | DELETE | TRUNCATE | REFERENCES | TRIGGER
            }
            Kind::Sequence => SELECT | UPDATE | USAGE,
        }
    }
}

/// The kind of relation `key` names, if the catalog holds one.
pub fn kind(catalog: &Catalog, key: &str) -> Option<Kind> {
    if catalog.tables.contains_key(key) {
        Some(Kind::Table)
    } else if catalog.views.contains_key(key) {
        Some(Kind::View)
    } else if catalog.sequences.contains_key(key) {
        Some(Kind::Sequence)
    } else {
        None
    }
}

/// The OID of the role owning `key`.
pub fn owner(catalog: &Catalog, key: &str) -> i64 {
    catalog
        .acls
        .get(key)
        .map_or(crate::roles::BOOTSTRAP_SUPERUSER_OID, |a| a.owner)
}

/// The privileges in force on `key`: its grants, or its owner's defaults.
pub fn effective(catalog: &Catalog, key: &str, kind: Kind) -> Vec<AclItem> {
    match catalog.acls.get(key).and_then(|a| a.grants.as_ref()) {
        Some(g) => g.clone(),
        None => default_acl(owner(catalog, key), kind),
    }
}

fn default_acl(owner: i64, kind: Kind) -> Vec<AclItem> {
    vec![AclItem {
        grantee: owner,
        grantor: owner,
        privileges: kind.all(),
        grant_options: 0,
    }]
}

/// Whether `role` holds every privilege in `wanted` on `key` (of kind `kind`).
pub fn holds(catalog: &Catalog, key: &str, kind: Kind, role: &RoleDef, wanted: u16) -> bool {
    if role.superuser {
        return true;
    }
    let have = effective(catalog, key, kind)
        .iter()
        .filter(|i| i.grantee == role.oid || i.grantee == 0)
        .fold(0, |acc, i| acc | i.privileges);
    have & wanted == wanted
}

/// `relacl` as PostgreSQL prints it (`{thunder=arwdDxt/thunder,=r/thunder}`), or `None`
/// while nobody granted or revoked anything.
pub fn acl_text(
    catalog: &Catalog,
    key: &str,
    role_name: impl Fn(i64) -> String,
) -> Option<Vec<String>> {
    let grants = catalog.acls.get(key)?.grants.as_ref()?;
    Some(
        grants
            .iter()
            .map(|i| {
                let mut out = String::new();
                if i.grantee != 0 {
                    out.push_str(&role_name(i.grantee));
                }
                out.push('=');
                for (letter, bit) in LETTERS {
                    if i.privileges & bit != 0 {
                        out.push(letter);
                        if i.grant_options & bit != 0 {
                            out.push('*');
                        }
                    }
                }
                out.push('/');
                out.push_str(&role_name(i.grantor));
                out
            })
            .collect(),
    )
}

/// The role called `name`, the bootstrap superuser (named `superuser`) included.
pub(crate) fn role_named(catalog: &Catalog, superuser: &str, name: &str) -> Option<RoleDef> {
    match catalog.roles.get(name) {
        Some(r) => Some(r.as_ref().clone()),
        None if name == superuser => Some(crate::roles::bootstrap_role(name)),
        None => None,
    }
}

/// Checks that role `user` holds one of `any_of` on sequence `key` (the sequence functions).
pub(crate) fn check_sequence(
    catalog: &Catalog,
    superuser: &str,
    user: &str,
    key: &str,
    any_of: &[u16],
) -> Result<()> {
    if user == superuser {
        return Ok(());
    }
    let allowed = role_named(catalog, superuser, user).is_some_and(|role| {
        any_of
            .iter()
            .any(|b| holds(catalog, key, Kind::Sequence, &role, *b))
    });
    if allowed {
        Ok(())
    } else {
        Err(denied(Kind::Sequence, key))
    }
}

/// The role the session runs as.
pub(crate) fn session_role(s: &Session, catalog: &Catalog) -> Result<RoleDef> {
    crate::roles::find_role(s, catalog, &s.user).ok_or_else(|| {
        user_error(
            SqlState::UNDEFINED_OBJECT,
            format!("role \"{}\" does not exist", s.user),
        )
    })
}

fn denied(kind: Kind, key: &str) -> ThunderError {
    user_error(
        SqlState::INSUFFICIENT_PRIVILEGE,
        format!(
            "permission denied for {} {}",
            kind.word(),
            catalog::split_relation_key(key).1
        ),
    )
}

fn not_owner(kind: Kind, key: &str) -> ThunderError {
    user_error(
        SqlState::INSUFFICIENT_PRIVILEGE,
        format!(
            "must be owner of {} {}",
            kind.word(),
            catalog::split_relation_key(key).1
        ),
    )
}

/// Whether `role` owns `key` (superusers count as owners of everything).
pub fn owns(catalog: &Catalog, key: &str, role: &RoleDef) -> bool {
    role.superuser || owner(catalog, key) == role.oid
}

/// What a statement needs: privileges by relation key, and relations it must own.
#[derive(Default)]
struct Needs {
    privileges: BTreeMap<String, u16>,
    ownership: Vec<String>,
    /// Indexes to drop: their tables' owners may.
    indexes: Vec<String>,
    /// Schemas to drop: only their owners may.
    schemas: Vec<String>,
}

impl Needs {
    fn add(&mut self, key: String, bits: u16) {
        *self.privileges.entry(key).or_default() |= bits;
    }

    /// SELECT on every relation named in `part` but one occurrence of `except` (the
    /// statement's own target). Names of CTEs are not told apart from relations: a CTE named
    /// like a table the role may not read is refused rather than risking a read of the table.
    fn reads_all<V: Visit>(&mut self, part: &V, except: Option<&str>) {
        let mut skip = except;
        for key in relations(part) {
            if skip == Some(key.as_str()) {
                skip = None;
                continue;
            }
            self.add(key, SELECT);
        }
    }
}

/// The relation keys named in `part` (names are keys once `search_path` resolved them).
fn relations<V: Visit>(part: &V) -> Vec<String> {
    struct R(Vec<String>);
    impl Visitor for R {
        type Break = ();
        fn pre_visit_relation(&mut self, name: &ast::ObjectName) -> ControlFlow<()> {
            self.0.extend(relation_key(name));
            ControlFlow::Continue(())
        }
    }
    let mut r = R(Vec::new());
    let _ = part.visit(&mut r);
    r.0
}

/// The catalog key of a relation name; `None` for the system catalogs, which every role
/// may read.
fn relation_key(name: &ast::ObjectName) -> Option<String> {
    let bare = object_name(name);
    match crate::sql::schema_of(name) {
        Some(s) if matches!(s.as_str(), "pg_catalog" | "information_schema" | "redis") => None,
        Some(schema) => Some(catalog::relation_key(&schema, &bare)),
        None => Some(bare),
    }
}

/// The relations locked by `FOR UPDATE / SHARE` of a query: those its `OF` names, or every
/// table of its top-level FROM.
fn locked(q: &ast::Query) -> Vec<String> {
    let mut out = Vec::new();
    let ast::SetExpr::Select(select) = q.body.as_ref() else {
        return out;
    };
    // The tables of the FROM list: their keys, and the name or alias they go by.
    let tables: Vec<(String, String)> = select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
        .filter_map(|factor| match factor {
            ast::TableFactor::Table { name, alias, .. } => Some((
                relation_key(name)?,
                alias
                    .as_ref()
                    .map_or_else(|| object_name(name), |a| ident_name(&a.name)),
            )),
            _ => None,
        })
        .collect();
    for lock in &q.locks {
        match &lock.of {
            Some(of) => {
                let wanted = object_name(of);
                out.extend(
                    tables
                        .iter()
                        .filter(|(key, called)| *called == wanted || *key == wanted)
                        .map(|(key, _)| key.clone()),
                );
            }
            None => out.extend(tables.iter().map(|(key, _)| key.clone())),
        }
    }
    out
}

/// The relations and privileges `stmt` needs. Every relation a statement names needs SELECT
/// unless it is the target of the statement's own kind of write.
fn needs(stmt: &Statement) -> Needs {
    let mut n = Needs::default();
    match stmt {
        Statement::Query(q) => {
            n.reads_all(q, None);
            for key in locked(q) {
                n.add(key, UPDATE);
            }
        }
        Statement::Explain { statement, .. } => return needs(statement),
        Statement::Insert(ins) => {
            let ast::TableObject::TableName(name) = &ins.table else {
                n.reads_all(stmt, None);
                return n;
            };
            let key = object_name(name);
            let upserts = matches!(
                &ins.on,
                Some(ast::OnInsert::OnConflict(ast::OnConflict {
                    action: ast::OnConflictAction::DoUpdate(_),
                    ..
                })) | Some(ast::OnInsert::DuplicateKeyUpdate(_))
            );
            let reads_back = ins.returning.is_some() || upserts;
            let updates = upserts || ins.replace_into;
            n.reads_all(stmt, Some(&key));
            n.add(
                key,
                INSERT | if reads_back { SELECT } else { 0 } | if updates { UPDATE } else { 0 },
            );
        }
        Statement::Update(up) => {
            let ast::TableFactor::Table { name, .. } = &up.table.relation else {
                n.reads_all(stmt, None);
                return n;
            };
            let key = object_name(name);
            let reads = up.selection.is_some() || up.returning.is_some();
            n.reads_all(stmt, Some(&key));
            n.add(key, UPDATE | if reads { SELECT } else { 0 });
        }
        Statement::Delete(del) => {
            let tables = match &del.from {
                ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
            };
            let Some(ast::TableFactor::Table { name, .. }) = tables.first().map(|t| &t.relation)
            else {
                n.reads_all(stmt, None);
                return n;
            };
            let key = object_name(name);
            let reads = del.selection.is_some() || del.returning.is_some();
            n.reads_all(stmt, Some(&key));
            n.add(key, DELETE | if reads { SELECT } else { 0 });
        }
        Statement::Truncate(t) => {
            for name in &t.table_names {
                n.add(object_name(&name.name), TRUNCATE);
            }
        }
        Statement::Copy { source, to, .. } => match source {
            ast::CopySource::Table { table_name, .. } => {
                n.add(object_name(table_name), if *to { SELECT } else { INSERT })
            }
            ast::CopySource::Query(q) => n.reads_all(q.as_ref(), None),
        },
        Statement::CreateTable(ct) => {
            if let Some(q) = &ct.query {
                n.reads_all(q.as_ref(), None);
            }
            // A foreign key needs REFERENCES on the table it points to.
            let column_keys =
                ct.columns
                    .iter()
                    .flat_map(|c| &c.options)
                    .filter_map(|o| match &o.option {
                        ast::ColumnOption::ForeignKey(fk) => Some(&fk.foreign_table),
                        _ => None,
                    });
            let table_keys = ct.constraints.iter().filter_map(|c| match c {
                ast::TableConstraint::ForeignKey(fk) => Some(&fk.foreign_table),
                _ => None,
            });
            for parent in column_keys.chain(table_keys) {
                n.add(object_name(parent), REFERENCES);
            }
        }
        // The new query is planned (and so read) as the creator; a replaced view must be
        // the creator's.
        Statement::CreateView(cv) => {
            n.reads_all(cv.query.as_ref(), None);
            if cv.or_replace {
                n.ownership.push(object_name(&cv.name));
            }
        }
        Statement::CreateSequence {
            owned_by: Some(owner),
            ..
        } => {
            // `OWNED BY table.column`: the sequence goes with a table its creator must own.
            if let [table @ .., _column] = owner.0.as_slice()
                && !table.is_empty()
            {
                n.ownership
                    .push(object_name(&ast::ObjectName(table.to_vec())));
            }
        }
        Statement::Drop {
            object_type: ObjectType::Table | ObjectType::View | ObjectType::Sequence,
            names,
            ..
        } => n.ownership.extend(names.iter().map(object_name)),
        Statement::Drop {
            object_type: ObjectType::Index,
            names,
            ..
        } => n.indexes.extend(names.iter().map(object_name)),
        Statement::Drop {
            object_type: ObjectType::Schema,
            names,
            ..
        } => n.schemas.extend(names.iter().map(object_name)),
        Statement::AlterTable(at) => {
            n.ownership.push(object_name(&at.name));
            for op in &at.operations {
                if let ast::AlterTableOperation::AddConstraint {
                    constraint: ast::TableConstraint::ForeignKey(fk),
                    ..
                } = op
                {
                    n.add(object_name(&fk.foreign_table), REFERENCES);
                }
            }
        }
        Statement::AlterView { name, .. } => n.ownership.push(object_name(name)),
        Statement::CreateIndex(ci) => n.ownership.push(object_name(&ci.table_name)),
        Statement::Comment {
            object_type: ast::CommentObject::Table,
            object_name: name,
            ..
        } => n.ownership.push(object_name(name)),
        _ => {}
    }
    n
}

/// Checks that the session may run `stmt` (42501 when not). Free for superusers.
pub(crate) async fn check(s: &mut Session, stmt: &Statement) -> Result<()> {
    if s.user == s.engine.superuser() {
        // The bootstrap superuser keeps SUPERUSER (ALTER ROLE refuses to take it).
        return Ok(());
    }
    let n = needs(stmt);
    if n.privileges.is_empty()
        && n.ownership.is_empty()
        && n.indexes.is_empty()
        && n.schemas.is_empty()
    {
        return Ok(());
    }
    let (env, _) = s.statement_env(None).await?;
    let catalog = &env.catalog;
    let role = session_role(s, catalog)?;
    if role.superuser {
        return Ok(());
    }
    for schema in &n.schemas {
        if let Some(def) = catalog.schemas.get(schema)
            && def.owner != role.name
        {
            return Err(user_error(
                SqlState::INSUFFICIENT_PRIVILEGE,
                format!("must be owner of schema {schema}"),
            ));
        }
    }
    for index in &n.indexes {
        if let Some(table) = catalog.relation_owner(index)
            && !catalog.tables.contains_key(index)
            && !owns(catalog, &table.name, &role)
        {
            return Err(user_error(
                SqlState::INSUFFICIENT_PRIVILEGE,
                format!(
                    "must be owner of index {}",
                    catalog::split_relation_key(index).1
                ),
            ));
        }
    }
    for key in &n.ownership {
        // Indexes and unknown names: the statement reports those itself.
        if let Some(kind) = kind(catalog, key)
            && !owns(catalog, key, &role)
        {
            return Err(not_owner(kind, key));
        }
    }
    let mut seen_views = HashSet::new();
    for (key, wanted) in &n.privileges {
        check_relation(s, catalog, key, *wanted, &role, &mut seen_views)?;
    }
    Ok(())
}

/// Checks `wanted` on `key` for `role`; a view's own reads are checked for its owner.
fn check_relation(
    s: &Session,
    catalog: &Catalog,
    key: &str,
    wanted: u16,
    role: &RoleDef,
    seen_views: &mut HashSet<String>,
) -> Result<()> {
    let Some(kind) = kind(catalog, key) else {
        // System catalogs, CTEs, names that do not exist (the statement reports those).
        return Ok(());
    };
    if !holds(catalog, key, kind, role, wanted) {
        return Err(denied(kind, key));
    }
    if kind != Kind::View || !seen_views.insert(key.to_string()) {
        return Ok(());
    }
    let owner_oid = owner(catalog, key);
    let Some(owner) = catalog
        .roles
        .values()
        .find(|r| r.oid == owner_oid)
        .map(|r| r.as_ref().clone())
        .or_else(|| {
            (owner_oid == crate::roles::BOOTSTRAP_SUPERUSER_OID)
                .then(|| crate::roles::bootstrap_role(s.engine.superuser()))
        })
    else {
        // A view whose owner is gone reads with nobody's privileges.
        return Err(denied(kind, key));
    };
    if owner.superuser {
        return Ok(());
    }
    let Some(query) = catalog
        .views
        .get(key)
        .and_then(|v| crate::pg_catalog::parse_query(&v.query))
    else {
        return Ok(());
    };
    for inner in relations(&query) {
        check_relation(s, catalog, &inner, SELECT, &owner, seen_views)?;
    }
    Ok(())
}

/// Records the session's role as owner of a relation it just created (relations of the
/// bootstrap superuser need no entry).
pub(crate) fn set_owner(
    s: &Session,
    view: &crate::txn::ReadView,
    catalog: &Catalog,
    key: &str,
) -> Result<()> {
    let Some(role) = crate::roles::find_role(s, catalog, &s.user) else {
        return Ok(());
    };
    if role.oid == crate::roles::BOOTSTRAP_SUPERUSER_OID {
        return Ok(());
    }
    catalog::put_acl(
        view,
        &AclDef {
            relation: key.to_string(),
            owner: role.oid,
            grants: None,
        },
    )
}

/// The privilege bits of a GRANT/REVOKE list for relations of `kind`.
fn privilege_bits(privileges: &Privileges, kind: Kind) -> Result<u16> {
    let actions = match privileges {
        Privileges::All { .. } => return Ok(kind.all()),
        Privileges::Actions(a) => a,
    };
    let mut bits = 0;
    for a in actions {
        let (bit, columns) = match a {
            Action::Select { columns } => (SELECT, columns.as_ref()),
            Action::Insert { columns } => (INSERT, columns.as_ref()),
            Action::Update { columns } => (UPDATE, columns.as_ref()),
            Action::References { columns } => (REFERENCES, columns.as_ref()),
            Action::Delete => (DELETE, None),
            Action::Truncate => (TRUNCATE, None),
            Action::Trigger => (TRIGGER, None),
            Action::Usage => (USAGE, None),
            other => {
                return Err(user_error(
                    SqlState("0LP01"),
                    format!("invalid privilege type {other} for {}", kind.word()),
                ));
            }
        };
        if columns.is_some_and(|c| !c.is_empty()) {
            return Err(user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                "column privileges are not supported",
            ));
        }
        if bit & kind.all() == 0 {
            return Err(user_error(
                SqlState("0LP01"),
                format!("invalid privilege type {a} for {}", kind.word()),
            ));
        }
        bits |= bit;
    }
    Ok(bits)
}

/// The relation keys a GRANT/REVOKE names, with their kinds.
fn objects(
    s: &Session,
    catalog: &Catalog,
    objects: Option<&GrantObjects>,
) -> Result<Vec<(String, Kind)>> {
    let path = s.search_path();
    let resolve = |name: &ast::ObjectName, wanted: Option<Kind>| -> Result<(String, Kind)> {
        let key = crate::schemas::resolve_text_name(catalog, &path, &object_name(name));
        match kind(catalog, &key) {
            Some(k) if wanted.is_none_or(|w| w == k) => Ok((key, k)),
            Some(_) => Err(user_error(
                SqlState::WRONG_OBJECT_TYPE,
                format!(
                    "\"{}\" is not a sequence",
                    catalog::split_relation_key(&key).1
                ),
            )),
            None => Err(user_error(
                SqlState::UNDEFINED_TABLE,
                format!(
                    "relation \"{}\" does not exist",
                    catalog::split_relation_key(&key).1
                ),
            )),
        }
    };
    let in_schemas = |schemas: &[ast::ObjectName], want: &[Kind]| -> Result<Vec<(String, Kind)>> {
        let mut out = Vec::new();
        for schema in schemas {
            let schema = object_name(schema);
            if !catalog.schema_exists(&schema) {
                return Err(user_error(
                    SqlState("3F000"),
                    format!("schema \"{schema}\" does not exist"),
                ));
            }
            let keys = catalog
                .tables
                .keys()
                .chain(catalog.views.keys())
                .chain(catalog.sequences.keys());
            for key in keys {
                if catalog::split_relation_key(key).0 == schema
                    && let Some(k) = kind(catalog, key)
                    && want.contains(&k)
                {
                    out.push((key.clone(), k));
                }
            }
        }
        Ok(out)
    };
    match objects {
        Some(GrantObjects::Tables(names)) => names.iter().map(|n| resolve(n, None)).collect(),
        Some(GrantObjects::Views(names)) => names.iter().map(|n| resolve(n, None)).collect(),
        Some(GrantObjects::Sequences(names)) => names
            .iter()
            .map(|n| resolve(n, Some(Kind::Sequence)))
            .collect(),
        Some(GrantObjects::AllTablesInSchema { schemas }) => {
            in_schemas(schemas, &[Kind::Table, Kind::View])
        }
        Some(GrantObjects::AllSequencesInSchema { schemas }) => {
            in_schemas(schemas, &[Kind::Sequence])
        }
        Some(other) => Err(user_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            format!(
                "GRANT and REVOKE ON {other} are not supported: privileges apply to tables, views and sequences"
            ),
        )),
        None => Err(user_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            "GRANT and REVOKE of role membership are not supported",
        )),
    }
}

/// The role OIDs of a grantee list; 0 for PUBLIC.
fn grantee_oids(s: &Session, catalog: &Catalog, grantees: &[Grantee]) -> Result<Vec<i64>> {
    grantees
        .iter()
        .map(|g| {
            let name = match (&g.grantee_type, &g.name) {
                (GranteesType::Public, _) => return Ok(0),
                (_, Some(GranteeName::ObjectName(n))) => object_name(n),
                (_, Some(GranteeName::UserHost { user, .. })) => ident_name(user),
                _ => {
                    return Err(user_error(
                        SqlState::SYNTAX_ERROR,
                        format!("unexpected grantee {g}"),
                    ));
                }
            };
            if name == "public" {
                return Ok(0);
            }
            crate::roles::find_role(s, catalog, &name)
                .map(|r| r.oid)
                .ok_or_else(|| {
                    user_error(
                        SqlState::UNDEFINED_OBJECT,
                        format!("role \"{name}\" does not exist"),
                    )
                })
        })
        .collect()
}

/// `GRANT privileges ON relations TO roles [WITH GRANT OPTION]` and `REVOKE … FROM …`.
pub(crate) async fn grant_or_revoke(s: &mut Session, stmt: Statement) -> Result<QueryOutput> {
    let (privileges, objs, grantees, grant_option, grant, cascade) = match &stmt {
        Statement::Grant(g) => (
            &g.privileges,
            g.objects.as_ref(),
            &g.grantees,
            g.with_grant_option,
            true,
            false,
        ),
        Statement::Revoke(r) => (
            &r.privileges,
            r.objects.as_ref(),
            &r.grantees,
            false,
            false,
            matches!(r.cascade, Some(ast::CascadeOption::Cascade)),
        ),
        _ => unreachable!("only GRANT and REVOKE come here"),
    };
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    let catalog = &env.catalog;
    let role = session_role(s, catalog)?;
    let targets = objects(s, catalog, objs)?;
    let oids = grantee_oids(s, catalog, grantees)?;
    if grant_option && oids.contains(&0) {
        return Err(user_error(
            SqlState("0LP01"),
            "grant options can only be granted to roles",
        ));
    }
    for (key, kind) in targets {
        env.view.depend_on_key(catalog::acl_key(&key));
        let mut bits = privilege_bits(privileges, kind)?;
        let owner_oid = owner(catalog, &key);
        let mut items = effective(catalog, &key, kind);
        // The owner (or a superuser, acting as the owner) grants anything; others what
        // they hold with the grant option.
        let grantor = if owns(catalog, &key, &role) {
            owner_oid
        } else {
            let options = items
                .iter()
                .filter(|i| i.grantee == role.oid || i.grantee == 0)
                .fold(0, |acc, i| acc | i.grant_options);
            // No grant option and no privilege at all: refused. Holding the privilege
            // without the option grants nothing (PostgreSQL warns "no privileges were granted").
            let holds_any = items
                .iter()
                .any(|i| (i.grantee == role.oid || i.grantee == 0) && i.privileges != 0);
            if options == 0 && !holds_any {
                return Err(denied(kind, &key));
            }
            // What the grantor holds without the grant option is not given (PostgreSQL
            // warns "not all privileges were granted").
            bits &= options;
            role.oid
        };
        if bits == 0 {
            continue;
        }
        // Options may not go back to a role they rest on: a grantee (other than the owner)
        // without whom the grantor would not hold them (PostgreSQL's circularity check).
        let back_to_grantor = oids.iter().any(|g| {
            let from_others = items
                .iter()
                .filter(|i| i.grantee == grantor && i.grantor != *g)
                .fold(0, |acc, i| acc | i.grant_options);
            *g != owner_oid && bits & !from_others != 0
        });
        if grant && grant_option && grantor != owner_oid && back_to_grantor {
            return Err(user_error(
                SqlState("0LP01"),
                "grant options cannot be granted back to your own grantor",
            ));
        }
        for &grantee in &oids {
            if grant {
                match items
                    .iter_mut()
                    .find(|i| i.grantee == grantee && i.grantor == grantor)
                {
                    Some(item) => {
                        item.privileges |= bits;
                        if grant_option {
                            item.grant_options |= bits;
                        }
                    }
                    None => items.push(AclItem {
                        grantee,
                        grantor,
                        privileges: bits,
                        grant_options: if grant_option { bits } else { 0 },
                    }),
                }
            } else {
                revoke(&mut items, grantee, grantor, owner_oid, bits, cascade, &key)?;
            }
        }
        catalog::put_acl(
            &env.view,
            &AclDef {
                relation: key,
                owner: owner_oid,
                grants: Some(items),
            },
        )?;
    }
    s.note_write(env.view.snapshot);
    Ok(QueryOutput::Command(CommandTag::new(if grant {
        "GRANT"
    } else {
        "REVOKE"
    })))
}

/// Takes `bits` from what `grantor` gave `grantee` (a superuser revokes as the owner). Grants the grantee made on with those bits go too under CASCADE, and make the
/// REVOKE fail (2BP01) without it.
fn revoke(
    items: &mut Vec<AclItem>,
    grantee: i64,
    grantor: i64,
    owner: i64,
    bits: u16,
    cascade: bool,
    key: &str,
) -> Result<()> {
    let mut lost_options = 0;
    for item in items
        .iter_mut()
        .filter(|i| i.grantee == grantee && i.grantor == grantor)
    {
        lost_options |= item.grant_options & bits;
        item.privileges &= !bits;
        item.grant_options &= !bits;
    }
    items.retain(|i| i.privileges != 0);
    // What the grantee passed on rested on the options it just lost (unless it still holds
    // them from another grantor, or owns the relation).
    let still = items
        .iter()
        .filter(|i| i.grantee == grantee)
        .fold(0, |acc, i| acc | i.grant_options);
    let orphaned = lost_options & !still;
    if orphaned == 0 || grantee == owner {
        return Ok(());
    }
    let dependents: Vec<i64> = items
        .iter()
        .filter(|i| i.grantor == grantee && i.privileges & orphaned != 0)
        .map(|i| i.grantee)
        .collect();
    if dependents.is_empty() {
        return Ok(());
    }
    if !cascade {
        return Err(
            user_error(SqlState("2BP01"), "dependent privileges exist").with_detail(format!(
                "Grants on {} rest on them. Use CASCADE to revoke them too.",
                catalog::split_relation_key(key).1
            )),
        );
    }
    for dependent in dependents {
        revoke(items, dependent, grantee, owner, orphaned, true, key)?;
    }
    Ok(())
}

/// `ALTER TABLE | VIEW | SEQUENCE name OWNER TO role`: the new owner takes the old owner's
/// place in the grants too. Superusers only, as no role here is a member of another.
pub(crate) async fn set_owner_to(
    s: &Session,
    view: &crate::txn::ReadView,
    catalog: &Catalog,
    key: &str,
    new_owner: &ast::Owner,
) -> Result<()> {
    let Some(kind) = kind(catalog, key) else {
        return Ok(());
    };
    let role = session_role(s, catalog)?;
    let name = match new_owner {
        ast::Owner::Ident(i) => ident_name(i),
        ast::Owner::CurrentRole | ast::Owner::CurrentUser | ast::Owner::SessionUser => {
            s.user.clone()
        }
    };
    let target = crate::roles::find_role(s, catalog, &name).ok_or_else(|| {
        user_error(
            SqlState::UNDEFINED_OBJECT,
            format!("role \"{name}\" does not exist"),
        )
    })?;
    if kind == Kind::Table {
        for seq in catalog.owned_sequences(key) {
            Box::pin(set_owner_to(s, view, catalog, &seq.name, new_owner)).await?;
        }
    }
    let old = catalog::get_acl(view, key).await?;
    let old_owner = old
        .as_ref()
        .map_or(crate::roles::BOOTSTRAP_SUPERUSER_OID, |a| a.owner);
    if old_owner == target.oid {
        return Ok(());
    }
    if !role.superuser {
        return Err(if owns(catalog, key, &role) {
            user_error(
                SqlState::INSUFFICIENT_PRIVILEGE,
                format!("must be able to SET ROLE \"{name}\""),
            )
        } else {
            not_owner(kind, key)
        });
    }
    let grants = old.and_then(|a| a.grants).map(|items| {
        items
            .into_iter()
            .map(|mut i| {
                if i.grantee == old_owner {
                    i.grantee = target.oid;
                }
                if i.grantor == old_owner {
                    i.grantor = target.oid;
                }
                i
            })
            .collect()
    });
    catalog::put_acl(
        view,
        &AclDef {
            relation: key.to_string(),
            owner: target.oid,
            grants,
        },
    )
}

/// What `role` owns or holds privileges on, for `DROP ROLE`'s 2BP01 detail.
pub fn dependents(catalog: &Catalog, role: i64) -> Vec<String> {
    let mut out = Vec::new();
    for (key, acl) in &catalog.acls {
        let Some(kind) = kind(catalog, key) else {
            continue;
        };
        let bare = catalog::split_relation_key(key).1;
        if acl.owner == role {
            out.push(format!("owner of {} {bare}", kind.word()));
        }
        if acl
            .grants
            .as_ref()
            .is_some_and(|g| g.iter().any(|i| i.grantee == role || i.grantor == role))
        {
            out.push(format!("privileges for {} {bare}", kind.word()));
        }
    }
    out
}
