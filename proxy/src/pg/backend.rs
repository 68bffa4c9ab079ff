//! The seam between the wire protocol and the SQL engine.
//!
//! The frontend talks to a [`SqlSession`] rather than to `thunderdb_compute::Session` directly
//! so that the protocol can be tested end to end with real clients against a scripted engine.

use std::sync::Arc;

use async_trait::async_trait;
use thunderdb_common::ThunderError;
use thunderdb_compute::arrow::array::RecordBatch;
use thunderdb_compute::arrow::datatypes::DataType;
use thunderdb_compute::{
    CopyInTarget, Engine, PreparedStatement, QueryOutput, RoleDef, ScalarValue, Session, TxnStatus,
};

/// Makes the running statement of a session fail with SQLSTATE 57014.
pub(crate) type Canceller = Arc<dyn Fn() + Send + Sync>;

/// One client's SQL session: what `thunderdb_compute::Session` offers the frontend.
#[async_trait]
pub(crate) trait SqlSession: Send {
    async fn execute_batch(&mut self, sql: &str) -> Vec<Result<QueryOutput, ThunderError>>;
    async fn prepare(
        &mut self,
        sql: &str,
        param_types: &[Option<DataType>],
    ) -> Result<PreparedStatement, ThunderError>;
    async fn execute_prepared(
        &mut self,
        stmt: &PreparedStatement,
        params: Vec<ScalarValue>,
    ) -> Result<QueryOutput, ThunderError>;
    fn txn_status(&self) -> TxnStatus;
    fn canceller(&self) -> Canceller;
    fn parameter(&self, name: &str) -> Option<String>;
    /// Marks an open transaction block failed after an error the frontend raised itself.
    fn fail_transaction(&mut self);
    /// Applies a startup-packet setting.
    fn set_parameter(&mut self, name: &str, value: &str) -> Result<(), ThunderError>;
    /// Ends the session (its temporary tables are dropped).
    async fn close(&mut self);
    /// Inserts the rows of a `COPY … FROM STDIN`; returns how many.
    async fn copy_in(
        &mut self,
        target: &CopyInTarget,
        batches: Vec<RecordBatch>,
    ) -> Result<u64, ThunderError>;
}

/// Opens sessions for authenticated users, and finds the roles that log in.
#[async_trait]
pub(crate) trait SessionFactory: Send + Sync + 'static {
    fn new_session(&self, user: &str, database: &str) -> Result<Box<dyn SqlSession>, ThunderError>;
    /// The catalog's role called `name`, as last committed.
    async fn role(&self, name: &str) -> Result<Option<RoleDef>, ThunderError>;
}

#[async_trait]
impl SessionFactory for Arc<Engine> {
    fn new_session(&self, user: &str, database: &str) -> Result<Box<dyn SqlSession>, ThunderError> {
        Ok(Box::new(Engine::new_session(self, user, database)?))
    }

    async fn role(&self, name: &str) -> Result<Option<RoleDef>, ThunderError> {
        Engine::role(self, name).await
    }
}

#[async_trait]
impl SqlSession for Session {
    async fn close(&mut self) {
        Session::close(self).await
    }

    async fn execute_batch(&mut self, sql: &str) -> Vec<Result<QueryOutput, ThunderError>> {
        Session::execute_batch(self, sql).await
    }

    async fn prepare(
        &mut self,
        sql: &str,
        param_types: &[Option<DataType>],
    ) -> Result<PreparedStatement, ThunderError> {
        Session::prepare(self, sql, param_types).await
    }

    async fn execute_prepared(
        &mut self,
        stmt: &PreparedStatement,
        params: Vec<ScalarValue>,
    ) -> Result<QueryOutput, ThunderError> {
        Session::execute_prepared(self, stmt, params).await
    }

    fn txn_status(&self) -> TxnStatus {
        Session::txn_status(self)
    }

    fn canceller(&self) -> Canceller {
        let handle = self.cancel_handle();
        Arc::new(move || handle.cancel())
    }

    fn parameter(&self, name: &str) -> Option<String> {
        Session::parameter(self, name)
    }

    fn fail_transaction(&mut self) {
        Session::fail_transaction(self)
    }

    fn set_parameter(&mut self, name: &str, value: &str) -> Result<(), ThunderError> {
        Session::set_parameter(self, name, value)
    }

    async fn copy_in(
        &mut self,
        target: &CopyInTarget,
        batches: Vec<RecordBatch>,
    ) -> Result<u64, ThunderError> {
        Session::copy_in(self, target, batches).await
    }
}
