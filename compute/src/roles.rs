//! Roles: `CREATE ROLE | USER`, `ALTER ROLE | USER`, `DROP ROLE | USER`. A role is a catalog
//! entry like a table's, so role changes are transactional WAL records; its password is kept
//! only in PostgreSQL's stored forms (a SCRAM-SHA-256 verifier or an MD5 hash, as
//! `password_encryption` says) plus MySQL's `mysql_native_password` hash, so that the
//! PostgreSQL, MySQL and RESP frontends can all check it.
//!
//! The superuser named in the configuration (the bootstrap superuser, OID 10) exists without a
//! catalog entry; `ALTER ROLE` on it writes one, which then takes precedence.

use crate::catalog::{self, RoleDef};
use crate::error::{Result, user_error};
use crate::session::{CommandTag, QueryOutput, Session};
use crate::sql::ident_name;
use datafusion::arrow::array::{Array, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::sql::sqlparser::ast::{
    AlterRoleOperation, CreateRole, Expr, Ident, ObjectName, Password, RoleOption, Value,
};
use thunderdb_common::password::{Encryption, Secret, mysql_native_hash};
use thunderdb_common::{SqlState, ThunderError};

/// The OID of the bootstrap superuser, as in PostgreSQL.
pub const BOOTSTRAP_SUPERUSER_OID: i64 = 10;

fn role_error(state: SqlState, message: String) -> ThunderError {
    user_error(state, message)
}

fn does_not_exist(name: &str) -> ThunderError {
    role_error(
        SqlState::UNDEFINED_OBJECT,
        format!("role \"{name}\" does not exist"),
    )
}

fn permission_denied(message: &str) -> ThunderError {
    role_error(SqlState::INSUFFICIENT_PRIVILEGE, message.to_string())
}

/// PostgreSQL reserves `public`, `none` and names starting with `pg_`.
fn check_reserved(name: &str) -> Result<()> {
    if name == "public" || name == "none" || name.starts_with("pg_") {
        return Err(role_error(
            SqlState::RESERVED_NAME,
            format!("role name \"{name}\" is reserved"),
        ));
    }
    Ok(())
}

/// The bootstrap superuser as a role definition (no stored password: the proxy checks the
/// configured one).
pub(crate) fn bootstrap_role(name: &str) -> RoleDef {
    RoleDef {
        oid: BOOTSTRAP_SUPERUSER_OID,
        name: name.to_string(),
        superuser: true,
        inherit: true,
        create_role: true,
        create_db: true,
        login: true,
        replication: true,
        bypass_rls: true,
        connection_limit: -1,
        valid_until: None,
        password: None,
        mysql_native: None,
    }
}

/// The role called `name` in `catalog`, the bootstrap superuser included.
pub(crate) fn find_role(s: &Session, catalog: &catalog::Catalog, name: &str) -> Option<RoleDef> {
    crate::privileges::role_named(catalog, s.engine.superuser(), name)
}

/// `CREATE ROLE` (and `CREATE USER`, which is `CREATE ROLE … LOGIN`).
pub(crate) async fn create_role(s: &mut Session, cr: CreateRole) -> Result<QueryOutput> {
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    let me = current_role(s, &env.catalog)?;
    if !(me.superuser || me.create_role) {
        return Err(permission_denied("permission denied to create role"));
    }
    if cr.if_not_exists {
        // PostgreSQL's grammar has no CREATE ROLE IF NOT EXISTS.
        return Err(role_error(
            SqlState::SYNTAX_ERROR,
            "syntax error at or near \"NOT\"".into(),
        ));
    }
    if !(cr.in_role.is_empty()
        && cr.in_group.is_empty()
        && cr.role.is_empty()
        && cr.user.is_empty()
        && cr.admin.is_empty())
    {
        return Err(role_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            "role membership (IN ROLE, ROLE, ADMIN) is not supported yet".into(),
        ));
    }
    for name in &cr.names {
        let name = role_name(name)?;
        check_reserved(&name)?;
        env.view.depend_on_key(catalog::role_key(&name));
        if find_role(s, &env.catalog, &name).is_some() {
            return Err(role_error(
                SqlState::DUPLICATE_OBJECT,
                format!("role \"{name}\" already exists"),
            ));
        }
        let mut options = Vec::new();
        let flags = [
            (cr.login, RoleOption::Login as fn(bool) -> RoleOption),
            (cr.inherit, RoleOption::Inherit),
            (cr.bypassrls, RoleOption::BypassRLS),
            (cr.superuser, RoleOption::SuperUser),
            (cr.create_db, RoleOption::CreateDB),
            (cr.create_role, RoleOption::CreateRole),
            (cr.replication, RoleOption::Replication),
        ];
        for (value, option) in flags {
            if let Some(v) = value {
                options.push(option(v));
            }
        }
        if let Some(p) = &cr.password {
            options.push(RoleOption::Password(p.clone()));
        }
        if let Some(e) = &cr.connection_limit {
            options.push(RoleOption::ConnectionLimit(e.clone()));
        }
        if let Some(e) = &cr.valid_until {
            options.push(RoleOption::ValidUntil(e.clone()));
        }
        let oid = crate::pg_catalog::relation_oid(catalog::allocate_table_id(&env.view).await?);
        let mut role = RoleDef {
            oid,
            name: name.clone(),
            superuser: false,
            inherit: true,
            create_role: false,
            create_db: false,
            login: false,
            replication: false,
            bypass_rls: false,
            connection_limit: -1,
            valid_until: None,
            password: None,
            mysql_native: None,
        };
        apply_options(s, &me, &mut role, &options).await?;
        catalog::put_role(&env.view, &role)?;
    }
    Ok(QueryOutput::Command(CommandTag::new("CREATE ROLE")))
}

