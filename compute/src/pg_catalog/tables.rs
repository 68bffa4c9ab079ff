//! The `pg_catalog` tables, built on demand from the catalog of the statement being planned.
//! Column names and types follow PostgreSQL 15 (`oid` as Int64, `name` and `"char"` as Utf8,
//! `int2vector`/`oidvector` and arrays as lists); tables ThunderDB has nothing for are empty.

use super::Shared;
use super::model::CatalogView;
use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Int16Array, Int32Array, Int64Array, ListBuilder,
    PrimitiveBuilder, RecordBatch, StringArray, StringBuilder, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Int16Type, Int64Type, Schema, SchemaRef, TimeUnit,
};
use datafusion::catalog::memory::MemorySourceConfig;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::{DFSchema, Result as DfResult};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{EmptyRelation, Expr, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use std::borrow::Cow;
use std::sync::Arc;

/// A column type of a catalog table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Col {
    Oid,
    Name,
    Text,
    Char,
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Xid,
    RegProc,
    NodeTree,
    Timestamptz,
    Int2Vector,
    OidVector,
    Int2Array,
    OidArray,
    TextArray,
    CharArray,
    AclArray,
}

impl Col {
    fn from_pg_name(name: &str) -> Option<Col> {
        Some(match name {
            "oid" => Col::Oid,
            "name" => Col::Name,
            "text" => Col::Text,
            "char" => Col::Char,
            "bool" => Col::Bool,
            "int2" => Col::Int2,
            "int4" => Col::Int4,
            "int8" => Col::Int8,
            "float4" => Col::Float4,
            "xid" => Col::Xid,
            "regproc" => Col::RegProc,
            "pg_node_tree" => Col::NodeTree,
            "timestamptz" => Col::Timestamptz,
            "int2vector" => Col::Int2Vector,
            "oidvector" => Col::OidVector,
            "int2[]" => Col::Int2Array,
            "oid[]" => Col::OidArray,
            "text[]" => Col::TextArray,
            "char[]" => Col::CharArray,
            "aclitem[]" => Col::AclArray,
            _ => return None,
        })
    }

    fn arrow(self) -> DataType {
        let list = |t: DataType| DataType::List(Arc::new(Field::new("item", t, true)));
        match self {
            Col::Oid | Col::Int8 | Col::Xid => DataType::Int64,
            Col::Name | Col::Text | Col::Char | Col::RegProc | Col::NodeTree => DataType::Utf8,
            Col::Bool => DataType::Boolean,
            Col::Int2 => DataType::Int16,
            Col::Int4 => DataType::Int32,
            Col::Float4 => DataType::Float32,
            Col::Timestamptz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(crate::types::UTC.into()))
            }
            Col::Int2Vector | Col::Int2Array => list(DataType::Int16),
            Col::OidVector | Col::OidArray => list(DataType::Int64),
            Col::TextArray | Col::CharArray | Col::AclArray => list(DataType::Utf8),
        }
    }

    /// The PostgreSQL type of the column, for `pg_attribute` rows of the catalog itself.
    pub fn pg_type(self) -> i64 {
        use super::types::oids as t;
        match self {
            Col::Oid => t::OID,
            Col::Name => t::NAME,
            Col::Text => t::TEXT,
            Col::Char => t::CHAR,
            Col::Bool => t::BOOL,
            Col::Int2 => t::INT2,
            Col::Int4 => t::INT4,
            Col::Int8 => t::INT8,
            Col::Float4 => t::FLOAT4,
            Col::Xid => t::XID,
            Col::RegProc => t::REGPROC,
            Col::NodeTree => t::PG_NODE_TREE,
            Col::Timestamptz => t::TIMESTAMPTZ,
            Col::Int2Vector => t::INT2VECTOR,
            Col::OidVector => t::OIDVECTOR,
            Col::Int2Array => 1005,
            Col::OidArray => 1028,
            Col::TextArray => 1009,
            Col::CharArray => 1002,
            Col::AclArray => 1034,
        }
    }
}

/// One cell.
#[derive(Clone, Debug)]
pub enum V {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Float(f32),
    Ints(Vec<i64>),
    Texts(Vec<String>),
}

