//! Contract test suites, one per port, run by every adapter crate.
pub mod assets;
pub mod catalog;
pub mod directory;
pub mod events;
pub mod flows;
pub mod licensing;
pub mod notifications;
pub mod orders;
pub mod payments;
pub mod rate_limit;
pub mod search;
pub mod sessions;
pub mod users;
