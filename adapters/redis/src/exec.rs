//! Runs Redis calls on a Tokio runtime whatever executor polls the port.
//!
//! The driver behind [`ConnectionManager`](redis::aio::ConnectionManager)
//! needs a Tokio context (its timers panic without one), but the core's
//! ports are executor-agnostic: the contract suites, for instance, call
//! them from plain threads with `futures::executor::block_on`. Each store
//! captures the runtime it was built on; a call made outside any runtime is
//! spawned there and awaited, while calls from inside a runtime (the normal
//! case) run in place at the cost of one thread-local lookup.

use std::future::Future;

use redis::RedisError;
use tokio::runtime::Handle;

/// The runtime a store was built on, if any.
#[derive(Debug, Clone)]
pub(crate) struct Exec(Option<Handle>);

impl Exec {
    /// Captures the current runtime (none when built outside one; calls
    /// then need a runtime of their own).
    pub(crate) fn capture() -> Self {
        Self(Handle::try_current().ok())
    }

    /// Awaits `call` in a Tokio context.
    pub(crate) async fn run<T, F>(&self, call: F) -> Result<T, RedisError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, RedisError>> + Send + 'static,
    {
        match &self.0 {
            Some(handle) if Handle::try_current().is_err() => handle.spawn(call).await.map_err(|e| {
                // Only a runtime shutting down cancels the task; a panic in
                // the driver is reported the same way rather than re-raised.
                RedisError::from((redis::ErrorKind::Io, "redis call task did not finish", e.to_string()))
            })?,
            _ => call.await,
        }
    }
}
