//! The core's `SearchIndex` contract (`testkit::search::search_index`):
//! the tantivy index and the store's own search give the same answers for
//! the same catalog, and the index shows approvals, suspensions and edits
//! within a second with the default commit interval.

use std::sync::Arc;

use bazaar_core::catalog::{ProductRepository, StoreSearch};
use bazaar_core::testkit;
use bazaar_memory::{MemoryOutbox, MemoryProducts};
use bazaar_tantivy::{CatalogIndex, DEFAULT_COMMIT_INTERVAL};

mod common;

/// Generated texts × (six sort orders + the default).
const QUERIES: usize = 22 * 7;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_in_ram_meets_the_contract() {
    let store = MemoryProducts::new(MemoryOutbox::new());
    let index = CatalogIndex::in_memory().unwrap();
    let _committer = index.spawn_committer(DEFAULT_COMMIT_INTERVAL).unwrap();
    assert_eq!(testkit::search::search_index(&store, &index).await, QUERIES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_on_disk_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryProducts::new(MemoryOutbox::new());
    let index = CatalogIndex::open(dir.path()).unwrap();
    let _committer = index.spawn_committer(DEFAULT_COMMIT_INTERVAL).unwrap();
    assert_eq!(testkit::search::search_index(&store, &index).await, QUERIES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_search_meets_the_same_contract() {
    let store = Arc::new(MemoryProducts::new(MemoryOutbox::new()));
    let products: Arc<dyn ProductRepository> = store.clone();
    let search = StoreSearch::new(products);
    assert_eq!(testkit::search::search_index(store.as_ref(), &search).await, QUERIES);
}

#[test]
fn a_shared_result_is_reused_until_a_commit_changes_what_searches_see() {
    use bazaar_core::catalog::{SearchParams, SearchQuery};
    use bazaar_tantivy::Checkpoint;

    let index = CatalogIndex::in_memory().unwrap();
    let first = common::approved("Inbox triage agent", 1);
    index.rebuild(std::slice::from_ref(&first), Checkpoint::new(1)).unwrap();
    let query = SearchQuery::new(SearchParams { q: Some("triage".into()), ..SearchParams::default() }).unwrap();
    let a = index.search_shared(&query).unwrap();
    let b = index.search_shared(&query).unwrap();
    assert!(Arc::ptr_eq(&a, &b), "the same result while nothing was committed");
    assert_eq!(*a, index.search(&query).unwrap());

    let second = common::approved("Triage for tickets", 2);
    index.upsert(&second).unwrap();
    assert!(Arc::ptr_eq(&a, &index.search_shared(&query).unwrap()), "a write is not visible before its commit");
    index.commit().unwrap();
    let c = index.search_shared(&query).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    assert_eq!(c.total, 2, "the commit is seen at once");
}
