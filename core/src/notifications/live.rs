//! Live notifications: each process's fan-out of `notification.created`
//! events to the streams its users hold open (`GET
//! /v1/notifications/stream`).
//!
//! # How a notification reaches a stream
//! 1. The [`NotificationService`](super::NotificationService) stores and
//!    sends a notification, then publishes a `notification.created` event
//!    ([`NotificationCreated`]) carrying the in-app record, when the
//!    marketplace was built with
//!    `MarketplaceBuilder::live_notifications`.
//!    That happens in whichever process runs the notification handler (the
//!    worker), usually not the one the user's stream is connected to.
//! 2. Every process that serves streams follows the bus through a
//!    fan-out consumer group of its own ([`LiveNotifications::join`],
//!    [`LiveNotifications::follow`]), so each sees every event.
//! 3. [`LiveNotifications::deliver`] hands each record to the streams of
//!    its recipient alone, through a bounded buffer per stream. Delivery
//!    never waits: a stream whose buffer is full is dropped and ends with
//!    [`StreamEnd::Lagged`], so one slow client costs at most its buffer
//!    and delays nobody.
//!
//! Only in-app records are streamed ([`is_live`]): the stream is the
//! in-app channel seen live, and a user who turned in-app notifications off
//! gets none. Delivery is at most once per stream and at least once
//! overall (a redelivered event is pushed again): clients deduplicate by
//! id, and re-read `GET /v1/notifications` (or resume with the last id,
//! [`NotificationService::missed`](super::NotificationService::missed))
//! after a drop.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Channel, Notification};
use crate::auth::{Action, Actor, Resource, authorize};
use crate::error::Result;
use crate::events::{Delivery, EventPayload, EventSubscriber, EventType};
use crate::ids::UserId;

/// `notification.created`: the stored record, exactly as
/// `GET /v1/notifications` lists it (`data` is the record itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NotificationCreated {
    /// The notification.
    pub notification: Notification,
}

impl EventPayload for NotificationCreated {
    const TYPE: EventType = EventType::NotificationCreated;
}

/// Whether `notification` goes to live streams: in-app records only.
pub fn is_live(notification: &Notification) -> bool {
    notification.channel == Channel::InApp
}

/// Why a [`LiveSubscription`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Its buffer was full when a notification arrived: the client read too
    /// slowly, and was dropped rather than let memory grow.
    Lagged,
    /// The process is stopping ([`LiveNotifications::close_all`]).
    Shutdown,
}

impl StreamEnd {
    /// The snake_case name, for close frames and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lagged => "lagged",
            Self::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for StreamEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const OPEN: u8 = 0;
const LAGGED: u8 = 1;
const SHUTDOWN: u8 = 2;

/// One open stream, as the hub holds it.
struct Slot {
    id: u64,
    tx: mpsc::Sender<Notification>,
    end: Arc<AtomicU8>,
}

/// The live notification streams of one process, and the bus they are fed
/// from. Cheap to share (`Arc`); the `Marketplace` holds one (its `live`).
///
/// # Example
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use bazaar_core::auth::{Actor, Role};
/// use bazaar_core::clock::{Clock, ManualClock};
/// use bazaar_core::ids::{NotificationId, UserId};
/// use bazaar_core::notifications::{Channel, LiveNotifications, Notification, NotificationStatus, StreamEnd, Template};
/// use bazaar_memory::InProcessBus;
///
/// let clock = Arc::new(ManualClock::at_epoch_secs(0));
/// let live = Arc::new(LiveNotifications::new(Arc::new(InProcessBus::new(clock.clone())), 1));
/// let alice = Actor::new(UserId::new(), Role::Customer);
/// let mut stream = live.subscribe(&alice).unwrap();
/// let note = |user_id| Notification {
///     id: NotificationId::new(), user_id, order_id: None, channel: Channel::InApp,
///     template: Template::OrderPlaced, body: "Order placed".into(), status: NotificationStatus::Sent,
///     attempts: 1, created_at: clock.now(), sent_at: Some(clock.now()), dedup_key: String::new(),
/// };
/// assert_eq!(live.deliver(&note(UserId::new())), 0, "someone else's: not delivered");
/// let first = note(alice.user_id);
/// assert_eq!(live.deliver(&first), 1);
/// // The buffer holds one: the next one drops the stream instead of waiting.
/// assert_eq!(live.deliver(&note(alice.user_id)), 0);
/// assert_eq!(stream.next().await.unwrap().id, first.id);
/// assert_eq!(stream.next().await.unwrap_err(), StreamEnd::Lagged);
/// assert_eq!(live.open_streams(), 0);
/// # });
/// ```
pub struct LiveNotifications {
    subscriber: Arc<dyn EventSubscriber>,
    buffer: usize,
    next_id: AtomicU64,
    streams: Mutex<HashMap<UserId, Vec<Slot>>>,
}

impl fmt::Debug for LiveNotifications {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveNotifications")
            .field("buffer", &self.buffer)
            .field("open_streams", &self.open_streams())
            .finish_non_exhaustive()
    }
}

