//! In-memory adapters for every bazaar-core port, plus an in-process event
//! bus.
//!
//! They are thread-safe and honest about the core's uniqueness and
//! concurrency rules (they pass the same contract suites as the SQL
//! adapters), so they serve both as the test double of choice and as a real
//! backend for a single process.

mod outbox;

pub use outbox::{MemoryOutbox, OutboxRow};
