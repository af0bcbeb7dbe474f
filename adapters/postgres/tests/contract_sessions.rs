//! The refresh-token contract suite against PostgreSQL, including 16 concurrent
//! rotations of one token, plus a rotation that dies before its commit.

mod common;

use std::sync::Arc;

use bazaar_core::auth::{RefreshToken, RefreshTokenStore, Rotation, TokenHash};
use bazaar_core::ids::{SessionId, UserId};
use bazaar_core::testkit::sessions as suite;
use common::{fresh, spawn};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn insert() {
    let db = fresh().await;
    suite::insert(&db.store.refresh_tokens()).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotate_chain() {
    let db = fresh().await;
    suite::rotate_chain(&db.store.refresh_tokens()).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reuse_revokes_the_family() {
    let db = fresh().await;
    suite::reuse_revokes_the_family(&db.store.refresh_tokens()).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_and_expired_are_invalid() {
    let db = fresh().await;
    suite::unknown_and_expired_are_invalid(&db.store.refresh_tokens()).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_successors_change_nothing() {
    let db = fresh().await;
    suite::bad_successors_change_nothing(&db.store.refresh_tokens()).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoke_session() {
    let db = fresh().await;
    suite::revoke_session(&db.store.refresh_tokens()).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn families_are_independent() {
    let db = fresh().await;
    suite::families_are_independent(&db.store.refresh_tokens()).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_have_one_winner() {
    let db = fresh().await;
    suite::concurrent_rotations_have_one_winner(Arc::new(db.store.refresh_tokens()), &spawn).await;
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_families_all_rotate() {
    let db = fresh().await;
    suite::concurrent_families_all_rotate(Arc::new(db.store.refresh_tokens()), &spawn).await;
    db.drop_schema().await;
}

/// A rotation that dies before its commit neither spends the token nor
/// stores the successor: the client's retry with the same token succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_rotation_leaves_the_token_live() {
    let db = fresh().await;
    let store = db.store.refresh_tokens();
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("in range");
    let (session, user_id) = (SessionId::new(), UserId::new());
    let token = |s: &str| RefreshToken {
        hash: TokenHash::of(s),
        session,
        user_id,
        issued_at: now,
        expires_at: now + chrono::Duration::hours(1),
    };
    store.insert(&token("first")).await.expect("insert");

    db.store.fail_next_commit();
    let err = store.rotate(&TokenHash::of("first"), &token("lost"), now).await.expect_err("the fault fails it");
    assert_eq!(err.code(), "unavailable");
    assert_eq!(
        store.rotate(&TokenHash::of("lost"), &token("x"), now).await.unwrap(),
        Rotation::Invalid,
        "the successor of the failed rotation was not stored"
    );
    assert_eq!(
        store.rotate(&TokenHash::of("first"), &token("second"), now).await.unwrap(),
        Rotation::Rotated(token("first")),
        "the retry finds the token unspent and its family alive"
    );
    db.drop_schema().await;
}
