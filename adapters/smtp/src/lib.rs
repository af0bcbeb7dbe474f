//! E-mail delivery for Bazaar notifications: [`SmtpSender`], a
//! [`NotificationSender`](bazaar_core::notifications::NotificationSender)
//! over SMTP with lettre (rustls, pooled connections).
//!
//! A notification is `sent` only when the server accepted the message.
//! Failures are classified for the core's event flow, which stores the
//! notification `failed` and retries or dead-letters its event by the
//! error's kind:
//!
//! | the server | the error | the event flow |
//! |---|---|---|
//! | 4xx, timeout, lost connection (after the sender's own retries), breaker open | `Unavailable` | retried with backoff, then dead-lettered |
//! | 5xx refusing the message or recipient | `Validation` on `email` | dead-lettered at once (permanent) |
//! | 530/534/535/538: our credentials | `Internal` | retried, then dead-lettered; replayable once fixed |
//! | unknown user, undeliverable address | `Validation` | dead-lettered at once |
//!
//! ```no_run
//! use std::sync::Arc;
//! use bazaar_smtp::{SmtpConfig, SmtpSender};
//! # fn main() -> bazaar_core::Result<()> {
//! # let users: Arc<dyn bazaar_core::auth::UserRepository> = unimplemented_users();
//! let config = SmtpConfig::from_values("smtps://mailer:secret@smtp.example.com:465", "Bazaar <noreply@example.com>")?;
//! let sender = SmtpSender::new(config, users)?;
//! # let _ = sender; Ok(()) }
//! # fn unimplemented_users() -> Arc<dyn bazaar_core::auth::UserRepository> { panic!() }
//! ```

mod config;
mod message;
mod sender;

pub use config::SmtpConfig;
pub use message::{message_id, subject};
pub use sender::{SmtpFailure, SmtpSender};
