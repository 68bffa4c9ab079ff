//! Schemas: `CREATE SCHEMA`, `DROP SCHEMA`, and name resolution through `search_path`.
//!
//! A relation in a schema other than `public` is keyed `schema.name` in the catalog
//! ([`catalog::relation_key`]). Before a statement runs, [`qualify`] rewrites every relation
//! name it mentions to that key — a qualified name directly, an unqualified one through the
//! schemas of `search_path` in order, as PostgreSQL looks names up — so the rest of the engine
//! deals in catalog keys only. A table factor that gets a key keeps its written name as its
//! alias, so column references like `t.a` still bind.

use crate::catalog::{self, Catalog, SchemaDef};
use crate::error::{Result, user_error};
use crate::session::{CommandTag, QueryOutput, Session};
use crate::sql::ident_name;
use datafusion::sql::sqlparser::ast::{
    self, AlterTableOperation, ColumnOption, Ident, ObjectName, ObjectNamePart, ObjectType,
    SchemaName, Statement, TableAlias, TableConstraint, TableFactor, TableObject, VisitMut,
    VisitorMut,
};
use std::collections::HashSet;
use std::ops::ControlFlow;
use thunderdb_common::SqlState;

/// Schemas no user relation lives in: names qualified with them are left alone.
const SYSTEM_SCHEMAS: [&str; 4] = [
    "pg_catalog",
    "information_schema",
    crate::provider::SCRATCH_SCHEMA,
    crate::redis::sql::SCHEMA,
];

