//! FOREIGN KEY constraints: defined with CREATE TABLE or ALTER TABLE, checked when rows of the
//! referencing table are written (the referenced row must exist) and when referenced rows are
//! deleted or their key changes (NO ACTION / RESTRICT refuse, CASCADE deletes, SET NULL
//! clears). Every check reads at the statement's snapshot and makes the commit depend on what
//! it read, so a concurrent change to the other side fails one of the two commits (40001).

use crate::catalog::split_relation_key;
use crate::catalog::{Catalog, FkAction, ForeignKeyDef, TableDef};
use crate::convert::datum_text;
use crate::error::{Result, user_error};
use crate::txn::ReadView;
use datafusion::sql::sqlparser::ast::{self, ReferentialAction};
use std::collections::HashMap;
use thunderdb_common::{Datum, SqlState, SqlType};

type Row = Vec<Datum>;

/// How deep CASCADE / SET NULL may chain (each level a table, or a self-reference step).
const MAX_CASCADE_DEPTH: usize = 256;

fn action(a: Option<&ReferentialAction>, update: bool) -> Result<FkAction> {
    Ok(match a {
        None | Some(ReferentialAction::NoAction) => FkAction::NoAction,
        Some(ReferentialAction::Restrict) => FkAction::Restrict,
        Some(ReferentialAction::Cascade) if !update => FkAction::Cascade,
        Some(ReferentialAction::SetNull) if !update => FkAction::SetNull,
        Some(other) => {
            let on = if update { "UPDATE" } else { "DELETE" };
            return Err(user_error(
                SqlState::FEATURE_NOT_SUPPORTED,
                format!("ON {on} {other} is not supported yet"),
            ));
        }
    })
}

/// Checks and builds the foreign key `fk` of `def` (whose columns are known) on its columns
/// `columns`; it may reference `def` itself.
pub(crate) fn define(
    catalog: &Catalog,
    def: &TableDef,
    columns: &[usize],
    fk: &ast::ForeignKeyConstraint,
) -> Result<ForeignKeyDef> {
    crate::ddl::check_schema(&fk.foreign_table)?;
    let ref_table = crate::sql::object_name(&fk.foreign_table);
    let ref_table = ref_table.as_str();
    let ref_columns = &fk.referred_columns;
    let name = fk.name.as_ref().map(crate::sql::ident_name);
    let parent = if ref_table == def.name {
        def
    } else {
        catalog.table(ref_table)?
    };
    let temporary = |key: &str| split_relation_key(key).0.starts_with("pg_temp_");
    if temporary(&parent.name) && !temporary(&def.name) {
        return Err(user_error(
            SqlState("42P16"),
            "constraints on permanent tables may reference only permanent tables",
        ));
    }
    let ref_positions: Vec<usize> = if ref_columns.is_empty() {
        if parent.primary_key.is_empty() {
            return Err(user_error(
                SqlState("42830"),
                format!("there is no primary key for referenced table \"{ref_table}\""),
            ));
        }
        parent.primary_key.clone()
    } else {
        ref_columns
            .iter()
            .map(|c| {
                let n = crate::sql::ident_name(c);
                parent.column_index(&n).ok_or_else(|| {
                    user_error(
                        SqlState::UNDEFINED_COLUMN,
                        format!(
                            "column \"{n}\" referenced in foreign key constraint does not exist"
                        ),
                    )
                })
            })
            .collect::<Result<_>>()?
    };
    if ref_positions.len() != columns.len() {
        return Err(user_error(
            SqlState("42830"),
            "number of referencing and referenced columns for foreign key disagree",
        ));
    }
    if unique_key(parent, &ref_positions).is_none() {
        return Err(user_error(
            SqlState("42830"),
            format!(
                "there is no unique constraint matching given keys for referenced table \"{ref_table}\""
            ),
        ));
    }
    for (&c, &r) in columns.iter().zip(&ref_positions) {
        let (ct, rt) = (&def.columns[c].ty, &parent.columns[r].ty);
        let compatible =
            ct == rt || (ct.is_integer() && rt.is_integer()) || (text_like(ct) && text_like(rt));
        if !compatible {
            return Err(user_error(
                SqlState::DATATYPE_MISMATCH,
                format!(
                    "foreign key constraint \"{}\" cannot be implemented",
                    name.clone().unwrap_or_default()
                ),
            )
            .with_detail(format!(
                "Key columns \"{}\" and \"{}\" are of incompatible types: {} and {}.",
                def.columns[c].name,
                parent.columns[r].name,
                ct.pg_name(),
                rt.pg_name()
            )));
        }
    }
    let name = name.unwrap_or_else(|| {
        let cols: Vec<&str> = columns
            .iter()
            .map(|&c| def.columns[c].name.as_str())
            .collect();
        format!("{}_{}_fkey", def.name, cols.join("_"))
    });
    Ok(ForeignKeyDef {
        name,
        columns: columns.to_vec(),
        ref_table: ref_table.to_string(),
        ref_columns: ref_positions
            .iter()
            .map(|&p| parent.columns[p].name.clone())
            .collect(),
        on_delete: action(fk.on_delete.as_ref(), false)?,
        on_update: action(fk.on_update.as_ref(), true)?,
    })
}

