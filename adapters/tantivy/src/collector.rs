//! One pass over the text matches that yields everything a search answers:
//! the total, both facets and the documents of the requested page.
//!
//! The engine's query decides the text match and its score
//! ([`crate::text`]); everything else is read from the segment's
//! [`SegmentTable`] (its fast fields, decoded) here, because
//! each facet leaves out its own dimension's filter (reference rule 7) and a
//! query that applied the category and kind filters could not count them.
//! For every matching document that is searchable and within the price
//! bounds:
//! - when the kind filter passes, each of its categories counts in the
//!   category facet;
//! - when the category filter passes, its kind counts in the kind facet;
//! - when both pass, it counts in the total and competes for the page.
//!
//! The page is the top `offset + limit` documents by a [`SortKey`] whose
//! order is exactly the reference's comparator, tie-breaks included, kept by
//! a [`TopN`] per segment and merged across segments.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;

use bazaar_core::catalog::ProductKind;
use bazaar_core::catalog::search::{FacetCount, SearchQuery, SortOrder};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::schema::kind_ordinal;
use crate::table::{HIDDEN, SegmentTable, Tables};

/// A document's place in the order: larger sorts first. Fields compare in
/// declaration order, so after the sort's own key come the reference's
/// tie-breaks, `created_at` desc then `id` desc (ids are unique, so no two
/// documents tie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SortKey {
    primary: u64,
    created_secs: i64,
    created_nanos: u32,
    id: u128,
}

/// An `i64` as a `u64` of the same order.
fn ordered_i64(x: i64) -> u64 {
    // Flipping the sign bit maps i64::MIN..=i64::MAX onto 0..=u64::MAX in order.
    x.cast_unsigned() ^ (1 << 63)
}

/// The `keep` largest keys offered, in amortized constant time per offer.
///
/// A binary heap pays a pop and a push for every key that beats its worst,
/// and under `newest` a segment offers its documents oldest first, so every
/// one does. Instead, offers collect in a buffer of twice `keep`; a full
/// buffer is cut to its `keep` best (a linear selection), and the worst of
/// those becomes a threshold that later keys must beat to be kept at all.
#[derive(Debug)]
struct TopN {
    keep: usize,
    buffer: Vec<(SortKey, DocId)>,
    threshold: Option<SortKey>,
}

impl TopN {
    fn new(keep: usize) -> Self {
        Self { keep, buffer: Vec::new(), threshold: None }
    }

    fn offer(&mut self, key: SortKey, doc: DocId) {
        if self.threshold.is_some_and(|t| key <= t) {
            return;
        }
        self.buffer.push((key, doc));
        if self.buffer.len() >= self.keep.saturating_mul(2).max(64) {
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
    fn into_best(mut self) -> Vec<(SortKey, DocId)> {
        self.cut();
        self.buffer
    }
}

/// What the search filters on besides text, and what it keeps.
#[derive(Debug, Clone)]
pub(crate) struct SearchCollector {
    tables: Arc<Tables>,
    category: Option<String>,
    kind: Option<u64>,
    price_min: Option<i64>,
    price_max: Option<i64>,
    sort: SortOrder,
    /// Whether the engine's score is the sort key (relevance with text).
    scored: bool,
    /// `offset + limit`: how many leading documents the page needs.
    keep: usize,
}

impl SearchCollector {
    /// The collector for `q`, reading segments through `tables`.
    pub(crate) fn new(q: &SearchQuery, tables: Arc<Tables>) -> Self {
        let page = q.page();
        let keep = page.offset().saturating_add(u64::from(page.limit()));
        Self {
            tables,
            category: q.category().map(str::to_owned),
            kind: q.kind().map(kind_ordinal),
            price_min: q.price_min(),
            price_max: q.price_max(),
            sort: q.sort(),
            scored: q.sort() == SortOrder::Relevance && !q.terms().is_empty(),
            keep: usize::try_from(keep).unwrap_or(usize::MAX),
        }
    }
}

/// What one search collected, before the page's documents are loaded.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// Category facet counts (unsorted).
    pub(crate) categories: BTreeMap<String, u64>,
    /// Kind facet counts, by [`ProductKind::ALL`] index.
    pub(crate) kinds: [u64; 3],
    /// Matches of every filter.
    pub(crate) total: u64,
    /// The `keep` leading documents, best first, with their segment's table.
    pub(crate) top: Vec<(Arc<SegmentTable>, DocAddress)>,
}

impl Collected {
    /// The category facet in the reference's order: count desc, value asc.
    pub(crate) fn category_facet(&self) -> Vec<FacetCount> {
        facet(self.categories.iter().map(|(v, c)| (v.clone(), *c)))
    }

