//! The live notification streams of a process that serves the REST API
//! (`GET /v1/notifications/stream`).
//!
//! Notifications are created wherever the notification handler runs (the
//! worker: `bazaar worker`, or inside `bazaar serve`), which publishes a
//! `notification.created` event for each (the marketplace is built with
//! [`live_notifications`](bazaar_core::marketplace::MarketplaceBuilder::live_notifications)
//! on, see [`crate::market::builder`]). Each process serving the API
//! follows the bus through a fan-out group of its own,
//! `notification-stream-<uuid>`, so every replica sees every notification
//! and hands it to the streams its users hold open
//! ([`LiveNotifications`](bazaar_core::notifications::LiveNotifications)).
//! The group is opened before the API listens and left on a clean stop;
//! the broker removes the group of a process that died after
//! [`FANOUT_IDLE`].
//!
//! With the in-process bus (no broker configured) only notifications
//! created in this process arrive, which covers `bazaar serve`; separate
//! processes need a broker, as for every other consumer.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bazaar_core::Result;
use bazaar_core::marketplace::Marketplace;

/// How long the broker keeps the fan-out group of a process that stopped
/// asking for events (it asks at least twice a second while alive).
pub const FANOUT_IDLE: Duration = Duration::from_secs(300);

/// A running follower: this process's fan-out group and the task feeding
/// the marketplace's live streams from it. Dropping it stops the task.
pub struct LiveFeed {
    market: Arc<Marketplace>,
    group: String,
    follower: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for LiveFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveFeed").field("group", &self.group).finish_non_exhaustive()
    }
}

impl Drop for LiveFeed {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

impl LiveFeed {
    /// Opens a fresh fan-out group on the marketplace's bus and starts
    /// following it.
    ///
    /// # Errors
    /// The bus cannot open the group.
    pub async fn start(market: Arc<Marketplace>) -> Result<Self> {
        let group = format!("notification-stream-{}", uuid::Uuid::now_v7().simple());
        market.live.join(&group, FANOUT_IDLE).await?;
        let (follower_market, follower_group) = (market.clone(), group.clone());
        let follower = tokio::spawn(async move { follower_market.live.follow(&follower_group).await });
        tracing::info!(group = group.as_str(), "following the bus for live notification streams");
        Ok(Self { market, group, follower })
    }

    /// This process's consumer group on the bus.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Stops following, ends the open streams (reason `shutdown`) and
    /// leaves the group (a clean stop; failures are logged).
    pub async fn close(&self) {
        self.follower.abort();
        self.market.live.close_all();
        match self.market.live.leave(&self.group).await {
            Ok(()) => tracing::info!(group = self.group.as_str(), "left the live notifications' consumer group"),
            Err(e) => tracing::warn!(
                error = %e,
                group = self.group.as_str(),
                "could not leave the live notifications' consumer group"
            ),
        }
    }
}
