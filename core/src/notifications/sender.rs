//! The default sender: writes a structured log line per notification.

use async_trait::async_trait;

use super::{Notification, NotificationSender};
use crate::error::Result;

/// Logs each notification through `tracing` instead of sending it; the
/// embedded default. Logs ids, channel and template only, never the body,
/// which may carry personal details.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSender;

#[async_trait]
impl NotificationSender for LogSender {
    async fn send(&self, n: &Notification) -> Result<()> {
        tracing::info!(
            notification_id = %n.id,
            user_id = %n.user_id,
            order_id = ?n.order_id.map(|o| o.to_string()),
            channel = %n.channel,
            template = %n.template,
            "notification sent"
        );
        Ok(())
    }
}