/// `ALTER ROLE` (and `ALTER USER`).
pub(crate) async fn alter_role(
    s: &mut Session,
    name: &Ident,
    operation: AlterRoleOperation,
) -> Result<QueryOutput> {
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    let name = ident_name(name);
    let me = current_role(s, &env.catalog)?;
    env.view.depend_on_key(catalog::role_key(&name));
    let mut role = find_role(s, &env.catalog, &name).ok_or_else(|| does_not_exist(&name))?;
    let done = Ok(QueryOutput::Command(CommandTag::new("ALTER ROLE")));
    match operation {
        AlterRoleOperation::WithOptions { options } => {
            let only_own_password =
                name == me.name && options.iter().all(|o| matches!(o, RoleOption::Password(_)));
            if !(me.superuser || me.create_role || only_own_password) {
                return Err(permission_denied("permission denied to alter role"));
            }
            if role.superuser && !me.superuser {
                return Err(permission_denied(
                    "must be superuser to alter superuser roles or change superuser attribute",
                ));
            }
            apply_options(s, &me, &mut role, &options).await?;
            if role.oid == BOOTSTRAP_SUPERUSER_OID && !role.superuser {
                return Err(permission_denied(
                    "permission denied: bootstrap user must be superuser",
                ));
            }
            catalog::put_role(&env.view, &role)?;
            done
        }
        AlterRoleOperation::RenameRole { role_name } => {
            let new_name = ident_name(&role_name);
            let may_rename = me.superuser || (me.create_role && !role.superuser);
            if !may_rename {
                return Err(permission_denied("permission denied to rename role"));
            }
            if name == me.name || name == s.user {
                return Err(role_error(
                    SqlState::FEATURE_NOT_SUPPORTED,
                    "session user cannot be renamed".into(),
                ));
            }
            if role.oid == BOOTSTRAP_SUPERUSER_OID {
                return Err(role_error(
                    SqlState::FEATURE_NOT_SUPPORTED,
                    "the bootstrap superuser is named in the configuration and cannot be renamed"
                        .into(),
                ));
            }
            check_reserved(&new_name)?;
            env.view.depend_on_key(catalog::role_key(&new_name));
            if find_role(s, &env.catalog, &new_name).is_some() {
                return Err(role_error(
                    SqlState::DUPLICATE_OBJECT,
                    format!("role \"{new_name}\" already exists"),
                ));
            }
            catalog::delete_role(&env.view, &name);
            // An MD5 hash is salted with the role's name, so it cannot survive a rename.
            if matches!(role.secret(), Some(Secret::Md5(_))) {
                role.password = None;
            }
            role.name = new_name;
            catalog::put_role(&env.view, &role)?;
            done
        }
        _ => Err(role_error(
            SqlState::FEATURE_NOT_SUPPORTED,
            "per-role settings (ALTER ROLE … SET/RESET) are not supported yet".into(),
        )),
    }
}

/// `DROP ROLE` (and `DROP USER`).
pub(crate) async fn drop_roles(
    s: &mut Session,
    if_exists: bool,
    names: &[ObjectName],
) -> Result<QueryOutput> {
    let (env, _) = s.statement_env(None).await?;
    s.use_env(&env);
    let me = current_role(s, &env.catalog)?;
    if !(me.superuser || me.create_role) {
        return Err(permission_denied("permission denied to drop role"));
    }
    for name in names {
        let name = role_name(name)?;
        env.view.depend_on_key(catalog::role_key(&name));
        let Some(role) = find_role(s, &env.catalog, &name) else {
            if if_exists {
                continue;
            }
            return Err(does_not_exist(&name));
        };
        if name == s.user {
            return Err(role_error(
                SqlState::OBJECT_IN_USE,
                "current user cannot be dropped".into(),
            ));
        }
        if role.oid == BOOTSTRAP_SUPERUSER_OID {
            return Err(role_error(
                SqlState::OBJECT_IN_USE,
                format!("cannot drop role {name} because it is required by the database system"),
            ));
        }
        if role.superuser && !me.superuser {
            return Err(permission_denied("must be superuser to drop superusers"));
        }
        let dependents = crate::privileges::dependents(&env.catalog, role.oid);
        if !dependents.is_empty() {
            return Err(role_error(
                SqlState("2BP01"),
                format!("role \"{name}\" cannot be dropped because some objects depend on it"),
            )
            .with_detail(dependents.join("\n")));
        }
        catalog::delete_role(&env.view, &name);
    }
    Ok(QueryOutput::Command(CommandTag::new("DROP ROLE")))
}

