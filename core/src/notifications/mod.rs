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
//!
//! Users can also watch their in-app notifications live: [`live`] fans
//! `notification.created` events out to each process's open streams.

pub mod live;
mod model;
mod ports;
mod render;
mod sender;
mod service;

pub use live::{LiveNotifications, LiveSubscription, NotificationCreated, StreamEnd, is_live};
pub use model::{Channel, Notification, NotificationStatus, Preferences, StatusUpdate, Template, dedup_key};
#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockNotificationRepository, MockNotificationSender};
pub use ports::{NotificationRepository, NotificationSender, check_distinct_updates};
pub use render::render;
pub use sender::LogSender;
pub use service::{Notice, NotificationService};

/// What a fake `update_statuses` answers in unit tests: a record per update
/// with the update's delivery fields, about `template`.
#[cfg(test)]
pub(crate) fn recorded(updates: &[StatusUpdate], template: Template) -> Vec<Notification> {
    updates
        .iter()
        .map(|u| Notification {
            id: u.id,
            user_id: crate::ids::UserId::new(),
            order_id: None,
            channel: Channel::InApp,
            template,
            body: String::new(),
            status: u.status,
            attempts: u.attempts,
            created_at: u.sent_at.expect("a sent notification"),
            sent_at: u.sent_at,
            dedup_key: String::new(),
        })
        .collect()
}
