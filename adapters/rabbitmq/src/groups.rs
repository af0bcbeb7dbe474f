//! Creating a consumer group: its work queue, bound to the exchange, filled
//! with the archived events its bindings select, then its redelivery queue,
//! whose existence marks the group as set up.
//!
//! Steps, under an exclusive "creating" queue that serialises processes:
//! 1. declare the work queue and bind it: from now on every publish reaches
//!    it;
//! 2. publish a marker straight into the archive stream (confirmed);
//! 3. read the archive from its first offset up to that marker, copying
//!    each event the group's bindings match into the work queue (confirmed),
//!    in archive order;
//! 4. declare the redelivery queue: the group is set up.
//!
//! Events published between steps 1 and 2 are in the archive before the
//! marker *and* were routed to the queue, so the group gets them twice
//! (the consumers' inbox absorbs it), and they can come before older
//! copied events. A process that dies before step 4 leaves the group
//! without its redelivery queue, so the next one to use it copies the
//! archive again (duplicates, never a gap).

use std::time::Duration;

use bazaar_core::{Error, Result};
use futures::StreamExt;
use lapin::BasicProperties;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::protocol::AMQPSoftError;
use lapin::publisher_confirm::{Confirmation, PublisherConfirm};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use tokio::time::Instant;

use crate::link::{Link, soft_error, unavailable, within};
use crate::message::{self, MARKER_TYPE};
use crate::names::{self, Names};
use crate::options::RabbitOptions;
use crate::topology;

/// Archive messages in flight to a backfilling process at once.
const BACKFILL_PREFETCH: u16 = 500;
/// Copies published before their confirms are awaited.
const BACKFILL_PIPELINE: usize = 256;
/// Pause between looks at another process's group creation.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// Whether `queue` exists (a passive declare on a channel of its own, which
/// the broker closes when the queue is missing).
async fn exists(link: &Link, limit: Duration, queue: &str) -> Result<bool> {
    let channel = link.channel().await?;
    let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
    let outcome = tokio::time::timeout(limit, channel.queue_declare(queue, passive, FieldTable::default())).await;
    match outcome {
        Ok(Ok(_)) => {
            let _ = channel.close(200, "checked").await;
            Ok(true)
        }
        Ok(Err(e)) if soft_error(&e) == Some(AMQPSoftError::NOTFOUND) => Ok(false),
        Ok(Err(e)) => Err(unavailable(format!("queue.declare (passive) {queue}: {e}"))),
        Err(_) => Err(unavailable(format!("queue.declare (passive) {queue}: no answer within {limit:?}"))),
    }
}

/// Sets up `group` unless it is set up already (see the module docs).
///
/// # Errors
/// [`Error::Unavailable`] when the broker fails or the setup (or the wait
/// for another process's) takes longer than `group_setup_timeout`.
pub(crate) async fn ensure(link: &Link, options: &RabbitOptions, group: &str) -> Result<()> {
    let names = Names::new(options);
    let limit = options.request_timeout;
    let redelivery = names.redelivery_queue(group);
    if exists(link, limit, &redelivery).await? {
        return Ok(());
    }
    let deadline = Instant::now() + options.group_setup_timeout;
    let lock = names.creation_lock(group);
    let lock_channel = loop {
        let channel = link.channel().await?;
        let exclusive = QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() };
        match tokio::time::timeout(limit, channel.queue_declare(&lock, exclusive, FieldTable::default())).await {
            Ok(Ok(_)) => break channel,
            Ok(Err(e)) if soft_error(&e) == Some(AMQPSoftError::RESOURCELOCKED) => {}
            Ok(Err(e)) => return Err(unavailable(format!("locking the creation of group {group:?}: {e}"))),
            Err(_) => return Err(unavailable(format!("locking the creation of group {group:?}: no answer"))),
        }
        // Another process is creating the group: wait for it to finish.
        if Instant::now() + LOCK_POLL >= deadline {
            return Err(unavailable(format!("group {group:?} is still being set up by another process")));
        }
        tokio::time::sleep(LOCK_POLL).await;
        if exists(link, limit, &redelivery).await? {
            return Ok(());
        }
    };
    let created = async {
        if exists(link, limit, &redelivery).await? {
            return Ok(());
        }
        let queue = names.group_queue(group);
        let args = topology::group_queue_args(options);
        topology::declare_queue(&lock_channel, limit, &queue, args.clone()).await?;
        let keys = options.binding_keys(group);
        for key in &keys {
            topology::bind(&lock_channel, limit, &queue, names.exchange(), key, FieldTable::default()).await?;
        }
        let copied = tokio::time::timeout_at(deadline, backfill(link, &names, limit, &queue, &keys)).await;
        let copied =
            copied.unwrap_or_else(|_| Err(unavailable(format!("copying the archive into {queue} timed out"))))?;
        topology::declare_queue(&lock_channel, limit, &redelivery, args).await?;
        tracing::info!(group, queue, copied, "created consumer group");
        Ok::<_, Error>(())
    }
    .await;
    let _ = within(limit, "queue.delete", lock_channel.queue_delete(&lock, QueueDeleteOptions::default())).await;
    let _ = lock_channel.close(200, "group set up").await;
    created
}