/// The role the session runs as.
fn current_role(s: &Session, catalog: &catalog::Catalog) -> Result<RoleDef> {
    find_role(s, catalog, &s.user).ok_or_else(|| does_not_exist(&s.user))
}

fn role_name(name: &ObjectName) -> Result<String> {
    match name.0.as_slice() {
        [part] => Ok(part
            .as_ident()
            .map(ident_name)
            .unwrap_or_else(|| part.to_string())),
        _ => Err(role_error(
            SqlState::SYNTAX_ERROR,
            format!("syntax error: a role name cannot be qualified: {name}"),
        )),
    }
}

/// A string constant: what PostgreSQL's grammar takes for PASSWORD and VALID UNTIL.
fn string_constant<'a>(e: &'a Expr, what: &str) -> Result<&'a str> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::NationalStringLiteral(s) => Ok(s),
            Value::DollarQuotedString(d) => Ok(&d.value),
            _ => Err(role_error(
                SqlState::SYNTAX_ERROR,
                format!("syntax error: {what} must be a string constant"),
            )),
        },
        _ => Err(role_error(
            SqlState::SYNTAX_ERROR,
            format!("syntax error: {what} must be a string constant"),
        )),
    }
}

async fn apply_options(
    s: &Session,
    me: &RoleDef,
    role: &mut RoleDef,
    options: &[RoleOption],
) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for o in options {
        if !seen.insert(std::mem::discriminant(o)) {
            return Err(role_error(
                SqlState::SYNTAX_ERROR,
                "conflicting or redundant options".into(),
            ));
        }
        match o {
            RoleOption::SuperUser(_) | RoleOption::Replication(_) | RoleOption::BypassRLS(_)
                if !me.superuser =>
            {
                return Err(permission_denied(
                    "must be superuser to change the SUPERUSER, REPLICATION or BYPASSRLS \
                     attribute",
                ));
            }
            RoleOption::SuperUser(v) => role.superuser = *v,
            RoleOption::Replication(v) => role.replication = *v,
            RoleOption::BypassRLS(v) => role.bypass_rls = *v,
            RoleOption::Login(v) => role.login = *v,
            RoleOption::Inherit(v) => role.inherit = *v,
            RoleOption::CreateDB(v) => role.create_db = *v,
            RoleOption::CreateRole(v) => role.create_role = *v,
            RoleOption::ConnectionLimit(e) => {
                let n = crate::sequence_sql::option_number(e, "CONNECTION LIMIT")?;
                role.connection_limit =
                    i32::try_from(n).ok().filter(|n| *n >= -1).ok_or_else(|| {
                        role_error(
                            SqlState::INVALID_PARAMETER_VALUE,
                            format!("invalid connection limit: {n}"),
                        )
                    })?;
            }
            RoleOption::ValidUntil(e) => {
                let text = string_constant(e, "VALID UNTIL")?;
                role.valid_until = valid_until(s, text).await?;
            }
            RoleOption::Password(Password::NullPassword) => {
                role.password = None;
                role.mysql_native = None;
            }
            RoleOption::Password(Password::Password(e)) => {
                let text = string_constant(e, "PASSWORD")?;
                // PostgreSQL: "empty string is not a valid password, clearing password".
                if text.is_empty() {
                    role.password = None;
                    role.mysql_native = None;
                    continue;
                }
                let encryption = s
                    .parameter("password_encryption")
                    .and_then(|v| Encryption::parse(&v))
                    .unwrap_or(Encryption::ScramSha256);
                let secret = Secret::new(&role.name, text, encryption);
                // A password given in a stored form has no cleartext to hash for MySQL.
                role.mysql_native = Secret::parse(text)
                    .is_none()
                    .then(|| mysql_native_hash(text));
                role.password = Some(secret.to_text());
            }
        }
    }
    Ok(())
}

/// `VALID UNTIL 'timestamp'` as microseconds since the epoch; `infinity` is no limit.
async fn valid_until(s: &Session, text: &str) -> Result<Option<i64>> {
    if text.trim().eq_ignore_ascii_case("infinity") {
        return Ok(None);
    }
    let literal = text.replace('\'', "''");
    let plan = s
        .plan_sql(&format!("SELECT CAST('{literal}' AS timestamptz)"), &[])
        .await?;
    let (_, batches) = s.collect(plan).await?;
    let micros = DataType::Timestamp(TimeUnit::Microsecond, Some(crate::types::UTC.into()));
    let value = match batches.first() {
        Some(b) if b.num_rows() == 1 => {
            let column =
                cast(b.column(0), &micros).map_err(|e| ThunderError::internal(e.to_string()))?;
            column
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .filter(|a| !a.is_null(0))
                .map(|a| a.value(0))
        }
        _ => None,
    };
    value.map(Some).ok_or_else(|| {
        role_error(
            SqlState::INVALID_DATETIME_FORMAT,
            format!("invalid input syntax for type timestamp with time zone: \"{text}\""),
        )
    })
}
