//! Per-segment tables: what a search reads about a segment, prepared once
//! when the segment comes in rather than on every search.
//!
//! A segment never changes once written (deletes only hide documents), so
//! everything derived from it can be computed once:
//! - its fast fields decoded into plain vectors. A search visits many
//!   documents, and reading tantivy's columns costs a bit-unpacking behind a
//!   dynamic call per value, several per document; measured on 10,000
//!   products that was about 80 ns a document, against a few through
//!   vectors. The display rating is kept as its sort key;
//! - the searchable documents in each sort order, so a search without text
//!   walks only as far as its page reaches ([`crate::collector`]);
//! - its vocabularies ([`Vocab`]);
//! - product bodies, decoded on first use;
//! - facet counts ([`Counts`]), which do depend on the deletes, so they are
//!   kept for the segment's latest deletes and recounted when those change.
//!
//! Tables are built by a tantivy [`Warmer`], which the reader runs on every
//! new searcher before publishing it, and dropped by the warmer's garbage
//! collection once no live searcher holds the segment.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, OnceLock};

use bazaar_core::catalog::search::SortOrder;
use bazaar_core::catalog::{Product, ProductStats, RatingPrior};
use parking_lot::{Mutex, RwLock};
use tantivy::columnar::Column;
use tantivy::index::SegmentId;
use tantivy::{DocId, Searcher, SearcherGeneration, SegmentReader, Warmer};

use crate::schema::{Fields, Source, column};
use crate::vocab::Vocab;

/// The `kind` of a document that is not searchable.
pub(crate) const HIDDEN: u8 = u8::MAX;

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

/// The orders kept per segment; relevance without text is `newest`.
const ORDERS: [SortOrder; 5] =
    [SortOrder::Newest, SortOrder::PriceAsc, SortOrder::PriceDesc, SortOrder::Rating, SortOrder::Downloads];

fn order_index(sort: SortOrder) -> usize {
    match sort {
        SortOrder::Newest | SortOrder::Relevance => 0,
        SortOrder::PriceAsc => 1,
        SortOrder::PriceDesc => 2,
        SortOrder::Rating => 3,
        SortOrder::Downloads => 4,
    }
}

/// Facet counts of a set of visible documents (searchable, not deleted).
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts {
    /// Per category ordinal, per kind: documents with that category and kind.
    pub(crate) by_category: Vec<[u64; 3]>,
    /// Per kind: documents of that kind.
    pub(crate) by_kind: [u64; 3],
}

impl Counts {
    /// No documents, in a segment of `categories` categories.
    pub(crate) fn empty(categories: usize) -> Self {
        Self { by_category: vec![[0; 3]; categories], by_kind: [0; 3] }
    }

    /// Counts `doc` of `table`.
    #[inline(always)]
    pub(crate) fn add_doc(&mut self, table: &SegmentTable, doc: DocId) {
        let kind = usize::from(table.kind[doc as usize]);
        self.by_kind[kind] += 1;
        for &c in table.categories(doc) {
            self.by_category[c as usize][kind] += 1;
        }
    }

    /// Adds `other`'s counts.
    pub(crate) fn add(&mut self, other: &Counts) {
        for (mine, theirs) in self.by_category.iter_mut().zip(&other.by_category) {
            for k in 0..3 {
                mine[k] += theirs[k];
            }
        }
        for k in 0..3 {
            self.by_kind[k] += other.by_kind[k];
        }
    }
}

/// How many consecutive documents of the `price_asc` order one block of
/// [`SegmentCounts::blocks`] counts.
pub(crate) const BLOCK: usize = 512;

/// A segment's facet counts as its deletes stand: over all its visible
/// documents, and per [`BLOCK`] of its `price_asc` order, so the counts of
/// a price run are the sum of the blocks it covers plus a visit of at most
/// two partial blocks.
#[derive(Debug)]
pub(crate) struct SegmentCounts {
    pub(crate) all: Counts,
    pub(crate) blocks: Vec<Counts>,
}

/// One segment's values, indexed by document id.
pub(crate) struct SegmentTable {
    /// Kind ordinal, or [`HIDDEN`].
    pub(crate) kind: Vec<u8>,
    /// Price in minor units, free = 0.
    pub(crate) price: Vec<i64>,
    /// `category_ords[category_starts[d]..category_starts[d + 1]]` are the
    /// categories of document `d`, as indexes into `category_names`.
    category_starts: Vec<u32>,
    category_ords: Vec<u32>,
    /// The segment's categories, sorted.
    pub(crate) category_names: Vec<String>,
    pub(crate) created_secs: Vec<i64>,
    pub(crate) created_nanos: Vec<u32>,
    pub(crate) id: Vec<u128>,
    pub(crate) downloads: Vec<u64>,
    /// The display rating's sort key (see [`ordered_f64`]).
    pub(crate) rating: Vec<u64>,
    /// Product bodies, decoded on first use.
    bodies: Vec<OnceLock<Arc<Product>>>,
    /// The words of each text source, in [`Source`] order.
    vocab: [Vocab; 3],
    /// The searchable documents, best first, in each of [`ORDERS`].
    orders: [Vec<DocId>; 5],
    /// [`SegmentCounts`] for a number of deleted documents (deletes only
    /// grow, so the number identifies them).
    counts: Mutex<Option<(u32, Arc<SegmentCounts>)>>,
}