/// The schemas of a `search_path` value, `$user` replaced by `user`.
pub(crate) fn search_path(value: &str, user: &str) -> Vec<String> {
    value
        .split(',')
        .map(|s| {
            let s = s.trim();
            let unquoted = match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                Some(q) => q.replace("\"\"", "\""),
                None => s.to_lowercase(),
            };
            if unquoted == "$user" {
                user.to_string()
            } else {
                unquoted
            }
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// Whether `stmt` could need [`qualify`]: a non-default `search_path`, or a relation named
/// with a user schema. Checked without the catalog, so plain statements pay nothing.
pub(crate) fn needs_qualify(stmt: &mut Statement, path: &[String], user: &str) -> bool {
    let default = path.iter().all(|s| s == "public" || s == user);
    if !default {
        return true;
    }
    struct Qualified(bool);
    impl VisitorMut for Qualified {
        type Break = ();
        fn pre_visit_relation(&mut self, name: &mut ObjectName) -> ControlFlow<()> {
            if name.0.len() >= 2 {
                let schema = part(&name.0[name.0.len() - 2]);
                if schema != "public" && !SYSTEM_SCHEMAS.contains(&schema.as_str()) {
                    self.0 = true;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut q = Qualified(false);
    let _ = stmt.visit(&mut q);
    // DDL names are not all visited as relations; a dot in its (short) text is enough to look.
    q.0 || (!matches!(
        stmt,
        Statement::Query(_) | Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
    ) && stmt.to_string().contains('.'))
}

fn part(p: &ObjectNamePart) -> String {
    match p {
        ObjectNamePart::Identifier(i) => ident_name(i),
        other => other.to_string(),
    }
}

/// A relation key as SQL text: `schema.name` with each part quoted as needed.
pub(crate) fn quote_key(key: &str) -> String {
    use crate::pg_catalog::quote_ident;
    match catalog::split_relation_key(key) {
        ("public", bare) => quote_ident(bare),
        (schema, bare) => format!("{}.{}", quote_ident(schema), quote_ident(bare)),
    }
}

/// The key of the relation a text names (`'s'`, `'app.s'`, `'"S"'`, as `regclass` reads
/// it): qualified, or the first schema of `path` holding it (else `public`).
pub(crate) fn resolve_text_name(catalog: &Catalog, path: &[String], text: &str) -> String {
    let (schema, bare) = crate::pg_catalog::split_qualified(text);
    if let Some(schema) = schema {
        return catalog::relation_key(&schema, &bare);
    }
    path.iter()
        .filter(|s| catalog.schema_exists(s))
        .map(|s| catalog::relation_key(s, &bare))
        .find(|k| catalog.relation_exists(k))
        .unwrap_or(bare)
}

/// Resolves relation names against one catalog and search path.
pub(crate) struct Resolver<'a> {
    catalog: &'a Catalog,
    /// The schemas of `search_path` that exist, in order; the session's temporary schema
    /// first when it has one, as PostgreSQL looks there first.
    path: Vec<String>,
    /// The session's temporary schema (which `pg_temp` names).
    temp: String,
    ctes: HashSet<String>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(catalog: &'a Catalog, path: &[String], temp: &str) -> Self {
        Resolver {
            catalog,
            path: std::iter::once(temp.to_string())
                .chain(path.iter().filter(|s| *s != "pg_temp").cloned())
                .filter(|s| catalog.schema_exists(s))
                .collect(),
            temp: temp.to_string(),
            ctes: HashSet::new(),
        }
    }

    /// The schema and bare name a possibly qualified name writes, checking the schema exists
    /// when `must_exist`; `None` for system schemas.
    fn split(
        &self,
        name: &ObjectName,
        must_exist: bool,
    ) -> Result<Option<(Option<String>, String)>> {
        let parts = &name.0;
        let bare = match parts.last() {
            Some(p) => part(p),
            None => return Ok(None),
        };
        if parts.len() == 1 {
            return Ok(Some((None, bare)));
        }
        let mut schema = part(&parts[parts.len() - 2]);
        if SYSTEM_SCHEMAS.contains(&schema.as_str()) {
            return Ok(None);
        }
        if schema == "pg_temp" {
            schema = self.temp.clone();
        }
        if must_exist && !self.catalog.schema_exists(&schema) {
            return Err(user_error(
                SqlState::INVALID_SCHEMA_NAME,
                format!("schema \"{schema}\" does not exist"),
            ));
        }
        Ok(Some((Some(schema), bare)))
    }

    /// The key of the relation `name` refers to: the first schema of the path holding it, or
    /// (when none does) where the error should point.
    fn existing(&self, name: &ObjectName) -> Result<Option<String>> {
        // A name in a schema that does not exist is a relation that does not exist (42P01).
        let Some((schema, bare)) = self.split(name, false)? else {
            return Ok(None);
        };
        if let Some(schema) = schema {
            return Ok(Some(catalog::relation_key(&schema, &bare)));
        }
        if self.ctes.contains(&bare) {
            return Ok(None);
        }
        for schema in &self.path {
            let key = catalog::relation_key(schema, &bare);
            if self.catalog.relation_exists(&key) {
                return Ok(Some(key));
            }
        }
        // Not found: left as written (a function, a catalog table, or a 42P01 to come).
        Ok(None)
    }

    /// The key a new relation called `name` gets: its schema, or the first of the path.
    fn creation(&self, name: &ObjectName) -> Result<Option<String>> {
        let Some((schema, bare)) = self.split(name, true)? else {
            return Err(user_error(
                SqlState::INSUFFICIENT_PRIVILEGE,
                format!("permission denied to create \"{name}\""),
            ));
        };
        if bare.contains('.') {
            return Err(user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("relation names containing \".\" are not supported: \"{bare}\""),
            ));
        }
        let schema = match schema {
            Some(s) => s,
            // Only temporary tables go to the temporary schema.
            None => self
                .path
                .iter()
                .find(|s| **s != self.temp)
                .cloned()
                .ok_or_else(|| {
                    user_error(
                        SqlState::INVALID_SCHEMA_NAME,
                        "no schema has been selected to create in",
                    )
                })?,
        };
        Ok(Some(catalog::relation_key(&schema, &bare)))
    }
}

fn temp_in_schema() -> thunderdb_common::ThunderError {
    user_error(
        SqlState("42P16"),
        "cannot create temporary relation in non-temporary schema",
    )
}

/// Readies the session's temporary schema for a new temporary table `key` (made in the same
/// transaction when this is its first).
pub(crate) async fn prepare_temp_table(
    s: &mut Session,
    env: &crate::provider::StatementEnv,
    key: &str,
) -> Result<()> {
    let (schema, _) = catalog::split_relation_key(key);
    if !schema.starts_with("pg_temp_") {
        // MySQL sessions do not resolve names through a temporary schema.
        return Err(user_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            "temporary tables are supported over the PostgreSQL protocol only",
        ));
    }
    if !env.catalog.schema_exists(schema) {
        catalog::put_schema(
            &env.view,
            &SchemaDef {
                oid: crate::pg_catalog::relation_oid(catalog::allocate_table_id(&env.view).await?),
                name: schema.to_string(),
                owner: s.user.clone(),
            },
        )?;
    }
    Ok(())
}

fn key_name(key: &str) -> ObjectName {
    ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote(
        '"', key,
    ))])
}

