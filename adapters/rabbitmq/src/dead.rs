//! The broker's dead-letter queue: listing it without removing anything,
//! and replaying messages to the queue they died in.
//!
//! Both read the queue with `basic.get` on a channel of their own, without
//! acking, so every message read is held by that channel; what is not
//! replayed goes back with one `basic.nack` (multiple, requeue) at the end,
//! in its order, ahead of messages that died meanwhile.

use bazaar_core::Result;
use bazaar_core::events::Event;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;

use crate::groups::confirmed;
use crate::link::{Link, within};
use crate::message::{self, ATTEMPTS_HEADER};
use crate::names::{self, Names};
use crate::options::RabbitOptions;

/// The most messages one replay scans (a queue growing while it is read
/// must not keep it going forever).
const MAX_SCAN: usize = 100_000;

/// A message of the dead-letter queue.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadMessage {
    /// Its identity for [`RabbitBus::replay_dead`](crate::RabbitBus::replay_dead):
    /// the message id (the event id for events this crate published), or
    /// `payload:<hash>` for a message without one.
    pub id: String,
    /// The event, when the payload is one.
    pub event: Option<Event>,
    /// The raw payload.
    pub payload: Vec<u8>,
    /// The routing key it was first published with (the event type).
    pub routing_key: String,
    /// The queue it was dead-lettered from first (`x-first-death-queue`):
    /// a group's work or redelivery queue.
    pub queue: Option<String>,
    /// Why (`x-first-death-reason`): `rejected` (not an event),
    /// `delivery_limit`, `expired`, `maxlen`.
    pub reason: Option<String>,
    /// How many times it was dead-lettered (the counts of its `x-death`
    /// entries).
    pub deaths: u64,
}

impl DeadMessage {
    fn of(delivery: &lapin::message::Delivery) -> Self {
        let properties = &delivery.properties;
        let id = properties.message_id().as_ref().map_or_else(
            || format!("payload:{:016x}", names::fnv1a(&delivery.data)),
            |id| ShortString::as_str(id).to_owned(),
        );
        let routing_key = first_routing_key(properties).unwrap_or_else(|| delivery.routing_key.as_str().to_owned());
        Self {
            id,
            event: Event::from_json(&delivery.data).ok(),
            payload: delivery.data.clone(),
            routing_key,
            queue: message::string_header(properties, "x-first-death-queue"),
            reason: message::string_header(properties, "x-first-death-reason"),
            deaths: message::death_count(properties),
        }
    }
}

/// The routing key of the first `x-death` entry (the one the message was
/// published with), if any.
fn first_routing_key(properties: &lapin::BasicProperties) -> Option<String> {
    use lapin::types::AMQPValue;
    let AMQPValue::FieldArray(deaths) = properties.headers().as_ref()?.inner().get("x-death")? else { return None };
    let first = deaths.as_slice().last()?.as_field_table()?;
    let AMQPValue::FieldArray(keys) = first.inner().get("routing-keys")? else { return None };
    match keys.as_slice().first()? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// Up to `limit` dead messages, oldest first, left in the queue.
///
/// # Errors
/// [`bazaar_core::Error::Unavailable`] when the broker fails.
pub(crate) async fn list(
    link: &Link,
    names: &Names,
    options: &RabbitOptions,
    limit: usize,
) -> Result<Vec<DeadMessage>> {
    let channel = link.channel().await?;
    let timeout = options.request_timeout;
    let queue = names.dead_queue();
    let mut out = Vec::new();
    let mut last_tag = None;
    let read = async {
        while out.len() < limit {
            let Some(got) = within(timeout, "basic.get", channel.basic_get(&queue, BasicGetOptions::default())).await?
            else {
                break;
            };
            last_tag = Some(got.delivery.delivery_tag);
            out.push(DeadMessage::of(&got.delivery));
        }
        Ok::<_, bazaar_core::Error>(())
    }
    .await;
    give_back(&channel, timeout, last_tag).await;
    read.map(|()| out)
}

/// Moves the dead messages with id `id` (all when `None`) back to the queue
/// they died in, or to the exchange when that is unknown.
///
/// # Errors
/// [`bazaar_core::Error::Unavailable`] when the broker fails.
pub(crate) async fn replay(link: &Link, names: &Names, options: &RabbitOptions, id: Option<&str>) -> Result<usize> {
    let channel = link.channel().await?;
    let timeout = options.request_timeout;
    within(timeout, "confirm.select", channel.confirm_select(ConfirmSelectOptions::default())).await?;
    let queue = names.dead_queue();
    let mut replayed = 0;
    let mut last_tag = None;
    let moved = async {
        for _ in 0..MAX_SCAN {
            let Some(got) = within(timeout, "basic.get", channel.basic_get(&queue, BasicGetOptions::default())).await?
            else {
                break;
            };
            let delivery = got.delivery;
            let dead = DeadMessage::of(&delivery);
            if id.is_some_and(|id| id != dead.id) {
                last_tag = Some(delivery.delivery_tag);
                continue;
            }
            let properties =
                message::copy_properties(&delivery.properties, &[(ATTEMPTS_HEADER, message::attempts_value(0))]);
            // Mandatory: a queue deleted since would drop the copy silently.
            let mandatory = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
            let sent = match &dead.queue {
                Some(target) => channel.basic_publish("", target, mandatory, &delivery.data, properties).await,
                None => {
                    channel
                        .basic_publish(names.exchange(), &dead.routing_key, mandatory, &delivery.data, properties)
                        .await
                }
            };
            let sent = sent.map_err(|e| crate::link::unavailable(format!("basic.publish (replay): {e}")))?;
            confirmed(timeout, sent).await?;
            within(timeout, "basic.ack", delivery.acker.ack(BasicAckOptions::default())).await?;
            replayed += 1;
        }
        Ok::<_, bazaar_core::Error>(())
    }
    .await;
    give_back(&channel, timeout, last_tag).await;
    moved.map(|()| replayed)
}

/// Requeues every message the channel still holds, up to `last_tag`, then
/// closes it (which would requeue them too, in an order the broker picks).
async fn give_back(channel: &lapin::Channel, timeout: std::time::Duration, last_tag: Option<u64>) {
    if let Some(tag) = last_tag {
        let all = BasicNackOptions { multiple: true, requeue: true };
        let _ = within(timeout, "basic.nack", channel.basic_nack(tag, all)).await;
    }
    let _ = channel.close(200, "dead letters read").await;
}
