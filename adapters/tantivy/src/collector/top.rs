//! [`TopN`]: the best keys of a stream, for a page.

use tantivy::DocId;

use crate::table::SortKey;

/// The `keep` largest keys offered, in amortized constant time per offer.
///
/// A binary heap pays a pop and a push for every key that beats its worst,
/// and under `newest` a segment offers its documents oldest first, so every
/// one does. Instead, offers collect in a buffer of twice `keep` (at least
/// 256, so cuts stay rare for small pages); a full
/// buffer is cut to its `keep` best (a linear selection), and the worst of
/// those becomes a threshold that later keys must beat to be kept at all.
#[derive(Debug)]
pub(crate) struct TopN {
    keep: usize,
    buffer: Vec<(SortKey, DocId)>,
    threshold: Option<SortKey>,
}

impl TopN {
    /// Keeps the best `keep`.
    pub(crate) fn new(keep: usize) -> Self {
        Self { keep, buffer: Vec::new(), threshold: None }
    }

    /// How many it keeps.
    pub(crate) fn keep(&self) -> usize {
        self.keep
    }

    /// Considers `key` for `doc`.
    pub(crate) fn offer(&mut self, key: SortKey, doc: DocId) {
        if self.threshold.is_some_and(|t| key <= t) {
            return;
        }
        self.buffer.push((key, doc));
        if self.buffer.len() >= self.keep.saturating_mul(2).max(256) {
            self.cut();
        }
    }

    /// Keeps the `keep` best and raises the threshold to the worst of them.
    fn cut(&mut self) {
        if self.keep == 0 {
            self.buffer.clear();
        } else if self.buffer.len() > self.keep {
            self.buffer.select_nth_unstable_by(self.keep - 1, |a, b| b.0.cmp(&a.0));
            self.buffer.truncate(self.keep);
            self.threshold = Some(self.buffer[self.keep - 1].0);
        }
    }

    /// The `keep` best, in no particular order.
    pub(crate) fn into_best(mut self) -> Vec<(SortKey, DocId)> {
        self.cut();
        self.buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_n_keeps_the_largest_keys_whatever_the_order_offered() {
        let key = |n: u64| SortKey::from_primary(n);
        for keep in [0, 1, 3, 64, 200] {
            for order in [
                (0..1_000).collect::<Vec<u64>>(),
                (0..1_000).rev().collect(),
                (0..1_000).map(|i| (i * 7_919) % 1_000).collect(),
            ] {
                let mut top = TopN::new(keep);
                for (doc, &n) in order.iter().enumerate() {
                    top.offer(key(n), doc as DocId);
                }
                let mut got: Vec<u64> = top.into_best().into_iter().map(|(k, _)| k.primary()).collect();
                got.sort_unstable_by(|a, b| b.cmp(a));
                let want: Vec<u64> = (0..1_000).rev().take(keep).collect();
                assert_eq!(got, want, "keep {keep}");
            }
        }
    }
}
