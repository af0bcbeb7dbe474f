//! The connection to the broker: one [`Link`] (a connection, its publisher
//! channel and a channel per consumer group) at a time, replaced by a new
//! one with backoff when it breaks ([`Connector`]).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bazaar_core::{Error, Result};
use lapin::options::{BasicQosOptions, ConfirmSelectOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::LongString;
use lapin::{Channel, Connection, ConnectionProperties, ErrorKind};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::options::RabbitOptions;
use crate::topology;

/// The dependency name in [`Error::Unavailable`].
pub(crate) const WHAT: &str = "rabbitmq";

/// A broker failure as [`Error::Unavailable`].
pub(crate) fn unavailable(source: impl Into<bazaar_core::error::BoxError>) -> Error {
    Error::unavailable(WHAT, source)
}

/// `fut`, failing with [`Error::Unavailable`] when it fails or takes
/// longer than `limit`.
pub(crate) async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = lapin::Result<T>>) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(unavailable(format!("{what}: {e}"))),
        Err(_) => Err(unavailable(format!("{what}: no answer within {limit:?}"))),
    }
}

/// The soft (channel-level) AMQP error behind `e`, if any: `NOT_FOUND` for
/// a passive declare of a missing queue, `RESOURCE_LOCKED` for another
/// connection's exclusive queue. The broker closes the channel after one.
pub(crate) fn soft_error(e: &lapin::Error) -> Option<AMQPSoftError> {
    match e.kind() {
        ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(soft) => Some(soft.clone()),
            AMQPErrorKind::Hard(_) => None,
        },
        _ => None,
    }
}

/// One connection and the channels the bus keeps on it.
pub(crate) struct Link {
    /// Counts connections of one bus: receipts carry it, so a delivery of
    /// a connection that is gone (the broker requeued it) is recognised.
    pub(crate) epoch: u64,
    pub(crate) connection: Connection,
    /// In confirm mode: every publish of the bus goes through it.
    pub(crate) publisher: Channel,
    /// Per consumer group: the channel its messages are fetched, acked and
    /// nacked on (delivery tags are per channel).
    groups: Mutex<HashMap<String, Channel>>,
    prefetch: u16,
    request_timeout: Duration,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("epoch", &self.epoch)
            .field("state", &self.connection.status().state())
            .finish_non_exhaustive()
    }
}

impl Link {
    /// Connects, declares the topology and opens the publisher channel.
    async fn open(url: &str, options: &RabbitOptions, epoch: u64) -> Result<Self> {
        let properties = ConnectionProperties::default()
            .with_connection_name(LongString::from(options.connection_name.clone()))
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio::current());
        let limit = options.request_timeout;
        let connection = match tokio::time::timeout(limit, Connection::connect(url, properties)).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(e)) => return Err(connect_error(e)),
            Err(_) => return Err(unavailable(format!("connecting: no answer within {limit:?}"))),
        };
        let setup = async {
            let channel = within(limit, "open channel", connection.create_channel()).await?;
            topology::declare(&channel, options).await?;
            let _ = channel.close(200, "topology declared").await;
            let publisher = within(limit, "open channel", connection.create_channel()).await?;
            within(limit, "confirm.select", publisher.confirm_select(ConfirmSelectOptions::default())).await?;
            Ok::<_, Error>(publisher)
        };
        match setup.await {
            Ok(publisher) => Ok(Self {
                epoch,
                connection,
                publisher,
                groups: Mutex::new(HashMap::new()),
                prefetch: options.prefetch,
                request_timeout: limit,
            }),
            Err(e) => {
                let _ = connection.close(200, "setup failed").await;
                Err(e)
            }
        }
    }

    /// Whether the connection and its publisher channel are up.
    pub(crate) fn alive(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }

    /// A new channel (for work that may close it: a passive declare of a
    /// missing queue, an exclusive declare that is refused).
    pub(crate) async fn channel(&self) -> Result<Channel> {
        within(self.request_timeout, "open channel", self.connection.create_channel()).await
    }

    /// The channel of `group`, opened (with the prefetch) on first use and
    /// again once the broker closed it.
    pub(crate) async fn group_channel(&self, group: &str) -> Result<Channel> {
        if let Some(channel) = self.groups.lock().get(group)
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        let channel = self.channel().await?;
        within(self.request_timeout, "basic.qos", channel.basic_qos(self.prefetch, BasicQosOptions::default())).await?;
        let mut groups = self.groups.lock();
        // A concurrent caller may have opened one too: keep the first, so
        // every delivery of the group is on the channel that stays.
        match groups.get(group) {
            Some(existing) if existing.status().connected() => {
                let existing = existing.clone();
                drop(groups);
                let spare = channel;
                tokio::spawn(async move { spare.close(200, "spare").await });
                Ok(existing)
            }
            _ => {
                groups.insert(group.to_owned(), channel.clone());
                Ok(channel)
            }
        }
    }

    /// Closes the connection (the broker requeues every unacked delivery).
    pub(crate) async fn close(&self) {
        let _ = self.connection.close(200, "bazaar bus closing").await;
    }
}

