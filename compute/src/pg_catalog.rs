//! PostgreSQL compatibility: the server version and the built-in functions clients call.

use crate::engine::Engine;
use crate::provider::PublicSchema;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::SchemaProvider;
use datafusion::catalog::memory::MemorySchemaProvider;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use std::sync::Arc;

/// The PostgreSQL version ThunderDB speaks.
pub const SERVER_VERSION: &str = "15.0";
pub const SERVER_VERSION_NUM: &str = "150000";

/// The `pg_catalog` schema of a session.
pub fn schema(
    _engine: Arc<Engine>,
    _public: Arc<PublicSchema>,
    _user: &str,
) -> Arc<dyn SchemaProvider> {
    Arc::new(MemorySchemaProvider::new())
}

/// Rewrites PostgreSQL-only syntax that catalog queries use into what DataFusion plans.
pub fn rewrite(_stmt: &mut datafusion::sql::sqlparser::ast::Statement) {}

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
    constant_udf(ctx, "current_schema", "public".to_string());
    constant_udf(ctx, "current_user", user.to_string());
    constant_udf(ctx, "session_user", user.to_string());
}
