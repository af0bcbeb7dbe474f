//! [`CatalogIndex`]: the search read model's one type, from opening to
//! searching.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use bazaar_core::catalog::search::{Facets, SearchQuery, SearchResult};
use bazaar_core::catalog::{Product, ProductStats};
use bazaar_core::ids::ProductId;
use bazaar_core::{Error, Result};
use parking_lot::Mutex;
use tantivy::directory::MmapDirectory;
use tantivy::indexer::IndexWriterOptions;
use tantivy::query::AllQuery;
use tantivy::schema::Value;
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term, Warmer};

use crate::checkpoint::{Checkpoint, LAYOUT, Payload};
use crate::collector::SearchCollector;
use crate::error::{WHAT, index_err};
use crate::schema::{Fields, column};
use crate::table::Tables;
use crate::text::text_query;
use crate::tokens::{SHORT_GRAMS, ShortGrams, WORDS, Words};

/// Results kept by [`CatalogIndex::search_shared`] before it starts over
/// (as many as the row store's search cache keeps).
pub const SHARED_RESULTS: usize = 1024;

/// The indexing arena. Larger means fewer, larger segments from a rebuild;
/// tantivy allocates it as documents arrive, not up front.
const WRITER_MEMORY: usize = 64 << 20;

/// The catalog search read model: every product the store holds, indexed so
/// that [`search`](Self::search) answers exactly what
/// [`search::apply`](bazaar_core::catalog::search::apply) answers over the
/// same products (see the crate docs).
///
/// A cheap handle: clones share one index. Searches never wait for writes;
/// writes ([`upsert_all`](Self::upsert_all), [`remove`](Self::remove),
/// [`advance`](Self::advance)) are buffered and become visible to searches,
/// together, at the next [`commit`](Self::commit) (or
/// [`rebuild`](Self::rebuild)). A [`Committer`](crate::Committer) commits on
/// an interval.
///
/// # Example
/// ```
/// use bazaar_core::catalog::{NewProduct, Pricing, Product, ProductKind, ProductStatus, SearchParams, SearchQuery};
/// use bazaar_core::ids::{ProductId, UserId};
/// use bazaar_tantivy::{CatalogIndex, Checkpoint};
///
/// let index = CatalogIndex::in_memory().unwrap();
/// let input = NewProduct {
///     title: "Inbox triage agent".into(), description: "Sorts your e-mail.".into(),
///     short_description: String::new(), kind: ProductKind::AiAgent,
///     categories: vec!["email".into()], tags: vec!["Gmail".into()], pricing: Pricing::Free, media: vec![],
/// };
/// let mut product = Product::create(ProductId::new(), UserId::new(), input, chrono::Utc::now()).unwrap();
/// product.status = ProductStatus::Approved;
/// index.upsert(&product).unwrap();
/// index.advance(Checkpoint::new(7));
/// index.commit().unwrap();
///
/// let q = SearchQuery::new(SearchParams { q: Some("GMAIL triage".into()), ..Default::default() }).unwrap();
/// let found = index.search(&q).unwrap();
/// assert_eq!(found.items, [product]);
/// assert_eq!(index.checkpoint(), Some(Checkpoint::new(7)));
/// ```
#[derive(Clone)]
pub struct CatalogIndex {
    inner: Arc<Inner>,
}

struct Inner {
    index: Index,
    fields: Fields,
    reader: IndexReader,
    /// Decoded segments; warmed by `reader`, which holds it weakly.
    tables: Arc<Tables>,
    write: Mutex<WriteSide>,
    /// Results of [`CatalogIndex::search_shared`] by query, each with the
    /// searcher generation it was computed on.
    shared: Mutex<HashMap<String, (u64, Arc<SearchResult>)>>,
}

/// What a product's document was written from, for the staleness guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    version: u64,
    stats: ProductStats,
}

