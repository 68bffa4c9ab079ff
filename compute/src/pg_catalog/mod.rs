//! PostgreSQL compatibility: the server version, the `pg_catalog` schema built from the
//! statement's catalog, the catalog functions clients call, and the rewrite of the
//! PostgreSQL-only syntax in their queries (psql's `\d` family, drivers' metadata probes).

mod functions;
mod info_schema;
mod model;
mod planner;
mod rewrite;
mod rows;
mod subquery;
mod tables;
mod thunder;
mod types;

#[cfg(test)]
mod tests;

use crate::catalog::Catalog;
use crate::engine::Engine;
use crate::provider::PublicSchema;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::SchemaProvider;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use model::CatalogView;
use std::sync::Arc;

/// The stored width of a column type in bytes (`pg_type.typlen`), `None` when it varies.
pub(crate) fn fixed_width(ty: &thunderdb_common::SqlType) -> Option<u32> {
    let (oid, _) = types::column_type(ty);
    if types::is_array(oid) {
        return None;
    }
    u32::try_from(types::type_storage(oid).0).ok()
}

/// The PostgreSQL version ThunderDB speaks.
pub const SERVER_VERSION: &str = "15.0";
pub const SERVER_VERSION_NUM: &str = "150000";

/// What the catalog tables and functions of one session read: the statement's catalog
/// (through the session's `public` schema) and who is asking.
pub(crate) struct Shared {
    public: Arc<PublicSchema>,
    user: String,
    /// The bootstrap superuser's name.
    superuser: String,
    database: String,
    pages: Option<Arc<dyn thunderdb_pageserver::PageService>>,
    wal: Option<Arc<dyn thunderdb_walservice::WalService>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("user", &self.user)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The schemas of `search_path` that exist, in order.
    fn effective_search_path(&self) -> Vec<String> {
        let catalog = self.public.env().map(|e| e.catalog.clone());
        self.public
            .search_path()
            .into_iter()
            .filter(|s| {
                catalog
                    .as_ref()
                    .map_or(s == "public", |c| c.schema_exists(s))
            })
            .collect()
    }

    /// The catalog of the statement being planned or run (empty between statements).
    fn view(&self) -> CatalogView {
        let catalog = self
            .public
            .env()
            .map(|e| e.catalog.clone())
            .unwrap_or_else(|| Arc::new(Catalog::default()));
        let path = self.effective_search_path();
        let mut view =
            CatalogView::new(catalog, &self.superuser, &self.user, &self.database).with_path(path);
        view.pages = self.pages.clone();
        view.wal = self.wal.clone();
        view
    }
}

/// The `pg_catalog` schema of a session.
pub fn schema(
    engine: Arc<Engine>,
    public: Arc<PublicSchema>,
    user: &str,
) -> Arc<dyn SchemaProvider> {
    Arc::new(tables::PgCatalogSchema {
        shared: Arc::new(Shared {
            public,
            user: user.to_string(),
            superuser: engine.superuser().to_string(),
            database: engine.database().to_string(),
            pages: Some(engine.pages.clone()),
            wal: Some(engine.wal.clone()),
        }),
        tables: tables::TABLES,
    })
}

/// The `information_schema` of a session: its views over what `pg_catalog` (`pg`) reads.
pub fn information_schema(pg: &Arc<dyn SchemaProvider>) -> Option<Arc<dyn SchemaProvider>> {
    let any: &dyn std::any::Any = pg.as_ref();
    let shared = any
        .downcast_ref::<tables::PgCatalogSchema>()?
        .shared
        .clone();
    Some(Arc::new(tables::PgCatalogSchema {
        shared,
        tables: info_schema::INFO_TABLES,
    }))
}

pub use types::internal_name as type_internal_name;

pub(crate) use model::{quote_ident, split_qualified};
pub(crate) use rewrite::{cte_names, parse_query};
pub(crate) use types::arrow_type_oid;

/// The OID of a built-in type called `name`.
pub(crate) fn type_oid_of_name(name: &str) -> Option<i64> {
    types::type_oid(name)
}

/// The OID of the relation (table or sequence) with storage id `id`.
pub(crate) fn relation_oid(id: thunderdb_common::TableId) -> i64 {
    model::table_oid_of(id)
}

/// Rewrites PostgreSQL-only syntax that catalog queries use into what DataFusion plans.
pub fn rewrite(stmt: &mut datafusion::sql::sqlparser::ast::Statement) {
    rewrite::rewrite(stmt)
}

fn constant_udf(ctx: &SessionContext, name: &str, value: String) {
    let v = ScalarValue::Utf8(Some(value));
    let f = Arc::new(move |_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(v.clone())));
    ctx.register_udf(create_udf(
        name,
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        f,
    ));
}

/// The session's catalog state, found through the `pg_catalog` schema registered before.
fn shared_of(ctx: &SessionContext, user: &str, database: &str) -> Arc<Shared> {
    ctx.catalog(database)
        .and_then(|c| c.schema("pg_catalog"))
        .and_then(|s| {
            let any: &dyn std::any::Any = s.as_ref();
            any.downcast_ref::<tables::PgCatalogSchema>()
                .map(|p| p.shared.clone())
        })
        .unwrap_or_else(|| {
            Arc::new(Shared {
                public: Arc::new(PublicSchema::default()),
                user: user.to_string(),
                superuser: user.to_string(),
                database: database.to_string(),
                pages: None,
                wal: None,
            })
        })
}

/// Functions whose answers depend on the session rather than DataFusion.
pub fn register_functions(ctx: &SessionContext, user: &str, database: &str) {
    constant_udf(
        ctx,
        "version",
        format!(
            "PostgreSQL {SERVER_VERSION} (ThunderDB {}) on x86_64-pc-linux-gnu, compiled by rustc, 64-bit",
            env!("CARGO_PKG_VERSION")
        ),
    );
    constant_udf(ctx, "current_database", database.to_string());
    constant_udf(ctx, "current_user", user.to_string());
    constant_udf(ctx, "session_user", user.to_string());
    let shared = shared_of(ctx, user, database);
    functions::register_all(ctx, &shared);
    let state = ctx.state_ref();
    let mut state = state.write();
    // Cannot fail: registering a planner only appends it.
    let _ = datafusion::execution::FunctionRegistry::register_expr_planner(
        &mut *state,
        Arc::new(planner::ArrayLiteralPlanner),
    );
}
