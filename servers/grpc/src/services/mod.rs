//! The four `bazaar.v1` services. Each is thin: read the caller from the
//! metadata, convert the request, call one core service, convert the
//! result, and map any error with [`crate::error::status`].

mod catalog;
mod licensing;
mod notifications;
mod orders;

pub use catalog::Catalog;
pub use licensing::Licensing;
pub use notifications::Notifications;
pub use orders::Orders;
