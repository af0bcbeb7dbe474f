//! Contract suite for [`NotificationSender`]: the in-memory recording
//! sender and every real channel (SMTP against its test server) run it.
//!
//! The harness tells the suite what the channel accepted and lets it make
//! the channel refuse for a while, so "`Ok` only once the channel accepted
//! it" and "failures are `Unavailable`" are checked against the channel's
//! own record, not the sender's word.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::clock::Timestamp;
use crate::error::ErrorKind;
use crate::ids::{EventId, NotificationId, OrderId, UserId};
use crate::notifications::{Channel, Notification, NotificationSender, NotificationStatus, Template, dedup_key};

/// What the suite needs besides the sender.
pub struct SenderHarness<'a> {
    /// A recipient the channel can reach.
    pub recipient: UserId,
    /// The channel the sender delivers on (notifications are addressed to it).
    pub channel: Channel,
    /// The ids of the notifications the channel accepted so far, once per
    /// acceptance, in any order.
    pub accepted: &'a (dyn Fn() -> BoxFuture<'static, Vec<NotificationId>> + Send + Sync),
    /// Makes the channel refuse every delivery transiently (`true`) or
    /// accept again (`false`).
    pub set_refusing: &'a (dyn Fn(bool) -> BoxFuture<'static, ()> + Send + Sync),
}

impl std::fmt::Debug for SenderHarness<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderHarness").field("recipient", &self.recipient).field("channel", &self.channel).finish()
    }
}

/// A queued notification to `user` on `channel`.
pub fn notification(user: UserId, channel: Channel, template: Template, body: &str) -> Notification {
    let created_at: Timestamp = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("in range");
    Notification {
        id: NotificationId::new(),
        user_id: user,
        order_id: Some(OrderId::new()),
        channel,
        template,
        body: body.to_owned(),
        status: NotificationStatus::Queued,
        attempts: 0,
        created_at,
        sent_at: None,
        dedup_key: dedup_key(EventId::new(), user, template, channel),
    }
}

fn counts(ids: Vec<NotificationId>) -> HashMap<NotificationId, usize> {
    let mut out = HashMap::new();
    for id in ids {
        *out.entry(id).or_insert(0) += 1;
    }
    out
}

const TEMPLATES: [Template; 5] = [
    Template::OrderPlaced,
    Template::LicenseIssued,
    Template::OrderRefunded,
    Template::ProductApproved,
    Template::ProductRejected,
];

/// `Ok` means accepted: every template is delivered once per send, a
/// resend after success is accepted again (at-least-once), and bodies in
/// any script go through.
///
/// # Panics
/// When the sender breaks the [`NotificationSender`] contract.
pub async fn accepted_means_delivered(sender: &dyn NotificationSender, h: &SenderHarness<'_>) {
    let before = counts((h.accepted)().await);
    let mut sent = Vec::new();
    for (i, template) in TEMPLATES.into_iter().enumerate() {
        let body = format!("Notification {i} — café, 注文, ✓. Find it under Licenses in your account.");
        let n = notification(h.recipient, h.channel, template, &body);
        sender.send(&n).await.unwrap_or_else(|e| panic!("sending {template}: {e}"));
        sent.push(n);
    }
    sender.send(&sent[0]).await.expect("a notification may be sent again");
    let after = counts((h.accepted)().await);
    for (i, n) in sent.iter().enumerate() {
        let (was, is) = (before.get(&n.id).copied().unwrap_or(0), after.get(&n.id).copied().unwrap_or(0));
        let gained = is.checked_sub(was).expect("the channel's record of acceptances only grows");
        let expected = if i == 0 { 2 } else { 1 };
        assert_eq!(gained, expected, "{} accepted {gained} times after {expected} successful sends", n.template);
    }
}

/// While the channel refuses, `send` fails with [`ErrorKind::Unavailable`]
/// and nothing counts as accepted; once it accepts again, the same
/// notification goes through.
///
/// # Panics
/// When the sender breaks the [`NotificationSender`] contract.
pub async fn refusals_are_unavailable_and_retryable(sender: &dyn NotificationSender, h: &SenderHarness<'_>) {
    let n = notification(h.recipient, h.channel, Template::OrderPlaced, "Your order was placed.");
    (h.set_refusing)(true).await;
    let refused = sender.send(&n).await;
    (h.set_refusing)(false).await;
    let err = refused.expect_err("a refusing channel cannot report success");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "a transient refusal is Unavailable: {err}");
    assert!(!(h.accepted)().await.contains(&n.id), "a failed send delivered nothing");
    sender.send(&n).await.expect("the retry after the channel recovered");
    assert_eq!(counts((h.accepted)().await).get(&n.id), Some(&1), "delivered exactly once");
}

/// Sends from many tasks at once all succeed and all arrive.
///
/// # Panics
/// When the sender breaks the [`NotificationSender`] contract.
pub async fn concurrent_sends_all_arrive(sender: Arc<dyn NotificationSender>, h: &SenderHarness<'_>) {
    let batch: Vec<Notification> = (0..16)
        .map(|i| notification(h.recipient, h.channel, Template::LicenseIssued, &format!("License {i} is ready.")))
        .collect();
    let results = futures::future::join_all(batch.iter().map(|n| {
        let sender = Arc::clone(&sender);
        let n = n.clone();
        async move { sender.send(&n).await }
    }))
    .await;
    for (n, r) in batch.iter().zip(results) {
        r.unwrap_or_else(|e| panic!("concurrent send of {}: {e}", n.id));
    }
    let accepted = counts((h.accepted)().await);
    for n in &batch {
        assert_eq!(accepted.get(&n.id), Some(&1), "{} arrived once", n.id);
    }
}

/// Every suite above.
///
/// # Panics
/// When the sender breaks the [`NotificationSender`] contract.
pub async fn notification_sender_contract(sender: Arc<dyn NotificationSender>, h: &SenderHarness<'_>) {
    accepted_means_delivered(&*sender, h).await;
    refusals_are_unavailable_and_retryable(&*sender, h).await;
    concurrent_sends_all_arrive(sender, h).await;
}
