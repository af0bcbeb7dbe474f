//! PostgreSQL search against the reference [`search::apply`] on the
//! testkit's generated catalog ([`testkit::search::search_equivalence`]):
//! non-ASCII case folding, terms shorter than a trigram, LIKE wildcards and
//! its escape character inside terms (`%`, `_`, `\`, which the trigram
//! prefilter must treat literally), query syntax (quotes, `*`, `-`, `AND`,
//! `NEAR`), repeated terms, shared timestamps (ties broken by id) and equal
//! ratings.
//!
//! [`search::apply`]: bazaar_core::catalog::search::apply

mod common;

use bazaar_core::testkit;
use common::fresh;

/// `LIKE` wildcards and its escape character, in the catalog and the queries.
const LIKE_WORDS: &[&str] = &["50%", "a_b", "c\\d"];
const LIKE_TEXTS: &[&str] = &["50%", "%", "_", "a_b", "c\\d", "\\"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_queries_match_the_reference() {
    let db = fresh().await;
    let checked = testkit::search::search_equivalence(&db.store.products(), LIKE_WORDS, LIKE_TEXTS).await;
    assert_eq!(checked, 28 * 7);
    db.drop_schema().await;
}
