//! [`CatalogIndex`] as the core's [`SearchIndex`] port.

use std::sync::Arc;

use async_trait::async_trait;
use bazaar_core::Result;
use bazaar_core::catalog::search::{SearchQuery, SearchResult};
use bazaar_core::catalog::{Product, SearchIndex};

use crate::{CatalogIndex, Checkpoint};

/// Searches are synchronous CPU work of tens to hundreds of microseconds
/// (see the crate README), cheaper than a hop to a blocking pool, so they
/// run on the caller's task.
///
/// Writes ([`SearchIndex::index`]) are buffered and become visible at the
/// next commit: run a [`Committer`](crate::Committer) (every
/// [`DEFAULT_COMMIT_INTERVAL`](crate::DEFAULT_COMMIT_INTERVAL), well inside
/// the port's one-second freshness promise) alongside. A rebuild commits at
/// once.
#[async_trait]
impl SearchIndex for CatalogIndex {
    async fn search(&self, query: &SearchQuery) -> Result<SearchResult> {
        CatalogIndex::search(self, query)
    }

    async fn search_shared(&self, query: &SearchQuery) -> Result<Arc<SearchResult>> {
        CatalogIndex::search_shared(self, query)
    }

    async fn index(&self, products: &[Product]) -> Result<()> {
        self.upsert_all(products).map(drop)
    }

    /// The port's rebuild happens when a process starts and reads the whole
    /// store, so it is saved as checkpoint 0: the outbox position is not
    /// tracked through the port, and a reopened index is rebuilt again.
    async fn rebuild(&self, products: &[Product]) -> Result<()> {
        CatalogIndex::rebuild(self, products, Checkpoint::new(0))
    }
}
