//! The catalog search read model of one process (`BAZAAR_SEARCH_INDEX`).
//!
//! Unless the setting is `store`, every process that serves catalog
//! searches keeps its own tantivy index ([`bazaar_tantivy::CatalogIndex`]),
//! so search capacity scales out with the replicas:
//! 1. **at start** it is rebuilt from the store
//!    ([`rebuild_from_store`]); in RAM it starts empty every time, and a
//!    `disk` index (in `<data dir>/search`) is rebuilt as well, because the
//!    outbox position it was saved at is not tracked yet, so "behind" cannot
//!    be told from "current";
//! 2. **its own writes** reach it through the catalog service (the core
//!    hands every written product to the index);
//! 3. **other processes' writes** reach it through the product events: a
//!    per-process fan-out group (`search-index-<uuid>`: every replica sees
//!    every event), opened before the rebuild reads the store so nothing
//!    published in between is missed, runs the core's [`SearchIndexer`]
//!    with a private inbox and dead-letter list. The group lives as long
//!    as the process: [`ReadModel::close`] leaves it, and the broker
//!    removes the group of a process that died after [`FANOUT_IDLE`];
//! 4. a [`Committer`] makes writes visible every 250 ms.
//!
//! With the in-process bus (no broker configured) only the events relayed
//! in this process arrive, which covers `bazaar serve`; separate processes
//! need a broker, as for every other consumer.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bazaar_core::Result;
use bazaar_core::catalog::{ProductRepository, SearchIndex, rebuild_from_store};
use bazaar_core::clock::Clock;
use bazaar_core::events::{Dispatcher, DispatcherConfig, EventSubscriber};
use bazaar_core::workflows::SearchIndexer;
use bazaar_memory::{MemoryDeadLetters, MemoryInbox};
use bazaar_tantivy::{CatalogIndex, Committer, DEFAULT_COMMIT_INTERVAL};

use crate::config::SearchIndexKind;

/// Products read from the store per page when rebuilding.
pub const REBUILD_PAGE: u32 = 1_000;
/// Events the consumer takes per bus request.
pub const CONSUMER_BATCH: usize = 64;
/// How long the consumer's bus request waits for an event.
const CONSUMER_WAIT: Duration = Duration::from_millis(500);
/// Pause after a failed bus request, so a broken broker is not spun on.
const CONSUMER_PAUSE: Duration = Duration::from_millis(500);
/// How long the broker keeps the fan-out group of a process that stopped
/// asking for events (it asks at least every 500 ms while alive).
pub const FANOUT_IDLE: Duration = Duration::from_secs(300);

/// A running read model: the index, its committer and its event consumer.
/// Dropping it stops the consumer and makes a final commit.
pub struct ReadModel {
    index: CatalogIndex,
    group: String,
    subscriber: Arc<dyn EventSubscriber>,
    consumer: tokio::task::JoinHandle<()>,
    _committer: Committer,
}

impl fmt::Debug for ReadModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadModel").field("group", &self.group).field("index", &self.index).finish_non_exhaustive()
    }
}

impl Drop for ReadModel {
    fn drop(&mut self) {
        self.consumer.abort();
    }
}

impl ReadModel {
    /// Opens (`disk`) or creates (`ram`) the index, rebuilds it from
    /// `products`, and starts its committer and its consumer on
    /// `subscriber`. `None` for [`SearchIndexKind::Store`].
    ///
    /// # Errors
    /// The index cannot be opened (`disk`: another process holds it, or the
    /// directory is not writable) or the store cannot be read.
    pub async fn start(
        kind: SearchIndexKind,
        data_dir: &Path,
        products: Arc<dyn ProductRepository>,
        subscriber: Arc<dyn EventSubscriber>,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<Self>> {
        let index = match kind {
            SearchIndexKind::Store => return Ok(None),
            SearchIndexKind::Ram => CatalogIndex::in_memory()?,
            SearchIndexKind::Disk => CatalogIndex::open(data_dir.join("search"))?,
        };
        // The group first: an event published while the store is read is
        // then replayed afterwards, which the index's staleness rule makes
        // harmless; opened after the read, it would be missed.
        let group = format!("search-index-{}", uuid::Uuid::now_v7().simple());
        subscriber.open_fanout(&group, FANOUT_IDLE).await?;
        let started = Instant::now();
        let count = match rebuild_from_store(products.as_ref(), &index, REBUILD_PAGE).await {
            Ok(count) => count,
            Err(e) => {
                if let Err(left) = subscriber.leave(&group).await {
                    tracing::warn!(error = %left, group, "could not leave the search index's consumer group");
                }
                return Err(e);
            }
        };
        tracing::info!(
            products = count,
            kind = kind.as_str(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "search index rebuilt from the store"
        );
        let committer = index.spawn_committer(DEFAULT_COMMIT_INTERVAL)?;
        let shared: Arc<dyn SearchIndex> = Arc::new(index.clone());
        let dispatcher = Dispatcher::new(
            subscriber.clone(),
            // Private to this process: the shared inbox would let one
            // replica's index mark an event done for every replica's.
            Arc::new(MemoryInbox::new()),
            Arc::new(MemoryDeadLetters::new()),
            vec![Arc::new(SearchIndexer::new(products, shared))],
            clock,
            DispatcherConfig { wait: CONSUMER_WAIT, ..DispatcherConfig::default() },
        );
        let consumer = tokio::spawn(consume(dispatcher, group.clone()));
        Ok(Some(Self { index, group, subscriber, consumer, _committer: committer }))
    }

    /// The index, as the core's port.
    pub fn index(&self) -> Arc<dyn SearchIndex> {
        Arc::new(self.index.clone())
    }

    /// The index itself (sizes, checkpoint).
    pub fn catalog_index(&self) -> &CatalogIndex {
        &self.index
    }

    /// Makes every write so far visible to searches now rather than at the
    /// committer's next tick: for a process that wrote to the catalog
    /// itself (a demo seed) before it starts listening.
    ///
    /// # Errors
    /// The index cannot be committed (see [`CatalogIndex::commit`]).
    pub fn refresh(&self) -> Result<()> {
        self.index.commit()
    }

    /// Stops the consumer and leaves this process's group on the bus (a
    /// clean stop; after a crash the broker removes it after
    /// [`FANOUT_IDLE`]).
    ///
    /// # Errors
    /// The broker did not remove the group.
    pub async fn close(&self) -> Result<()> {
        self.consumer.abort();
        self.subscriber.leave(&self.group).await
    }

    /// This process's consumer group on the bus.
    pub fn group(&self) -> &str {
        &self.group
    }
}

async fn consume(dispatcher: Dispatcher, group: String) {
    loop {
        if let Err(e) = dispatcher.process_batch(&group, CONSUMER_BATCH).await {
            tracing::warn!(error = %e, group = group.as_str(), "search index consumer: bus request failed");
            tokio::time::sleep(CONSUMER_PAUSE).await;
        }
    }
}
