//! Contract suite for [`RefreshTokenStore`]: rotation, reuse detection and
//! logout, run by every adapter.
//!
//! Each function takes a fresh, empty store. The concurrency suites take an
//! `Arc` and a `spawn` function that runs a future as a task on a
//! multi-threaded runtime (e.g. `&|f| { tokio::spawn(f); }`), so the
//! rotations really race.
//!
//! The trait has no read method, so "nothing changed" is observed through
//! behaviour: a token that was not stored rotates as `Invalid` (unknown),
//! and a token that was left alone still rotates as `Rotated` (the store
//! takes `now` from the caller, so the same token can be presented before
//! and after its expiry).

use std::sync::Arc;

use chrono::{DateTime, Duration};
use futures::future::BoxFuture;

use crate::auth::{RefreshToken, RefreshTokenStore, Rotation, TokenHash};
use crate::clock::Timestamp;
use crate::error::{Error, ErrorKind};
use crate::ids::{SessionId, UserId};

use super::events::Spawn;

/// A start time with nanoseconds, so stores must keep timestamps exactly.
fn t0() -> Timestamp {
    DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("in range")
}

fn secs(s: i64) -> Duration {
    Duration::seconds(s)
}

/// A fresh token string, standing in for what a server would mint.
fn secret() -> String {
    // Unique is all a test needs; real tokens come from the entropy port.
    format!("rt-{}", uuid::Uuid::now_v7())
}

/// A token of `session` for `user`, issued at `issued` and valid for `ttl`.
fn token(session: SessionId, user: UserId, issued: Timestamp, ttl: Duration) -> (String, RefreshToken) {
    let s = secret();
    let record =
        RefreshToken { hash: TokenHash::of(&s), session, user_id: user, issued_at: issued, expires_at: issued + ttl };
    (s, record)
}

/// A new family's first token (a login), valid for an hour from [`t0`].
fn login() -> (String, RefreshToken) {
    token(SessionId::new(), UserId::new(), t0(), secs(3_600))
}

/// The successor of `of`, issued at `at`, valid for an hour.
fn successor(of: &RefreshToken, at: Timestamp) -> (String, RefreshToken) {
    token(of.session, of.user_id, at, secs(3_600))
}

fn reused(of: &RefreshToken) -> Rotation {
    Rotation::Reused { session: of.session, user_id: of.user_id }
}

async fn rotate(store: &dyn RefreshTokenStore, presented: &str, next: &RefreshToken, now: Timestamp) -> Rotation {
    store.rotate(&TokenHash::of(presented), next, now).await.expect("rotate")
}

/// Whether `record` is stored: a stored token (live, spent or revoked) never
/// rotates as `Invalid` before its expiry, an unknown one always does. The
/// probe's own successor is never stored unless the probe rotates, in which
/// case `record` was live (and is now spent).
async fn is_stored(store: &dyn RefreshTokenStore, secret: &str, record: &RefreshToken) -> bool {
    let (_, probe) = successor(record, t0());
    rotate(store, secret, &probe, record.issued_at).await != Rotation::Invalid
}

/// Insert stores a new family; a duplicate hash or session is `Conflict`
/// and stores nothing.
pub async fn insert(store: &dyn RefreshTokenStore) {
    let (a, ra) = login();
    store.insert(&ra).await.expect("insert of a new family");

    let twin = RefreshToken { session: SessionId::new(), user_id: UserId::new(), ..ra.clone() };
    let err = store.insert(&twin).await.expect_err("a duplicate hash must be refused");
    assert_eq!(err.kind(), ErrorKind::Conflict, "a duplicate hash must be Conflict, got {err:?}");

    let (b, same_session) = successor(&ra, t0());
    let err = store.insert(&same_session).await.expect_err("a login into an existing family must be refused");
    assert_eq!(err.kind(), ErrorKind::Conflict, "an existing session must be Conflict, got {err:?}");
    assert!(!is_stored(store, &b, &same_session).await, "a refused insert stores nothing");

    // The original is untouched by the refused duplicate: still live, still
    // its own user's.
    let (_, next) = successor(&ra, t0() + secs(1));
    assert_eq!(rotate(store, &a, &next, t0() + secs(1)).await, Rotation::Rotated(ra), "the original is live");
}

