//! One pass over the text matches that yields everything a search answers:
//! the total, both facets and the documents of the requested page.
//!
//! The engine's query decides the text match and its score
//! ([`crate::text`]); everything else is read from fast fields here, because
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
//! order is exactly the reference's comparator, tie-breaks included, kept in
//! a bounded heap per segment and merged across segments.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use bazaar_core::catalog::search::{FacetCount, SearchQuery, SortOrder};
use bazaar_core::catalog::{ProductKind, ProductStats, RatingPrior};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::schema::{column, kind_ordinal};

/// A document's place in the order: larger sorts first. Fields compare in
/// declaration order, so after the sort's own key come the reference's
/// tie-breaks, `created_at` desc then `id` desc (ids are unique, so no two
/// documents tie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SortKey {
    primary: u64,
    created_secs: i64,
    created_nanos: u64,
    id_hi: u64,
    id_lo: u64,
}

/// An `i64` as a `u64` of the same order.
fn ordered_i64(x: i64) -> u64 {
    // Flipping the sign bit maps i64::MIN..=i64::MAX onto 0..=u64::MAX in order.
    x.cast_unsigned() ^ (1 << 63)
}

/// An `f64` as a `u64` ordered like [`f64::total_cmp`], the reference's
/// comparison of display ratings.
fn ordered_f64(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 { !bits } else { bits | (1 << 63) }
}