impl LiveNotifications {
    /// Notifications buffered per stream by default before a slow client
    /// is dropped.
    pub const DEFAULT_BUFFER: usize = 64;
    /// Events taken per bus request by [`follow`](Self::follow).
    pub const FOLLOW_BATCH: usize = 64;
    /// How long [`follow`](Self::follow)'s bus request waits for an event.
    pub const FOLLOW_WAIT: Duration = Duration::from_millis(500);
    /// Pause after a failed bus request, so a broken broker is not spun on.
    pub const FOLLOW_PAUSE: Duration = Duration::from_millis(500);

    /// A hub fed from `subscriber`, buffering up to `buffer` notifications
    /// per stream (at least one).
    pub fn new(subscriber: Arc<dyn EventSubscriber>, buffer: usize) -> Self {
        Self { subscriber, buffer: buffer.max(1), next_id: AtomicU64::new(0), streams: Mutex::new(HashMap::new()) }
    }

    /// Opens a stream of the actor's own notifications (anyone signed in
    /// may; nobody can open another user's).
    ///
    /// # Errors
    /// None today beyond the authorization rule, which every signed-in
    /// actor passes for themselves.
    pub fn subscribe(self: &Arc<Self>, actor: &Actor) -> Result<LiveSubscription> {
        authorize(actor, Action::ViewNotifications, &Resource::User { user_id: actor.user_id })?;
        let (tx, rx) = mpsc::channel(self.buffer);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let end = Arc::new(AtomicU8::new(OPEN));
        self.streams.lock().entry(actor.user_id).or_default().push(Slot { id, tx, end: end.clone() });
        Ok(LiveSubscription { id, user_id: actor.user_id, rx, end, hub: Arc::downgrade(self) })
    }