/// Rotating a live token returns its record exactly, spends it and makes
/// the successor the live token, which rotates in turn.
pub async fn rotate_chain(store: &dyn RefreshTokenStore) {
    let (a, ra) = login();
    store.insert(&ra).await.expect("insert");
    let (b, rb) = successor(&ra, t0() + secs(10));
    assert_eq!(
        rotate(store, &a, &rb, t0() + secs(10)).await,
        Rotation::Rotated(ra.clone()),
        "a live token rotates and the spent record comes back intact (timestamps to the nanosecond)"
    );
    let (c, rc) = successor(&rb, t0() + secs(20));
    assert_eq!(rotate(store, &b, &rc, t0() + secs(20)).await, Rotation::Rotated(rb.clone()), "the successor rotates");
    let (_, rd) = successor(&rc, t0() + secs(30));
    assert_eq!(rotate(store, &c, &rd, t0() + secs(30)).await, Rotation::Rotated(rc), "and so on down the chain");

    // A rotation just before expiry still counts; at the instant it does not.
    let (e, re) = token(SessionId::new(), UserId::new(), t0(), secs(60));
    store.insert(&re).await.expect("insert");
    let (_, rf) = successor(&re, t0());
    assert_eq!(rotate(store, &e, &rf, re.expires_at).await, Rotation::Invalid, "`now == expires_at` is expired");
    let just_before = re.expires_at - Duration::nanoseconds(1);
    assert_eq!(rotate(store, &e, &rf, just_before).await, Rotation::Rotated(re), "`now < expires_at` is live");
}

/// Presenting a spent token revokes its family: the reuse is `Reused`, its
/// `next` is not stored, and the family's live successor is `Reused` too.
pub async fn reuse_revokes_the_family(store: &dyn RefreshTokenStore) {
    let (a, ra) = login();
    store.insert(&ra).await.expect("insert");
    let (b, rb) = successor(&ra, t0() + secs(1));
    assert_eq!(rotate(store, &a, &rb, t0() + secs(1)).await, Rotation::Rotated(ra.clone()));

    let (x, rx) = successor(&ra, t0() + secs(2));
    assert_eq!(rotate(store, &a, &rx, t0() + secs(2)).await, reused(&ra), "a spent token is Reused");
    assert!(!is_stored(store, &x, &rx).await, "a reuse stores no successor");

    let (_, rc) = successor(&rb, t0() + secs(3));
    assert_eq!(rotate(store, &b, &rc, t0() + secs(3)).await, reused(&rb), "the live successor died with its family");
    let (_, rd) = successor(&rb, t0() + secs(4));
    assert_eq!(rotate(store, &b, &rd, t0() + secs(4)).await, reused(&rb), "and stays dead");
    let (_, re) = successor(&ra, t0() + secs(5));
    assert_eq!(rotate(store, &a, &re, t0() + secs(5)).await, reused(&ra), "a second reuse is Reused again");
}

/// Unknown and expired tokens are `Invalid` and change nothing: no
/// successor is stored and an expired-looking presentation neither spends
/// the token nor revokes its family.
pub async fn unknown_and_expired_are_invalid(store: &dyn RefreshTokenStore) {
    let (u, ru) = login();
    let (n, rn) = successor(&ru, t0());
    assert_eq!(rotate(store, &u, &rn, t0()).await, Rotation::Invalid, "an unknown token is Invalid");
    assert!(!is_stored(store, &n, &rn).await, "an unknown token stores no successor");

    let (a, ra) = login();
    store.insert(&ra).await.expect("insert");
    let late = ra.expires_at + secs(1);
    let (x, rx) = successor(&ra, late);
    assert_eq!(rotate(store, &a, &rx, late).await, Rotation::Invalid, "an expired token is Invalid");
    assert_eq!(rotate(store, &a, &rx, late).await, Rotation::Invalid, "and stays Invalid (nothing was spent)");
    assert!(!is_stored(store, &x, &rx).await, "an expired token stores no successor");
    let (b, rb) = successor(&ra, t0() + secs(1));
    assert_eq!(
        rotate(store, &a, &rb, t0() + secs(1)).await,
        Rotation::Rotated(ra.clone()),
        "presenting it after expiry neither spent it nor revoked the family"
    );

    // Expiry is checked before reuse: an expired spent token is Invalid and
    // leaves the family (and its live successor) alone.
    let (y, ry) = successor(&ra, late);
    assert_eq!(rotate(store, &a, &ry, late).await, Rotation::Invalid, "an expired spent token is Invalid");
    assert!(!is_stored(store, &y, &ry).await, "and stores no successor");
    let (_, rc) = successor(&rb, t0() + secs(2));
    assert_eq!(rotate(store, &b, &rc, t0() + secs(2)).await, Rotation::Rotated(rb), "the family is still alive");
}

