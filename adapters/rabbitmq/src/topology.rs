//! The durable topology, declared idempotently on every (re)connection:
//! the event exchange, the archive stream, the retry ladder and the
//! dead-letter queue; and the arguments of the group queues.

use std::time::Duration;

use bazaar_core::Result;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use crate::link::within;
use crate::names::Names;
use crate::options::RabbitOptions;

/// The header a retry copy carries, naming its delay step in milliseconds;
/// the retry exchange routes on it. Not `x-`-prefixed: the headers
/// exchange ignores such headers when matching.
pub(crate) const DELAY_HEADER: &str = "bazaar-delay-ms";

/// Declares every fixed part of the topology (each declare is a no-op when
/// the object exists with the same arguments).
///
/// # Errors
/// [`bazaar_core::Error::Unavailable`] when a declare fails, e.g. an
/// existing queue has other arguments (`PRECONDITION_FAILED`).
pub(crate) async fn declare(channel: &Channel, options: &RabbitOptions) -> Result<()> {
    let names = Names::new(options);
    let limit = options.request_timeout;
    let durable = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
    let declare_exchange = |name: String, kind: ExchangeKind| async move {
        within(limit, "exchange.declare", channel.exchange_declare(&name, kind, durable, FieldTable::default())).await
    };
    declare_exchange(names.exchange().to_owned(), ExchangeKind::Topic).await?;
    declare_exchange(names.dead_exchange(), ExchangeKind::Fanout).await?;
    declare_exchange(names.retry_exchange(), ExchangeKind::Headers).await?;

    let dead = names.dead_queue();
    declare_queue(channel, limit, &dead, quorum()).await?;
    bind(channel, limit, &dead, &names.dead_exchange(), "", FieldTable::default()).await?;

    let archive = names.archive();
    let mut stream = FieldTable::default();
    stream.insert("x-queue-type".into(), string("stream"));
    stream.insert("x-max-age".into(), string(&format!("{}s", options.archive_max_age.as_secs())));
    declare_queue(channel, limit, &archive, stream).await?;
    bind(channel, limit, &archive, names.exchange(), "#", FieldTable::default()).await?;

    for delay in &options.retry_delays {
        let queue = names.retry_queue(*delay);
        declare_queue(channel, limit, &queue, retry_queue_args(*delay)).await?;
        let mut matching = FieldTable::default();
        matching.insert("x-match".into(), string("all"));
        matching.insert(DELAY_HEADER.into(), delay_value(*delay));
        bind(channel, limit, &queue, &names.retry_exchange(), "", matching).await?;
    }
    Ok(())
}

/// The header value naming a retry step (a string on both sides, since
/// the headers exchange compares types as well as values).
pub(crate) fn delay_value(delay: Duration) -> AMQPValue {
    string(&delay.as_millis().to_string())
}

/// A retry step's queue: its TTL dead-letters each copy through the default
/// exchange with the copy's own routing key, the group's redelivery queue.
fn retry_queue_args(delay: Duration) -> FieldTable {
    let mut args = quorum();
    args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)));
    args.insert("x-dead-letter-exchange".into(), string(""));
    at_least_once(&mut args);
    args
}

/// A group's work and redelivery queues: quorum queues that dead-letter
/// what the broker gives up on (a rejected, undecodable message; the
/// delivery limit) to the dead-letter exchange.
pub(crate) fn group_queue_args(options: &RabbitOptions) -> FieldTable {
    let mut args = quorum();
    args.insert("x-dead-letter-exchange".into(), string(&Names::new(options).dead_exchange()));
    at_least_once(&mut args);
    if let Some(limit) = options.delivery_limit {
        args.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(i64::from(limit)));
    }
    args
}

/// Dead-lettering that keeps the message until the target queue confirmed
/// it (RabbitMQ 3.10+; needs `reject-publish` overflow), rather than the
/// default at-most-once.
fn at_least_once(args: &mut FieldTable) {
    args.insert("x-dead-letter-strategy".into(), string("at-least-once"));
    args.insert("x-overflow".into(), string("reject-publish"));
}

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), string("quorum"));
    args
}

fn string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// Declares a durable queue.
pub(crate) async fn declare_queue(channel: &Channel, limit: Duration, queue: &str, args: FieldTable) -> Result<()> {
    let options = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    within(limit, "queue.declare", channel.queue_declare(queue, options, args)).await.map(drop)
}

/// Binds `queue` to `exchange`.
pub(crate) async fn bind(
    channel: &Channel,
    limit: Duration,
    queue: &str,
    exchange: &str,
    key: &str,
    args: FieldTable,
) -> Result<()> {
    within(limit, "queue.bind", channel.queue_bind(queue, exchange, key, QueueBindOptions::default(), args)).await
}
