//! How events travel as AMQP messages: the properties they are published
//! with, the attempt count a message carries, and copies (retry, backfill,
//! replay) that keep what matters and drop the broker's bookkeeping.

use bazaar_core::events::Event;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, ShortString};

/// Deliveries made of earlier copies of this message (a nack with delay
/// republishes the message with this set to the attempt that failed).
pub(crate) const ATTEMPTS_HEADER: &str = "x-bazaar-attempts";
/// Redeliveries of this copy, kept by quorum queues (0 on the first).
const DELIVERY_COUNT_HEADER: &str = "x-delivery-count";
/// The `type` of a backfill marker in the archive stream.
pub(crate) const MARKER_TYPE: &str = "bazaar.backfill-marker";
/// Persistent (survives a broker restart with its durable queue).
const PERSISTENT: u8 = 2;

/// The properties an event is published with: persistent, the event id as
/// `message_id`, the event type as `type`, JSON content.
pub(crate) fn event_properties(event: &Event) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_message_id(ShortString::from(event.id.to_string()))
        .with_type(ShortString::from(event.event_type.as_str()))
        .with_content_type(ShortString::from("application/json"))
        .with_timestamp(u64::try_from(event.occurred_at.timestamp()).unwrap_or(0))
        .with_app_id(ShortString::from("bazaar"))
}

/// The delivery attempt a message is on: the deliveries of earlier copies,
/// plus the redeliveries of this one, plus this one.
pub(crate) fn attempt(properties: &BasicProperties) -> u32 {
    let earlier = int_header(properties, ATTEMPTS_HEADER).unwrap_or(0);
    let redelivered = int_header(properties, DELIVERY_COUNT_HEADER).unwrap_or(0);
    u32::try_from(earlier.saturating_add(redelivered).saturating_add(1).max(1)).unwrap_or(u32::MAX)
}

/// An integer header of any AMQP integer type.
pub(crate) fn int_header(properties: &BasicProperties, key: &str) -> Option<i64> {
    let value = properties.headers().as_ref()?.inner().get(key)?;
    int_value(value)
}

fn int_value(value: &AMQPValue) -> Option<i64> {
    match value {
        AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongLongInt(v) => Some(*v),
        _ => None,
    }
}

/// A string header (long or short string).
pub(crate) fn string_header(properties: &BasicProperties, key: &str) -> Option<String> {
    match properties.headers().as_ref()?.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// How many times the message was dead-lettered from the queue it died in
/// first (`x-death` entries carry a count per queue and reason).
pub(crate) fn death_count(properties: &BasicProperties) -> u64 {
    let Some(AMQPValue::FieldArray(deaths)) = properties.headers().as_ref().and_then(|h| h.inner().get("x-death"))
    else {
        return 0;
    };
    deaths
        .as_slice()
        .iter()
        .filter_map(|death| death.as_field_table()?.inner().get("count").and_then(int_value))
        .map(|count| u64::try_from(count).unwrap_or(0))
        .sum()
}

/// `properties` for a new copy of a message: the broker's bookkeeping
/// headers (`x-delivery-count`, `x-death`, `x-first-death-*`,
/// `x-stream-*`, and this crate's retry headers) dropped, then `headers`
/// set.
pub(crate) fn copy_properties(properties: &BasicProperties, headers: &[(&str, AMQPValue)]) -> BasicProperties {
    let mut table = FieldTable::default();
    if let Some(old) = properties.headers() {
        for (key, value) in old.inner() {
            let key_str = key.as_str();
            let bookkeeping = key_str == DELIVERY_COUNT_HEADER
                || key_str == ATTEMPTS_HEADER
                || key_str == crate::topology::DELAY_HEADER
                || key_str == "x-death"
                || key_str.starts_with("x-first-death-")
                || key_str.starts_with("x-last-death-")
                || key_str.starts_with("x-stream-");
            if !bookkeeping {
                table.insert(key.clone(), value.clone());
            }
        }
    }
    for (key, value) in headers {
        table.insert(ShortString::from(*key), value.clone());
    }
    properties.clone().with_headers(table).with_delivery_mode(PERSISTENT)
}

/// The attempts header value for a copy whose earlier deliveries number
/// `attempts`.
pub(crate) fn attempts_value(attempts: u32) -> AMQPValue {
    AMQPValue::LongLongInt(i64::from(attempts))
}

/// A string header value.
#[cfg(test)]
fn string_value(s: &str) -> AMQPValue {
    AMQPValue::LongString(lapin::types::LongString::from(s))
}

#[cfg(test)]
mod tests {
    use bazaar_core::clock::{Clock, SystemClock};
    use bazaar_core::events::UserRegistered;
    use bazaar_core::ids::UserId;

    use super::*;

    fn with_headers(pairs: &[(&str, AMQPValue)]) -> BasicProperties {
        let mut table = FieldTable::default();
        for (k, v) in pairs {
            table.insert(ShortString::from(*k), v.clone());
        }
        BasicProperties::default().with_headers(table)
    }

    #[test]
    fn attempts_add_earlier_copies_and_redeliveries() {
        assert_eq!(attempt(&BasicProperties::default()), 1, "a first delivery");
        assert_eq!(attempt(&with_headers(&[(DELIVERY_COUNT_HEADER, AMQPValue::LongLongInt(0))])), 1);
        assert_eq!(attempt(&with_headers(&[(DELIVERY_COUNT_HEADER, AMQPValue::LongLongInt(2))])), 3, "requeued");
        let retried =
            with_headers(&[(ATTEMPTS_HEADER, attempts_value(2)), (DELIVERY_COUNT_HEADER, AMQPValue::LongInt(1))]);
        assert_eq!(attempt(&retried), 4, "two before the copy, one requeue, this one");
        assert_eq!(attempt(&with_headers(&[(ATTEMPTS_HEADER, AMQPValue::LongLongInt(-5))])), 1, "never below 1");
    }

    #[test]
    fn copies_drop_the_bookkeeping_and_stay_persistent() {
        let event = Event::new(&UserRegistered { user_id: UserId::new(), role: "vendor".into() }, SystemClock.now());
        let original = event_properties(&event).with_headers({
            let mut t = FieldTable::default();
            t.insert("x-delivery-count".into(), AMQPValue::LongLongInt(3));
            t.insert("x-stream-offset".into(), AMQPValue::LongLongInt(9));
            t.insert("x-first-death-queue".into(), string_value("q"));
            t.insert("traceparent".into(), string_value("00-abc-def-01"));
            t
        });
        let copy = copy_properties(&original, &[(ATTEMPTS_HEADER, attempts_value(3))]);
        assert_eq!(copy.message_id().as_ref().map(ShortString::as_str), Some(event.id.to_string().as_str()));
        assert_eq!(copy.delivery_mode(), &Some(PERSISTENT));
        assert_eq!(string_header(&copy, "traceparent").as_deref(), Some("00-abc-def-01"), "other headers stay");
        assert_eq!(int_header(&copy, "x-delivery-count"), None);
        assert_eq!(int_header(&copy, "x-stream-offset"), None);
        assert_eq!(string_header(&copy, "x-first-death-queue"), None);
        assert_eq!(attempt(&copy), 4, "three earlier deliveries");
    }
}