/// An `f64` as a `u64` ordered like [`f64::total_cmp`], the reference's
/// comparison of display ratings.
pub(crate) fn ordered_f64(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 { !bits } else { bits | (1 << 63) }
}

impl SegmentTable {
    fn build(segment: &SegmentReader, fields: &Fields) -> tantivy::Result<Self> {
        let ff = segment.fast_fields();
        let docs = segment.max_doc();
        let u64s = |name: &str| -> tantivy::Result<Vec<u64>> {
            let col: Column<u64> = ff.u64(name)?;
            Ok((0..docs).map(|d| col.first(d).unwrap_or(0)).collect())
        };
        let i64s = |name: &str| -> tantivy::Result<Vec<i64>> {
            let col: Column<i64> = ff.i64(name)?;
            Ok((0..docs).map(|d| col.first(d).unwrap_or(0)).collect())
        };
        let searchable = u64s(column::SEARCHABLE)?;
        // Kind ordinals are 0..3 by construction, so the narrowing is exact.
        #[allow(clippy::cast_possible_truncation)]
        let kind = u64s(column::KIND)?
            .into_iter()
            .zip(&searchable)
            .map(|(k, &s)| if s == 1 { k as u8 } else { HIDDEN })
            .collect();
        let (hi, lo) = (u64s(column::ID_HI)?, u64s(column::ID_LO)?);
        let id = hi.iter().zip(&lo).map(|(&h, &l)| (u128::from(h) << 64) | u128::from(l)).collect();
        let (sum, count) = (u64s(column::RATING_SUM)?, u64s(column::RATING_COUNT)?);
        let rating = sum
            .iter()
            .zip(&count)
            .map(|(&rating_sum, &rating_count)| {
                ordered_f64(RatingPrior::DEFAULT.display(&ProductStats { downloads: 0, rating_sum, rating_count }))
            })
            .collect();
        // Sub-second nanoseconds are below 2·10⁹ (leap seconds included).
        #[allow(clippy::cast_possible_truncation)]
        let created_nanos = u64s(column::CREATED_NANOS)?.into_iter().map(|n| n as u32).collect();

        let (mut category_starts, mut category_ords, mut category_names) = (vec![0u32], Vec::new(), Vec::new());
        if let Some(col) = ff.str(column::CATEGORIES)? {
            let mut name = String::new();
            for ord in 0..col.dictionary().num_terms() as u64 {
                name.clear();
                col.ord_to_str(ord, &mut name)?;
                category_names.push(name.clone());
            }
            for d in 0..docs {
                // Ordinals index `category_names`, which holds fewer than 2³² names.
                #[allow(clippy::cast_possible_truncation)]
                category_ords.extend(col.term_ords(d).map(|o| o as u32));
                category_starts.push(u32::try_from(category_ords.len()).unwrap_or(u32::MAX));
            }
        } else {
            category_starts.resize(docs as usize + 1, 0);
        }

        let vocab = |source: Source| -> tantivy::Result<Vocab> {
            Ok(Vocab::build(segment.inverted_index(fields.text(source).words)?.terms())?)
        };
        let vocab = [vocab(Source::Title)?, vocab(Source::Tags)?, vocab(Source::Description)?];

        let mut table = Self {
            vocab,
            orders: Default::default(),
            counts: Mutex::new(None),
            kind,
            price: i64s(column::PRICE)?,
            category_starts,
            category_ords,
            category_names,
            created_secs: i64s(column::CREATED_SECS)?,
            created_nanos,
            id,
            downloads: u64s(column::DOWNLOADS)?,
            rating,
            bodies: (0..docs).map(|_| OnceLock::new()).collect(),
        };
        let visible: Vec<DocId> = (0..docs).filter(|&d| table.kind[d as usize] != HIDDEN).collect();
        let orders = ORDERS.map(|sort| {
            let mut order = visible.clone();
            order.sort_by_cached_key(|&d| Reverse(table.key(d, sort, 0)));
            order
        });
        table.orders = orders;
        Ok(table)
    }

    /// The key of `doc` under `sort`; `score` is the relevance, 0 without
    /// text (where relevance is `newest`).
    #[inline(always)]
    pub(crate) fn key(&self, doc: DocId, sort: SortOrder, score: u64) -> SortKey {
        let d = doc as usize;
        let primary = match sort {
            SortOrder::Relevance => score,
            SortOrder::Newest => 0,
            SortOrder::PriceAsc => u64::MAX - ordered_i64(self.price[d]),
            SortOrder::PriceDesc => ordered_i64(self.price[d]),
            SortOrder::Rating => self.rating[d],
            SortOrder::Downloads => self.downloads[d],
        };
        SortKey { primary, created_secs: self.created_secs[d], created_nanos: self.created_nanos[d], id: self.id[d] }
    }

