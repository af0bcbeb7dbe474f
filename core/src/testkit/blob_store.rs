//! Contract suite for [`BlobStore`], beyond the basics of
//! [`super::assets::blob_store_contract`]: key shapes, concurrency, and the
//! presigned download URL of stores that serve bytes themselves.
//!
//! Each function takes a fresh, empty store. The concurrency suite calls
//! the store from tasks on a multi-threaded runtime (`spawn`).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::assets::BlobStore;
use crate::error::ErrorKind;

/// Runs a future as a task on a multi-threaded runtime and hands back its
/// output when awaited.
pub type SpawnJoin<'a> = &'a (dyn Fn(BoxFuture<'static, ()>) -> BoxFuture<'static, ()> + Send + Sync);

/// Fetches a URL as a browser would: `Some(bytes)` for a 2xx answer,
/// `None` for any other status.
pub type Fetch<'a> = &'a (dyn Fn(String) -> BoxFuture<'static, Option<Vec<u8>>> + Send + Sync);

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// The keys the platform writes (`assets/<uuid>/<uuid>`), deep prefixes,
/// and characters a URL-based store must escape, each stored apart.
///
/// # Panics
/// When the store breaks the [`BlobStore`] contract.
pub async fn key_shapes(blobs: &dyn BlobStore) {
    let product = uuid::Uuid::now_v7();
    let keys = [
        format!("assets/{product}/{}", uuid::Uuid::now_v7()),
        "assets/p/a".to_owned(),
        "assets/p/a.zip".to_owned(),
        "assets/p/a/b/c/d".to_owned(),
        "assets/p/name with spaces (1).zip".to_owned(),
        "assets/p/ünïcödé-ファイル".to_owned(),
        "assets/p/plus+and=equals&amp".to_owned(),
    ];
    for (i, key) in keys.iter().enumerate() {
        blobs.put(key, pattern(100 + i, i as u8)).await.unwrap_or_else(|e| panic!("put {key:?}: {e}"));
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            blobs.get(key).await.unwrap(),
            Some(pattern(100 + i, i as u8)),
            "each key keeps its own bytes: {key}"
        );
    }
    assert_eq!(blobs.get("assets/p").await.unwrap(), None, "a prefix is not a blob");
    assert_eq!(blobs.get("assets/p/a/b").await.unwrap(), None, "a prefix is not a blob");
    blobs.delete("assets/p/a").await.unwrap();
    assert_eq!(blobs.get("assets/p/a/b/c/d").await.unwrap(), Some(pattern(103, 3)), "delete is exact, not by prefix");
    for key in &keys {
        blobs.delete(key).await.unwrap();
        assert_eq!(blobs.get(key).await.unwrap(), None);
    }
}

/// Blobs larger than a single network buffer round-trip exactly.
///
/// # Panics
/// When the store breaks the [`BlobStore`] contract.
pub async fn large_blobs(blobs: &dyn BlobStore) {
    let big = pattern(6 * 1024 * 1024 + 7, 9);
    blobs.put("assets/large/one", big.clone()).await.expect("put 6 MiB");
    let back = blobs.get("assets/large/one").await.unwrap().expect("stored");
    assert_eq!(back.len(), big.len());
    assert!(back == big, "bytes round-trip exactly");
    blobs.delete("assets/large/one").await.unwrap();
}

/// Writers on many threads: distinct keys all land; racing writers of one
/// key leave exactly one writer's bytes, never a mix.
///
/// # Panics
/// When the store breaks the [`BlobStore`] contract.
pub async fn concurrent_writers(blobs: Arc<dyn BlobStore>, spawn: SpawnJoin<'_>) {
    let writers: Vec<_> = (0..16u8)
        .map(|i| {
            let blobs = Arc::clone(&blobs);
            spawn(Box::pin(async move {
                blobs.put(&format!("assets/many/{i}"), pattern(10_000, i)).await.expect("distinct put");
                blobs.put("assets/many/shared", pattern(50_000, i)).await.expect("racing put");
            }))
        })
        .collect();
    futures::future::join_all(writers).await;
    for i in 0..16u8 {
        assert_eq!(blobs.get(&format!("assets/many/{i}")).await.unwrap(), Some(pattern(10_000, i)));
    }
    let shared = blobs.get("assets/many/shared").await.unwrap().expect("one writer won");
    assert!((0..16u8).any(|i| shared == pattern(50_000, i)), "the shared key holds one writer's bytes whole");
}

/// A store that serves downloads itself (`presigned_get` is `Some`) serves
/// exactly the stored bytes at the URL, nothing for a missing key, and
/// refuses a zero lifetime; a store that does not answers `None`.
///
/// # Panics
/// When the store breaks the [`BlobStore`] contract.
pub async fn presigned_downloads(blobs: &dyn BlobStore, fetch: Fetch<'_>) {
    let bytes = pattern(70_000, 4);
    blobs.put("assets/signed/file name.zip", bytes.clone()).await.unwrap();
    let url = blobs.presigned_get("assets/signed/file name.zip", Duration::from_secs(300)).await.expect("sign");
    let Some(url) = url else {
        // A store without URLs of its own: the caller streams; nothing more to check.
        return;
    };
    assert!(url.starts_with("http://") || url.starts_with("https://"), "an absolute URL: {url}");
    assert_eq!(fetch(url.clone()).await, Some(bytes), "the URL serves the stored bytes");
    assert_eq!(fetch(url.clone()).await.map(|b| b.len()), Some(70_000), "and can be fetched again within its ttl");
    let missing = blobs.presigned_get("assets/signed/missing", Duration::from_secs(300)).await.unwrap();
    let missing = missing.expect("a store that signs one key signs any");
    assert_eq!(fetch(missing).await, None, "a missing key serves nothing");
    let zero = blobs.presigned_get("assets/signed/file name.zip", Duration::ZERO).await;
    assert_eq!(zero.expect_err("a zero lifetime").kind(), ErrorKind::Invalid);
    blobs.delete("assets/signed/file name.zip").await.unwrap();
    assert_eq!(fetch(url).await, None, "a deleted blob is no longer served");
}

/// Every suite above, after the basics.
///
/// # Panics
/// When the store breaks the [`BlobStore`] contract.
pub async fn blob_store_contract(blobs: Arc<dyn BlobStore>, spawn: SpawnJoin<'_>, fetch: Fetch<'_>) {
    super::assets::blob_store_contract(&*blobs).await;
    key_shapes(&*blobs).await;
    large_blobs(&*blobs).await;
    concurrent_writers(Arc::clone(&blobs), spawn).await;
    presigned_downloads(&*blobs, fetch).await;
}