/// A successor of another family (or user) is an `Invalid`-kind error and
/// changes nothing; a successor whose hash is taken is `Conflict` and
/// changes nothing.
pub async fn bad_successors_change_nothing(store: &dyn RefreshTokenStore) {
    let (a, ra) = login();
    store.insert(&ra).await.expect("insert");

    let (x, other_session) = token(SessionId::new(), ra.user_id, t0(), secs(3_600));
    let err = store.rotate(&TokenHash::of(&a), &other_session, t0()).await.expect_err("wrong session");
    assert!(matches!(err, Error::Validation(_)), "another family's successor is a validation error, got {err:?}");
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(!is_stored(store, &x, &other_session).await, "the bad successor was not stored");

    let (y, other_user) = token(ra.session, UserId::new(), t0(), secs(3_600));
    let err = store.rotate(&TokenHash::of(&a), &other_user, t0()).await.expect_err("wrong user");
    assert_eq!(err.kind(), ErrorKind::Invalid, "another user's successor is Invalid, got {err:?}");
    assert!(!is_stored(store, &y, &other_user).await, "the bad successor was not stored");

    // `next` reusing a stored hash (here another family's token).
    let (o, ro) = login();
    store.insert(&ro).await.expect("insert");
    let taken = RefreshToken { session: ra.session, user_id: ra.user_id, ..ro.clone() };
    let err = store.rotate(&TokenHash::of(&a), &taken, t0()).await.expect_err("taken hash");
    assert_eq!(err.kind(), ErrorKind::Conflict, "a successor with a stored hash is Conflict, got {err:?}");
    let (_, ro_next) = successor(&ro, t0());
    assert_eq!(rotate(store, &o, &ro_next, t0()).await, Rotation::Rotated(ro), "the other family is untouched");

    let (_, rb) = successor(&ra, t0() + secs(1));
    assert_eq!(
        rotate(store, &a, &rb, t0() + secs(1)).await,
        Rotation::Rotated(ra),
        "after every refused rotation the token is still live and its family intact"
    );
}

/// Logout revokes the family through any of its tokens; it is idempotent,
/// unknown tokens give `false`, and afterwards every token is `Reused`.
pub async fn revoke_session(store: &dyn RefreshTokenStore) {
    assert!(!store.revoke_session(&TokenHash::of(&secret())).await.expect("revoke"), "an unknown token gives false");

    let (a, ra) = login();
    store.insert(&ra).await.expect("insert");
    assert!(store.revoke_session(&TokenHash::of(&a)).await.expect("revoke"), "a known token gives true");
    assert!(store.revoke_session(&TokenHash::of(&a)).await.expect("revoke"), "revoking again is fine and true");
    let (x, rx) = successor(&ra, t0() + secs(1));
    assert_eq!(rotate(store, &a, &rx, t0() + secs(1)).await, reused(&ra), "a revoked family's token is Reused");
    assert!(!is_stored(store, &x, &rx).await, "and stores no successor");

    // Through a spent token: the live successor dies.
    let (b, rb) = login();
    store.insert(&rb).await.expect("insert");
    let (c, rc) = successor(&rb, t0() + secs(1));
    assert_eq!(rotate(store, &b, &rc, t0() + secs(1)).await, Rotation::Rotated(rb.clone()));
    assert!(store.revoke_session(&TokenHash::of(&b)).await.expect("revoke"), "a spent token still names its family");
    let (_, rd) = successor(&rc, t0() + secs(2));
    assert_eq!(rotate(store, &c, &rd, t0() + secs(2)).await, reused(&rc), "logout killed the live successor");

    // Through an expired token.
    let (e, re) = token(SessionId::new(), UserId::new(), t0(), secs(1));
    store.insert(&re).await.expect("insert");
    assert!(store.revoke_session(&TokenHash::of(&e)).await.expect("revoke"), "an expired token still names its family");
}

/// Two logins of one user are independent families: a reuse or a logout in
/// one leaves the other alone.
pub async fn families_are_independent(store: &dyn RefreshTokenStore) {
    let user = UserId::new();
    let (a, ra) = token(SessionId::new(), user, t0(), secs(3_600));
    let (b, rb) = token(SessionId::new(), user, t0(), secs(3_600));
    let (c, rc) = token(SessionId::new(), user, t0(), secs(3_600));
    for r in [&ra, &rb, &rc] {
        store.insert(r).await.expect("insert");
    }

    let (a2, ra2) = successor(&ra, t0() + secs(1));
    assert_eq!(rotate(store, &a, &ra2, t0() + secs(1)).await, Rotation::Rotated(ra.clone()));
    let (_, rx) = successor(&ra, t0() + secs(2));
    assert_eq!(rotate(store, &a, &rx, t0() + secs(2)).await, reused(&ra), "reuse in the first family");
    let (_, ra3) = successor(&ra2, t0() + secs(3));
    assert_eq!(rotate(store, &a2, &ra3, t0() + secs(3)).await, reused(&ra2), "which is revoked");

    assert!(store.revoke_session(&TokenHash::of(&c)).await.expect("revoke"), "logout of the third family");

    let (_, rb2) = successor(&rb, t0() + secs(4));
    assert_eq!(
        rotate(store, &b, &rb2, t0() + secs(4)).await,
        Rotation::Rotated(rb),
        "the second family of the same user is untouched by the others' reuse and logout"
    );
}