/// Sets up fan-out group `group`: its work queue, bound, and its
/// redelivery queue, both with `x-expires` = `idle` (the broker deletes a
/// queue nobody has read for that long) and no copy from the archive: the
/// group starts with what is published from now on. Declaring them again
/// with the same arguments changes nothing.
///
/// # Errors
/// [`Error::Unavailable`] when the broker fails (also when a queue of that
/// name exists with other arguments, e.g. a durable group of the same name).
pub(crate) async fn ensure_fanout(link: &Link, options: &RabbitOptions, group: &str, idle: Duration) -> Result<()> {
    let names = Names::new(options);
    let limit = options.request_timeout;
    let channel = link.channel().await?;
    let mut args = topology::group_queue_args(options);
    args.insert("x-expires".into(), AMQPValue::LongLongInt(i64::try_from(idle.as_millis()).unwrap_or(i64::MAX)));
    let queue = names.group_queue(group);
    topology::declare_queue(&channel, limit, &queue, args.clone()).await?;
    for key in &options.binding_keys(group) {
        topology::bind(&channel, limit, &queue, names.exchange(), key, FieldTable::default()).await?;
    }
    topology::declare_queue(&channel, limit, &names.redelivery_queue(group), args).await?;
    let _ = channel.close(200, "fan-out group set up").await;
    Ok(())
}

/// Deletes `group`'s work and redelivery queues with what they hold; a
/// missing queue is nothing to delete.
///
/// # Errors
/// [`Error::Unavailable`] when the broker fails.
pub(crate) async fn delete(link: &Link, options: &RabbitOptions, group: &str) -> Result<()> {
    let names = Names::new(options);
    let limit = options.request_timeout;
    let channel = link.channel().await?;
    for queue in [names.redelivery_queue(group), names.group_queue(group)] {
        within(limit, "queue.delete", channel.queue_delete(&queue, QueueDeleteOptions::default())).await?;
    }
    let _ = channel.close(200, "group deleted").await;
    Ok(())
}

/// Copies the archived events matching `keys` into `queue`, oldest first,
/// up to a marker published now; returns how many.
async fn backfill(link: &Link, names: &Names, limit: Duration, queue: &str, keys: &[String]) -> Result<u64> {
    let archive = names.archive();
    let publisher = link.channel().await?;
    within(limit, "confirm.select", publisher.confirm_select(ConfirmSelectOptions::default())).await?;
    let marker = uuid::Uuid::now_v7().to_string();
    let marker_properties = BasicProperties::default()
        .with_message_id(ShortString::from(marker.clone()))
        .with_type(ShortString::from(MARKER_TYPE))
        .with_delivery_mode(2);
    let sent = within(
        limit,
        "basic.publish (marker)",
        publisher.basic_publish("", &archive, BasicPublishOptions::default(), b"", marker_properties),
    )
    .await?;
    confirmed(limit, sent).await?;

    let reader = link.channel().await?;
    within(limit, "basic.qos", reader.basic_qos(BACKFILL_PREFETCH, BasicQosOptions::default())).await?;
    let mut from_first = FieldTable::default();
    from_first.insert("x-stream-offset".into(), AMQPValue::LongString(LongString::from("first")));
    let tag = format!("backfill-{marker}");
    let mut archived = within(
        limit,
        "basic.consume (archive)",
        reader.basic_consume(&archive, &tag, BasicConsumeOptions::default(), from_first),
    )
    .await?;
    let mut copied = 0;
    let mut confirms = Vec::with_capacity(BACKFILL_PIPELINE);
    loop {
        let delivery = match archived.next().await {
            Some(Ok(delivery)) => delivery,
            Some(Err(e)) => return Err(unavailable(format!("reading the archive: {e}"))),
            None => return Err(unavailable("the archive consumer was cancelled before the marker")),
        };
        let kind = delivery.properties.kind().as_ref().map(ShortString::as_str);
        let id = delivery.properties.message_id().as_ref().map(ShortString::as_str);
        let done = id == Some(marker.as_str());
        let routing_key = delivery.routing_key.as_str();
        if kind != Some(MARKER_TYPE) && keys.iter().any(|key| names::topic_matches(key, routing_key)) {
            let properties = message::copy_properties(&delivery.properties, &[]);
            confirms.push(
                within(
                    limit,
                    "basic.publish (backfill)",
                    publisher.basic_publish("", queue, BasicPublishOptions::default(), &delivery.data, properties),
                )
                .await?,
            );
            copied += 1;
        }
        // Stream acks only return credit; nothing is removed.
        let _ = delivery.acker.ack(BasicAckOptions::default()).await;
        if confirms.len() >= BACKFILL_PIPELINE || done {
            for confirm in confirms.drain(..) {
                confirmed(limit, confirm).await?;
            }
        }
        if done {
            break;
        }
    }
    let _ = within(limit, "basic.cancel", reader.basic_cancel(&tag, BasicCancelOptions::default())).await;
    let _ = reader.close(200, "backfilled").await;
    let _ = publisher.close(200, "backfilled").await;
    Ok(copied)
}

/// Waits for the broker's confirm of one publish.
///
/// # Errors
/// [`Error::Unavailable`] for a nack, a returned (unroutable) message or no
/// answer.
pub(crate) async fn confirmed(limit: Duration, confirm: PublisherConfirm) -> Result<()> {
    match within(limit, "publisher confirm", confirm).await? {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(returned)) => Err(unavailable(format!(
            "the broker could not route a message ({} {}): is the topology missing?",
            returned.reply_code, returned.reply_text
        ))),
        Confirmation::Nack(_) => Err(unavailable("the broker refused (nacked) a message")),
        Confirmation::NotRequested => Err(Error::internal("publisher confirms", "the channel is not in confirm mode")),
    }
}