    /// The kind facet in the reference's order.
    pub(crate) fn kind_facet(&self) -> Vec<FacetCount> {
        facet(ProductKind::ALL.iter().zip(self.kinds).map(|(k, c)| (k.as_str().to_owned(), c)))
    }
}

fn facet(counts: impl Iterator<Item = (String, u64)>) -> Vec<FacetCount> {
    let mut v: Vec<FacetCount> =
        counts.filter(|(_, c)| *c > 0).map(|(value, count)| FacetCount { value, count }).collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    v
}

/// The category filter resolved against one segment's categories.
#[derive(Debug, Clone, Copy)]
enum CategoryFilter {
    /// No filter.
    Any,
    /// Products with this category ordinal.
    Ordinal(u32),
    /// The category occurs in no document of the segment.
    Absent,
}

/// [`SearchCollector`] over one segment.
pub(crate) struct SegmentSearch {
    segment: SegmentOrdinal,
    table: Arc<SegmentTable>,
    category: CategoryFilter,
    kind: Option<u64>,
    price_min: Option<i64>,
    price_max: Option<i64>,
    sort: SortOrder,
    scored: bool,
    category_counts: Vec<u64>,
    kinds: [u64; 3],
    total: u64,
    /// The best `keep` so far; the root is the worst of them.
    top: TopN,
}

/// What one segment collected.
pub(crate) struct SegmentFruit {
    table: Arc<SegmentTable>,
    categories: Vec<(String, u64)>,
    kinds: [u64; 3],
    total: u64,
    top: Vec<(SortKey, DocAddress)>,
}

impl Collector for SearchCollector {
    type Fruit = Collected;
    type Child = SegmentSearch;