impl Held {
    fn of(p: &Product) -> Self {
        Self { version: p.version, stats: p.stats }
    }

    /// Whether `self` is provably no newer than `held`: an older version,
    /// or the same version (so the same listing) with no counter higher
    /// (counters only grow).
    fn is_stale_against(&self, held: &Held) -> bool {
        self.version < held.version
            || (self.version == held.version
                && self.stats.downloads <= held.stats.downloads
                && self.stats.rating_sum <= held.stats.rating_sum
                && self.stats.rating_count <= held.stats.rating_count)
    }
}

struct WriteSide {
    writer: IndexWriter,
    /// Every product with a document, as written (committed or not).
    held: HashMap<ProductId, Held>,
    /// Writes not yet committed.
    dirty: bool,
    /// The checkpoint the next commit saves.
    staged: Option<Checkpoint>,
    /// The checkpoint of the last commit.
    committed: Option<Checkpoint>,
}

/// Sizes of the index, for logs and readiness reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexStats {
    /// Products with a document (every status), counting uncommitted writes.
    pub products: usize,
    /// Searchable products visible to searches now.
    pub searchable: u64,
    /// Segments visible to searches now (fewer is faster).
    pub segments: usize,
}

impl fmt::Debug for CatalogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CatalogIndex").field("checkpoint", &self.checkpoint()).finish_non_exhaustive()
    }
}

