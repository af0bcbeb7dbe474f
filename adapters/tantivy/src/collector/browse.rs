//! Searches without text, answered without visiting every document.
//!
//! Every searchable document is a candidate, so a visit of all of them
//! (what a text search does with its matches) would cost a pass over the
//! whole catalog per search. Instead each segment's [`SegmentTable`] keeps
//! its searchable documents in every sort order, and facet counts over all
//! of them and per block of the `price_asc` order:
//! - the **facets and the total** are sums of counts (per category and
//!   kind, per kind). Without price bounds those of the whole segment; with
//!   them, those of the documents within the bounds, which are one run of
//!   the `price_asc` order (its first key is the price): the blocks the run
//!   covers plus a visit of the partial blocks at its ends;
//! - the **page** is the first `offset + limit` documents of the sort order
//!   that pass the filters and are not deleted, so a walk stops as soon as
//!   it has them. Under a price sort with bounds, the run itself is in
//!   order. Under another sort with bounds, the walk skips documents out of
//!   bounds, unless ranking the run's documents reads fewer (a narrow band).
//!
//! [`SegmentTable`]: crate::table::SegmentTable

use std::sync::Arc;

use bazaar_core::catalog::search::SortOrder;
use tantivy::collector::Collector;
use tantivy::fastfield::AliveBitSet;
use tantivy::{DocId, Searcher, SegmentOrdinal, SegmentReader};

use super::{CategoryFilter, Collected, SearchCollector, SegmentFruit, SegmentSearch};
use crate::table::{BLOCK, Counts, SegmentTable};

impl SearchCollector {
    /// What a search without text answers, over every segment of `searcher`.
    ///
    /// # Errors
    /// When a segment's table cannot be built.
    pub(crate) fn browse(&self, searcher: &Searcher) -> tantivy::Result<Collected> {
        let mut fruits = Vec::with_capacity(searcher.segment_readers().len());
        for (ord, reader) in searcher.segment_readers().iter().enumerate() {
            let segment = self.for_segment(SegmentOrdinal::try_from(ord).unwrap_or(SegmentOrdinal::MAX), reader)?;
            fruits.push(segment.browse(reader));
        }
        self.merge_fruits(fruits)
    }
}

/// Counts the documents of `docs` that are not deleted.
fn count(into: &mut Counts, table: &SegmentTable, docs: &[DocId], alive: Option<&AliveBitSet>) {
    for &doc in docs {
        if alive.is_none_or(|a| a.is_alive(doc)) {
            into.add_doc(table, doc);
        }
    }
}

impl SegmentSearch {
    fn browse(mut self, reader: &SegmentReader) -> SegmentFruit {
        let table = Arc::clone(&self.table);
        let counts = table.counts(reader);
        let alive = reader.alive_bitset();
        if self.price_min == i64::MIN && self.price_max == i64::MAX {
            self.set_counts(&counts.all);
            self.walk(table.order(self.sort), alive, false);
            return self.harvest_fruit();
        }

        let (min, max) = (self.price_min, self.price_max);
        let price = |d: &DocId| table.price[*d as usize];
        let asc = table.order(SortOrder::PriceAsc);
        let start = asc.partition_point(|d| price(d) < min);
        let end = start + asc[start..].partition_point(|d| price(d) <= max);
        let mut run = Counts::empty(table.category_names.len());
        let (first_block, end_block) = (start.div_ceil(BLOCK), end / BLOCK);
        if first_block < end_block {
            count(&mut run, &table, &asc[start..first_block * BLOCK], alive);
            for block in &counts.blocks[first_block..end_block] {
                run.add(block);
            }
            count(&mut run, &table, &asc[end_block * BLOCK..end], alive);
        } else {
            count(&mut run, &table, &asc[start..end], alive);
        }
        self.set_counts(&run);

        match self.sort {
            SortOrder::PriceAsc => self.walk(&asc[start..end], alive, false),
            SortOrder::PriceDesc => {
                let desc = table.order(SortOrder::PriceDesc);
                let start = desc.partition_point(|d| price(d) > max);
                let end = start + desc[start..].partition_point(|d| price(d) >= min);
                self.walk(&desc[start..end], alive, false);
            }
            sort => {
                // A walk reads about keep · visible / matches documents.
                let matches = usize::try_from(self.total).unwrap_or(usize::MAX).max(1);
                let walk = self.top.keep().saturating_mul(asc.len()) / matches;
                if end - start <= walk {
                    for &doc in &asc[start..end] {
                        if alive.is_none_or(|a| a.is_alive(doc)) && self.passes(doc) {
                            self.top.offer(table.key(doc, sort, 0), doc);
                        }
                    }
                } else {
                    self.walk(table.order(sort), alive, true);
                }
            }
        }
        self.harvest_fruit()
    }

    /// The facets and the total, from the counts of the candidates.
    fn set_counts(&mut self, counts: &Counts) {
        let kind = self.kind;
        let kinds = move |k: usize| kind.is_none_or(|want| want == k as u64);
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
    }

    /// Offers the first documents of `order` (best first) that pass the
    /// filters (and the price bounds, when `bounded`) until the page is full
    /// or every match was seen.
    fn walk(&mut self, order: &[DocId], alive: Option<&AliveBitSet>, bounded: bool) {
        let mut wanted = usize::try_from(self.total).unwrap_or(usize::MAX).min(self.top.keep());
        let table = Arc::clone(&self.table);
        for &doc in order {
            if wanted == 0 {
                break;
            }
            let price = table.price[doc as usize];
            if alive.is_some_and(|a| a.is_deleted(doc))
                || (bounded && (price < self.price_min || price > self.price_max))
                || !self.passes(doc)
            {
                continue;
            }
            self.top.offer(table.key(doc, self.sort, 0), doc);
            wanted -= 1;
        }
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
}