pub(super) fn o(v: i64) -> V {
    V::Int(v)
}
pub(super) fn i(v: impl Into<i64>) -> V {
    V::Int(v.into())
}
pub(super) fn b(v: bool) -> V {
    V::Bool(v)
}
pub(super) fn t(v: impl Into<String>) -> V {
    V::Text(v.into())
}
pub(super) const N: V = V::Null;

/// A catalog table: its name, OID (PostgreSQL's where it has one), kind, columns (as
/// `name type, …` with PostgreSQL's type names) and rows.
#[derive(Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub oid: i64,
    pub view: bool,
    pub(super) columns: &'static str,
    pub(super) rows: fn(&CatalogView) -> Vec<Vec<V>>,
}

use super::rows::*;
use super::thunder::{cluster_nodes, storage, storage_layers, storage_segments};

/// Every table and view of `pg_catalog`.
pub const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "pg_namespace",
        oid: 2615,
        view: false,
        rows: namespaces,
        columns: "oid oid, nspname name, nspowner oid, nspacl aclitem[]",
    },
    TableSpec {
        name: "pg_class",
        oid: 1259,
        view: false,
        rows: classes,
        columns: "oid oid, relname name, relnamespace oid, reltype oid, reloftype oid, \
                  relowner oid, relam oid, relfilenode oid, reltablespace oid, relpages int4, \
                  reltuples float4, relallvisible int4, reltoastrelid oid, relhasindex bool, \
                  relisshared bool, relpersistence char, relkind char, relnatts int2, \
                  relchecks int2, relhasrules bool, relhastriggers bool, relhassubclass bool, \
                  relrowsecurity bool, relforcerowsecurity bool, relispopulated bool, \
                  relreplident char, relispartition bool, relrewrite oid, relfrozenxid xid, \
                  relminmxid xid, relacl aclitem[], reloptions text[], relpartbound pg_node_tree",
    },
    TableSpec {
        name: "pg_attribute",
        oid: 1249,
        view: false,
        rows: attributes,
        columns: "attrelid oid, attname name, atttypid oid, attstattarget int4, attlen int2, \
                  attnum int2, attndims int4, attcacheoff int4, atttypmod int4, attbyval bool, \
                  attalign char, attstorage char, attcompression char, attnotnull bool, \
                  atthasdef bool, atthasmissing bool, attidentity char, attgenerated char, \
                  attisdropped bool, attislocal bool, attinhcount int4, attcollation oid, \
                  attacl aclitem[], attoptions text[], attfdwoptions text[], attmissingval text",
    },
    TableSpec {
        name: "pg_type",
        oid: 1247,
        view: false,
        rows: pg_types,
        columns: "oid oid, typname name, typnamespace oid, typowner oid, typlen int2, \
                  typbyval bool, typtype char, typcategory char, typispreferred bool, \
                  typisdefined bool, typdelim char, typrelid oid, typsubscript regproc, \
                  typelem oid, typarray oid, typinput regproc, typoutput regproc, \
                  typreceive regproc, typsend regproc, typmodin regproc, typmodout regproc, \
                  typanalyze regproc, typalign char, typstorage char, typnotnull bool, \
                  typbasetype oid, typtypmod int4, typndims int4, typcollation oid, \
                  typdefaultbin pg_node_tree, typdefault text, typacl aclitem[]",
    },
    TableSpec {
        name: "pg_index",
        oid: 2610,
        view: false,
        rows: indexes,
        columns: "indexrelid oid, indrelid oid, indnatts int2, indnkeyatts int2, \
                  indisunique bool, indnullsnotdistinct bool, indisprimary bool, \
                  indisexclusion bool, indimmediate bool, indisclustered bool, indisvalid bool, \
                  indcheckxmin bool, indisready bool, indislive bool, indisreplident bool, \
                  indkey int2vector, indcollation oidvector, indclass oidvector, \
                  indoption int2vector, indexprs pg_node_tree, indpred pg_node_tree",
    },
    TableSpec {
        name: "pg_constraint",
        oid: 2606,
        view: false,
        rows: constraints,
        columns: "oid oid, conname name, connamespace oid, contype char, condeferrable bool, \
                  condeferred bool, convalidated bool, conrelid oid, contypid oid, conindid oid, \
                  conparentid oid, confrelid oid, confupdtype char, confdeltype char, \
                  confmatchtype char, conislocal bool, coninhcount int4, connoinherit bool, \
                  conkey int2[], confkey int2[], conpfeqop oid[], conppeqop oid[], \
                  conffeqop oid[], confdelsetcols int2[], conexclop oid[], conbin pg_node_tree",
    },
    TableSpec {
        name: "pg_attrdef",
        oid: 2604,
        view: false,
        rows: defaults,
        columns: "oid oid, adrelid oid, adnum int2, adbin pg_node_tree",
    },
    TableSpec {
        name: "pg_am",
        oid: 2601,
        view: false,
        rows: access_methods,
        columns: "oid oid, amname name, amhandler regproc, amtype char",
    },
    TableSpec {
        name: "pg_database",
        oid: 1262,
        view: false,
        rows: databases,
        columns: "oid oid, datname name, datdba oid, encoding int4, datlocprovider char, \
                  datistemplate bool, datallowconn bool, datconnlimit int4, datfrozenxid xid, \
                  datminmxid xid, dattablespace oid, datcollate text, datctype text, \
                  daticulocale text, datcollversion text, datacl aclitem[]",
    },
    TableSpec {
        name: "pg_authid",
        oid: 1260,
        view: false,
        rows: authids,
        columns: "oid oid, rolname name, rolsuper bool, rolinherit bool, rolcreaterole bool, \
                  rolcreatedb bool, rolcanlogin bool, rolreplication bool, rolbypassrls bool, \
                  rolconnlimit int4, rolpassword text, rolvaliduntil timestamptz",
    },
    TableSpec {
        name: "pg_roles",
        oid: 12001,
        view: true,
        rows: roles,
        columns: "rolname name, rolsuper bool, rolinherit bool, rolcreaterole bool, \
                  rolcreatedb bool, rolcanlogin bool, rolreplication bool, rolconnlimit int4, \
                  rolpassword text, rolvaliduntil timestamptz, rolbypassrls bool, \
                  rolconfig text[], oid oid",
    },
    TableSpec {
        name: "pg_user",
        oid: 12002,
        view: true,
        rows: users,
        columns: "usename name, usesysid oid, usecreatedb bool, usesuper bool, userepl bool, \
                  usebypassrls bool, passwd text, valuntil timestamptz, useconfig text[]",
    },
    TableSpec {
        name: "pg_auth_members",
        oid: 1261,
        view: false,
        rows: none,
        columns: "roleid oid, member oid, grantor oid, admin_option bool",
    },
    TableSpec {
        name: "pg_description",
        oid: 2609,
        view: false,
        rows: none,
        columns: "objoid oid, classoid oid, objsubid int4, description text",
    },
    TableSpec {
        name: "pg_shdescription",
        oid: 2396,
        view: false,
        rows: none,
        columns: "objoid oid, classoid oid, description text",
    },
    TableSpec {
        name: "pg_inherits",
        oid: 2611,
        view: false,
        rows: none,
        columns: "inhrelid oid, inhparent oid, inhseqno int4, inhdetachpending bool",
    },
    TableSpec {
        name: "pg_collation",
        oid: 3456,
        view: false,
        rows: collations,
        columns: "oid oid, collname name, collnamespace oid, collowner oid, collprovider char, \
                  collisdeterministic bool, collencoding int4, collcollate text, collctype text, \
                  colliculocale text, collversion text",
    },
    TableSpec {
        name: "pg_settings",
        oid: 12003,
        view: true,
        rows: settings,
        columns: "name text, setting text, unit text, category text, short_desc text, \
                  extra_desc text, context text, vartype text, source text, min_val text, \
                  max_val text, enumvals text[], boot_val text, reset_val text, sourcefile text, \
                  sourceline int4, pending_restart bool",
    },
    TableSpec {
        name: "pg_tablespace",
        oid: 1213,
        view: false,
        rows: tablespaces,
        columns: "oid oid, spcname name, spcowner oid, spcacl aclitem[], spcoptions text[]",
    },
    TableSpec {
        name: "pg_statistic_ext",
        oid: 3381,
        view: false,
        rows: none,
        columns: "oid oid, stxrelid oid, stxname name, stxnamespace oid, stxowner oid, \
                  stxstattarget int4, stxkeys int2vector, stxkind char[], stxexprs pg_node_tree",
    },
    TableSpec {
        name: "pg_policy",
        oid: 3256,
        view: false,
        rows: none,
        columns: "oid oid, polname name, polrelid oid, polcmd char, polpermissive bool, \
                  polroles oid[], polqual pg_node_tree, polwithcheck pg_node_tree",
    },
    TableSpec {
        name: "pg_publication",
        oid: 6104,
        view: false,
        rows: none,
        columns: "oid oid, pubname name, pubowner oid, puballtables bool, pubinsert bool, \
                  pubupdate bool, pubdelete bool, pubtruncate bool, pubviaroot bool",
    },
    TableSpec {
        name: "pg_publication_rel",
        oid: 6106,
        view: false,
        rows: none,
        columns: "oid oid, prpubid oid, prrelid oid, prqual pg_node_tree, prattrs int2vector",
    },
    TableSpec {
        name: "pg_publication_namespace",
        oid: 6237,
        view: false,
        rows: none,
        columns: "oid oid, pnpubid oid, pnnspid oid",
    },
    TableSpec {
        name: "pg_trigger",
        oid: 2620,
        view: false,
        rows: none,
        columns: "oid oid, tgrelid oid, tgparentid oid, tgname name, tgfoid oid, tgtype int2, \
                  tgenabled char, tgisinternal bool, tgconstrrelid oid, tgconstrindid oid, \
                  tgconstraint oid, tgdeferrable bool, tginitdeferred bool, tgnargs int2, \
                  tgattr int2vector, tgargs text, tgqual pg_node_tree, tgoldtable name, \
                  tgnewtable name",
    },
    TableSpec {
        name: "pg_rewrite",
        oid: 2618,
        view: false,
        rows: none,
        columns: "oid oid, rulename name, ev_class oid, ev_type char, ev_enabled char, \
                  is_instead bool, ev_qual pg_node_tree, ev_action pg_node_tree",
    },
    TableSpec {
        name: "pg_extension",
        oid: 3079,
        view: false,
        rows: none,
        columns: "oid oid, extname name, extowner oid, extnamespace oid, extrelocatable bool, \
                  extversion text, extconfig oid[], extcondition text[]",
    },
    TableSpec {
        name: "pg_enum",
        oid: 3501,
        view: false,
        rows: enums,
        columns: "oid oid, enumtypid oid, enumsortorder float4, enumlabel name",
    },
    TableSpec {
        name: "pg_sequence",
        oid: 2224,
        view: false,
        rows: sequences,
        columns: "seqrelid oid, seqtypid oid, seqstart int8, seqincrement int8, seqmax int8, \
                  seqmin int8, seqcache int8, seqcycle bool",
    },
    TableSpec {
        name: "pg_foreign_table",
        oid: 3118,
        view: false,
        rows: none,
        columns: "ftrelid oid, ftserver oid, ftoptions text[]",
    },
    TableSpec {
        name: "pg_tables",
        oid: 12004,
        view: true,
        rows: pg_tables,
        columns: "schemaname name, tablename name, tableowner name, tablespace name, \
                  hasindexes bool, hasrules bool, hastriggers bool, rowsecurity bool",
    },
    TableSpec {
        name: "pg_indexes",
        oid: 12005,
        view: true,
        rows: pg_indexes,
        columns: "schemaname name, tablename name, indexname name, tablespace name, \
                  indexdef text",
    },
    TableSpec {
        name: "pg_views",
        oid: 12006,
        view: true,
        rows: views,
        columns: "schemaname name, viewname name, viewowner name, definition text",
    },
    TableSpec {
        name: "pg_matviews",
        oid: 12007,
        view: true,
        rows: none,
        columns: "schemaname name, matviewname name, matviewowner name, tablespace name, \
                  hasindexes bool, ispopulated bool, definition text",
    },
    TableSpec {
        name: "pg_stats",
        oid: 12008,
        view: true,
        rows: pg_stats,
        // The anyarray and float4[] columns are text[] here; ANALYZE does not collect
        // most-common values, histograms or correlation, so they are NULL.
        columns: "schemaname name, tablename name, attname name, inherited bool, \
                  null_frac float4, avg_width int4, n_distinct float4, \
                  most_common_vals text[], most_common_freqs text[], histogram_bounds text[], \
                  correlation float4, most_common_elems text[], most_common_elem_freqs text[], \
                  elem_count_histogram text[]",
    },
    // ThunderDB's own: the pageserver's storage.
    TableSpec {
        name: "thunder_storage",
        oid: 12100,
        view: true,
        rows: storage,
        columns: "location text, applied_lsn int8, consistent_lsn int8, upload_lag_lsn int8, \
                  min_readable_lsn int8, memory_bytes int8, delta_layers int8, \
                  image_layers int8, stored_bytes int8",
    },
    TableSpec {
        name: "thunder_storage_layers",
        oid: 12101,
        view: true,
        rows: storage_layers,
        columns: "kind text, name text, lsn_start int8, lsn_end int8, size_bytes int8, \
                  entries int8, key_start text, key_last text",
    },
    TableSpec {
        name: "thunder_storage_segments",
        oid: 12102,
        view: true,
        rows: storage_segments,
        columns: "table_name text, table_id int8, lsn int8, lag_lsn int8, row_count int8, \
                  files int8, size_bytes int8",
    },
    TableSpec {
        name: "thunder_cluster_nodes",
        oid: 12103,
        view: true,
        rows: cluster_nodes,
        columns: "node text, role text, address text, state text, raft_term int8, \
                  raft_leader bool, applied_lsn int8",
    },
];