fn rename_existing(r: &Resolver, name: &mut ObjectName) -> Result<()> {
    if let Some(key) = r.existing(name)? {
        *name = key_name(&key);
    }
    Ok(())
}

fn rename_new(r: &Resolver, name: &mut ObjectName) -> Result<()> {
    if let Some(key) = r.creation(name)? {
        *name = key_name(&key);
    }
    Ok(())
}

/// Rewrites the relation names of `stmt` to catalog keys.
pub(crate) fn qualify(stmt: &mut Statement, resolver: &mut Resolver) -> Result<()> {
    resolver.ctes = crate::pg_catalog::cte_names(stmt).into_iter().collect();
    match stmt {
        Statement::CreateTable(ct) if ct.temporary => {
            let Some((schema, bare)) = resolver.split(&ct.name, false)? else {
                return Err(temp_in_schema());
            };
            if schema.is_some_and(|s| s != resolver.temp) {
                return Err(temp_in_schema());
            }
            ct.name = key_name(&catalog::relation_key(&resolver.temp, &bare));
        }
        Statement::CreateTable(ct) => {
            rename_new(resolver, &mut ct.name)?;
            for c in &mut ct.columns {
                for o in &mut c.options {
                    if let ColumnOption::ForeignKey(fk) = &mut o.option {
                        rename_existing(resolver, &mut fk.foreign_table)?;
                    }
                }
            }
            for c in &mut ct.constraints {
                if let TableConstraint::ForeignKey(fk) = c {
                    rename_existing(resolver, &mut fk.foreign_table)?;
                }
            }
        }
        Statement::CreateView(cv) => rename_new(resolver, &mut cv.name)?,
        Statement::CreateType { name, .. } => rename_new(resolver, name)?,
        Statement::CreateSequence { name, owned_by, .. } => {
            rename_new(resolver, name)?;
            if let Some(owner) = owned_by
                && owner.0.len() >= 2
            {
                // OWNED BY table.column: qualify the table part.
                let column = owner.0.pop();
                rename_existing(resolver, owner)?;
                owner.0.extend(column);
            }
        }
        Statement::CreateIndex(ci) => {
            rename_existing(resolver, &mut ci.table_name)?;
            // An index lives in its table's schema.
            let key = part(ci.table_name.0.last().expect("a name"));
            if let Some(name) = &mut ci.name {
                let bare = part(name.0.last().expect("a name"));
                let (schema, _) = catalog::split_relation_key(&key);
                *name = key_name(&catalog::relation_key(schema, &bare));
            }
        }
        Statement::AlterTable(alter) => {
            rename_existing(resolver, &mut alter.name)?;
            let key = part(alter.name.0.last().expect("a name"));
            for op in &mut alter.operations {
                match op {
                    AlterTableOperation::RenameTable { table_name } => {
                        // The new name stays in the table's schema.
                        let new_bare = match table_name {
                            ast::RenameTableNameKind::As(n) | ast::RenameTableNameKind::To(n) => n,
                        };
                        let bare = part(new_bare.0.last().expect("a name"));
                        let (schema, _) = catalog::split_relation_key(&key);
                        *new_bare = key_name(&catalog::relation_key(schema, &bare));
                    }
                    AlterTableOperation::AddConstraint {
                        constraint: TableConstraint::ForeignKey(fk),
                        ..
                    } => rename_existing(resolver, &mut fk.foreign_table)?,
                    _ => {}
                }
            }
        }
        Statement::Drop {
            object_type: ObjectType::Table | ObjectType::View | ObjectType::Sequence,
            names,
            ..
        } => {
            for n in names {
                rename_existing(resolver, n)?;
            }
        }
        Statement::Truncate(t) => {
            for target in &mut t.table_names {
                rename_existing(resolver, &mut target.name)?;
            }
        }
        Statement::Insert(insert) => {
            if let TableObject::TableName(name) = &mut insert.table {
                rename_existing(resolver, name)?;
            }
        }
        Statement::Copy {
            source: ast::CopySource::Table { table_name, .. },
            ..
        } => rename_existing(resolver, table_name)?,
        Statement::Explain { statement, .. } => return qualify(statement, resolver),
        _ => {}
    }
    qualify_table_factors(stmt, resolver)
}