/// What the search filters on besides text, and what it keeps.
#[derive(Debug, Clone)]
pub(crate) struct SearchCollector {
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
    /// The collector for `q`.
    pub(crate) fn new(q: &SearchQuery) -> Self {
        let page = q.page();
        let keep = page.offset().saturating_add(u64::from(page.limit()));
        Self {
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
    /// The `keep` leading documents, best first.
    pub(crate) top: Vec<DocAddress>,
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

/// The fast-field columns one segment is read through.
struct Columns {
    searchable: Column<u64>,
    kind: Column<u64>,
    categories: Option<StrColumn>,
    price: Column<i64>,
    downloads: Column<u64>,
    rating_sum: Column<u64>,
    rating_count: Column<u64>,
    created_secs: Column<i64>,
    created_nanos: Column<u64>,
    id_hi: Column<u64>,
    id_lo: Column<u64>,
}

impl Columns {
    fn open(segment: &SegmentReader) -> tantivy::Result<Self> {
        let ff = segment.fast_fields();
        Ok(Self {
            searchable: ff.u64(column::SEARCHABLE)?,
            kind: ff.u64(column::KIND)?,
            categories: ff.str(column::CATEGORIES)?,
            price: ff.i64(column::PRICE)?,
            downloads: ff.u64(column::DOWNLOADS)?,
            rating_sum: ff.u64(column::RATING_SUM)?,
            rating_count: ff.u64(column::RATING_COUNT)?,
            created_secs: ff.i64(column::CREATED_SECS)?,
            created_nanos: ff.u64(column::CREATED_NANOS)?,
            id_hi: ff.u64(column::ID_HI)?,
            id_lo: ff.u64(column::ID_LO)?,
        })
    }
}

/// The category filter resolved against one segment's dictionary.
#[derive(Debug, Clone, Copy)]
enum CategoryFilter {
    /// No filter.
    Any,
    /// Products with this category ordinal.
    Ordinal(u64),
    /// The category occurs in no document of the segment.
    Absent,
}

/// [`SearchCollector`] over one segment.
pub(crate) struct SegmentSearch {
    segment: SegmentOrdinal,
    columns: Columns,
    category: CategoryFilter,
    kind: Option<u64>,
    price_min: Option<i64>,
    price_max: Option<i64>,
    sort: SortOrder,
    scored: bool,
    keep: usize,
    category_counts: Vec<u64>,
    kinds: [u64; 3],
    total: u64,
    /// The best `keep` so far; the root is the worst of them.
    top: BinaryHeap<Reverse<(SortKey, DocId)>>,
}

/// What one segment collected.
pub(crate) struct SegmentFruit {
    categories: Vec<(String, u64)>,
    kinds: [u64; 3],
    total: u64,
    top: Vec<(SortKey, DocAddress)>,
}

impl Collector for SearchCollector {
    type Fruit = Collected;
    type Child = SegmentSearch;

    fn for_segment(&self, segment: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<SegmentSearch> {
        let columns = Columns::open(reader)?;
        let category = match (&self.category, &columns.categories) {
            (None, _) => CategoryFilter::Any,
            (Some(_), None) => CategoryFilter::Absent,
            (Some(c), Some(col)) => {
                col.dictionary().term_ord(c.as_bytes())?.map_or(CategoryFilter::Absent, CategoryFilter::Ordinal)
            }
        };
        let terms = columns.categories.as_ref().map_or(0, |c| c.dictionary().num_terms());
        Ok(SegmentSearch {
            segment,
            columns,
            category,
            kind: self.kind,
            price_min: self.price_min,
            price_max: self.price_max,
            sort: self.sort,
            scored: self.scored,
            keep: self.keep,
            category_counts: vec![0; terms],
            kinds: [0; 3],
            total: 0,
            top: BinaryHeap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.scored
    }

    fn merge_fruits(&self, fruits: Vec<SegmentFruit>) -> tantivy::Result<Collected> {
        let mut out = Collected::default();
        let mut top = Vec::new();
        for f in fruits {
            for (value, count) in f.categories {
                *out.categories.entry(value).or_insert(0) += count;
            }
            for (all, k) in out.kinds.iter_mut().zip(f.kinds) {
                *all += k;
            }
            out.total += f.total;
            top.extend(f.top);
        }
        top.sort_unstable_by_key(|&(key, _)| Reverse(key));
        top.truncate(self.keep);
        out.top = top.into_iter().map(|(_, addr)| addr).collect();
        Ok(out)
    }
}

impl SegmentSearch {
    fn key(&self, doc: DocId, score: Score) -> SortKey {
        let c = &self.columns;
        let u = |col: &Column<u64>| col.first(doc).unwrap_or(0);
        let primary = match self.sort {
            // Scores are sums of small integer weights: exact in f32.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            SortOrder::Relevance if self.scored => score as u64,
            SortOrder::Relevance | SortOrder::Newest => 0,
            SortOrder::PriceAsc => u64::MAX - ordered_i64(c.price.first(doc).unwrap_or(0)),
            SortOrder::PriceDesc => ordered_i64(c.price.first(doc).unwrap_or(0)),
            SortOrder::Rating => {
                let stats =
                    ProductStats { downloads: 0, rating_sum: u(&c.rating_sum), rating_count: u(&c.rating_count) };
                ordered_f64(RatingPrior::DEFAULT.display(&stats))
            }
            SortOrder::Downloads => u(&c.downloads),
        };
        SortKey {
            primary,
            created_secs: c.created_secs.first(doc).unwrap_or(0),
            created_nanos: u(&c.created_nanos),
            id_hi: u(&c.id_hi),
            id_lo: u(&c.id_lo),
        }
    }
}

impl SegmentSearch {
    /// Counts the document's categories in the facet when the kind filter
    /// passes (`kind_ok`), and answers whether it passes the category
    /// filter, in one walk of its categories.
    fn categories(&mut self, doc: DocId, kind_ok: bool) -> bool {
        let Some(col) = &self.columns.categories else {
            return matches!(self.category, CategoryFilter::Any);
        };
        let want = match self.category {
            CategoryFilter::Any => None,
            CategoryFilter::Ordinal(o) => Some(o),
            CategoryFilter::Absent if kind_ok => None,
            CategoryFilter::Absent => return false,
        };
        let mut found = false;
        if kind_ok {
            for ord in col.term_ords(doc) {
                found |= Some(ord) == want;
                self.category_counts[ord as usize] += 1;
            }
        } else if let Some(w) = want {
            found = col.term_ords(doc).any(|ord| ord == w);
        }
        match self.category {
            CategoryFilter::Any => true,
            CategoryFilter::Absent => false,
            CategoryFilter::Ordinal(_) => found,
        }
    }
}

impl SegmentCollector for SegmentSearch {
    type Fruit = SegmentFruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        let c = &self.columns;
        if c.searchable.first(doc) != Some(1) {
            return;
        }
        if self.price_min.is_some() || self.price_max.is_some() {
            let price = c.price.first(doc).unwrap_or(0);
            if self.price_min.is_some_and(|m| price < m) || self.price_max.is_some_and(|m| price > m) {
                return;
            }
        }
        let kind = c.kind.first(doc).unwrap_or(0);
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
        if self.top.len() < self.keep {
            self.top.push(Reverse((key, doc)));
        } else if self.top.peek().is_some_and(|Reverse((worst, _))| key > *worst) {
            self.top.pop();
            self.top.push(Reverse((key, doc)));
        }
    }

    fn harvest(self) -> SegmentFruit {
        let mut categories = Vec::new();
        if let Some(col) = &self.columns.categories {
            let mut value = String::new();
            for (ord, &count) in self.category_counts.iter().enumerate() {
                // A dictionary ordinal always resolves; a miss would be index corruption.
                if count > 0 && col.ord_to_str(ord as u64, &mut value).unwrap_or(false) {
                    categories.push((value.clone(), count));
                }
            }
        }
        let segment = self.segment;
        SegmentFruit {
            categories,
            kinds: self.kinds,
            total: self.total,
            top: self.top.into_iter().map(|Reverse((k, doc))| (k, DocAddress::new(segment, doc))).collect(),
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
    fn float_keys_order_like_total_cmp() {
        let xs = [f64::NEG_INFINITY, -2.5, -0.0, 0.0, 1.0 / 3.0, 3.0, 20.0 / 6.0, f64::INFINITY, f64::NAN];
        for a in xs {
            for b in xs {
                assert_eq!(ordered_f64(a).cmp(&ordered_f64(b)), a.total_cmp(&b), "{a} vs {b}");
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
