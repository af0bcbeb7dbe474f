//! Runs the refresh-token contract suite against [`MemoryRefreshTokens`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bazaar_core::testkit::sessions as suite;
use bazaar_memory::MemoryRefreshTokens;

/// Runs a suite's racing attempt as a task on the multi-threaded runtime.
fn spawn(f: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
    tokio::spawn(f);
}

#[tokio::test]
async fn insert() {
    suite::insert(&MemoryRefreshTokens::new()).await;
}

#[tokio::test]
async fn rotate_chain() {
    suite::rotate_chain(&MemoryRefreshTokens::new()).await;
}

#[tokio::test]
async fn reuse_revokes_the_family() {
    suite::reuse_revokes_the_family(&MemoryRefreshTokens::new()).await;
}

#[tokio::test]
async fn unknown_and_expired_are_invalid() {
    suite::unknown_and_expired_are_invalid(&MemoryRefreshTokens::new()).await;
}

#[tokio::test]
async fn bad_successors_change_nothing() {
    suite::bad_successors_change_nothing(&MemoryRefreshTokens::new()).await;
}

#[tokio::test]
async fn revoke_session() {
    suite::revoke_session(&MemoryRefreshTokens::new()).await;
}

#[tokio::test]
async fn families_are_independent() {
    suite::families_are_independent(&MemoryRefreshTokens::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_have_one_winner() {
    suite::concurrent_rotations_have_one_winner(Arc::new(MemoryRefreshTokens::new()), &spawn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_families_all_rotate() {
    suite::concurrent_families_all_rotate(Arc::new(MemoryRefreshTokens::new()), &spawn).await;
}
