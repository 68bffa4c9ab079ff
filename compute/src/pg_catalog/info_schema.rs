//! `information_schema`: the SQL-standard views over the same catalog as `pg_catalog`, with
//! PostgreSQL's column lists and values (type names as `format_type` spells them without
//! modifiers, `YES`/`NO`, constraint names and rules).

use super::model::{self as m, CatalogView, Relation};
use super::tables::{N, TableSpec, V, i, t};
use super::types as ty;
use crate::catalog::{FkAction, TableDef, split_relation_key};
use thunderdb_common::SqlType;

fn yes_no(b: bool) -> V {
    t(if b { "YES" } else { "NO" })
}

/// The views, in the order PostgreSQL lists them.
pub const INFO_TABLES: &[TableSpec] = &[
    TableSpec {
        name: "schemata",
        oid: 13300,
        view: true,
        rows: schemata,
        columns: "catalog_name name, schema_name name, schema_owner name, \
                  default_character_set_catalog name, default_character_set_schema name, \
                  default_character_set_name name, sql_path text",
    },
    TableSpec {
        name: "tables",
        oid: 13301,
        view: true,
        rows: tables,
        columns: "table_catalog name, table_schema name, table_name name, table_type text, \
                  self_referencing_column_name name, reference_generation text, \
                  user_defined_type_catalog name, user_defined_type_schema name, \
                  user_defined_type_name name, is_insertable_into text, is_typed text, \
                  commit_action text",
    },
    TableSpec {
        name: "columns",
        oid: 13302,
        view: true,
        rows: columns,
        columns: "table_catalog name, table_schema name, table_name name, column_name name, \
                  ordinal_position int4, column_default text, is_nullable text, data_type text, \
                  character_maximum_length int4, character_octet_length int4, \
                  numeric_precision int4, numeric_precision_radix int4, numeric_scale int4, \
                  datetime_precision int4, interval_type text, interval_precision int4, \
                  character_set_catalog name, character_set_schema name, \
                  character_set_name name, collation_catalog name, collation_schema name, \
                  collation_name name, domain_catalog name, domain_schema name, \
                  domain_name name, udt_catalog name, udt_schema name, udt_name name, \
                  scope_catalog name, scope_schema name, scope_name name, \
                  maximum_cardinality int4, dtd_identifier name, is_self_referencing text, \
                  is_identity text, identity_generation text, identity_start text, \
                  identity_increment text, identity_maximum text, identity_minimum text, \
                  identity_cycle text, is_generated text, generation_expression text, \
                  is_updatable text",
    },
    TableSpec {
        name: "views",
        oid: 13303,
        view: true,
        rows: views,
        columns: "table_catalog name, table_schema name, table_name name, view_definition text, \
                  check_option text, is_updatable text, is_insertable_into text, \
                  is_trigger_updatable text, is_trigger_deletable text, \
                  is_trigger_insertable_into text",
    },
    TableSpec {
        name: "table_constraints",
        oid: 13304,
        view: true,
        rows: table_constraints,
        columns: "constraint_catalog name, constraint_schema name, constraint_name name, \
                  table_catalog name, table_schema name, table_name name, constraint_type text, \
                  is_deferrable text, initially_deferred text, enforced text, \
                  nulls_distinct text",
    },
    TableSpec {
        name: "key_column_usage",
        oid: 13305,
        view: true,
        rows: key_column_usage,
        columns: "constraint_catalog name, constraint_schema name, constraint_name name, \
                  table_catalog name, table_schema name, table_name name, column_name name, \
                  ordinal_position int4, position_in_unique_constraint int4",
    },
    TableSpec {
        name: "referential_constraints",
        oid: 13306,
        view: true,
        rows: referential_constraints,
        columns: "constraint_catalog name, constraint_schema name, constraint_name name, \
                  unique_constraint_catalog name, unique_constraint_schema name, \
                  unique_constraint_name name, match_option text, update_rule text, \
                  delete_rule text",
    },
    TableSpec {
        name: "constraint_column_usage",
        oid: 13307,
        view: true,
        rows: constraint_column_usage,
        columns: "table_catalog name, table_schema name, table_name name, column_name name, \
                  constraint_catalog name, constraint_schema name, constraint_name name",
    },
    TableSpec {
        name: "check_constraints",
        oid: 13308,
        view: true,
        rows: check_constraints,
        columns: "constraint_catalog name, constraint_schema name, constraint_name name, \
                  check_clause text",
    },
    TableSpec {
        name: "sequences",
        oid: 13309,
        view: true,
        rows: sequences,
        columns: "sequence_catalog name, sequence_schema name, sequence_name name, \
                  data_type text, numeric_precision int4, numeric_precision_radix int4, \
                  numeric_scale int4, start_value text, minimum_value text, \
                  maximum_value text, increment text, cycle_option text",
    },
];

