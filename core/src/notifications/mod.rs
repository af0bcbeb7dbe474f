//! Notifications: what users are told when their orders, licenses and
//! products change, on the channels they chose.
//!
//! Event handlers call [`NotificationService::notify`] with the causing
//! event; the body is rendered from the template and the event payload
//! ([`render`], pure), stored once per (cause event, user, template,
//! channel) — the [`dedup_key`] — and handed to a [`NotificationSender`]
//! ([`LogSender`] by default). Delivery is at-least-once: a failed send
//! leaves the notification `failed` and fails the handler, so the event is
//! retried and the notification re-sent.

mod model;
mod ports;
mod render;
mod sender;
mod service;

pub use model::{Channel, Notification, NotificationStatus, Preferences, StatusUpdate, Template, dedup_key};
#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockNotificationRepository, MockNotificationSender};
pub use ports::{NotificationRepository, NotificationSender};
pub use render::render;
pub use sender::LogSender;
pub use service::{Notice, NotificationService};
