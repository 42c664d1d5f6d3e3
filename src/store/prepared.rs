//! Statements prepared once per connection. A writer sends the same few statements with every
//! batch; as text, each costs PostgreSQL a parse and a plan and the writer an extra round trip
//! (prepare, then execute) per batch. Prepared on first use, they are reused for the life of the
//! connection. A protocol-level prepared statement outlives the transaction it was prepared in,
//! rolled back or not, so preparing inside a batch's transaction is safe.
//!
//! Such connections plan every execution for its parameters (`plan_cache_mode =
//! force_custom_plan`, set by `store::connect_session`): a generic plan is cached from the statistics of
//! the moment, and a table that was empty then (the fence states, the events of a new
//! deployment) would be scanned whole for good, where its index serves the real arguments.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio_postgres::{Client, GenericClient, Statement};

use super::StoreError;

/// The statements prepared on one connection, by their SQL. Belongs with that connection: a
/// new connection starts with an empty one.
#[derive(Default)]
pub struct Prepared(Mutex<HashMap<&'static str, Statement>>);

impl Prepared {
    /// The statement for `sql`, prepared through `c` the first time it is asked for.
    pub async fn get(
        &self,
        c: &impl GenericClient,
        sql: &'static str,
    ) -> Result<Statement, StoreError> {
        if let Some(s) = self.lock().get(sql) {
            return Ok(s.clone());
        }
        let s = c.prepare(sql).await?;
        self.lock().insert(sql, s.clone());
        Ok(s)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Statement>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A dedicated connection with the statements prepared on it (`store::connect_session`).
pub struct Session {
    pub client: Client,
    pub prepared: Prepared,
}

impl Session {
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}