    /// Hands `notification` to each open stream of its recipient, without
    /// waiting; a stream whose buffer is full is dropped
    /// ([`StreamEnd::Lagged`]). Returns how many streams took it; records
    /// that are not [`is_live`] go to none.
    pub fn deliver(&self, notification: &Notification) -> usize {
        if !is_live(notification) {
            return 0;
        }
        let mut streams = self.streams.lock();
        let Some(slots) = streams.get_mut(&notification.user_id) else { return 0 };
        let mut delivered = 0;
        slots.retain(|slot| match slot.tx.try_send(notification.clone()) {
            Ok(()) => {
                delivered += 1;
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                slot.end.store(LAGGED, Ordering::Release);
                tracing::info!(user_id = %notification.user_id, "live notification stream dropped: its client reads too slowly");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if slots.is_empty() {
            streams.remove(&notification.user_id);
        }
        delivered
    }

    /// Ends every open stream with [`StreamEnd::Shutdown`] (after what is
    /// already buffered), so servers can drain them on a graceful stop.
    pub fn close_all(&self) {
        let mut streams = self.streams.lock();
        for slot in streams.values().flatten() {
            slot.end.store(SHUTDOWN, Ordering::Release);
        }
        streams.clear();
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.streams.lock().values().map(Vec::len).sum()
    }

    /// Opens this process's fan-out group `group` on the bus (see
    /// [`EventSubscriber::open_fanout`]): from now on every event published
    /// reaches [`follow`](Self::follow). Open it before serving streams.
    ///
    /// # Errors
    /// The bus's.
    pub async fn join(&self, group: &str, idle: Duration) -> Result<()> {
        self.subscriber.open_fanout(group, idle).await
    }

    /// Removes the fan-out group `group` (a clean stop).
    ///
    /// # Errors
    /// The bus's.
    pub async fn leave(&self, group: &str) -> Result<()> {
        self.subscriber.leave(group).await
    }

    /// One step: takes up to `max` events of `group`, waiting up to `wait`
    /// for the first, delivers the `notification.created` ones and acks
    /// them all. Returns how many events were taken (0: nothing was due).
    ///
    /// A payload that does not decode is logged and acked: retrying it
    /// would fail the same way, and a live stream has no dead letters.
    ///
    /// # Errors
    /// The bus's; nothing taken is lost, the unacked events come back.
    pub async fn follow_once(&self, group: &str, max: usize, wait: Duration) -> Result<usize> {
        let batch = self.subscriber.next_batch(group, max, wait).await?;
        self.deliver_all(&batch);
        self.subscriber.ack_all(&batch).await?;
        Ok(batch.len())
    }

    fn deliver_all(&self, batch: &[Delivery]) {
        for delivery in batch.iter().filter(|d| d.event.event_type == EventType::NotificationCreated) {
            match delivery.event.decode::<NotificationCreated>() {
                Ok(created) => {
                    self.deliver(&created.notification);
                }
                Err(e) => {
                    tracing::warn!(event_id = %delivery.event.id, error = %e, "notification.created event skipped");
                }
            }
        }
    }

    /// Follows fan-out group `group` until the returned future is dropped:
    /// [`follow_once`](Self::follow_once) in a loop, pausing
    /// [`FOLLOW_PAUSE`](Self::FOLLOW_PAUSE) after a failed bus request.
    /// Each request waits at most [`FOLLOW_WAIT`](Self::FOLLOW_WAIT), so the
    /// broker sees the group in use far more often than any sane idle limit.
    pub async fn follow(&self, group: &str) {
        loop {
            if let Err(e) = self.follow_once(group, Self::FOLLOW_BATCH, Self::FOLLOW_WAIT).await {
                tracing::warn!(error = %e, group, "live notifications: bus request failed");
                tokio::time::sleep(Self::FOLLOW_PAUSE).await;
            }
        }
    }

    fn remove(&self, user_id: UserId, id: u64) {
        let mut streams = self.streams.lock();
        if let Some(slots) = streams.get_mut(&user_id) {
            slots.retain(|s| s.id != id);
            if slots.is_empty() {
                streams.remove(&user_id);
            }
        }
    }
}

/// One open stream of a user's notifications; leaves the hub when dropped.
pub struct LiveSubscription {
    id: u64,
    user_id: UserId,
    rx: mpsc::Receiver<Notification>,
    end: Arc<AtomicU8>,
    hub: Weak<LiveNotifications>,
}

impl fmt::Debug for LiveSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveSubscription").field("user_id", &self.user_id).finish_non_exhaustive()
    }
}

impl LiveSubscription {
    /// The recipient.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// The next notification, waiting for one.
    ///
    /// # Errors
    /// Why the stream ended, once what was buffered has been read.
    pub async fn next(&mut self) -> std::result::Result<Notification, StreamEnd> {
        match self.rx.recv().await {
            Some(notification) => Ok(notification),
            None if self.end.load(Ordering::Acquire) == LAGGED => Err(StreamEnd::Lagged),
            None => Err(StreamEnd::Shutdown),
        }
    }
}

impl Drop for LiveSubscription {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.remove(self.user_id, self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::clock::{Clock, ManualClock};
    use crate::events::{Event, MockEventSubscriber, Receipt};
    use crate::ids::NotificationId;
    use crate::notifications::{NotificationStatus, Template};

    fn note(user_id: UserId, channel: Channel) -> Notification {
        let now = ManualClock::at_epoch_secs(0).now();
        Notification {
            id: NotificationId::new(),
            user_id,
            order_id: None,
            channel,
            template: Template::OrderPlaced,
            body: "b".into(),
            status: NotificationStatus::Sent,
            attempts: 1,
            created_at: now,
            sent_at: Some(now),
            dedup_key: String::new(),
        }
    }

    fn hub(subscriber: MockEventSubscriber, buffer: usize) -> Arc<LiveNotifications> {
        Arc::new(LiveNotifications::new(Arc::new(subscriber), buffer))
    }

    #[tokio::test]
    async fn each_user_gets_their_own_in_app_records_only() {
        let live = hub(MockEventSubscriber::new(), 8);
        let (alice, bob) = (Actor::new(UserId::new(), Role::Customer), Actor::new(UserId::new(), Role::Vendor));
        let (mut a1, mut a2, mut b) =
            (live.subscribe(&alice).unwrap(), live.subscribe(&alice).unwrap(), live.subscribe(&bob).unwrap());
        assert_eq!(live.open_streams(), 3);
        assert_eq!(live.deliver(&note(alice.user_id, Channel::Email)), 0, "e-mail records are not streamed");
        let for_alice = note(alice.user_id, Channel::InApp);
        assert_eq!(live.deliver(&for_alice), 2, "both of alice's streams");
        assert_eq!(a1.next().await.unwrap(), for_alice);
        assert_eq!(a2.next().await.unwrap(), for_alice);
        live.close_all();
        assert_eq!(b.next().await.unwrap_err(), StreamEnd::Shutdown, "bob received nothing");
        assert_eq!(a1.next().await.unwrap_err(), StreamEnd::Shutdown);
        assert_eq!(live.open_streams(), 0);
    }

    #[tokio::test]
    async fn a_dropped_subscription_leaves_the_hub() {
        let live = hub(MockEventSubscriber::new(), 8);
        let alice = Actor::new(UserId::new(), Role::Customer);
        let stream = live.subscribe(&alice).unwrap();
        assert_eq!(live.open_streams(), 1);
        drop(stream);
        assert_eq!(live.open_streams(), 0);
        assert_eq!(live.deliver(&note(alice.user_id, Channel::InApp)), 0);
    }

    #[tokio::test]
    async fn a_full_buffer_drops_only_the_slow_stream() {
        let live = hub(MockEventSubscriber::new(), 2);
        let alice = Actor::new(UserId::new(), Role::Customer);
        let (mut slow, mut fast) = (live.subscribe(&alice).unwrap(), live.subscribe(&alice).unwrap());
        let sent: Vec<_> = (0..2).map(|_| note(alice.user_id, Channel::InApp)).collect();
        for n in &sent {
            assert_eq!(live.deliver(n), 2);
        }
        assert_eq!(fast.next().await.unwrap(), sent[0]);
        assert_eq!(fast.next().await.unwrap(), sent[1]);
        // `slow` has read nothing: its buffer is full, so it is dropped now.
        let third = note(alice.user_id, Channel::InApp);
        assert_eq!(live.deliver(&third), 1);
        assert_eq!(fast.next().await.unwrap(), third);
        assert_eq!(slow.next().await.unwrap(), sent[0], "what was buffered is still read");
        assert_eq!(slow.next().await.unwrap(), sent[1]);
        assert_eq!(slow.next().await.unwrap_err(), StreamEnd::Lagged);
        assert_eq!(live.open_streams(), 1);
    }

    #[tokio::test]
    async fn following_delivers_created_events_and_acks_everything_taken() {
        let alice = Actor::new(UserId::new(), Role::Customer);
        let record = note(alice.user_id, Channel::InApp);
        let now = ManualClock::at_epoch_secs(0).now();
        let events = vec![
            Event::new(&NotificationCreated { notification: record.clone() }, now),
            Event::new(&crate::events::UserRegistered { user_id: UserId::new(), role: "customer".into() }, now),
        ];
        let deliveries: Vec<Delivery> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| Delivery {
                event,
                consumer: "g".into(),
                attempt: 1,
                receipt: Receipt::new(i.to_string()),
            })
            .collect();
        let mut bus = MockEventSubscriber::new();
        let batch = deliveries.clone();
        bus.expect_next_batch()
            .withf(|g, max, _| g == "g" && *max == 10)
            .times(1)
            .returning(move |_, _, _| Ok(batch.clone()));
        bus.expect_ack_all().withf(move |acked| acked == deliveries.as_slice()).times(1).returning(|_| Ok(()));
        let live = hub(bus, 8);
        let mut stream = live.subscribe(&alice).unwrap();
        assert_eq!(live.follow_once("g", 10, Duration::ZERO).await.unwrap(), 2);
        assert_eq!(stream.next().await.unwrap(), record);
    }

    #[test]
    fn the_event_data_is_the_record_itself() {
        let record = note(UserId::new(), Channel::InApp);
        let event = Event::new(&NotificationCreated { notification: record.clone() }, record.created_at);
        assert_eq!(event.event_type.as_str(), "notification.created");
        assert_eq!(event.data["id"], serde_json::json!(record.id));
        assert_eq!(event.decode::<NotificationCreated>().unwrap().notification, record);
    }
}