    fn for_segment(&self, segment: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<SegmentSearch> {
        let table = self.tables.get(reader)?;
        let category = match &self.category {
            None => CategoryFilter::Any,
            Some(c) => table.category_ordinal(c).map_or(CategoryFilter::Absent, CategoryFilter::Ordinal),
        };
        Ok(SegmentSearch {
            segment,
            category_counts: vec![0; table.category_names.len()],
            table,
            category,
            kind: self.kind,
            price_min: self.price_min,
            price_max: self.price_max,
            sort: self.sort,
            scored: self.scored,
            kinds: [0; 3],
            total: 0,
            top: TopN::new(self.keep),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.scored
    }

    fn merge_fruits(&self, fruits: Vec<SegmentFruit>) -> tantivy::Result<Collected> {
        let mut out = Collected::default();
        let mut top = Vec::new();
        for f in fruits {
            let table = f.table;
            for (value, count) in f.categories {
                *out.categories.entry(value).or_insert(0) += count;
            }
            for (all, k) in out.kinds.iter_mut().zip(f.kinds) {
                *all += k;
            }
            out.total += f.total;
            top.extend(f.top.into_iter().map(|(key, at)| (key, Arc::clone(&table), at)));
        }
        top.sort_unstable_by_key(|&(key, _, _)| Reverse(key));
        top.truncate(self.keep);
        out.top = top.into_iter().map(|(_, table, at)| (table, at)).collect();
        Ok(out)
    }
}

impl SegmentSearch {
    fn key(&self, doc: DocId, score: Score) -> SortKey {
        let (t, d) = (&self.table, doc as usize);
        let primary = match self.sort {
            // Scores are sums of small integer weights: exact in f32.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            SortOrder::Relevance if self.scored => score as u64,
            SortOrder::Relevance | SortOrder::Newest => 0,
            SortOrder::PriceAsc => u64::MAX - ordered_i64(t.price[d]),
            SortOrder::PriceDesc => ordered_i64(t.price[d]),
            SortOrder::Rating => t.rating[d],
            SortOrder::Downloads => t.downloads[d],
        };
        SortKey { primary, created_secs: t.created_secs[d], created_nanos: t.created_nanos[d], id: t.id[d] }
    }
}

impl SegmentSearch {
    /// Counts the document's categories in the facet when the kind filter
    /// passes (`kind_ok`), and answers whether it passes the category
    /// filter, in one walk of its categories.
    fn categories(&mut self, doc: DocId, kind_ok: bool) -> bool {
        let ords = self.table.categories(doc);
        let want = match self.category {
            CategoryFilter::Any => None,
            CategoryFilter::Ordinal(o) => Some(o),
            CategoryFilter::Absent if kind_ok => None,
            CategoryFilter::Absent => return false,
        };
        if kind_ok {
            for &ord in ords {
                self.category_counts[ord as usize] += 1;
            }
        }
        match self.category {
            CategoryFilter::Any => true,
            CategoryFilter::Absent => false,
            CategoryFilter::Ordinal(_) => ords.iter().any(|&o| Some(o) == want),
        }
    }
}

impl SegmentCollector for SegmentSearch {
    type Fruit = SegmentFruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        let (t, d) = (&self.table, doc as usize);
        let kind = t.kind[d];
        if kind == HIDDEN {
            return;
        }
        if self.price_min.is_some() || self.price_max.is_some() {
            let price = t.price[d];
            if self.price_min.is_some_and(|m| price < m) || self.price_max.is_some_and(|m| price > m) {
                return;
            }
        }
        let kind = u64::from(kind);
        let kind_ok = self.kind.is_none_or(|k| k == kind);
        let category_ok = self.categories(doc, kind_ok);
        if !category_ok {
            return;
        }
        if let Some(k) = self.kinds.get_mut(kind as usize) {
            *k += 1;
        }
        if !kind_ok {
            return;
        }
        self.total += 1;
        let key = self.key(doc, score);
        self.top.offer(key, doc);
    }

    fn harvest(self) -> SegmentFruit {
        let categories = self
            .category_counts
            .iter()
            .zip(&self.table.category_names)
            .filter(|(count, _)| **count > 0)
            .map(|(&count, name)| (name.clone(), count))
            .collect();
        let segment = self.segment;
        SegmentFruit {
            table: self.table,
            categories,
            kinds: self.kinds,
            total: self.total,
            top: self.top.into_best().into_iter().map(|(k, doc)| (k, DocAddress::new(segment, doc))).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_keys_keep_their_order() {
        let xs = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for w in xs.windows(2) {
            assert!(ordered_i64(w[0]) < ordered_i64(w[1]), "{w:?}");
        }
    }

    #[test]
    fn top_n_keeps_the_largest_keys_whatever_the_order_offered() {
        let key = |n: u64| SortKey { primary: n, created_secs: 0, created_nanos: 0, id: 0 };
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
                let mut got: Vec<u64> = top.into_best().into_iter().map(|(k, _)| k.primary).collect();
                got.sort_unstable_by(|a, b| b.cmp(a));
                let want: Vec<u64> = (0..1_000).rev().take(keep).collect();
                assert_eq!(got, want, "keep {keep}");
            }
        }
    }

    #[test]
    fn facets_order_by_count_then_value() {
        let got =
            facet([("b".to_owned(), 2), ("a".to_owned(), 2), ("c".to_owned(), 5), ("z".to_owned(), 0)].into_iter());
        let values: Vec<_> = got.iter().map(|f| (f.value.as_str(), f.count)).collect();
        assert_eq!(values, [("c", 5), ("a", 2), ("b", 2)]);
    }
}