/// Every `FROM`/`JOIN`/`UPDATE`/`DELETE` table of the statement, sub-queries included.
fn qualify_table_factors(stmt: &mut Statement, resolver: &Resolver) -> Result<()> {
    struct Factors<'r, 'a> {
        resolver: &'r Resolver<'a>,
        error: Option<thunderdb_common::ThunderError>,
    }
    impl VisitorMut for Factors<'_, '_> {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table { name, alias, .. } = factor {
                let written = part(name.0.last().expect("a name"));
                match self.resolver.existing(name) {
                    Ok(Some(key)) if key != written || name.0.len() > 1 => {
                        *name = key_name(&key);
                        if alias.is_none() {
                            *alias = Some(TableAlias {
                                explicit: true,
                                name: Ident::with_quote('"', written),
                                columns: vec![],
                                at: None,
                            });
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.error = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut v = Factors {
        resolver,
        error: None,
    };
    let _ = stmt.visit(&mut v);
    match v.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `CREATE SCHEMA [IF NOT EXISTS] name [AUTHORIZATION role]`.
pub(crate) async fn create_schema(
    s: &mut Session,
    schema_name: &SchemaName,
    if_not_exists: bool,
) -> Result<QueryOutput> {
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    let (name, owner) = match schema_name {
        SchemaName::Simple(n) => (ident_of(n)?, s.user.clone()),
        SchemaName::UnnamedAuthorization(role) => (ident_name(role), ident_name(role)),
        SchemaName::NamedAuthorization(n, role) => (ident_of(n)?, ident_name(role)),
    };
    if name.starts_with("pg_") {
        return Err(user_error(
            SqlState::RESERVED_NAME,
            format!("unacceptable schema name \"{name}\""),
        )
        .with_detail("The prefix \"pg_\" is reserved for system schemas."));
    }
    if name.contains('.') {
        return Err(user_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            format!("schema names containing \".\" are not supported: \"{name}\""),
        ));
    }
    if crate::roles::find_role(s, &env.catalog, &owner).is_none() {
        return Err(user_error(
            SqlState::UNDEFINED_OBJECT,
            format!("role \"{owner}\" does not exist"),
        ));
    }
    env.view.depend_on_key(catalog::schema_key(&name));
    if env.catalog.schema_exists(&name) || SYSTEM_SCHEMAS.contains(&name.as_str()) {
        if if_not_exists {
            return Ok(QueryOutput::Command(CommandTag::new("CREATE SCHEMA")));
        }
        return Err(user_error(
            SqlState::DUPLICATE_SCHEMA,
            format!("schema \"{name}\" already exists"),
        ));
    }
    let oid = crate::pg_catalog::relation_oid(catalog::allocate_table_id(&env.view).await?);
    catalog::put_schema(&env.view, &SchemaDef { oid, name, owner })?;
    Ok(QueryOutput::Command(CommandTag::new("CREATE SCHEMA")))
}

fn ident_of(n: &ObjectName) -> Result<String> {
    match n.0.as_slice() {
        [p] => Ok(part(p)),
        _ => Err(user_error(
            SqlState::SYNTAX_ERROR,
            format!("syntax error: a schema name cannot be qualified: {n}"),
        )),
    }
}

/// `DROP SCHEMA [IF EXISTS] name [, …] [CASCADE | RESTRICT]`.
pub(crate) async fn drop_schemas(
    s: &mut Session,
    names: &[ObjectName],
    if_exists: bool,
    cascade: bool,
) -> Result<QueryOutput> {
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    for n in names {
        let name = ident_of(n)?;
        if name == "public" || SYSTEM_SCHEMAS.contains(&name.as_str()) {
            return Err(user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("cannot drop schema {name} because it is required by the database system"),
            ));
        }
        env.view.depend_on_key(catalog::schema_key(&name));
        if !env.catalog.schemas.contains_key(&name) {
            if if_exists {
                continue;
            }
            return Err(user_error(
                SqlState::INVALID_SCHEMA_NAME,
                format!("schema \"{name}\" does not exist"),
            ));
        }
        let prefix = format!("{name}.");
        let inside = |k: &String| k.starts_with(&prefix);
        fn keys_in<T>(
            map: &std::collections::BTreeMap<String, T>,
            inside: impl Fn(&String) -> bool,
        ) -> Vec<String> {
            map.keys().filter(|k| inside(k)).cloned().collect()
        }
        let tables = keys_in(&env.catalog.tables, inside);
        let views = keys_in(&env.catalog.views, inside);
        let sequences = keys_in(&env.catalog.sequences, inside);
        let contents = tables.len() + views.len() + sequences.len();
        if contents > 0 && !cascade {
            return Err(user_error(
                SqlState("2BP01"),
                format!("cannot drop schema {name} because other objects depend on it"),
            )
            .with_detail("Use DROP ... CASCADE to drop the dependent objects too."));
        }
        // A table elsewhere referencing one of these keeps its rows valid only if it goes too.
        if let Some((child, _)) = env.catalog.tables.iter().find(|(k, t)| {
            !inside(k)
                && t.foreign_keys
                    .iter()
                    .any(|fk| fk.ref_table.starts_with(&prefix))
        }) {
            return Err(user_error(
                SqlState("2BP01"),
                format!("cannot drop schema {name} because table {child} depends on it"),
            ));
        }
        for v in &views {
            catalog::delete_view(&env.view, v);
        }
        for seq in &sequences {
            catalog::delete_sequence(&env.view, seq);
        }
        for t in &tables {
            match env.catalog.tables.get(t) {
                Some(def) => catalog::drop_table(&env.view, def),
                None => catalog::delete_table(&env.view, t),
            }
            env.view.depend_on_table(t);
        }
        for ty in keys_in(&env.catalog.types, inside) {
            catalog::delete_type(&env.view, &ty);
        }
        catalog::delete_schema(&env.view, &name);
    }
    Ok(QueryOutput::Command(CommandTag::new("DROP SCHEMA")))
}

#[cfg(test)]
mod tests {
    use super::search_path;

    #[test]
    fn search_path_values() {
        assert_eq!(search_path("\"$user\", public", "bob"), ["bob", "public"]);
        assert_eq!(search_path("S1,  \"Mixed\"", "u"), ["s1", "Mixed"]);
        assert_eq!(search_path("", "u"), Vec::<String>::new());
    }
}
