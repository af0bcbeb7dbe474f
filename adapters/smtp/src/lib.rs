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
//! # Example
//! Building the sender opens no connection (that happens on the first
//! send, which needs a mail server); a bad setting is refused up front.
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//!
//! use bazaar_core::notifications::Template;
//! use bazaar_memory::{MemoryOutbox, MemoryUsers};
//! use bazaar_smtp::{SmtpConfig, SmtpSender, subject};
//!
//! let config = SmtpConfig::from_values("smtps://mailer:s3cr3t@smtp.example.com:465", "Bazaar <noreply@example.com>")?;
//! assert!(!format!("{config:?}").contains("s3cr3t"), "the password never prints");
//! let users = Arc::new(MemoryUsers::new(MemoryOutbox::new())); // whom notifications are for
//! let sender = SmtpSender::new(config, users)?;
//! assert!(!format!("{sender:?}").contains("s3cr3t"));
//! assert_eq!(subject(Template::LicenseIssued), "Your license is ready");
//!
//! let wrong = SmtpConfig::from_values("https://smtp.example.com", "noreply@example.com").unwrap_err();
//! assert!(matches!(&wrong, bazaar_core::Error::Validation(fields) if fields[0].field == "SMTP_URL"));
//! # Ok::<(), bazaar_core::Error>(())
//! # }).unwrap();
//! ```

mod config;
mod message;
mod sender;

pub use config::SmtpConfig;
pub use message::{message_id, subject};
pub use sender::{SmtpFailure, SmtpSender};