fn schemata(v: &CatalogView) -> Vec<Vec<V>> {
    v.namespaces
        .iter()
        .map(|(oid, name)| {
            let owner = match v.catalog.schemas.get(name) {
                Some(s) => s.owner.clone(),
                None if *oid == m::PUBLIC_NAMESPACE => m::DATABASE_OWNER_ROLE.to_string(),
                None => v
                    .role_name(m::SUPERUSER_OID)
                    .unwrap_or_default()
                    .to_string(),
            };
            vec![t(v.database.clone()), t(name.clone()), t(owner), N, N, N, N]
        })
        .collect()
}

fn tables(v: &CatalogView) -> Vec<Vec<V>> {
    let mut out = Vec::new();
    for (_, rel) in &v.relations {
        let (kind, key, insertable) = match rel {
            Relation::Table(def) if split_relation_key(&def.name).0.starts_with("pg_temp_") => {
                ("LOCAL TEMPORARY", def.name.as_str(), true)
            }
            Relation::Table(def) => ("BASE TABLE", def.name.as_str(), true),
            Relation::View(view) => ("VIEW", view.name.as_str(), false),
            _ => continue,
        };
        let (schema, name) = split_relation_key(key);
        out.push(vec![
            t(v.database.clone()),
            t(schema),
            t(name),
            t(kind),
            N,
            N,
            N,
            N,
            N,
            yes_no(insertable),
            t("NO"),
            N,
        ]);
    }
    for spec in super::tables::TABLES {
        out.push(vec![
            t(v.database.clone()),
            t("pg_catalog"),
            t(spec.name),
            t(if spec.view { "VIEW" } else { "BASE TABLE" }),
            N,
            N,
            N,
            N,
            N,
            yes_no(!spec.view),
            t("NO"),
            N,
        ]);
    }
    out
}

/// The information_schema facts of a column type: data_type, character_maximum_length,
/// character_octet_length, numeric_precision, numeric_precision_radix, numeric_scale,
/// datetime_precision, udt_name.
fn type_facts(ty: &SqlType) -> [V; 8] {
    let (oid, _) = ty::column_type(ty);
    let data_type = if matches!(ty, SqlType::Array(_)) {
        t("ARRAY".to_string())
    } else {
        t(ty::format_type(oid, None))
    };
    let udt = t(match ty {
        SqlType::Array(element) => {
            format!(
                "_{}",
                ty::type_name(ty::column_type(element).0).unwrap_or_default()
            )
        }
        _ => ty::type_name(oid).unwrap_or_default().to_string(),
    });
    let int = |bits: i64| [i(bits), i(2), i(0)];
    let (chars, numeric, datetime) = match ty {
        SqlType::Varchar(Some(n)) | SqlType::Char(n) => {
            let n = i64::from(*n);
            ([i(n), i(n * 4)], [N, N, N], N)
        }
        SqlType::Varchar(None) | SqlType::Text => ([N, i(1_073_741_824)], [N, N, N], N),
        SqlType::Int16 => ([N, N], int(16), N),
        SqlType::Int32 => ([N, N], int(32), N),
        SqlType::Int64 => ([N, N], int(64), N),
        SqlType::Float32 => ([N, N], [i(24), i(2), N], N),
        SqlType::Float64 => ([N, N], [i(53), i(2), N], N),
        SqlType::Numeric { precision, scale } => {
            let (_, typmod) = ty::column_type(ty);
            if typmod < 0 {
                ([N, N], [N, i(10), N], N)
            } else {
                (
                    [N, N],
                    [i(i64::from(*precision)), i(10), i(i64::from(*scale))],
                    N,
                )
            }
        }
        SqlType::Date => ([N, N], [N, N, N], i(0)),
        SqlType::Time | SqlType::Timestamp | SqlType::TimestampTz | SqlType::Interval => {
            ([N, N], [N, N, N], i(6))
        }
        _ => ([N, N], [N, N, N], N),
    };
    let [max_len, octets] = chars;
    let [precision, radix, scale] = numeric;
    [
        data_type, max_len, octets, precision, radix, scale, datetime, udt,
    ]
}

