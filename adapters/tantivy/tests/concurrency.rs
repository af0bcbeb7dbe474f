//! Searches running on other threads while a writer changes and commits:
//! each search must see one committed state whole (never half a commit,
//! never a mix of two), and never an uncommitted write.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bazaar_core::catalog::search::{self, SearchParams, SearchQuery, SortOrder};
use bazaar_core::catalog::{Product, ProductStatus};
use bazaar_tantivy::{CatalogIndex, Checkpoint};

fn catalog() -> Vec<Product> {
    (0..200)
        .map(|i| {
            let mut p = common::approved(&format!("Agent {i} {}", ["mail", "sync", "crm"][i % 3]), i as i64 % 17);
            p.categories = vec![["email", "sales", "ops"][i % 3].to_owned()];
            p
        })
        .collect()
}

fn queries() -> Vec<SearchQuery> {
    let p = SearchParams::default;
    [
        p(),
        SearchParams { q: Some("mail".into()), ..p() },
        SearchParams { category: Some("sales".into()), sort: Some(SortOrder::Downloads), ..p() },
        SearchParams { q: Some("agent 1".into()), limit: Some(100), ..p() },
    ]
    .into_iter()
    .map(|params| SearchQuery::new(params).unwrap())
    .collect()
}

#[test]
fn every_search_sees_one_whole_committed_state() {
    let mut products = catalog();
    let index = CatalogIndex::in_memory().unwrap();
    index.rebuild(&products, Checkpoint::new(0)).unwrap();
    // Every committed state, published before its commit so a reader that
    // sees the commit can find it.
    let states = Arc::new(Mutex::new(vec![products.clone()]));
    let queries = Arc::new(queries());
    let done = Arc::new(AtomicBool::new(false));
    let searched = Arc::new(AtomicUsize::new(0));

    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (index, states, queries, done, searched) =
                (index.clone(), Arc::clone(&states), Arc::clone(&queries), Arc::clone(&done), Arc::clone(&searched));
            std::thread::spawn(move || {
                let mut i = r;
                while !done.load(Ordering::Acquire) {
                    let q = &queries[i % queries.len()];
                    let got = index.search(q).unwrap();
                    let states = states.lock().unwrap();
                    assert!(
                        states.iter().rev().any(|s| search::apply(s, q) == got),
                        "a search saw no committed state whole: {q:?}"
                    );
                    searched.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();

    for round in 1..=40u64 {
        // A batch that hides some products and shows others, and counts a
        // download on one: a half-applied batch would show as a state that
        // never existed.
        for (i, p) in products.iter_mut().enumerate().filter(|(i, _)| (i + round as usize).is_multiple_of(9)) {
            p.status =
                if p.status == ProductStatus::Approved { ProductStatus::Suspended } else { ProductStatus::Approved };
            p.version += 1;
            if i % 2 == 0 {
                p.stats.downloads += round;
            }
        }
        index.upsert_all(&products).unwrap();
        index.advance(Checkpoint::new(round));
        states.lock().unwrap().push(products.clone());
        index.commit().unwrap();
    }
    done.store(true, Ordering::Release);
    for r in readers {
        r.join().expect("a reader failed");
    }
    assert!(searched.load(Ordering::Relaxed) > 0);
    for q in queries.iter() {
        assert_eq!(index.search(q).unwrap(), search::apply(&products, q), "the last state is what remains");
    }
}
