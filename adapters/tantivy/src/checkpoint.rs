//! How far the index has followed the store: the [`Checkpoint`] and the
//! commit payload it is saved in.
//!
//! # Which position
//! The checkpoint is the **outbox `seq`** of the last product change whose
//! effect the index holds. Alternatives considered:
//! - *the largest `updated_at` seen*: stats changes (downloads, reviews) do
//!   not touch `updated_at`, and clocks of different writers disagree, so an
//!   index could look current while holding stale counters;
//! - *the largest `version` seen*: versions are per product, not a position
//!   in one sequence, so they cannot say whether *some other* product changed.
//!
//! The outbox `seq` is one sequence, strictly increasing with commit order,
//! covering every change that emits an event. A replica compares its index's
//! checkpoint with the store's last `seq` at start: none (a new index, or
//! the first start of a build with a new [`LAYOUT`]) or a lower one means
//! rebuild (or replay from there).
//!
//! This needs every change that matters to search to go through the outbox,
//! stats changes included (`product.reviewed`, `product.downloaded`), and
//! the store to tell its last `seq`; both belong to the event-fed wiring.
//!
//! # Atomic with the documents
//! The checkpoint travels in tantivy's commit payload (`meta.json`), written
//! by the same commit as the documents it describes, so after a crash the
//! saved checkpoint never runs ahead of the saved documents.

use serde::{Deserialize, Serialize};

/// Bumped whenever the schema or the document encoding changes. Each
/// layout has its own directory, so a build with a new layout starts from an
/// empty index (and rebuilds it) instead of misreading an old one.
pub(crate) const LAYOUT: u32 = 1;

/// The outbox position an index holds every product change up to; see the
/// module docs for why this position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Checkpoint(u64);

impl Checkpoint {
    /// The checkpoint at outbox `seq`.
    pub const fn new(seq: u64) -> Self {
        Self(seq)
    }

    /// The outbox `seq`.
    pub const fn seq(self) -> u64 {
        self.0
    }
}

/// What a commit saves besides documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Payload {
    /// The checkpoint, once one was recorded.
    pub(crate) checkpoint: Option<Checkpoint>,
}

impl Payload {
    /// The JSON saved in `meta.json`.
    pub(crate) fn encode(self) -> String {
        serde_json::json!({ "checkpoint": self.checkpoint }).to_string()
    }

    /// Reads a saved payload; `None` when there is none or it is not ours.
    pub(crate) fn decode(saved: Option<&str>) -> Option<Self> {
        saved.and_then(|s| serde_json::from_str(s).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_foreign_ones_read_as_none() {
        let p = Payload { checkpoint: Some(Checkpoint::new(42)) };
        assert_eq!(p.encode(), r#"{"checkpoint":42}"#);
        assert_eq!(Payload::decode(Some(&p.encode())), Some(p));
        assert_eq!(Payload::decode(Some(r#"{"checkpoint":null}"#)).unwrap().checkpoint, None);
        assert_eq!(Payload::decode(Some("not json")), None);
        assert_eq!(Payload::decode(None), None);
    }
}