/// One `information_schema.columns` row: `facts` as [`type_facts`] gives them.
struct ColumnRow<'a> {
    schema: &'a str,
    table: &'a str,
    column: &'a str,
    position: usize,
    default: V,
    nullable: bool,
    facts: [V; 8],
    updatable: bool,
}

impl ColumnRow<'_> {
    fn cells(self, v: &CatalogView) -> Vec<V> {
        let [
            data_type,
            max_len,
            octets,
            precision,
            radix,
            scale,
            datetime,
            udt,
        ] = self.facts;
        let mut row = vec![
            t(v.database.clone()),
            t(self.schema),
            t(self.table),
            t(self.column),
            i(self.position as i64 + 1),
            self.default,
            yes_no(self.nullable),
            data_type,
            max_len,
            octets,
            precision,
            radix,
            scale,
            datetime,
            N,
            N,
        ];
        // character set, collation and domain: catalog, schema, name each.
        row.extend([N, N, N, N, N, N, N, N, N]);
        row.extend([t(v.database.clone()), t("pg_catalog"), udt]);
        // scope catalog/schema/name, maximum_cardinality.
        row.extend([N, N, N, N]);
        row.push(t((self.position + 1).to_string()));
        row.extend([t("NO"), t("NO"), N, N, N, N, N, t("NO"), t("NEVER"), N]);
        row.push(yes_no(self.updatable));
        row
    }
}

fn columns(v: &CatalogView) -> Vec<Vec<V>> {
    let mut out = Vec::new();
    for (_, rel) in &v.relations {
        let Relation::Table(def) = rel else {
            continue;
        };
        let (schema, table) = split_relation_key(&def.name);
        for (position, c) in def.columns.iter().enumerate() {
            let row = ColumnRow {
                schema,
                table,
                column: &c.name,
                position,
                default: c.default.clone().map_or(N, t),
                nullable: !c.not_null,
                facts: type_facts(&c.ty),
                updatable: true,
            };
            out.push(row.cells(v));
        }
    }
    for (_, rel) in &v.relations {
        let Relation::View(view) = rel else {
            continue;
        };
        let (schema, table) = split_relation_key(&view.name);
        for (position, (column, type_oid)) in view.columns.iter().enumerate() {
            let row = ColumnRow {
                schema,
                table,
                column,
                position,
                default: N,
                nullable: true,
                facts: [
                    t(ty::format_type(*type_oid, None)),
                    N,
                    N,
                    N,
                    N,
                    N,
                    N,
                    t(ty::type_name(*type_oid).unwrap_or_default()),
                ],
                updatable: false,
            };
            out.push(row.cells(v));
        }
    }
    out
}

fn views(v: &CatalogView) -> Vec<Vec<V>> {
    v.catalog
        .views
        .values()
        .map(|view| {
            let (schema, name) = split_relation_key(&view.name);
            vec![
                t(v.database.clone()),
                t(schema),
                t(name),
                t(view.query.clone()),
                t("NONE"),
                t("NO"),
                t("NO"),
                t("NO"),
                t("NO"),
                t("NO"),
            ]
        })
        .collect()
}

/// Each constraint with its table's schema and name, its bare name and its type.
fn constraints(v: &CatalogView) -> Vec<(&m::ConstraintInfo, &str, &str, &str, &'static str)> {
    v.constraints
        .iter()
        .filter_map(|c| {
            let kind = match c.kind {
                "p" => "PRIMARY KEY",
                "u" => "UNIQUE",
                "f" => "FOREIGN KEY",
                "c" => "CHECK",
                _ => return None,
            };
            let (schema, table) = split_relation_key(&c.table.name);
            Some((c, schema, table, split_relation_key(&c.name).1, kind))
        })
        .collect()
}

fn table_constraints(v: &CatalogView) -> Vec<Vec<V>> {
    constraints(v)
        .into_iter()
        .map(|(_, schema, table, name, kind)| {
            vec![
                t(v.database.clone()),
                t(schema),
                t(name),
                t(v.database.clone()),
                t(schema),
                t(table),
                t(kind),
                t("NO"),
                t("NO"),
                t("YES"),
                if kind == "UNIQUE" { t("YES") } else { N },
            ]
        })
        .collect()
}

