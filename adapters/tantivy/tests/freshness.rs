//! What a search sees after each kind of change: approve, suspend, edit,
//! stats, remove; what stays invisible until a commit; the staleness guard;
//! and the committer.

mod common;

use std::time::{Duration, Instant};

use bazaar_core::catalog::search::{SearchParams, SearchQuery, SortOrder};
use bazaar_core::catalog::{Product, ProductStatus};
use bazaar_tantivy::CatalogIndex;
use common::approved;

fn text(q: &str) -> SearchQuery {
    SearchQuery::new(SearchParams { q: Some(q.into()), ..SearchParams::default() }).unwrap()
}

fn ids(index: &CatalogIndex, q: &SearchQuery) -> Vec<bazaar_core::ids::ProductId> {
    index.search(q).unwrap().items.iter().map(|p| p.id).collect()
}

fn bump(p: &mut Product, status: ProductStatus) {
    p.status = status;
    p.version += 1;
}

#[test]
fn approve_suspend_and_reinstate_show_and_hide_a_product() {
    let index = CatalogIndex::in_memory().unwrap();
    let mut p = approved("Invoice OCR", 0);
    p.status = ProductStatus::Pending;
    index.upsert(&p).unwrap();
    index.commit().unwrap();
    assert!(ids(&index, &text("invoice")).is_empty(), "pending is not searchable");

    bump(&mut p, ProductStatus::Approved);
    index.upsert(&p).unwrap();
    index.commit().unwrap();
    assert_eq!(ids(&index, &text("invoice")), [p.id]);
    assert_eq!(index.search(&SearchQuery::default()).unwrap().total, 1);

    bump(&mut p, ProductStatus::Suspended);
    index.upsert(&p).unwrap();
    index.commit().unwrap();
    assert!(ids(&index, &text("invoice")).is_empty(), "suspended is gone");
    let all = index.search(&SearchQuery::default()).unwrap();
    assert_eq!((all.total, all.facets.categories.len(), all.facets.kinds.len()), (0, 0, 0));

    bump(&mut p, ProductStatus::Approved);
    index.upsert(&p).unwrap();
    index.commit().unwrap();
    assert_eq!(ids(&index, &text("invoice")), [p.id]);
}

#[test]
fn edits_replace_the_old_text_and_values() {
    let index = CatalogIndex::in_memory().unwrap();
    let mut p = approved("Invoice OCR", 0);
    index.upsert(&p).unwrap();
    index.commit().unwrap();

    p.title = "Receipt scanner".into();
    p.tags = vec!["Finance".into()];
    p.categories = vec!["finance".into()];
    p.version += 1;
    index.upsert(&p).unwrap();
    index.commit().unwrap();
    assert!(ids(&index, &text("invoice")).is_empty(), "the old title no longer matches");
    assert_eq!(ids(&index, &text("receipt finance")), [p.id]);
    let found = index.search(&text("receipt")).unwrap();
    assert_eq!(found.items, [p.clone()], "the stored body is the new one");
    assert_eq!(found.facets.categories.iter().map(|f| f.value.as_str()).collect::<Vec<_>>(), ["finance"]);
}

#[test]
fn stats_changes_reorder_without_a_version_bump() {
    let index = CatalogIndex::in_memory().unwrap();
    let (mut a, b) = (approved("Alpha agent", 0), approved("Beta agent", 1));
    index.upsert_all(&[a.clone(), b.clone()]).unwrap();
    index.commit().unwrap();
    let by_downloads =
        SearchQuery::new(SearchParams { sort: Some(SortOrder::Downloads), ..Default::default() }).unwrap();
    assert_eq!(ids(&index, &by_downloads), [b.id, a.id], "a tie goes to the newer");

    a.stats.downloads += 1;
    assert!(index.upsert(&a).unwrap(), "more downloads at the same version is newer");
    index.commit().unwrap();
    assert_eq!(ids(&index, &by_downloads), [a.id, b.id]);
    assert_eq!(index.search(&by_downloads).unwrap().items[0].stats.downloads, 1);
}

#[test]
fn stale_states_are_skipped() {
    let index = CatalogIndex::in_memory().unwrap();
    let mut p = approved("Invoice OCR", 0);
    let old = p.clone();
    bump(&mut p, ProductStatus::Suspended);
    index.upsert(&p).unwrap();
    assert!(!index.upsert(&old).unwrap(), "a redelivered older state is not written");
    assert!(!index.upsert(&p).unwrap(), "nor is the same state again");
    assert_eq!(index.upsert_all(&[old.clone(), p.clone()]).unwrap(), 0);
    index.commit().unwrap();
    assert!(ids(&index, &text("invoice")).is_empty(), "the suspension stands");
}

#[test]
fn removed_products_are_gone() {
    let index = CatalogIndex::in_memory().unwrap();
    let (a, b) = (approved("Invoice OCR", 0), approved("Invoice mailer", 1));
    index.upsert_all(&[a.clone(), b.clone()]).unwrap();
    index.commit().unwrap();
    assert!(index.remove(a.id));
    assert!(!index.remove(a.id), "already gone");
    index.commit().unwrap();
    assert_eq!(ids(&index, &text("invoice")), [b.id]);
    assert_eq!(index.stats().products, 1);
    // Removal forgets the product, so the same state can come back.
    assert!(index.upsert(&a).unwrap());
}

#[test]
fn writes_stay_invisible_until_a_commit() {
    let index = CatalogIndex::in_memory().unwrap();
    let p = approved("Invoice OCR", 0);
    index.upsert(&p).unwrap();
    assert!(ids(&index, &text("invoice")).is_empty());
    index.commit().unwrap();
    assert_eq!(ids(&index, &text("invoice")), [p.id]);
}

#[test]
fn a_dropped_committer_commits_what_was_written() {
    let index = CatalogIndex::in_memory().unwrap();
    let committer = index.spawn_committer(Duration::from_secs(3_600)).unwrap();
    let p = approved("Invoice OCR", 0);
    index.upsert(&p).unwrap();
    drop(committer);
    assert_eq!(ids(&index, &text("invoice")), [p.id]);
}

/// A liveness check, not a latency claim (the bench measures that): with a
/// short interval, a write shows up without anyone calling `commit`.
#[test]
fn the_committer_publishes_writes_on_its_own() {
    let index = CatalogIndex::in_memory().unwrap();
    let _committer = index.spawn_committer(Duration::from_millis(20)).unwrap();
    let p = approved("Invoice OCR", 0);
    index.upsert(&p).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ids(&index, &text("invoice")).is_empty() {
        assert!(Instant::now() < deadline, "the committer never published the write");
        std::thread::sleep(Duration::from_millis(5));
    }
}
