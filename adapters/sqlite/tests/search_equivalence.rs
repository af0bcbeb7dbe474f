//! SQLite search against the reference [`search::apply`] on the testkit's
//! generated catalog ([`testkit::search::search_equivalence`]): non-ASCII
//! case folding, terms shorter than a trigram, FTS5 syntax inside terms
//! (quotes, `*`, `-`, `AND`, `NEAR`), repeated terms, shared timestamps
//! (ties broken by id) and equal ratings.
//!
//! [`search::apply`]: bazaar_core::catalog::search::apply

mod common;

use bazaar_core::testkit;
use common::fresh;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_queries_match_the_reference() {
    let db = fresh().await;
    let checked = testkit::search::search_equivalence(&db.store.products(), &[], &[]).await;
    assert_eq!(checked, 22 * 7);
}
