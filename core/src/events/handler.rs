//! The event handler trait the dispatcher drives.

use async_trait::async_trait;

use super::{Event, EventType};
use crate::error::Result;

/// Reacts to events of some types.
///
/// Handlers MUST be idempotent: the same event may arrive more than once
/// (the inbox makes that rare, not impossible). An `Err` makes the
/// dispatcher retry the event later with backoff; errors of kind
/// [`crate::ErrorKind::Invalid`] (e.g. a malformed payload) are treated as
/// permanent and dead-lettered at once.
///
/// # Example
/// ```
/// # futures::executor::block_on(async {
/// use async_trait::async_trait;
/// use bazaar_core::clock::{Clock, ManualClock};
/// use bazaar_core::events::{Event, EventHandler, EventType, UserRegistered};
/// use bazaar_core::ids::UserId;
///
/// #[derive(Debug)]
/// struct Welcome;
///
/// #[async_trait]
/// impl EventHandler for Welcome {
///     fn name(&self) -> &'static str { "welcome" }
///     fn handles(&self, t: EventType) -> bool { t == EventType::UserRegistered }
///     async fn handle(&self, event: &Event) -> bazaar_core::Result<()> {
///         let data: UserRegistered = event.decode()?;
///         assert_eq!(data.role, "customer");
///         Ok(())
///     }
/// }
///
/// let now = ManualClock::at_epoch_secs(0).now();
/// let event = Event::new(&UserRegistered { user_id: UserId::new(), role: "customer".into() }, now);
/// assert!(Welcome.handles(event.event_type));
/// Welcome.handle(&event).await.unwrap();
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// A stable name; part of the inbox key, so renaming a handler makes it
    /// see old events as new.
    fn name(&self) -> &'static str;

    /// Whether this handler wants events of type `event_type`.
    fn handles(&self, event_type: EventType) -> bool;

    /// Handles one event.
    async fn handle(&self, event: &Event) -> Result<()>;

    /// Handles several events of one dispatcher batch; one result per
    /// event, in order. `Err` fails every event of the call with that
    /// error (e.g. the one store round trip they shared went wrong).
    ///
    /// The default runs [`Self::handle`] on each, concurrently. A handler
    /// whose events each cost a store round trip overrides it to serve the
    /// batch with one. (The named lifetime lets mockall mock it.)
    async fn handle_batch<'e>(&self, events: &[&'e Event]) -> Result<Vec<Result<()>>> {
        Ok(futures::future::join_all(events.iter().map(|event| self.handle(event))).await)
    }
}