fn text_like(t: &SqlType) -> bool {
    matches!(t, SqlType::Text | SqlType::Varchar(_) | SqlType::Char(_))
}

/// How referenced rows are found: by primary key, or by a unique index (its position).
enum UniqueKey {
    Primary,
    Index(usize),
}

fn unique_key(parent: &TableDef, positions: &[usize]) -> Option<UniqueKey> {
    let same = |cols: &[usize]| {
        cols.len() == positions.len() && cols.iter().all(|c| positions.contains(c))
    };
    if same(&parent.primary_key) {
        return Some(UniqueKey::Primary);
    }
    parent
        .indexes
        .iter()
        .position(|i| i.unique && same(&i.columns))
        .map(UniqueKey::Index)
}

/// A value of one integer or text type as another's, when it fits.
fn coerce(d: &Datum, ty: &SqlType) -> Option<Datum> {
    let int = match d {
        Datum::Int16(v) => Some(i64::from(*v)),
        Datum::Int32(v) => Some(i64::from(*v)),
        Datum::Int64(v) => Some(*v),
        _ => None,
    };
    match (int, ty) {
        (Some(v), SqlType::Int16) => i16::try_from(v).ok().map(Datum::Int16),
        (Some(v), SqlType::Int32) => i32::try_from(v).ok().map(Datum::Int32),
        (Some(v), SqlType::Int64) => Some(Datum::Int64(v)),
        (Some(_), _) => None,
        (None, _) => Some(d.clone()),
    }
}

fn positions(def: &TableDef, names: &[String]) -> Result<Vec<usize>> {
    names
        .iter()
        .map(|n| {
            def.column_index(n).ok_or_else(|| {
                thunderdb_common::ThunderError::internal(format!(
                    "foreign key names missing column {n} of {}",
                    def.name
                ))
            })
        })
        .collect()
}

/// Whether `parent` has a row whose `ref_positions` hold `values`; the commit then depends
/// on that row staying as it is.
async fn parent_exists(
    view: &ReadView,
    parent: &TableDef,
    ref_positions: &[usize],
    values: &[Datum],
) -> Result<bool> {
    let mut probe = vec![Datum::Null; parent.columns.len()];
    for (&p, v) in ref_positions.iter().zip(values) {
        match coerce(v, &parent.columns[p].ty) {
            Some(d) => probe[p] = d,
            // Out of the referenced column's range: no such parent.
            None => return Ok(false),
        }
    }
    let key = match unique_key(parent, ref_positions) {
        Some(UniqueKey::Primary) => parent.row_key(&probe, 0),
        Some(UniqueKey::Index(i)) => parent.index_key(&parent.indexes[i], &probe, &[0; 8]),
        None => return Ok(false),
    };
    view.depend_on_key(key.clone());
    Ok(view.get(&key).await?.is_some())
}

