//! `CachedLicenses` (the license-validation cache) over the in-memory
//! repository and real Redis: the licensing contract still holds through
//! it, validation hits the cache, every change of standing or activation is
//! visible at once, and Redis never holds a raw license key.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bazaar_core::clock::{Clock, SystemClock};
use bazaar_core::ids::{OrderId, ProductId, UserId};
use bazaar_core::licensing::{
    License, LicenseAction, LicenseKind, LicenseRepository, LicenseService, LicenseSigner, Limits, NewLicense,
    Permissions, ValidationCode,
};
use bazaar_core::testkit::licensing as suite;
use bazaar_memory::{MemoryLicenses, MemoryOutbox};
use bazaar_redis::{CacheConfig, CachedLicenses};
use redis::AsyncCommands;

type Cached = CachedLicenses<MemoryLicenses>;

async fn cached(test: &str) -> (Arc<Cached>, MemoryOutbox, String) {
    let outbox = MemoryOutbox::new();
    let prefix = common::fresh_prefix(test);
    let repo = CachedLicenses::new(
        MemoryLicenses::new(outbox.clone()),
        common::connect().await,
        prefix.clone(),
        CacheConfig::default(),
    );
    (Arc::new(repo), outbox, prefix)
}

fn spawn(f: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
    tokio::spawn(f);
}

#[tokio::test]
async fn insert_and_read_contract() {
    let (repo, outbox, _) = cached("lic-insert").await;
    suite::insert_and_read(repo.as_ref(), &|| outbox.events()).await;
}

#[tokio::test]
async fn activation_rules_contract() {
    suite::activation_rules(cached("lic-activation").await.0.as_ref()).await;
}

#[tokio::test]
async fn update_status_rules_contract() {
    let (repo, outbox, _) = cached("lic-status").await;
    suite::update_status_rules(repo.as_ref(), &|| outbox.events()).await;
}

#[tokio::test]
async fn consume_download_rules_contract() {
    suite::consume_download_rules(cached("lic-download").await.0.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_activations_contract() {
    suite::concurrent_activations_never_exceed_the_limit(cached("lic-race").await.0, &spawn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_downloads_contract() {
    suite::concurrent_downloads_never_exceed_the_limit(cached("lic-downloads").await.0, &spawn).await;
}

struct Fixture {
    repo: Arc<Cached>,
    service: LicenseService,
    license: License,
    prefix: String,
    conn: redis::aio::ConnectionManager,
}

async fn fixture(test: &str, limits: Limits) -> Fixture {
    let (repo, _, prefix) = cached(test).await;
    let signer = LicenseSigner::from_seed(&[42; 32]);
    let new = NewLicense {
        buyer_id: UserId::new(),
        product_id: ProductId::new(),
        order_id: OrderId::new(),
        kind: LicenseKind::Perpetual,
        permissions: Permissions::default(),
        limits,
    };
    let license = License::issue(new, &signer, SystemClock.now());
    repo.insert(&license, &[]).await.unwrap();
    let service = LicenseService::new(repo.clone(), signer, Arc::new(SystemClock));
    Fixture { repo, service, license, prefix, conn: common::connect().await }
}

#[tokio::test]
async fn validation_hits_the_cache_and_a_revoke_is_seen_at_once() {
    let mut f = fixture("lic-revoke", unlocked()).await;
    let entry = f.repo.entry_key(&f.license.key);
    let first = f.service.validate(&f.license.key, None).await.unwrap();
    assert_eq!(first.code, ValidationCode::Valid);
    assert!(f.conn.exists::<_, bool>(&entry).await.unwrap(), "the lookup was cached");
    assert_eq!(first.license.as_ref().unwrap().key, f.license.key, "the caller's key is put back");

    // Suspend behind the cache: the next validation is served from it.
    let suspended = f.license.apply(&LicenseAction::Suspend { reason: "test".into() }, SystemClock.now()).unwrap();
    f.repo.get_ref().update_status(&suspended, f.license.version, &[]).await.unwrap();
    assert_eq!(f.service.validate(&f.license.key, None).await.unwrap().code, ValidationCode::Valid, "a hit");
    f.repo.invalidate(f.license.id).await;
    assert_eq!(f.service.validate(&f.license.key, None).await.unwrap().code, ValidationCode::Suspended);

    // Revoke through the decorator (as LicenseService and the refund
    // handler do): visible immediately, no TTL wait.
    let current = f.repo.get(f.license.id).await.unwrap().unwrap();
    let revoked = current.apply(&LicenseAction::Revoke { reason: "refund".into() }, SystemClock.now()).unwrap();
    f.repo.update_status(&revoked, current.version, &[]).await.unwrap();
    assert!(!f.conn.exists::<_, bool>(&entry).await.unwrap(), "revoke dropped the entry");
    assert_eq!(f.service.validate(&f.license.key, None).await.unwrap().code, ValidationCode::Revoked);
}

#[tokio::test]
async fn activation_changes_the_validation_at_once() {
    let mut f = fixture("lic-activate", Limits { max_activations: Some(2), ..Limits::default() }).await;
    let entry = f.repo.entry_key(&f.license.key);
    let key = f.license.key.clone();
    assert_eq!(f.service.validate(&key, Some("machine-a")).await.unwrap().code, ValidationCode::ActivationRequired);
    assert!(f.conn.exists::<_, bool>(&entry).await.unwrap());
    let fp = bazaar_core::licensing::Fingerprint::parse("machine-a").unwrap();
    f.repo.activate(f.license.id, &fp, SystemClock.now()).await.unwrap();
    assert_eq!(f.service.validate(&key, Some("machine-a")).await.unwrap().code, ValidationCode::Valid);
    // One cached license answers every fingerprint.
    assert_eq!(f.service.validate(&key, Some("machine-b")).await.unwrap().code, ValidationCode::FingerprintMismatch);
    f.repo.deactivate(f.license.id, &fp, SystemClock.now()).await.unwrap();
    assert_eq!(f.service.validate(&key, Some("machine-a")).await.unwrap().code, ValidationCode::ActivationRequired);
}

#[tokio::test]
async fn redis_never_holds_a_raw_license_key() {
    let mut f = fixture("lic-secret", unlocked()).await;
    f.service.validate(&f.license.key, None).await.unwrap();
    let keys: Vec<String> = f.conn.keys(format!("{}*", f.prefix)).await.unwrap();
    assert!(!keys.is_empty(), "something was cached");
    // The signed payload alone is already a secret-bearing part of the key.
    let secret = f.license.key.trim_start_matches("key/");
    for key in keys {
        assert!(!key.contains(secret), "raw license key in Redis key {key}");
        if f.conn.key_type::<_, String>(&key).await.unwrap() == "string" {
            let value: String = f.conn.get(&key).await.unwrap();
            assert!(!value.contains(secret), "raw license key in the value of {key}");
        }
    }
}

/// Not node-locked, so validation without a fingerprint is `valid`.
fn unlocked() -> Limits {
    Limits { max_activations: None, ..Limits::default() }
}