pub fn spec(name: &str) -> Option<&'static TableSpec> {
    TABLES.iter().find(|s| s.name == name)
}

fn build_column(ty: Col, rows: &[Vec<V>], c: usize) -> DfResult<ArrayRef> {
    let cell = |r: &Vec<V>| r.get(c).cloned().unwrap_or(V::Null);
    let int = |v: V| match v {
        V::Int(x) => Some(x),
        _ => None,
    };
    let arr: ArrayRef = match ty.arrow() {
        DataType::Int64 => Arc::new(rows.iter().map(|r| int(cell(r))).collect::<Int64Array>()),
        DataType::Int32 => Arc::new(
            rows.iter()
                .map(|r| int(cell(r)).and_then(|x| i32::try_from(x).ok()))
                .collect::<Int32Array>(),
        ),
        DataType::Int16 => Arc::new(
            rows.iter()
                .map(|r| int(cell(r)).and_then(|x| i16::try_from(x).ok()))
                .collect::<Int16Array>(),
        ),
        DataType::Float32 => Arc::new(
            rows.iter()
                .map(|r| match cell(r) {
                    V::Float(f) => Some(f),
                    _ => None,
                })
                .collect::<Float32Array>(),
        ),
        DataType::Boolean => Arc::new(
            rows.iter()
                .map(|r| match cell(r) {
                    V::Bool(x) => Some(x),
                    _ => None,
                })
                .collect::<BooleanArray>(),
        ),
        DataType::Utf8 => Arc::new(
            rows.iter()
                .map(|r| match cell(r) {
                    V::Text(s) => Some(s),
                    _ => None,
                })
                .collect::<StringArray>(),
        ),
        DataType::Timestamp(..) => Arc::new(
            rows.iter()
                .map(|r| int(cell(r)))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone(crate::types::UTC),
        ),
        DataType::List(f) => match f.data_type() {
            DataType::Int16 => {
                let mut lb = ListBuilder::new(PrimitiveBuilder::<Int16Type>::new());
                for r in rows {
                    match cell(r) {
                        V::Ints(xs) => {
                            for x in xs {
                                lb.values().append_option(i16::try_from(x).ok());
                            }
                            lb.append(true);
                        }
                        _ => lb.append(false),
                    }
                }
                Arc::new(lb.finish())
            }
            DataType::Int64 => {
                let mut lb = ListBuilder::new(PrimitiveBuilder::<Int64Type>::new());
                for r in rows {
                    match cell(r) {
                        V::Ints(xs) => {
                            for x in xs {
                                lb.values().append_value(x);
                            }
                            lb.append(true);
                        }
                        _ => lb.append(false),
                    }
                }
                Arc::new(lb.finish())
            }
            _ => {
                let mut lb = ListBuilder::new(StringBuilder::new());
                for r in rows {
                    match cell(r) {
                        V::Texts(xs) => {
                            for x in xs {
                                lb.values().append_value(x);
                            }
                            lb.append(true);
                        }
                        _ => lb.append(false),
                    }
                }
                Arc::new(lb.finish())
            }
        },
        other => {
            return Err(datafusion::error::DataFusionError::Internal(format!(
                "catalog column type {other}"
            )));
        }
    };
    Ok(arr)
}