    /// The searchable documents (deleted ones included), best first by
    /// `sort` (relevance being `newest`).
    pub(crate) fn order(&self, sort: SortOrder) -> &[DocId] {
        &self.orders[order_index(sort)]
    }

    /// The facet counts of `segment` (this table's segment) as its deletes
    /// stand, counted on first use after they change.
    pub(crate) fn counts(&self, segment: &SegmentReader) -> Arc<SegmentCounts> {
        let deleted = segment.num_deleted_docs();
        if let Some((at, counts)) = &*self.counts.lock()
            && *at == deleted
        {
            return Arc::clone(counts);
        }
        let alive = segment.alive_bitset();
        let categories = self.category_names.len();
        let mut all = Counts::empty(categories);
        let blocks = self
            .order(SortOrder::PriceAsc)
            .chunks(BLOCK)
            .map(|chunk| {
                let mut block = Counts::empty(categories);
                for &doc in chunk {
                    if alive.is_none_or(|a| a.is_alive(doc)) {
                        block.add_doc(self, doc);
                    }
                }
                all.add(&block);
                block
            })
            .collect();
        let counts = Arc::new(SegmentCounts { all, blocks });
        *self.counts.lock() = Some((deleted, Arc::clone(&counts)));
        counts
    }

    /// The words of `source` in this segment.
    pub(crate) fn vocab(&self, source: Source) -> &Vocab {
        &self.vocab[source as usize]
    }

    /// The categories of `doc`, as indexes into `category_names`.
    pub(crate) fn categories(&self, doc: DocId) -> &[u32] {
        let d = doc as usize;
        &self.category_ords[self.category_starts[d] as usize..self.category_starts[d + 1] as usize]
    }

    /// The index of `name` in `category_names`, if the segment has it.
    pub(crate) fn category_ordinal(&self, name: &str) -> Option<u32> {
        self.category_names.binary_search_by(|n| n.as_str().cmp(name)).ok().and_then(|i| u32::try_from(i).ok())
    }

    /// The body of `doc`, decoding it with `decode` the first time.
    ///
    /// # Errors
    /// Whatever `decode` returns.
    pub(crate) fn body(
        &self,
        doc: DocId,
        decode: impl FnOnce() -> bazaar_core::Result<Product>,
    ) -> bazaar_core::Result<Arc<Product>> {
        let cell = &self.bodies[doc as usize];
        if let Some(p) = cell.get() {
            return Ok(Arc::clone(p));
        }
        // Two searches may decode the same body at once; either result is
        // the same document, and the first one stored wins.
        let decoded = Arc::new(decode()?);
        Ok(Arc::clone(cell.get_or_init(|| decoded)))
    }
}

/// Every live segment's table, kept by the reader's warming.
pub(crate) struct Tables {
    fields: Fields,
    by_segment: RwLock<HashMap<SegmentId, Arc<SegmentTable>>>,
}

impl fmt::Debug for SegmentTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentTable").field("documents", &self.kind.len()).finish_non_exhaustive()
    }
}

impl fmt::Debug for Tables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tables").field("segments", &self.by_segment.read().len()).finish()
    }
}

impl Tables {
    /// No tables yet, for an index of `fields`.
    pub(crate) fn new(fields: Fields) -> Self {
        Self { fields, by_segment: RwLock::default() }
    }

    /// The table of `segment`, building it if warming has not (it always
    /// has, unless warming failed).
    ///
    /// # Errors
    /// When the segment's fast fields cannot be read.
    pub(crate) fn get(&self, segment: &SegmentReader) -> tantivy::Result<Arc<SegmentTable>> {
        if let Some(t) = self.by_segment.read().get(&segment.segment_id()) {
            return Ok(Arc::clone(t));
        }
        let table = Arc::new(SegmentTable::build(segment, &self.fields)?);
        self.by_segment.write().insert(segment.segment_id(), Arc::clone(&table));
        Ok(table)
    }
}

impl Warmer for Tables {
    fn warm(&self, searcher: &Searcher) -> tantivy::Result<()> {
        for segment in searcher.segment_readers() {
            self.get(segment)?;
        }
        Ok(())
    }

    fn garbage_collect(&self, live_generations: &[&SearcherGeneration]) {
        let live: HashSet<SegmentId> = live_generations.iter().flat_map(|g| g.segments().keys().copied()).collect();
        self.by_segment.write().retain(|id, _| live.contains(id));
    }
}

#[cfg(test)]
impl SortKey {
    /// A key with only its primary part set.
    pub(crate) fn from_primary(primary: u64) -> Self {
        Self { primary, created_secs: 0, created_nanos: 0, id: 0 }
    }

    /// Its primary part.
    pub(crate) fn primary(&self) -> u64 {
        self.primary
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
}