impl CatalogIndex {
    /// Opens the index kept under `dir` (memory-mapped), creating the
    /// directories and an empty index when there is none.
    ///
    /// The index lives in `dir/layout-<N>`, `N` being this build's index
    /// layout (see [`Checkpoint`]'s module): a build with a new layout finds
    /// no index of its own, starts empty with a `None`
    /// [`checkpoint`](Self::checkpoint), and so is rebuilt, while the old
    /// layout's directory is left alone (delete it once no older build runs).
    /// One process at a time may open an index.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the directory cannot be created, read or
    /// written, or another process (or handle) holds the index;
    /// [`Error::Internal`] when the index there is corrupt or has another
    /// schema.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().join(format!("layout-{LAYOUT}"));
        let (schema, fields) = Fields::schema();
        std::fs::create_dir_all(&dir).map_err(|e| Error::unavailable(WHAT, e))?;
        let directory = MmapDirectory::open(&dir).map_err(|e| index_err("open index directory")(e.into()))?;
        let mut index = Index::open_or_create(directory, schema).map_err(index_err("open index"))?;
        Self::start(&mut index, fields)
    }

    /// A new, empty index held in memory (tests, or a replica that rebuilds
    /// at every start).
    ///
    /// # Errors
    /// [`Error::Internal`] when tantivy cannot start its writer.
    pub fn in_memory() -> Result<Self> {
        let (schema, fields) = Fields::schema();
        let mut index = Index::create_in_ram(schema);
        Self::start(&mut index, fields)
    }

    fn start(index: &mut Index, fields: Fields) -> Result<Self> {
        index.tokenizers().register(WORDS, Words);
        index.tokenizers().register(SHORT_GRAMS, ShortGrams);
        let options = IndexWriterOptions::builder()
            .num_worker_threads(1)
            .num_merge_threads(1)
            .memory_budget_per_thread(WRITER_MEMORY)
            .build();
        let writer = index.writer_with_options(options).map_err(index_err("start index writer"))?;
        let tables = Arc::new(Tables::new(fields.clone()));
        let warmer: Arc<dyn Warmer> = Arc::clone(&tables) as Arc<dyn Warmer>;
        let reader = index
            .reader_builder()
            // Reloaded by `commit`, so a commit is visible when it returns.
            .reload_policy(ReloadPolicy::Manual)
            .warmers(vec![Arc::downgrade(&warmer)])
            .try_into()
            .map_err(index_err("start index reader"))?;
        let payload = index.load_metas().map_err(index_err("read index metadata"))?.payload;
        let committed = Payload::decode(payload.as_deref()).and_then(|p| p.checkpoint);
        let held = held_from(&reader.searcher()).map_err(index_err("read index"))?;
        let write = WriteSide { writer, held, dirty: false, staged: committed, committed };
        let shared = Mutex::new(HashMap::new());
        Ok(Self {
            inner: Arc::new(Inner { index: index.clone(), fields, reader, tables, write: Mutex::new(write), shared }),
        })
    }

    /// [`upsert_all`](Self::upsert_all) of one product.
    ///
    /// # Errors
    /// As [`upsert_all`](Self::upsert_all).
    pub fn upsert(&self, product: &Product) -> Result<bool> {
        self.upsert_all(std::slice::from_ref(product)).map(|n| n == 1)
    }

    /// Writes each product's current state (any status: one that is not
    /// searchable is kept as a stub that never matches), replacing what the
    /// index held for it. Visible at the next commit.
    ///
    /// A product that is provably older than what the index holds is
    /// skipped: a lower `version`, or the same `version` with no counter
    /// higher (the same listing, counters only grow). So a redelivered or
    /// reordered event can never roll a product back. Returns how many
    /// products were written.
    ///
    /// # Errors
    /// [`Error::Internal`] when a product cannot be encoded or the writer
    /// has failed; the products before it are written.
    pub fn upsert_all(&self, products: &[Product]) -> Result<usize> {
        let mut w = self.inner.write.lock();
        let mut written = 0;
        for p in products {
            let now = Held::of(p);
            if w.held.get(&p.id).is_some_and(|held| now.is_stale_against(held)) {
                continue;
            }
            let doc = self.inner.fields.document(p)?;
            w.writer.delete_term(self.id_term(p.id));
            w.writer.add_document(doc).map_err(index_err("index product"))?;
            w.held.insert(p.id, now);
            w.dirty = true;
            written += 1;
        }
        Ok(written)
    }

    /// Forgets the product `id` (for a product deleted from the store; a
    /// status change is an [`upsert`](Self::upsert)). Returns whether the
    /// index held it. Visible at the next commit.
    pub fn remove(&self, id: ProductId) -> bool {
        let mut w = self.inner.write.lock();
        w.writer.delete_term(self.id_term(id));
        w.dirty = true;
        w.held.remove(&id).is_some()
    }

    /// Records that the index now holds every product change up to
    /// `checkpoint`; the next commit saves it with the documents. A
    /// checkpoint lower than the one already recorded is ignored (events
    /// can be redelivered).
    pub fn advance(&self, checkpoint: Checkpoint) {
        let mut w = self.inner.write.lock();
        if w.staged.is_none_or(|s| checkpoint > s) {
            w.staged = Some(checkpoint);
        }
    }

    /// Makes every write so far visible to searches and durable (on disk),
    /// with the recorded checkpoint, in one commit; when nothing was
    /// written, only picks up finished background merges.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the directory cannot be written;
    /// [`Error::Internal`] when the writer has failed. The writes stay
    /// pending for the next commit.
    pub fn commit(&self) -> Result<()> {
        let mut w = self.inner.write.lock();
        if w.dirty || w.staged != w.committed {
            let payload = Payload { checkpoint: w.staged }.encode();
            let mut prepared = w.writer.prepare_commit().map_err(index_err("commit index"))?;
            prepared.set_payload(&payload);
            prepared.commit().map_err(index_err("commit index"))?;
            w.dirty = false;
            w.committed = w.staged;
        }
        self.inner.reader.reload().map_err(index_err("reload index"))
    }

    /// Replaces everything with `products` (every product the store holds,
    /// any status) as of `checkpoint`, commits, and compacts the result into
    /// one segment. Searches see the old index until the new one is
    /// complete. The staleness guard does not apply: the store is the truth.
    ///
    /// Take `checkpoint` *before* reading `products` from the store: a
    /// change that lands in between is then replayed afterwards, and replays
    /// are harmless.
    ///
    /// # Errors
    /// As [`upsert_all`](Self::upsert_all) and [`commit`](Self::commit).
    pub fn rebuild(&self, products: &[Product], checkpoint: Checkpoint) -> Result<()> {
        {
            let mut w = self.inner.write.lock();
            // A delete query (unlike `delete_all_documents`) also removes
            // documents still in the indexing pipeline: it applies to every
            // operation before it.
            w.writer.delete_query(Box::new(AllQuery)).map_err(index_err("clear index"))?;
            w.held.clear();
            for p in products {
                let doc = self.inner.fields.document(p)?;
                // The store lists each product once; should it not, the last
                // entry wins, as a sequence of upserts would have it.
                if w.held.insert(p.id, Held::of(p)).is_some() {
                    w.writer.delete_term(self.id_term(p.id));
                }
                w.writer.add_document(doc).map_err(index_err("index product"))?;
            }
            w.dirty = true;
            w.staged = Some(checkpoint);
        }
        self.commit()?;
        self.compact()
    }

    /// Merges every segment into one and waits for it (faster searches
    /// after a bulk load; background merges keep a live index tidy
    /// otherwise).
    ///
    /// # Errors
    /// As [`commit`](Self::commit).
    pub fn compact(&self) -> Result<()> {
        let ids = self.inner.index.searchable_segment_ids().map_err(index_err("list segments"))?;
        if ids.len() > 1 {
            let mut w = self.inner.write.lock();
            w.writer.merge(&ids).wait().map_err(index_err("merge segments"))?;
        }
        self.inner.reader.reload().map_err(index_err("reload index"))
    }

    /// The checkpoint of the last commit: `None` for a new index (or one
    /// replaced because of its layout), which the caller should rebuild.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        self.inner.write.lock().committed
    }

    /// Sizes of the index now.
    pub fn stats(&self) -> IndexStats {
        let products = self.inner.write.lock().held.len();
        let searcher = self.inner.reader.searcher();
        let searchable = searcher
            .segment_readers()
            .iter()
            .map(|s| {
                let col = s.fast_fields().u64(column::SEARCHABLE);
                col.map_or(0, |c| s.doc_ids_alive().filter(|&d| c.first(d) == Some(1)).count() as u64)
            })
            .sum();
        IndexStats { products, searchable, segments: searcher.segment_readers().len() }
    }

    /// The committed products matching `query`, exactly as
    /// [`search::apply`](bazaar_core::catalog::search::apply) finds them:
    /// the same page, order, total and facets.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the index files cannot be read;
    /// [`Error::Internal`] when they are corrupt.
    pub fn search(&self, query: &SearchQuery) -> Result<SearchResult> {
        self.search_on(&self.inner.reader.searcher(), query)
    }

    /// [`search`](Self::search), as a shared result: the same `Arc` comes
    /// back for the same query for as long as no commit has changed what
    /// searches see, so a caller can memoise work derived from it (the HTTP
    /// server keeps each result's JSON). Exact, not a TTL: a result is
    /// reused only on the searcher generation it was computed on. At most
    /// [`SHARED_RESULTS`] queries are kept; a full cache starts over.
    ///
    /// # Errors
    /// As [`search`](Self::search).
    pub fn search_shared(&self, query: &SearchQuery) -> Result<Arc<SearchResult>> {
        let searcher = self.inner.reader.searcher();
        let generation = searcher.generation().generation_id();
        let key = serde_json::to_string(query).map_err(|e| Error::internal("search index: query key", e))?;
        if let Some((kept, result)) = self.inner.shared.lock().get(&key)
            && *kept == generation
        {
            return Ok(Arc::clone(result));
        }
        let result = Arc::new(self.search_on(&searcher, query)?);
        let mut shared = self.inner.shared.lock();
        if shared.len() >= SHARED_RESULTS {
            shared.retain(|_, (kept, _)| *kept == generation);
            if shared.len() >= SHARED_RESULTS {
                shared.clear();
            }
        }
        shared.insert(key, (generation, Arc::clone(&result)));
        Ok(result)
    }

    fn search_on(&self, searcher: &Searcher, query: &SearchQuery) -> Result<SearchResult> {
        let collector = SearchCollector::new(query, Arc::clone(&self.inner.tables));
        let found = if query.terms().is_empty() {
            collector.browse(searcher)
        } else {
            searcher.search(&*text_query(&self.inner.fields, &self.inner.tables, query.terms()), &collector)
        }
        .map_err(index_err("search"))?;
        let offset = usize::try_from(query.page().offset()).unwrap_or(usize::MAX);
        let items = found
            .top
            .iter()
            .skip(offset)
            .map(|(table, at)| {
                let body = table.body(at.doc_id, || self.product(searcher, *at))?;
                Ok(Product::clone(&body))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SearchResult {
            items,
            total: found.total,
            page: query.page().page(),
            limit: query.page().limit(),
            facets: Facets { categories: found.category_facet(), kinds: found.kind_facet() },
        })
    }

    fn product(&self, searcher: &Searcher, at: DocAddress) -> Result<Product> {
        let doc: TantivyDocument = searcher.doc(at).map_err(index_err("read product"))?;
        let body = doc
            .get_first(self.inner.fields.doc)
            .and_then(|v| v.as_bytes())
            .ok_or_else(|| Error::internal("search index: read product", "a searchable document has no body"))?;
        serde_json::from_slice(body).map_err(|e| Error::internal("search index: decode product", e))
    }

    fn id_term(&self, id: ProductId) -> Term {
        Term::from_field_bytes(self.inner.fields.id, &uuid::Uuid::from(id).as_u128().to_be_bytes())
    }
}

