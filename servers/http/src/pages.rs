//! Rendered search pages, memoised per shared search result.
//!
//! Catalog browsing is the hottest route, and behind it the core's
//! [`CachedSearch`](bazaar_core::catalog::CachedSearch) hands the same
//! `Arc<SearchResult>` to every request for as long as it serves that page.
//! Turning that result into JSON (about 16 KB for a page of 20 with facets)
//! would then be most of a request's cost, so [`RenderedPages`] keeps the
//! bytes of each result it rendered, keyed by the result itself: a response is
//! always exactly the rendering of the result the catalog returned, and the
//! cache's TTL and invalidation stay the only rules for what is fresh.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use axum::body::Bytes;
use bazaar_core::catalog::SearchResult;
use parking_lot::Mutex;

/// Renderings kept before results the catalog cache has dropped are pruned
/// (more than the default search cache holds, so live pages stay).
pub const DEFAULT_RENDERED_PAGES: usize = 2048;

/// The JSON of search results, keyed by the shared result (see the module docs).
pub struct RenderedPages {
    capacity: usize,
    // Keyed by the result's address; the entry holds the `Arc`, so the address
    // cannot be reused by another result while the entry exists.
    pages: Mutex<HashMap<usize, (Arc<SearchResult>, Bytes)>>,
}

impl fmt::Debug for RenderedPages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedPages").field("capacity", &self.capacity).field("kept", &self.len()).finish()
    }
}

impl Default for RenderedPages {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_RENDERED_PAGES)
    }
}

impl RenderedPages {
    /// Keeps at most `capacity` renderings.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), pages: Mutex::new(HashMap::new()) }
    }

    /// How many renderings are kept now.
    pub fn len(&self) -> usize {
        self.pages.lock().len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of `result`: the kept rendering when this very result was
    /// rendered before, else `render(&result)`, kept when the result is shared
    /// (a cache holds it and may hand it out again).
    pub fn get_or_render(&self, result: Arc<SearchResult>, render: impl FnOnce(&SearchResult) -> Bytes) -> Bytes {
        let key = Arc::as_ptr(&result) as usize;
        if let Some((_, bytes)) = self.pages.lock().get(&key) {
            return bytes.clone();
        }
        let bytes = render(&result);
        // A result only this caller holds can never come back: keeping it would waste memory.
        if Arc::strong_count(&result) > 1 {
            let mut pages = self.pages.lock();
            if pages.len() >= self.capacity {
                // Renderings whose result only we still hold belong to pages the cache replaced.
                pages.retain(|_, (kept, _)| Arc::strong_count(kept) > 1);
                if pages.len() >= self.capacity {
                    pages.clear();
                }
            }
            pages.insert(key, (result, bytes.clone()));
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn result(total: u64) -> Arc<SearchResult> {
        Arc::new(SearchResult { items: vec![], total, page: 1, limit: 20, facets: Default::default() })
    }

    fn render(calls: &Cell<u32>) -> impl FnOnce(&SearchResult) -> Bytes + '_ {
        move |r| {
            calls.set(calls.get() + 1);
            Bytes::from(format!("{{\"total\":{}}}", r.total))
        }
    }

    #[test]
    fn a_shared_result_is_rendered_once() {
        let pages = RenderedPages::default();
        let calls = Cell::new(0);
        let kept = result(3);
        for _ in 0..3 {
            let bytes = pages.get_or_render(Arc::clone(&kept), render(&calls));
            assert_eq!(&bytes[..], b"{\"total\":3}");
        }
        assert_eq!(calls.get(), 1);
        let other = result(4);
        assert_eq!(&pages.get_or_render(Arc::clone(&other), render(&calls))[..], b"{\"total\":4}");
        assert_eq!(calls.get(), 2, "another result is rendered anew");
    }

    #[test]
    fn a_result_nobody_else_holds_is_not_kept() {
        let pages = RenderedPages::default();
        let calls = Cell::new(0);
        pages.get_or_render(result(1), render(&calls));
        assert!(pages.is_empty());
    }

    #[test]
    fn a_full_memo_drops_pages_the_cache_let_go() {
        let pages = RenderedPages::with_capacity(2);
        let calls = Cell::new(0);
        let live = result(1);
        pages.get_or_render(Arc::clone(&live), render(&calls));
        let dropped = result(2);
        pages.get_or_render(Arc::clone(&dropped), render(&calls));
        drop(dropped);
        let newer = result(3);
        pages.get_or_render(Arc::clone(&newer), render(&calls));
        assert_eq!(pages.len(), 2, "the dropped page made room");
        pages.get_or_render(Arc::clone(&live), render(&calls));
        assert_eq!(calls.get(), 3, "the live page was kept");
    }
}