impl TableSpec {
    /// The columns and their types; a type name this module does not know is a bug the tests
    /// catch, and reads as text.
    pub fn columns(&self) -> Vec<(&'static str, Col)> {
        self.columns
            .split(',')
            .filter_map(|c| {
                let (name, ty) = c.trim().split_once(' ')?;
                Some((name, Col::from_pg_name(ty.trim()).unwrap_or(Col::Text)))
            })
            .collect()
    }

    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns()
                .into_iter()
                .map(|(name, ty)| Field::new(name, ty.arrow(), true))
                .collect::<Vec<_>>(),
        ))
    }

    /// The table's rows for the catalog `v`.
    pub fn batch(&self, v: &CatalogView) -> DfResult<RecordBatch> {
        let rows = (self.rows)(v);
        let columns = self.columns();
        if let Some(bad) = rows.iter().find(|r| r.len() != columns.len()) {
            return Err(datafusion::error::DataFusionError::Internal(format!(
                "{} row has {} cells for {} columns",
                self.name,
                bad.len(),
                columns.len()
            )));
        }
        let columns = columns
            .iter()
            .enumerate()
            .map(|(c, (_, ty))| build_column(*ty, &rows, c))
            .collect::<DfResult<Vec<_>>>()?;
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }
}

/// One catalog table at one statement. An empty table plans as an empty relation, so that
/// the optimizer drops what hangs off it (psql's correlated sub-queries over policies and
/// publications, which DataFusion cannot decorrelate).
#[derive(Debug)]
struct CatalogTable {
    batch: RecordBatch,
    view: bool,
    empty: Option<LogicalPlan>,
}

