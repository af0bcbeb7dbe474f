//! Searches without text, answered without visiting every document.
//!
//! Every searchable document is a candidate, so a visit of all of them
//! (what a text search does with its matches) would cost a pass over the
//! whole catalog per search. Instead each segment's [`SegmentTable`] holds
//! its searchable documents in every sort order and its facet counts:
//! - **no price bounds**: the facets and the total are sums of the counts
//!   (per category and kind, per kind), and the page is the first
//!   `offset + limit` documents of the sort order that pass the category
//!   and kind filters and are not deleted;
//! - **price bounds**: the documents within them are one run of the
//!   `price_asc` order (its first key is the price), found by binary
//!   search; only that run is visited, as a text search visits its matches.

use tantivy::{DocId, Searcher, SegmentOrdinal, SegmentReader};

use super::{CategoryFilter, Collected, SearchCollector, SegmentFruit, SegmentSearch};
use bazaar_core::catalog::search::SortOrder;

impl SearchCollector {
    /// What a search without text answers, over every segment of `searcher`.
    ///
    /// # Errors
    /// When a segment's table cannot be built.
    pub(crate) fn browse(&self, searcher: &Searcher) -> tantivy::Result<Collected> {
        use tantivy::collector::Collector;
        let mut fruits = Vec::with_capacity(searcher.segment_readers().len());
        for (ord, reader) in searcher.segment_readers().iter().enumerate() {
            let segment = self.for_segment(SegmentOrdinal::try_from(ord).unwrap_or(SegmentOrdinal::MAX), reader)?;
            fruits.push(if self.price_min.is_some() || self.price_max.is_some() {
                segment.visit_price_run(reader)
            } else {
                segment.walk(reader)
            });
        }
        self.merge_fruits(fruits)
    }
}

impl SegmentSearch {
    /// Facets and total from the counts, the page from the sort order.
    fn walk(mut self, reader: &SegmentReader) -> SegmentFruit {
        let counts = self.table.counts(reader);
        let kinds = |k: usize| self.kind.is_none_or(|want| want == k as u64);
        for (facet, by_kind) in self.category_counts.iter_mut().zip(&counts.by_category) {
            *facet = (0..3).filter(|&k| kinds(k)).map(|k| by_kind[k]).sum();
        }
        let in_category = match self.category {
            CategoryFilter::Any => counts.by_kind,
            CategoryFilter::Ordinal(c) => counts.by_category[c as usize],
            CategoryFilter::Absent => [0; 3],
        };
        self.kinds = in_category;
        self.total = (0..3).filter(|&k| kinds(k)).map(|k| in_category[k]).sum();

        let mut wanted = usize::try_from(self.total).unwrap_or(usize::MAX).min(self.top.keep());
        let alive = reader.alive_bitset();
        let table = std::sync::Arc::clone(&self.table);
        for &doc in table.order(self.sort) {
            if wanted == 0 {
                break;
            }
            if alive.is_some_and(|a| a.is_deleted(doc)) || !self.passes(doc) {
                continue;
            }
            self.top.offer(table.key(doc, self.sort, 0), doc);
            wanted -= 1;
        }
        self.harvest_fruit()
    }

    /// Whether `doc` (searchable) passes the kind and category filters.
    fn passes(&self, doc: DocId) -> bool {
        let t = &self.table;
        self.kind.is_none_or(|k| k == u64::from(t.kind[doc as usize]))
            && match self.category {
                CategoryFilter::Any => true,
                CategoryFilter::Ordinal(c) => t.categories(doc).contains(&c),
                CategoryFilter::Absent => false,
            }
    }

    /// Visits the run of `price_asc` within the price bounds.
    fn visit_price_run(mut self, reader: &SegmentReader) -> SegmentFruit {
        let table = std::sync::Arc::clone(&self.table);
        let order = table.order(SortOrder::PriceAsc);
        let start = order.partition_point(|&d| table.price[d as usize] < self.price_min);
        let end = start + order[start..].partition_point(|&d| table.price[d as usize] <= self.price_max);
        let alive = reader.alive_bitset();
        for &doc in &order[start..end] {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                self.visit(doc, 0.0);
            }
        }
        self.harvest_fruit()
    }
}
