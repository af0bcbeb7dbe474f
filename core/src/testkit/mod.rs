//! Contract test suites, one per port, run by every adapter crate.
pub mod assets;
pub mod blob_store;
pub mod catalog;
pub mod directory;
pub mod events;
pub mod flows;
pub mod licensing;
pub mod notification_sender;
pub mod notifications;
pub mod orders;
pub mod payment_provider;
pub mod payments;
pub mod rate_limit;
pub mod search;
pub mod search_load;
pub mod sessions;
pub mod users;
