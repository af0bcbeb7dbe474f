//! The blob store port: where asset bytes live (a directory, S3, memory).

use async_trait::async_trait;

use crate::error::Result;

/// Opaque byte storage keyed by strings such as `assets/{product}/{asset}`.
///
/// Blobs are not domain aggregates and emit no events, so the methods take
/// no `events`. Keys are written once (assets are immutable versions).
///
/// # Example
/// ```
/// use bazaar_core::assets::BlobStore;
/// use bazaar_memory::MemoryBlobStore;
/// # futures::executor::block_on(async {
/// let blobs = MemoryBlobStore::new();
/// blobs.put("assets/p/a", b"hello".to_vec()).await.unwrap();
/// assert_eq!(blobs.get("assets/p/a").await.unwrap().as_deref(), Some(&b"hello"[..]));
/// blobs.delete("assets/p/a").await.unwrap();
/// assert_eq!(blobs.get("assets/p/a").await.unwrap(), None);
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `bytes` under `key`, replacing any previous blob; MUST be
    /// durable (readable by `get`) once it returns `Ok`.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()>;

    /// The bytes under `key`, or `None` when there are none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Removes `key`; MUST succeed (idempotently) when it is absent.
    async fn delete(&self, key: &str) -> Result<()>;

    /// A URL the store itself serves `key`'s bytes from, to anyone holding
    /// it, for `ttl` (a presigned S3 URL); `None` when the store cannot
    /// serve downloads directly, so the caller streams the bytes itself.
    ///
    /// The URL is a bearer credential: hand it only to a caller already
    /// authorized for the download. It says nothing about whether `key`
    /// exists (fetching a missing key fails at the store). The default,
    /// for stores with no URL of their own (a directory, memory), is `None`.
    ///
    /// # Errors
    /// [`crate::Error::Validation`] on `ttl` when the store cannot sign for
    /// that long (zero, or past its limit).
    async fn presigned_get(&self, key: &str, ttl: std::time::Duration) -> Result<Option<String>> {
        let _ = (key, ttl);
        Ok(None)
    }
}
