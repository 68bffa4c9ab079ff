//! The `redis` schema: Redis data as SQL tables, read at the statement's snapshot like any
//! table (`SELECT * FROM redis.strings WHERE key = 'k'` shows what `SET k v` committed).
//!
//! | table          | columns                                   |
//! |----------------|-------------------------------------------|
//! | `redis.keys`   | db, key, type, expire_at                  |
//! | `redis.strings`| db, key, value, expire_at                 |
//! | `redis.hashes` | db, key, field, value                     |
//! | `redis.lists`  | db, key, index, value                     |
//! | `redis.sets`   | db, key, member                           |
//! | `redis.zsets`  | db, key, member, score                    |
//!
//! Keys, values and members are shown as text (bytes that are not UTF-8 as U+FFFD); expired
//! keys are not shown. The tables are read-only: Redis data is written through RESP.

use super::keyspace::{self, KIND_MEMBER, KeyType, Meta};
use super::store::now_ms;
use crate::error::to_df;
use crate::provider::PublicSchema;
use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::memory::MemorySourceConfig;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::Result as DfResult;
use datafusion::datasource::TableType;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use std::collections::HashMap;
use std::sync::Arc;

/// The schema's name.
pub const SCHEMA: &str = "redis";

/// Which Redis table.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Table {
    Keys,
    Strings,
    Hashes,
    Lists,
    Sets,
    ZSets,
}

const TABLES: &[(&str, Table)] = &[
    ("keys", Table::Keys),
    ("strings", Table::Strings),
    ("hashes", Table::Hashes),
    ("lists", Table::Lists),
    ("sets", Table::Sets),
    ("zsets", Table::ZSets),
];

impl Table {
    fn schema(self) -> SchemaRef {
        let text = |n: &str| Field::new(n, DataType::Utf8, false);
        let mut fields = vec![Field::new("db", DataType::Int32, false), text("key")];
        let expire = Field::new(
            "expire_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some(crate::types::UTC.into())),
            true,
        );
        match self {
            Table::Keys => fields.extend([text("type"), expire]),
            Table::Strings => fields.extend([text("value"), expire]),
            Table::Hashes => fields.extend([text("field"), text("value")]),
            Table::Lists => {
                fields.extend([Field::new("index", DataType::Int64, false), text("value")])
            }
            Table::Sets => fields.push(text("member")),
            Table::ZSets => fields.extend([
                text("member"),
                Field::new("score", DataType::Float64, false),
            ]),
        }
        Arc::new(Schema::new(fields))
    }

    fn key_type(self) -> Option<KeyType> {
        match self {
            Table::Keys => None,
            Table::Strings => Some(KeyType::String),
            Table::Hashes => Some(KeyType::Hash),
            Table::Lists => Some(KeyType::List),
            Table::Sets => Some(KeyType::Set),
            Table::ZSets => Some(KeyType::ZSet),
        }
    }
}

/// The `redis` schema; its tables read through the current statement's view.
#[derive(Debug)]
pub struct RedisSchema {
    public: Arc<PublicSchema>,
}

impl RedisSchema {
    pub fn new(public: Arc<PublicSchema>) -> RedisSchema {
        RedisSchema { public }
    }
}

#[async_trait]
impl SchemaProvider for RedisSchema {
    fn table_names(&self) -> Vec<String> {
        TABLES.iter().map(|(n, _)| n.to_string()).collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Ok(TABLES.iter().find(|(n, _)| *n == name).map(|(_, t)| {
            Arc::new(RedisTable {
                table: *t,
                public: self.public.clone(),
            }) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLES.iter().any(|(n, _)| *n == name)
    }
}

#[derive(Debug)]
struct RedisTable {
    table: Table,
    public: Arc<PublicSchema>,
}

fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

#[async_trait]
impl TableProvider for RedisTable {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let env = self.public.env().ok_or_else(|| {
            datafusion::error::DataFusionError::Plan("no statement environment".into())
        })?;
        let view = &env.view;
        let now = now_ms();
        let (start, end) = keyspace::meta_range(None);
        let metas = view.scan(&start, &end, None).await.map_err(to_df)?;
        // Live keys of the wanted type, by (db, key).
        let mut live: HashMap<(u8, Vec<u8>), Meta> = HashMap::new();
        let mut order = Vec::new();
        for (k, v) in &metas {
            let (Some((db, key)), Some(meta)) = (keyspace::split_meta_key(k), Meta::decode(v))
            else {
                continue;
            };
            if meta.expired(now) || self.table.key_type().is_some_and(|t| t != meta.key_type) {
                continue;
            }
            order.push((db, key.clone()));
            live.insert((db, key), meta);
        }
        let schema = self.table.schema();
        let mut db_col = Int32Builder::new();
        let mut key_col = StringBuilder::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        match self.table {
            Table::Keys | Table::Strings => {
                let mut third = StringBuilder::new();
                let mut expire =
                    TimestampMicrosecondBuilder::new().with_timezone(crate::types::UTC);
                for (db, key) in &order {
                    let meta = &live[&(*db, key.clone())];
                    db_col.append_value(i32::from(*db));
                    key_col.append_value(text(key));
                    if self.table == Table::Keys {
                        third.append_value(meta.key_type.name());
                    } else {
                        third.append_value(text(&meta.value));
                    }
                    expire.append_option(meta.expire_at_ms.map(|ms| ms * 1000));
                }
                columns.push(Arc::new(db_col.finish()));
                columns.push(Arc::new(key_col.finish()));
                columns.push(Arc::new(third.finish()));
                columns.push(Arc::new(expire.finish()));
            }
            _ => {
                let (start, end) = keyspace::elements_range(None);
                let elements = view.scan(&start, &end, None).await.map_err(to_df)?;
                let mut a = StringBuilder::new();
                let mut b = StringBuilder::new();
                let mut index = Int64Builder::new();
                let mut score = Float64Builder::new();
                for (k, v) in &elements {
                    let Some((db, key, kind, sub)) = keyspace::split_element_key(k) else {
                        continue;
                    };
                    if kind != KIND_MEMBER {
                        continue;
                    }
                    let Some(meta) = live.get(&(db, key.clone())) else {
                        continue;
                    };
                    db_col.append_value(i32::from(db));
                    key_col.append_value(text(&key));
                    match self.table {
                        Table::Hashes => {
                            a.append_value(text(sub));
                            b.append_value(text(v));
                        }
                        Table::Lists => {
                            let seq = keyspace::decode_seq(sub).unwrap_or(meta.head);
                            index.append_value(seq - meta.head);
                            b.append_value(text(v));
                        }
                        Table::Sets => a.append_value(text(sub)),
                        _ => {
                            a.append_value(text(sub));
                            let raw: [u8; 8] = v
                                .get(..8)
                                .and_then(|s| s.try_into().ok())
                                .unwrap_or_default();
                            score.append_value(f64::from_be_bytes(raw));
                        }
                    }
                }
                columns.push(Arc::new(db_col.finish()));
                columns.push(Arc::new(key_col.finish()));
                match self.table {
                    Table::Hashes => {
                        columns.push(Arc::new(a.finish()));
                        columns.push(Arc::new(b.finish()));
                    }
                    Table::Lists => {
                        columns.push(Arc::new(index.finish()));
                        columns.push(Arc::new(b.finish()));
                    }
                    Table::Sets => columns.push(Arc::new(a.finish())),
                    _ => {
                        columns.push(Arc::new(a.finish()));
                        columns.push(Arc::new(score.finish()));
                    }
                }
            }
        }
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            schema,
            projection.cloned(),
        )?)
    }
}
