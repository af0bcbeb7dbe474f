//! Notification records, channels, templates and per-user preferences.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{EventId, NotificationId, OrderId, UserId};

/// How a notification reaches its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Shown in the app (`GET /v1/notifications`).
    InApp,
    /// Sent by e-mail.
    Email,
    /// Posted to the user's webhook.
    Webhook,
}

impl Channel {
    /// Every channel, in the order notifications are created.
    pub const ALL: [Channel; 3] = [Self::InApp, Self::Email, Self::Webhook];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InApp => "in_app",
            Self::Email => "email",
            Self::Webhook => "webhook",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a notification says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// To the buyer: their order was placed.
    OrderPlaced,
    /// To the buyer: a license was issued.
    LicenseIssued,
    /// To the buyer: their order was refunded.
    OrderRefunded,
    /// To the vendor: their product was approved.
    ProductApproved,
    /// To the vendor: their product was rejected, with the reason.
    ProductRejected,
}

impl Template {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderPlaced => "order_placed",
            Self::LicenseIssued => "license_issued",
            Self::OrderRefunded => "order_refunded",
            Self::ProductApproved => "product_approved",
            Self::ProductRejected => "product_rejected",
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a notification is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    /// Stored, not yet handed to the sender.
    Queued,
    /// The sender accepted it.
    Sent,
    /// The last send attempt failed; a retry of the causing event sends again.
    Failed,
}

impl NotificationStatus {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    /// The status after a send attempt that `succeeded` or not: the one
    /// transition function of a notification.
    ///
    /// ```text
    /// queued --send ok--> sent      queued --send failed--> failed
    /// failed --send ok--> sent      failed --send failed--> failed
    /// ```
    /// `sent` is absorbing.
    ///
    /// # Errors
    /// [`Error::InvalidTransition`] from `sent`: a sent notification is
    /// never sent again.
    pub fn after_send(self, succeeded: bool) -> Result<Self> {
        match self {
            Self::Sent => Err(Error::transition("notification", self, "send")),
            Self::Queued | Self::Failed if succeeded => Ok(Self::Sent),
            Self::Queued | Self::Failed => Ok(Self::Failed),
        }
    }
}

impl fmt::Display for NotificationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One message to one user on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Its id.
    pub id: NotificationId,
    /// The recipient.
    pub user_id: UserId,
    /// The order it is about, if any.
    pub order_id: Option<OrderId>,
    /// How it is delivered.
    pub channel: Channel,
    /// What it says.
    pub template: Template,
    /// The rendered text.
    pub body: String,
    /// Delivery status.
    pub status: NotificationStatus,
    /// Send attempts so far.
    pub attempts: u32,
    /// When it was created.
    pub created_at: Timestamp,
    /// When the sender accepted it.
    pub sent_at: Option<Timestamp>,
    /// Unique per (cause event, user, template, channel); see [`dedup_key`].
    pub dedup_key: String,
}

/// The outcome of one send, for [`NotificationRepository::update_statuses`](super::NotificationRepository::update_statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusUpdate {
    /// The notification.
    pub id: NotificationId,
    /// Its new status.
    pub status: NotificationStatus,
    /// Send attempts so far.
    pub attempts: u32,
    /// When the sender accepted it.
    pub sent_at: Option<Timestamp>,
}

/// The idempotency key of a notification: one per causing event, recipient,
/// template and channel, so a redelivered event notifies nobody twice.
pub fn dedup_key(cause: EventId, user_id: UserId, template: Template, channel: Channel) -> String {
    format!("{cause}:{user_id}:{template}:{channel}")
}

/// A user's channel choices. The default is in-app and e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Preferences {
    /// Show in the app.
    pub in_app: bool,
    /// Send e-mail.
    pub email: bool,
    /// Call the user's webhook.
    pub webhook: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Self { in_app: true, email: true, webhook: false }
    }
}

impl Preferences {
    /// Preferences enabling exactly `channels`.
    ///
    /// # Errors
    /// [`Error::Validation`] on `channels` when it is empty: a user who wants
    /// nothing would silently miss license keys and refunds.
    pub fn new(channels: &[Channel]) -> Result<Self> {
        let p = Self {
            in_app: channels.contains(&Channel::InApp),
            email: channels.contains(&Channel::Email),
            webhook: channels.contains(&Channel::Webhook),
        };
        p.validate()?;
        Ok(p)
    }

    /// Checks at least one channel is enabled.
    ///
    /// # Errors
    /// [`Error::Validation`] on `channels` otherwise.
    pub fn validate(&self) -> Result<()> {
        if self.channels().is_empty() {
            return Err(Error::invalid("channels", "enable at least one channel"));
        }
        Ok(())
    }

    /// Whether `channel` is enabled.
    pub fn allows(&self, channel: Channel) -> bool {
        match channel {
            Channel::InApp => self.in_app,
            Channel::Email => self.email,
            Channel::Webhook => self.webhook,
        }
    }

    /// The enabled channels, in [`Channel::ALL`] order.
    pub fn channels(&self) -> Vec<Channel> {
        Channel::ALL.into_iter().filter(|c| self.allows(*c)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sent_is_absorbing_and_queued_never_comes_back(outcomes in proptest::collection::vec(any::<bool>(), 0..20)) {
            let mut status = NotificationStatus::Queued;
            for ok in outcomes {
                match status.after_send(ok) {
                    Ok(next) => {
                        prop_assert_ne!(status, NotificationStatus::Sent, "left sent");
                        prop_assert_ne!(next, NotificationStatus::Queued, "back to queued");
                        prop_assert_eq!(next == NotificationStatus::Sent, ok);
                        status = next;
                    }
                    Err(e) => {
                        prop_assert_eq!(status, NotificationStatus::Sent);
                        prop_assert_eq!(e.code(), "invalid_transition");
                    }
                }
            }
        }
    }

    #[test]
    fn default_preferences_are_in_app_and_email() {
        assert_eq!(Preferences::default().channels(), vec![Channel::InApp, Channel::Email]);
    }

    #[test]
    fn preferences_need_a_channel() {
        assert_eq!(Preferences::new(&[]).unwrap_err().code(), "validation");
        assert_eq!(Preferences::new(&[Channel::Webhook]).unwrap().channels(), vec![Channel::Webhook]);
    }

    #[test]
    fn wire_names_are_snake_case() {
        assert_eq!(serde_json::to_value(Channel::InApp).unwrap(), "in_app");
        assert_eq!(serde_json::to_value(Template::ProductRejected).unwrap(), "product_rejected");
        assert_eq!(serde_json::to_value(NotificationStatus::Queued).unwrap(), "queued");
    }

    #[test]
    fn dedup_keys_differ_by_each_part() {
        let (e, u) = (EventId::new(), UserId::new());
        let k = dedup_key(e, u, Template::OrderPlaced, Channel::Email);
        assert_ne!(k, dedup_key(EventId::new(), u, Template::OrderPlaced, Channel::Email));
        assert_ne!(k, dedup_key(e, UserId::new(), Template::OrderPlaced, Channel::Email));
        assert_ne!(k, dedup_key(e, u, Template::LicenseIssued, Channel::Email));
        assert_ne!(k, dedup_key(e, u, Template::OrderPlaced, Channel::InApp));
    }
}
