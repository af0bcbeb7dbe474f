//! The asset metadata store port.

use async_trait::async_trait;

use super::asset::{Asset, FileName, ScanStatus};
use crate::error::Result;
use crate::events::Event;
use crate::ids::{AssetId, ProductId};

/// Where asset metadata lives (the bytes are in a [`BlobStore`](super::BlobStore)).
///
/// # Example
/// ```
/// use bazaar_core::assets::{Asset, AssetRepository, FileName, ScanStatus};
/// use bazaar_core::ids::{AssetId, ProductId};
/// use bazaar_memory::{MemoryAssets, MemoryOutbox};
/// # futures::executor::block_on(async {
/// let repo = MemoryAssets::new(MemoryOutbox::new());
/// let product_id = ProductId::new();
/// let name = FileName::parse("agent.zip").unwrap();
/// assert_eq!(repo.next_version(product_id, &name).await.unwrap(), 1);
/// let asset = Asset {
///     id: AssetId::new(), product_id, file_name: name.clone(), mime: "application/zip".into(),
///     size: 3, sha256: bazaar_core::assets::sha256_hex(b"zip"), version: 1, is_preview: false,
///     scan: ScanStatus::Pending, created_at: chrono::Utc::now(),
/// };
/// repo.insert(&asset, &[]).await.unwrap();
/// assert_eq!(repo.next_version(product_id, &name).await.unwrap(), 2);
/// repo.set_scan(asset.id, ScanStatus::Clean).await.unwrap();
/// assert_eq!(repo.get(asset.id).await.unwrap().unwrap().scan, ScanStatus::Clean);
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AssetRepository: Send + Sync {
    /// Stores a new asset version with its events (one unit of work).
    ///
    /// MUST return `Conflict` when (`product_id`, `file_name`, `version`) or
    /// the id already exists, changing nothing.
    async fn insert(&self, asset: &Asset, events: &[Event]) -> Result<()>;

    /// The asset with `id`, if any.
    async fn get(&self, id: AssetId) -> Result<Option<Asset>>;

    /// Every asset of `product_id` (all versions), ordered by file name then
    /// version.
    async fn list_for_product(&self, product_id: ProductId) -> Result<Vec<Asset>>;

    /// Records a scan verdict (the only mutable field; no event type exists
    /// for it). MUST return `NotFound` (`asset`) when there is none.
    async fn set_scan(&self, id: AssetId, status: ScanStatus) -> Result<()>;

    /// One more than the highest stored version of `file_name` in
    /// `product_id`, or 1 when there is none. Two concurrent uploads may get
    /// the same number; `insert`'s uniqueness makes one of them retry.
    async fn next_version(&self, product_id: ProductId, file_name: &FileName) -> Result<u32>;
}
