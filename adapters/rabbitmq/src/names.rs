//! Names of the exchanges and queues a bus declares, checks of configured
//! names, and topic matching of event types against binding keys.

use std::time::Duration;

use bazaar_core::{Error, Result};

use crate::options::RabbitOptions;

/// Longest exchange name or queue prefix: queue names (at most 255 bytes)
/// add a suffix to the prefix.
const MAX_NAME: usize = 200;
/// Longest group name kept as is inside a queue name.
const MAX_GROUP: usize = 120;

/// Checks an exchange name or queue prefix: 1–200 of `A-Z a-z 0-9 . _ -`,
/// not `amq.`-prefixed (reserved by the broker).
pub(crate) fn check_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(plain)
        && !name.starts_with("amq.")
        && !name.starts_with('.')
        && !name.ends_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("{name:?} is not 1-{MAX_NAME} of A-Z a-z 0-9 . _ - (and not amq.*)")))
    }
}

fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// Checks a consumer group name: any non-empty string of at most 1 000
/// bytes (odd ones are sanitised in queue names).
///
/// # Errors
/// [`Error::Validation`] for an empty or overlong group name.
pub(crate) fn check_group(group: &str) -> Result<()> {
    if group.is_empty() || group.len() > 1_000 {
        return Err(Error::invalid("consumer", "a consumer group name is 1 to 1000 bytes"));
    }
    Ok(())
}

/// Checks a topic binding key: dot-separated words of `A-Z a-z 0-9 _ -`,
/// or `*` / `#`.
pub(crate) fn check_binding_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 255
        && key.split('.').all(|w| w == "*" || w == "#" || (!w.is_empty() && w.bytes().all(|b| plain(b) && b != b'.')));
    if ok { Ok(()) } else { Err(Error::invalid("routes", format!("{key:?} is not a topic binding key"))) }
}

/// Whether `routing_key` matches the topic binding `key` as RabbitMQ's
/// topic exchange decides: words split on `.`, `*` is one word, `#` zero or
/// more. The backfill of a new group copies only what its bindings would
/// have routed to it.
pub(crate) fn topic_matches(key: &str, routing_key: &str) -> bool {
    fn go(pattern: &[&str], words: &[&str]) -> bool {
        match pattern.split_first() {
            None => words.is_empty(),
            Some((&"#", rest)) => (0..=words.len()).any(|skip| go(rest, &words[skip..])),
            Some((&p, rest)) => words.split_first().is_some_and(|(&w, tail)| (p == "*" || p == w) && go(rest, tail)),
        }
    }
    let pattern: Vec<&str> = key.split('.').collect();
    let words: Vec<&str> = if routing_key.is_empty() { Vec::new() } else { routing_key.split('.').collect() };
    go(&pattern, &words)
}

/// The queue-name form of a group: the name itself when it is plain and
/// short, else its plain characters (others as `_`, cut at 120 bytes) and a
/// stable hash of the original, so distinct groups never share a queue.
pub(crate) fn group_token(group: &str) -> String {
    if group.len() <= MAX_GROUP && group.bytes().all(plain) && !group.starts_with('.') {
        return group.to_owned();
    }
    let cleaned: String =
        group.chars().map(|c| if c.is_ascii() && plain(c as u8) { c } else { '_' }).take(MAX_GROUP).collect();
    format!("{cleaned}~{:016x}", fnv1a(group.as_bytes()))
}

/// FNV-1a, 64-bit: a stable hash (std's `DefaultHasher` may change between
/// releases, and these names outlive the process).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The names of one bus's topology.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    exchange: String,
    prefix: String,
}

impl Names {
    pub(crate) fn new(options: &RabbitOptions) -> Self {
        Self { exchange: options.exchange.clone(), prefix: options.queue_prefix.clone() }
    }

    /// The topic exchange events are published to.
    pub(crate) fn exchange(&self) -> &str {
        &self.exchange
    }

    /// The headers exchange that routes a retry copy to its delay queue.
    pub(crate) fn retry_exchange(&self) -> String {
        format!("{}.retry", self.exchange)
    }

    /// The fanout exchange group queues dead-letter to.
    pub(crate) fn dead_exchange(&self) -> String {
        format!("{}.dead", self.exchange)
    }

    /// The dead-letter queue.
    pub(crate) fn dead_queue(&self) -> String {
        format!("{}.dead", self.prefix)
    }

    /// The stream every event is archived in.
    pub(crate) fn archive(&self) -> String {
        format!("{}.archive", self.prefix)
    }

    /// The queue of one retry step.
    pub(crate) fn retry_queue(&self, delay: Duration) -> String {
        format!("{}.retry.{}ms", self.prefix, delay.as_millis())
    }

    /// The work queue of a consumer group.
    pub(crate) fn group_queue(&self, group: &str) -> String {
        format!("{}.group.{}", self.prefix, group_token(group))
    }

    /// The queue retry copies of a group's messages come back to, read
    /// before the work queue; it is declared last when a group is created,
    /// so it also marks the group as set up.
    pub(crate) fn redelivery_queue(&self, group: &str) -> String {
        format!("{}.redelivery", self.group_queue(group))
    }

    /// The exclusive queue whose owner is creating the group.
    pub(crate) fn creation_lock(&self, group: &str) -> String {
        format!("{}.creating", self.group_queue(group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_matching_follows_rabbitmq() {
        let cases = [
            ("#", "payment.succeeded", true),
            ("#", "", true),
            ("payment.*", "payment.succeeded", true),
            ("payment.*", "payment", false),
            ("payment.*", "payment.succeeded.late", false),
            ("payment.#", "payment", true),
            ("payment.#", "payment.a.b", true),
            ("*.placed", "order.placed", true),
            ("*.placed", "placed", false),
            ("#.placed", "placed", true),
            ("#.placed", "a.b.placed", true),
            ("order.placed", "order.placed", true),
            ("order.placed", "order.paid", false),
            ("a.#.z", "a.z", true),
            ("a.#.z", "a.b.c.z", true),
            ("a.#.z", "a.b.c", false),
        ];
        for (key, routing_key, want) in cases {
            assert_eq!(topic_matches(key, routing_key), want, "{key} vs {routing_key}");
        }
    }

    #[test]
    fn group_tokens_are_distinct_and_plain() {
        assert_eq!(group_token("mailer"), "mailer");
        assert_eq!(group_token("a.b"), "a.b");
        assert_ne!(group_token("a/b"), group_token("a_b"), "sanitised names carry a hash");
        assert_ne!(group_token("a/b"), group_token("a:b"));
        let long = "x".repeat(500);
        let token = group_token(&long);
        assert!(token.len() < 140, "{token}");
        assert_ne!(token, group_token(&"x".repeat(501)));
        assert!(group_token("ünïcode").is_ascii());
    }

    #[test]
    fn names_and_keys_are_checked() {
        assert!(check_name("exchange", "bazaar.events").is_ok());
        for bad in ["", "amq.x", "a b", ".a", "a.", &"x".repeat(201)] {
            assert!(check_name("exchange", bad).is_err(), "{bad:?}");
        }
        assert!(check_group("").is_err());
        for good in ["#", "order.*", "payment.succeeded", "a.#.z"] {
            assert!(check_binding_key(good).is_ok(), "{good}");
        }
        for bad in ["", "a..b", "a b", "a.#x"] {
            assert!(check_binding_key(bad).is_err(), "{bad:?}");
        }
    }
}