/// The guard map of a reopened index, read from its fast fields.
fn held_from(searcher: &Searcher) -> tantivy::Result<HashMap<ProductId, Held>> {
    let mut held = HashMap::new();
    for s in searcher.segment_readers() {
        let ff = s.fast_fields();
        let cols = [
            column::ID_HI,
            column::ID_LO,
            column::VERSION,
            column::DOWNLOADS,
            column::RATING_SUM,
            column::RATING_COUNT,
        ]
        .map(|name| ff.u64(name));
        let [hi, lo, version, downloads, rating_sum, rating_count] = cols;
        let (hi, lo, version, downloads, rating_sum, rating_count) =
            (hi?, lo?, version?, downloads?, rating_sum?, rating_count?);
        for doc in s.doc_ids_alive() {
            let get = |c: &tantivy::columnar::Column<u64>| c.first(doc).unwrap_or(0);
            let id = ProductId::from(uuid::Uuid::from_u128((u128::from(get(&hi)) << 64) | u128::from(get(&lo))));
            let stats = ProductStats {
                downloads: get(&downloads),
                rating_sum: get(&rating_sum),
                rating_count: get(&rating_count),
            };
            held.insert(id, Held { version: get(&version), stats });
        }
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(version: u64, downloads: u64, rating_count: u64) -> Held {
        Held { version, stats: ProductStats { downloads, rating_sum: rating_count * 4, rating_count } }
    }

    #[test]
    fn only_provably_older_states_are_stale() {
        let now = held(3, 10, 2);
        assert!(held(2, 99, 9).is_stale_against(&now), "older version");
        assert!(held(3, 10, 2).is_stale_against(&now), "the same state again");
        assert!(held(3, 9, 2).is_stale_against(&now), "fewer downloads");
        assert!(!held(3, 11, 2).is_stale_against(&now), "a download since");
        assert!(!held(3, 10, 3).is_stale_against(&now), "a review since");
        assert!(!held(4, 0, 0).is_stale_against(&now), "a newer version");
    }
}