#[async_trait]
impl TableProvider for CatalogTable {
    fn schema(&self) -> SchemaRef {
        self.batch.schema()
    }

    fn table_type(&self) -> TableType {
        if self.view {
            TableType::View
        } else {
            TableType::Base
        }
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        self.empty.as_ref().map(Cow::Borrowed)
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![self.batch.clone()]],
            self.batch.schema(),
            projection.cloned(),
        )?)
    }
}

/// The `pg_catalog` schema of a session.
#[derive(Debug)]
pub struct PgCatalogSchema {
    pub(super) shared: Arc<Shared>,
    /// `pg_catalog`'s tables, or `information_schema`'s views.
    pub(super) tables: &'static [TableSpec],
}

#[async_trait]
impl SchemaProvider for PgCatalogSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.iter().map(|s| s.name.to_string()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(spec) = self.tables.iter().find(|s| s.name == name) else {
            return Ok(None);
        };
        let view = self.shared.view();
        let batch = spec.batch(&view)?;
        let empty = if batch.num_rows() == 0 {
            Some(LogicalPlan::EmptyRelation(EmptyRelation {
                produce_one_row: false,
                schema: Arc::new(DFSchema::try_from(batch.schema().as_ref().clone())?),
            }))
        } else {
            None
        };
        Ok(Some(Arc::new(CatalogTable {
            batch,
            view: spec.view,
            empty,
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.iter().any(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn every_table_builds_with_its_declared_columns() {
        let view = CatalogView::new(Arc::new(Catalog::default()), "u", "u", "db");
        for spec in TABLES {
            let batch = spec.batch(&view).expect(spec.name);
            assert_eq!(batch.num_columns(), spec.columns().len(), "{}", spec.name);
            for c in spec.columns.split(',') {
                let (_, ty) = c.trim().split_once(' ').expect(spec.name);
                assert!(Col::from_pg_name(ty.trim()).is_some(), "{}: {c}", spec.name);
            }
        }
        let names: std::collections::HashSet<_> = TABLES.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), TABLES.len(), "duplicate table names");
        let oids: std::collections::HashSet<_> = TABLES.iter().map(|s| s.oid).collect();
        assert_eq!(oids.len(), TABLES.len(), "duplicate table oids");
    }
}