fn connect_error(e: lapin::Error) -> Error {
    match e.kind() {
        ErrorKind::ProtocolError(amqp) if matches!(amqp.kind(), AMQPErrorKind::Hard(_)) => {
            unavailable(format!("the broker refused the connection: {e}"))
        }
        _ => unavailable(format!("connecting: {e}")),
    }
}

/// Keeps one live [`Link`], reconnecting with backoff.
pub(crate) struct Connector {
    url: String,
    options: RabbitOptions,
    current: Mutex<Option<Arc<Link>>>,
    /// One reconnection at a time; callers arriving meanwhile wait for it.
    reconnecting: tokio::sync::Mutex<()>,
    epochs: AtomicU64,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector").field("link", &*self.current.lock()).finish_non_exhaustive()
    }
}

/// First and longest pause between connection attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(1));

impl Connector {
    /// Connects once (no retry: a bad URL or a broker that is down fails
    /// the caller at once).
    pub(crate) async fn connect(url: &str, options: RabbitOptions) -> Result<Self> {
        let link = Link::open(url, &options, 1).await?;
        Ok(Self {
            url: url.to_owned(),
            options,
            current: Mutex::new(Some(Arc::new(link))),
            reconnecting: tokio::sync::Mutex::new(()),
            epochs: AtomicU64::new(1),
        })
    }

    /// The live link, if there is one now.
    pub(crate) fn current(&self) -> Option<Arc<Link>> {
        self.current.lock().clone().filter(|link| link.alive())
    }

    /// The live link, reconnecting (with backoff, until `deadline`) when
    /// there is none.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when no connection could be made by `deadline`.
    pub(crate) async fn link(&self, deadline: Instant) -> Result<Arc<Link>> {
        if let Some(link) = self.current() {
            return Ok(link);
        }
        let _one_at_a_time = match tokio::time::timeout_at(deadline, self.reconnecting.lock()).await {
            Ok(guard) => guard,
            Err(_) => return Err(unavailable("the broker connection is down and reconnecting took too long")),
        };
        if let Some(link) = self.current() {
            return Ok(link);
        }
        let stale = self.current.lock().take();
        if let Some(stale) = stale {
            tracing::warn!(epoch = stale.epoch, "the RabbitMQ connection was lost; reconnecting");
            tokio::spawn(async move { stale.close().await });
        }
        let mut pause = BACKOFF.0;
        loop {
            let epoch = self.epochs.fetch_add(1, Ordering::Relaxed) + 1;
            let why = match Link::open(&self.url, &self.options, epoch).await {
                Ok(link) => {
                    let link = Arc::new(link);
                    *self.current.lock() = Some(link.clone());
                    tracing::info!(epoch, "reconnected to RabbitMQ");
                    return Ok(link);
                }
                Err(e) => e,
            };
            if Instant::now() + pause >= deadline {
                return Err(why);
            }
            tracing::debug!(error = %why, ?pause, "RabbitMQ reconnection attempt failed");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(BACKOFF.1);
        }
    }

    /// Drops `link` if it is still the current one and its connection is
    /// down, so the next caller reconnects.
    pub(crate) fn broken(&self, link: &Link) {
        if link.alive() {
            return;
        }
        let mut current = self.current.lock();
        if current.as_ref().is_some_and(|c| c.epoch == link.epoch) {
            *current = None;
        }
    }

    /// Drops `link` if it is still the current one, live or not, so the
    /// next caller reconnects and declares the topology again.
    pub(crate) fn reset(&self, link: &Link) {
        let mut current = self.current.lock();
        if let Some(stale) = current.take_if(|c| c.epoch == link.epoch) {
            tokio::spawn(async move { stale.close().await });
        }
    }

    /// Closes the current connection.
    pub(crate) async fn close(&self) {
        let link = self.current.lock().take();
        if let Some(link) = link {
            link.close().await;
        }
    }
}
