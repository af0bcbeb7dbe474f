//! An on-disk index across restarts: what it keeps (documents, checkpoint,
//! the staleness guard), what it refuses (a second opener), and what it
//! throws away (an index of another layout).

mod common;

use bazaar_core::ErrorKind;
use bazaar_core::catalog::ProductStatus;
use bazaar_core::catalog::search::{self, SearchParams, SearchQuery};
use bazaar_tantivy::{CatalogIndex, Checkpoint};
use common::approved;

fn everything() -> SearchQuery {
    SearchQuery::new(SearchParams { limit: Some(100), ..SearchParams::default() }).unwrap()
}

#[test]
fn a_reopened_index_has_its_documents_checkpoint_and_guard() {
    let dir = tempfile::tempdir().unwrap();
    let mut products: Vec<_> = (0..30).map(|i| approved(&format!("Agent {i}"), i)).collect();
    {
        let index = CatalogIndex::open(dir.path()).unwrap();
        assert_eq!(index.checkpoint(), None, "a new index must be rebuilt");
        index.rebuild(&products, Checkpoint::new(10)).unwrap();
        products[3].status = ProductStatus::Suspended;
        products[3].version += 1;
        index.upsert(&products[3]).unwrap();
        index.advance(Checkpoint::new(11));
        index.commit().unwrap();
        // Written after the last commit: lost with the process, and the
        // checkpoint says so by not covering it.
        products[4].title = "Lost edit".into();
        let mut lost = products[4].clone();
        lost.version += 1;
        index.upsert(&lost).unwrap();
        index.advance(Checkpoint::new(12));
    }
    let index = CatalogIndex::open(dir.path()).unwrap();
    assert_eq!(index.checkpoint(), Some(Checkpoint::new(11)));
    products[4].title = "Agent 4".into();
    let q = everything();
    assert_eq!(index.search(&q).unwrap(), search::apply(&products, &q));
    assert_eq!(index.stats().products, 30);

    // The guard survived: the approved state before the suspension is stale.
    let mut before = products[3].clone();
    before.status = ProductStatus::Approved;
    before.version -= 1;
    assert!(!index.upsert(&before).unwrap());

    // A checkpoint lower than the committed one is ignored.
    index.advance(Checkpoint::new(5));
    index.commit().unwrap();
    assert_eq!(index.checkpoint(), Some(Checkpoint::new(11)));
}

#[test]
fn a_directory_has_one_opener_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = CatalogIndex::open(dir.path()).unwrap();
    let err = CatalogIndex::open(dir.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    drop(first);
    CatalogIndex::open(dir.path()).unwrap();
}

#[test]
fn an_index_of_another_layout_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    // What a build with another layout would have left behind.
    let old = dir.path().join("layout-0");
    std::fs::create_dir_all(&old).unwrap();
    {
        let mut b = tantivy::schema::Schema::builder();
        let f = b.add_text_field("something_else", tantivy::schema::TEXT);
        let foreign = tantivy::Index::create_in_dir(&old, b.build()).unwrap();
        let mut w: tantivy::IndexWriter = foreign.writer(15_000_000).unwrap();
        w.add_document(tantivy::doc!(f => "old")).unwrap();
        w.commit().unwrap();
    }
    let index = CatalogIndex::open(dir.path()).unwrap();
    assert_eq!(index.checkpoint(), None, "nothing of this layout yet: rebuild");
    assert_eq!(index.stats().products, 0);
    let p = approved("Invoice OCR", 0);
    index.rebuild(std::slice::from_ref(&p), Checkpoint::new(1)).unwrap();
    assert_eq!(index.search(&everything()).unwrap().items, [p]);
    assert!(old.join("meta.json").exists(), "the old layout's files are untouched");
}

#[test]
fn a_foreign_index_in_our_place_is_an_error_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("layout-1");
    std::fs::create_dir_all(&ours).unwrap();
    let mut b = tantivy::schema::Schema::builder();
    b.add_text_field("something_else", tantivy::schema::TEXT);
    tantivy::Index::create_in_dir(&ours, b.build()).unwrap();
    let err = CatalogIndex::open(dir.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal, "{err:?}");
    assert!(ours.join("meta.json").exists());
}
