//! Ketama-style consistent hash ring with weighted virtual nodes.

use super::EndpointId;
use super::hash::stable_hash;

/// Points on the ring: `(hash, endpoint index)` sorted by hash.
#[derive(Debug)]
pub(crate) struct Ring {
    points: Vec<(u64, u32)>,
}

impl Ring {
    /// Builds a ring with `vnodes_per_weight × weight` points per endpoint.
    ///
    /// The count per endpoint is fixed rather than scaled to a total ring
    /// size (Envoy's `minimum_ring_size`): scaling would re-place every
    /// endpoint's points whenever one joins or leaves and move far more than
    /// the leaving endpoint's keys (measured: 0.17 instead of 0.1 for N = 10).
    pub(crate) fn build(ids: &[EndpointId], weights: &[u32], vnodes_per_weight: u32) -> Self {
        let per = u64::from(vnodes_per_weight.max(1));
        let total: u64 = weights.iter().map(|&w| u64::from(w) * per).sum();
        let mut points = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for (i, (id, &w)) in ids.iter().zip(weights).enumerate() {
            let vnodes = u64::from(w) * per;
            let mut buf = Vec::with_capacity(id.as_str().len() + 12);
            for v in 0..vnodes {
                buf.clear();
                buf.extend_from_slice(id.as_str().as_bytes());
                buf.push(b'_');
                buf.extend_from_slice(v.to_string().as_bytes());
                points.push((stable_hash(&buf), i as u32));
            }
        }
        points.sort_unstable();
        Self { points }
    }

    /// Walks clockwise from `hash` and returns the first endpoint index that
    /// `allowed` accepts (so unavailable endpoints hand their keys to their
    /// ring successors only).
    pub(crate) fn lookup(&self, hash: u64, allowed: impl Fn(usize) -> bool) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let start = self.points.partition_point(|&(h, _)| h < hash);
        let len = self.points.len();
        (0..len).map(|k| self.points[(start + k) % len].1 as usize).find(|&i| allowed(i))
    }
}