/// Rows about to be written to `def`: each foreign key's referenced row must exist (a NULL in
/// the key skips the check, MATCH SIMPLE). `rows` already holds the new images.
pub(crate) async fn check_references(
    view: &ReadView,
    catalog: &Catalog,
    def: &TableDef,
    rows: &[Row],
) -> Result<()> {
    for fk in &def.foreign_keys {
        let parent = if fk.ref_table == def.name {
            def
        } else {
            catalog.table(&fk.ref_table)?
        };
        let ref_positions = positions(parent, &fk.ref_columns)?;
        for row in rows {
            let values: Vec<Datum> = fk.columns.iter().map(|&c| row[c].clone()).collect();
            if values.iter().any(Datum::is_null) {
                continue;
            }
            if !parent_exists(view, parent, &ref_positions, &values).await? {
                let names: Vec<&str> = fk
                    .columns
                    .iter()
                    .map(|&c| def.columns[c].name.as_str())
                    .collect();
                let shown: Vec<String> = values.iter().map(datum_text).collect();
                return Err(user_error(
                    SqlState::FOREIGN_KEY_VIOLATION,
                    format!(
                        "insert or update on table \"{}\" violates foreign key constraint \"{}\"",
                        bare(&def.name),
                        bare(&fk.name)
                    ),
                )
                .with_detail(format!(
                    "Key ({})=({}) is not present in table \"{}\".",
                    names.join(", "),
                    shown.join(", "),
                    bare(&fk.ref_table)
                )));
            }
        }
    }
    Ok(())
}

/// Writes the referenced table's definition back with a new schema version, so that its
/// writers (whose commits depend on its definition) conflict with the new foreign key.
pub(crate) fn touch_parent(
    view: &ReadView,
    catalog: &Catalog,
    fk: &ForeignKeyDef,
    child: &str,
) -> Result<()> {
    if fk.ref_table == child {
        return Ok(());
    }
    let mut parent = catalog.table(&fk.ref_table)?.as_ref().clone();
    parent.schema_version += 1;
    crate::catalog::put_table(view, &parent)
}

/// Refuses to remove the unique key of `table` on `cols` while a foreign key references it.
pub(crate) fn check_key_unreferenced(
    catalog: &Catalog,
    table: &TableDef,
    cols: &[usize],
    what: &str,
) -> Result<()> {
    let names: Vec<&str> = cols
        .iter()
        .map(|&c| table.columns[c].name.as_str())
        .collect();
    for child in catalog.tables.values() {
        for fk in child
            .foreign_keys
            .iter()
            .filter(|f| f.ref_table == table.name)
        {
            let same = fk.ref_columns.len() == names.len()
                && fk.ref_columns.iter().all(|c| names.contains(&c.as_str()));
            if same {
                return Err(user_error(
                    SqlState("2BP01"),
                    format!("cannot drop {what} because other objects depend on it"),
                )
                .with_detail(format!(
                    "constraint {} on table {} depends on {what}",
                    fk.name, child.name
                )));
            }
        }
    }
    Ok(())
}

/// Whether any foreign key references `table`.
pub(crate) fn is_referenced(catalog: &Catalog, table: &str) -> bool {
    catalog
        .tables
        .values()
        .any(|t| t.foreign_keys.iter().any(|fk| fk.ref_table == table))
}