/// Runs `n` racing attempts as tasks and collects their results.
async fn race<T, F>(n: usize, spawn: Spawn<'_>, attempt: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> BoxFuture<'static, T>,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..n {
        let (barrier, tx, fut) = (barrier.clone(), tx.clone(), attempt(i));
        spawn(Box::pin(async move {
            // Start together so the attempts overlap as much as possible.
            barrier.wait().await;
            let _ = tx.send(fut.await);
        }));
    }
    drop(tx);
    let mut out = Vec::with_capacity(n);
    while let Some(r) = rx.recv().await {
        out.push(r);
    }
    assert_eq!(out.len(), n, "every racing task must report (did one panic?)");
    out
}

/// 16 concurrent rotations of one live token: exactly one is `Rotated`, the
/// rest see it spent and are `Reused`, which revokes the family, so even
/// the winner's successor is then `Reused`; no loser's successor is stored.
pub async fn concurrent_rotations_have_one_winner(store: Arc<dyn RefreshTokenStore>, spawn: Spawn<'_>) {
    const RACERS: usize = 16;
    let (a, ra) = login();
    store.insert(&ra).await.expect("insert");
    let nexts: Vec<(String, RefreshToken)> = (0..RACERS).map(|_| successor(&ra, t0() + secs(1))).collect();
    let results = race(RACERS, spawn, |i| {
        let (store, presented, next) = (store.clone(), TokenHash::of(&a), nexts[i].1.clone());
        // Tasks report in completion order, so each tags its result.
        Box::pin(async move { (i, store.rotate(&presented, &next, t0() + secs(1)).await.map_err(|e| e.to_string())) })
    })
    .await;
    let winners: Vec<usize> = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(Rotation::Rotated(old)) if *old == ra))
        .map(|(i, _)| *i)
        .collect();
    let losers = results.iter().filter(|(_, r)| *r == Ok(reused(&ra))).count();
    assert_eq!((winners.len(), losers), (1, RACERS - 1), "exactly one rotation wins, the rest are Reused: {results:?}");

    let (won, won_record) = &nexts[winners[0]];
    let (_, after) = successor(won_record, t0() + secs(2));
    assert_eq!(
        rotate(store.as_ref(), won, &after, t0() + secs(2)).await,
        reused(won_record),
        "the losers' reuse revoked the family, the winner's successor included"
    );
    for (i, (s, r)) in nexts.iter().enumerate() {
        if i != winners[0] {
            assert!(!is_stored(store.as_ref(), s, r).await, "loser {i}'s successor must not be stored");
        }
    }
}

/// Rotations of 16 different families at once all succeed: families do not
/// block or spoil each other.
pub async fn concurrent_families_all_rotate(store: Arc<dyn RefreshTokenStore>, spawn: Spawn<'_>) {
    const FAMILIES: usize = 16;
    let logins: Vec<(String, RefreshToken)> = (0..FAMILIES).map(|_| login()).collect();
    for (_, r) in &logins {
        store.insert(r).await.expect("insert");
    }
    let nexts: Vec<(String, RefreshToken)> = logins.iter().map(|(_, r)| successor(r, t0() + secs(1))).collect();
    let results = race(FAMILIES, spawn, |i| {
        let (store, presented, next) = (store.clone(), TokenHash::of(&logins[i].0), nexts[i].1.clone());
        Box::pin(async move { (i, store.rotate(&presented, &next, t0() + secs(1)).await.map_err(|e| e.to_string())) })
    })
    .await;
    for (i, r) in results {
        assert_eq!(r, Ok(Rotation::Rotated(logins[i].1.clone())), "family {i} must rotate");
    }
    for (s, r) in &nexts {
        let (_, next) = successor(r, t0() + secs(2));
        assert_eq!(rotate(store.as_ref(), s, &next, t0() + secs(2)).await, Rotation::Rotated(r.clone()));
    }
}