/// The unique key (primary key or unique index) a foreign key references, by bare name.
fn referenced_key<'a>(
    v: &'a CatalogView,
    fk: &crate::catalog::ForeignKeyDef,
) -> Option<(&'a TableDef, Vec<usize>, String)> {
    let parent = v.catalog.tables.get(&fk.ref_table)?;
    let cols: Vec<usize> = fk
        .ref_columns
        .iter()
        .filter_map(|c| parent.column_index(c))
        .collect();
    let name = if cols == parent.primary_key {
        parent
            .pk_name
            .clone()
            .unwrap_or_else(|| format!("{}_pkey", parent.name))
    } else {
        parent
            .indexes
            .iter()
            .find(|i| i.unique && i.columns == cols)
            .map(|i| i.name.clone())?
    };
    Some((
        parent.as_ref(),
        cols,
        split_relation_key(&name).1.to_string(),
    ))
}

fn key_column_usage(v: &CatalogView) -> Vec<Vec<V>> {
    let mut out = Vec::new();
    for (c, schema, table, name, kind) in constraints(v) {
        if kind == "CHECK" {
            continue;
        }
        for (k, &col) in c.columns.iter().enumerate() {
            let in_unique = c.foreign.as_ref().map_or(N, |_| i(k as i64 + 1));
            out.push(vec![
                t(v.database.clone()),
                t(schema),
                t(name),
                t(v.database.clone()),
                t(schema),
                t(table),
                t(c.table.columns[col].name.clone()),
                i(k as i64 + 1),
                in_unique,
            ]);
        }
    }
    out
}

fn rule(a: FkAction) -> &'static str {
    match a {
        FkAction::NoAction => "NO ACTION",
        FkAction::Restrict => "RESTRICT",
        FkAction::Cascade => "CASCADE",
        FkAction::SetNull => "SET NULL",
    }
}

fn referential_constraints(v: &CatalogView) -> Vec<Vec<V>> {
    constraints(v)
        .into_iter()
        .filter_map(|(c, schema, _, name, _)| {
            let fk = c.foreign.as_ref()?;
            let (parent, _, unique) = referenced_key(v, fk)?;
            Some(vec![
                t(v.database.clone()),
                t(schema),
                t(name),
                t(v.database.clone()),
                t(split_relation_key(&parent.name).0),
                t(unique),
                t("NONE"),
                t(rule(fk.on_update)),
                t(rule(fk.on_delete)),
            ])
        })
        .collect()
}

fn constraint_column_usage(v: &CatalogView) -> Vec<Vec<V>> {
    let mut out = Vec::new();
    for (c, schema, table, name, _) in constraints(v) {
        // A foreign key uses the referenced columns; the others their own.
        let (owner, cols): (&TableDef, Vec<usize>) = match &c.foreign {
            Some(fk) => match referenced_key(v, fk) {
                Some((parent, cols, _)) => (parent, cols),
                None => continue,
            },
            None => (c.table.as_ref(), c.columns.clone()),
        };
        let (owner_schema, owner_table) = if c.foreign.is_some() {
            split_relation_key(&owner.name)
        } else {
            (schema, table)
        };
        for col in cols {
            out.push(vec![
                t(v.database.clone()),
                t(owner_schema),
                t(owner_table),
                t(owner.columns[col].name.clone()),
                t(v.database.clone()),
                t(schema),
                t(name),
            ]);
        }
    }
    out
}

fn check_constraints(v: &CatalogView) -> Vec<Vec<V>> {
    constraints(v)
        .into_iter()
        .filter(|(_, _, _, _, kind)| *kind == "CHECK")
        .map(|(c, schema, _, name, _)| {
            vec![
                t(v.database.clone()),
                t(schema),
                t(name),
                t(c.check.clone().unwrap_or_default()),
            ]
        })
        .collect()
}

fn sequences(v: &CatalogView) -> Vec<Vec<V>> {
    v.catalog
        .sequences
        .values()
        .map(|s| {
            let (schema, name) = split_relation_key(&s.name);
            let bits = match s.ty {
                SqlType::Int16 => 16,
                SqlType::Int32 => 32,
                _ => 64,
            };
            vec![
                t(v.database.clone()),
                t(schema),
                t(name),
                t(s.ty.pg_name()),
                i(bits),
                i(2),
                i(0),
                t(s.start.to_string()),
                t(s.min.to_string()),
                t(s.max.to_string()),
                t(s.increment.to_string()),
                yes_no(s.cycle),
            ]
        })
        .collect()
}