/// Rows of `parent` that are going away (`new` is `None`) or whose referenced key changes
/// (`new` holds the new image): referencing rows are refused, deleted or cleared as each foreign
/// key says. `depth` bounds cascades through cycles.
pub(crate) async fn on_parent_change(
    view: &ReadView,
    catalog: &Catalog,
    parent: &TableDef,
    changes: &[(Row, Option<Row>)],
    depth: usize,
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    if depth > MAX_CASCADE_DEPTH {
        return Err(user_error(
            SqlState("54001"),
            format!(
                "foreign key actions on \"{}\" nest more than {MAX_CASCADE_DEPTH} levels deep",
                parent.name
            ),
        ));
    }
    for child in catalog.tables.values() {
        for fk in child
            .foreign_keys
            .iter()
            .filter(|fk| fk.ref_table == parent.name)
        {
            let ref_positions = positions(parent, &fk.ref_columns)?;
            // The referenced values that disappear.
            let mut gone: Vec<Vec<Datum>> = Vec::new();
            for (old, new) in changes {
                let before: Vec<Datum> = ref_positions.iter().map(|&p| old[p].clone()).collect();
                let changed = match new {
                    None => true,
                    Some(new) => ref_positions.iter().any(|&p| old[p] != new[p]),
                };
                if changed && !before.iter().any(Datum::is_null) {
                    gone.push(before);
                }
            }
            if gone.is_empty() {
                continue;
            }
            let wanted: HashMap<Vec<String>, usize> = gone
                .iter()
                .enumerate()
                .map(|(i, v)| (v.iter().map(datum_text).collect(), i))
                .collect();
            // Referencing rows, found by a scan of the child (and depended on as a range).
            let (start, end) = child.row_range();
            view.depend_on_rows(child);
            let mut hits: Vec<(Vec<u8>, Row, usize)> = Vec::new();
            for (key, value) in view.scan(&start, &end, None).await? {
                let row = child.decode_row(&value)?;
                let k: Vec<String> = fk.columns.iter().map(|&c| datum_text(&row[c])).collect();
                if fk.columns.iter().any(|&c| row[c].is_null()) {
                    continue;
                }
                if let Some(&i) = wanted.get(&k) {
                    hits.push((key, row, i));
                }
            }
            let Some((_, _, first)) = hits.first() else {
                continue;
            };
            let deleting = changes.iter().all(|(_, new)| new.is_none());
            let act = if deleting { fk.on_delete } else { fk.on_update };
            match act {
                FkAction::NoAction | FkAction::Restrict => {
                    let names: Vec<&str> = ref_positions
                        .iter()
                        .map(|&p| parent.columns[p].name.as_str())
                        .collect();
                    let shown: Vec<String> = gone[*first].iter().map(datum_text).collect();
                    return Err(user_error(
                        SqlState::FOREIGN_KEY_VIOLATION,
                        format!(
                            "update or delete on table \"{}\" violates foreign key constraint \"{}\" on table \"{}\"",
                            bare(&parent.name),
                            bare(&fk.name),
                            bare(&child.name)
                        ),
                    )
                    .with_detail(format!(
                        "Key ({})=({}) is still referenced from table \"{}\".",
                        names.join(", "),
                        shown.join(", "),
                        child.name
                    )));
                }
                FkAction::Cascade => {
                    let mut removed = Vec::with_capacity(hits.len());
                    for (key, row, _) in hits {
                        crate::dml::delete_row(view, child, &key, &row);
                        removed.push((row, None));
                    }
                    Box::pin(on_parent_change(view, catalog, child, &removed, depth + 1)).await?;
                }
                FkAction::SetNull => {
                    let mut cleared = Vec::with_capacity(hits.len());
                    for (key, row, _) in hits {
                        let mut new = row.clone();
                        for &c in &fk.columns {
                            if child.columns[c].not_null {
                                return Err(user_error(
                                    SqlState::NOT_NULL_VIOLATION,
                                    format!(
                                        "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                                        child.columns[c].name, child.name
                                    ),
                                ));
                            }
                            new[c] = Datum::Null;
                        }
                        crate::dml::delete_row(view, child, &key, &row);
                        crate::dml::put_row(view, child, &key, &new);
                        cleared.push((row, Some(new)));
                    }
                    Box::pin(on_parent_change(view, catalog, child, &cleared, depth + 1)).await?;
                }
            }
        }
    }
    Ok(())
}

/// A relation's name as PostgreSQL's messages show it: without its schema.
fn bare(key: &str) -> &str {
    split_relation_key(key).1
}
