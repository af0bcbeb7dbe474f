//! One pass that yields everything a search answers: the total, both
//! facets and the documents of the requested page.
//!
//! Each facet leaves out its own dimension's filter (reference rule 7), so
//! the category and kind filters cannot be part of the engine's query; they
//! are applied here, reading the segment's [`SegmentTable`]. For every
//! candidate document that is searchable and within the price bounds:
//! - when the kind filter passes, each of its categories counts in the
//!   category facet;
//! - when the category filter passes, its kind counts in the kind facet;
//! - when both pass, it counts in the total and competes for the page.
//!
//! The page is the top `offset + limit` documents by a
//! [`SortKey`], whose order is exactly the
//! reference's comparator with its tie-breaks, kept by a [`TopN`] per
//! segment and merged across segments.
//!
//! With text, the candidates are the engine's matches, scored
//! ([`crate::text`]) and fed to [`SearchCollector`]. Without text, every
//! searchable document is a candidate, and [`browse`] answers from the
//! segment's precomputed orders and counts instead of visiting them all.

mod browse;
mod top;

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;

use bazaar_core::catalog::ProductKind;
use bazaar_core::catalog::search::{FacetCount, SearchQuery, SortOrder};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

use crate::schema::kind_ordinal;
use crate::table::{HIDDEN, SegmentTable, SortKey, Tables};
use top::TopN;

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
    /// Inclusive bounds; absent ones are the extremes.
    price_min: i64,
    price_max: i64,
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
            price_min: self.price_min.unwrap_or(i64::MIN),
            price_max: self.price_max.unwrap_or(i64::MAX),
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
    /// Counts the document's categories in the facet when the kind filter
    /// passes (`kind_ok`), and answers whether it passes the category
    /// filter, in one walk of its categories.
    #[inline(always)]
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

impl SegmentSearch {
    /// The per-document step; see the module docs. Inlined into
    /// `collect_block`, which is where a search without text spends its
    /// time.
    #[inline(always)]
    fn visit(&mut self, doc: DocId, score: Score) {
        let (t, d) = (&self.table, doc as usize);
        let kind = t.kind[d];
        let price = t.price[d];
        if kind == HIDDEN || price < self.price_min || price > self.price_max {
            return;
        }
        let kind_ok = self.kind.is_none_or(|k| k == u64::from(kind));
        if !self.categories(doc, kind_ok) {
            return;
        }
        if let Some(k) = self.kinds.get_mut(usize::from(kind)) {
            *k += 1;
        }
        if !kind_ok {
            return;
        }
        self.total += 1;
        // Scores are sums of small integer weights: exact in f32.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let score = if self.scored { score as u64 } else { 0 };
        let key = self.table.key(doc, self.sort, score);
        self.top.offer(key, doc);
    }
}

impl SegmentSearch {
    /// What the segment collected.
    fn harvest_fruit(self) -> SegmentFruit {
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

impl SegmentCollector for SegmentSearch {
    type Fruit = SegmentFruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.visit(doc, score);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        for &doc in docs {
            self.visit(doc, 0.0);
        }
    }

    fn harvest(self) -> SegmentFruit {
        self.harvest_fruit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facets_order_by_count_then_value() {
        let got =
            facet([("b".to_owned(), 2), ("a".to_owned(), 2), ("c".to_owned(), 5), ("z".to_owned(), 0)].into_iter());
        let values: Vec<_> = got.iter().map(|f| (f.value.as_str(), f.count)).collect();
        assert_eq!(values, [("c", 5), ("a", 2), ("b", 2)]);
    }
}
