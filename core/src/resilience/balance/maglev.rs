//! Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup table of
//! prime size filled from per-endpoint permutations.

use super::EndpointId;
use super::hash::stable_hash_seeded;

/// The default table size; prime, and ≫ 100·N for N up to a few hundred
/// endpoints so shares stay within about 1 % of the weights.
pub(crate) const DEFAULT_TABLE_SIZE: usize = 65_537;

#[derive(Debug)]
pub(crate) struct Maglev {
    table: Vec<u32>,
}

impl Maglev {
    /// Fills a table of `size` slots (should be prime). Weighted Maglev by
    /// turns: each round endpoint `i` claims `weight_i` slots.
    pub(crate) fn build(ids: &[EndpointId], weights: &[u32], size: usize) -> Self {
        let n = ids.len();
        if n == 0 || size == 0 {
            return Self { table: Vec::new() };
        }
        let m = size as u64;
        let perms: Vec<(u64, u64)> = ids
            .iter()
            .map(|id| {
                let bytes = id.as_str().as_bytes();
                let offset = stable_hash_seeded(bytes, 0x6d61_676c) % m;
                let skip = if m > 1 { stable_hash_seeded(bytes, 0x736b_6970) % (m - 1) + 1 } else { 1 };
                (offset, skip)
            })
            .collect();
        let mut next = vec![0u64; n];
        let mut table = vec![u32::MAX; size];
        let mut filled = 0;
        'fill: loop {
            for i in 0..n {
                for _ in 0..weights[i].max(1) {
                    let (offset, skip) = perms[i];
                    let mut slot = ((offset + next[i] * skip) % m) as usize;
                    while table[slot] != u32::MAX {
                        next[i] += 1;
                        slot = ((offset + next[i] * skip) % m) as usize;
                    }
                    table[slot] = i as u32;
                    next[i] += 1;
                    filled += 1;
                    if filled == size {
                        break 'fill;
                    }
                }
            }
        }
        Self { table }
    }

    /// The endpoint for `hash`; when that endpoint is not `allowed`, probes
    /// the following slots, which belong to a pseudo-random mix of others.
    pub(crate) fn lookup(&self, hash: u64, allowed: impl Fn(usize) -> bool) -> Option<usize> {
        let len = self.table.len();
        if len == 0 {
            return None;
        }
        let start = (hash % len as u64) as usize;
        (0..len).map(|k| self.table[(start + k) % len] as usize).find(|&i| allowed(i))
    }
}
