//! In-memory [`AssetRepository`] and [`BlobStore`].

use bazaar_core::ConflictReason;
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bazaar_core::assets::{Asset, AssetRepository, BlobStore, FileName, ScanStatus};
use bazaar_core::error::{Error, Result};
use bazaar_core::events::Event;
use bazaar_core::ids::{AssetId, ProductId};
use parking_lot::Mutex;

use crate::MemoryOutbox;

/// Asset metadata behind one lock; uniqueness is checked and written under it.
#[derive(Debug)]
pub struct MemoryAssets {
    table: Mutex<Vec<Asset>>,
    outbox: MemoryOutbox,
}

impl MemoryAssets {
    /// An empty store committing events to `outbox`.
    pub fn new(outbox: MemoryOutbox) -> Self {
        Self { table: Mutex::new(Vec::new()), outbox }
    }
}

#[async_trait]
impl AssetRepository for MemoryAssets {
    async fn insert(&self, asset: &Asset, events: &[Event]) -> Result<()> {
        let mut table = self.table.lock();
        let taken = table.iter().any(|a| {
            a.id == asset.id
                || (a.product_id == asset.product_id && a.file_name == asset.file_name && a.version == asset.version)
        });
        if taken {
            return Err(Error::conflict(ConflictReason::Duplicate, "this asset version already exists"));
        }
        table.push(asset.clone());
        self.outbox.append(events);
        Ok(())
    }

    async fn get(&self, id: AssetId) -> Result<Option<Asset>> {
        Ok(self.table.lock().iter().find(|a| a.id == id).cloned())
    }

    async fn list_for_product(&self, product_id: ProductId) -> Result<Vec<Asset>> {
        let mut out: Vec<Asset> = self.table.lock().iter().filter(|a| a.product_id == product_id).cloned().collect();
        out.sort_by(|a, b| (&a.file_name, a.version).cmp(&(&b.file_name, b.version)));
        Ok(out)
    }

    async fn set_scan(&self, id: AssetId, status: ScanStatus) -> Result<()> {
        let mut table = self.table.lock();
        let asset = table.iter_mut().find(|a| a.id == id).ok_or_else(|| Error::not_found("asset"))?;
        asset.scan = status;
        Ok(())
    }

    async fn next_version(&self, product_id: ProductId, file_name: &FileName) -> Result<u32> {
        let table = self.table.lock();
        let max = table
            .iter()
            .filter(|a| a.product_id == product_id && &a.file_name == file_name)
            .map(|a| a.version)
            .max()
            .unwrap_or(0);
        Ok(max + 1)
    }
}

/// Blobs in a map. Clones share the same blobs.
#[derive(Debug, Clone, Default)]
pub struct MemoryBlobStore {
    blobs: Arc<Mutex<HashMap<String, Arc<[u8]>>>>,
}

impl MemoryBlobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many blobs are stored.
    pub fn len(&self) -> usize {
        self.blobs.lock().len()
    }

    /// Whether no blob is stored.
    pub fn is_empty(&self) -> bool {
        self.blobs.lock().is_empty()
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.blobs.lock().insert(key.to_owned(), bytes.into());
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.blobs.lock().get(key).map(|b| b.to_vec()))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.blobs.lock().remove(key);
        Ok(())
    }
}
