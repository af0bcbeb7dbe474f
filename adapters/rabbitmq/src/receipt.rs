//! Receipts and the deliveries a bus has handed out and not settled.
//!
//! AMQP delivery tags belong to one channel of one connection, so only the
//! process that received a message can ack it. The receipt names the bus
//! instance, the connection (epoch), the channel and the tag; the bus keeps
//! each unsettled delivery under it with what a nack needs (the message, to
//! copy it into a retry queue) and when it was handed out (for the ack
//! wait). Settling removes the entry first, so a delivery is settled once:
//! a repeated ack, a stale nack (the delivery was already settled, expired
//! or lost with its connection) finds nothing and does nothing. That also
//! keeps the broker from closing the channel over an unknown delivery tag.

use std::collections::HashMap;

use bazaar_core::events::Receipt;
use bazaar_core::{Error, Result};
use lapin::BasicProperties;
use lapin::acker::Acker;
use parking_lot::Mutex;
use tokio::time::{Duration, Instant};

/// One received message, settled through its acker.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) group: String,
    pub(crate) epoch: u64,
    pub(crate) acker: Acker,
    pub(crate) delivery_tag: u64,
    pub(crate) channel: u16,
    pub(crate) routing_key: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) properties: BasicProperties,
    pub(crate) attempt: u32,
    /// When it arrived (held) or was handed out (pending).
    pub(crate) since: Instant,
}

/// The receipt of a delivery of bus `bus`.
pub(crate) fn receipt(bus: u64, received: &Received) -> Receipt {
    Receipt::new(format!("amqp:{bus:016x}:{}:{}:{}", received.epoch, received.channel, received.delivery_tag))
}

/// Checks that `receipt` is one of bus `bus`.
///
/// # Errors
/// [`Error::Validation`] for anything else.
pub(crate) fn check(bus: u64, receipt: &Receipt) -> Result<()> {
    let invalid = || Error::invalid("receipt", "not a receipt of this bus");
    let rest = receipt.as_str().strip_prefix("amqp:").ok_or_else(invalid)?;
    let mut parts = rest.split(':');
    let owner = parts.next().and_then(|p| u64::from_str_radix(p, 16).ok()).ok_or_else(invalid)?;
    let numbers = parts.map(str::parse::<u64>).collect::<std::result::Result<Vec<_>, _>>().map_err(|_| invalid())?;
    if owner != bus || numbers.len() != 3 {
        return Err(invalid());
    }
    Ok(())
}

/// The deliveries handed out and not yet settled, by receipt.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    entries: Mutex<HashMap<Receipt, Received>>,
}

impl Pending {
    pub(crate) fn insert(&self, receipt: Receipt, received: Received) {
        self.entries.lock().insert(receipt, received);
    }

    /// Removes and returns the delivery of `receipt` if it is pending and
    /// belongs to `group`.
    ///
    /// # Errors
    /// [`Error::Validation`] when the receipt is pending for another group
    /// (it is left pending).
    pub(crate) fn take(&self, receipt: &Receipt, group: &str) -> Result<Option<Received>> {
        let mut entries = self.entries.lock();
        match entries.get(receipt) {
            None => Ok(None),
            Some(received) if received.group != group => {
                Err(Error::invalid("receipt", "the receipt belongs to another consumer group"))
            }
            Some(_) => Ok(entries.remove(receipt)),
        }
    }

    /// Removes and returns the deliveries pending for longer than `ack_wait`
    /// and those of connections other than `epoch` (the broker has
    /// requeued those already).
    pub(crate) fn expired(&self, now: Instant, ack_wait: Duration, epoch: Option<u64>) -> Vec<Received> {
        let mut entries = self.entries.lock();
        let gone: Vec<Receipt> = entries
            .iter()
            .filter(|(_, r)| now.duration_since(r.since) >= ack_wait || epoch.is_some_and(|e| e != r.epoch))
            .map(|(receipt, _)| receipt.clone())
            .collect();
        gone.into_iter().filter_map(|receipt| entries.remove(&receipt)).collect()
    }

    /// Forgets every delivery pending for `group` (its queues are being
    /// deleted, so there is nothing left to settle them against).
    pub(crate) fn forget_group(&self, group: &str) {
        self.entries.lock().retain(|_, received| received.group != group);
    }

    /// How many deliveries are pending.
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(group: &str, epoch: u64, tag: u64, since: Instant) -> Received {
        Received {
            group: group.into(),
            epoch,
            acker: Acker::mock(),
            delivery_tag: tag,
            channel: 1,
            routing_key: "user.registered".into(),
            payload: Vec::new(),
            properties: BasicProperties::default(),
            attempt: 1,
            since,
        }
    }

    #[test]
    fn receipts_name_their_bus() {
        let r = received("g", 3, 42, Instant::now());
        let receipt = receipt(7, &r);
        check(7, &receipt).unwrap();
        assert!(check(8, &receipt).is_err(), "another bus");
        for forged in ["", "amqp:", "amqp:0000000000000007:1:2", "amqp:zz:1:2:3", "$JS.ACK.x"] {
            assert!(check(7, &Receipt::new(forged)).is_err(), "{forged:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_delivery_is_taken_once_and_only_by_its_group() {
        let pending = Pending::default();
        let r = received("g", 1, 1, Instant::now());
        let key = receipt(1, &r);
        pending.insert(key.clone(), r);
        assert!(pending.take(&key, "other").is_err(), "another group's receipt");
        assert!(pending.take(&key, "g").unwrap().is_some(), "taken");
        assert!(pending.take(&key, "g").unwrap().is_none(), "settled once");
    }

    #[tokio::test(start_paused = true)]
    async fn deliveries_expire_after_the_ack_wait_or_with_their_connection() {
        let pending = Pending::default();
        let start = Instant::now();
        for (tag, epoch) in [(1, 1), (2, 2)] {
            let r = received("g", epoch, tag, start);
            pending.insert(receipt(1, &r), r);
        }
        let wait = Duration::from_secs(30);
        let lost = pending.expired(start, wait, Some(2));
        assert_eq!(lost.iter().map(|r| r.delivery_tag).collect::<Vec<_>>(), [1], "the old connection's delivery");
        tokio::time::advance(wait - Duration::from_millis(1)).await;
        assert!(pending.expired(Instant::now(), wait, Some(2)).is_empty(), "not yet");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(pending.expired(Instant::now(), wait, Some(2)).len(), 1, "at the ack wait");
        assert_eq!(pending.len(), 0);
    }
}
