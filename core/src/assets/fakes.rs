//! In-core fakes of the asset ports for unit tests.

use crate::error::ConflictReason;
use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::{Asset, AssetRepository, BlobStore, FileName, ScanStatus};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::ids::{AssetId, ProductId};

#[derive(Debug, Default)]
pub(crate) struct FakeAssets(pub(crate) Mutex<Vec<Asset>>);

#[async_trait]
impl AssetRepository for FakeAssets {
    async fn insert(&self, asset: &Asset, _events: &[Event]) -> Result<()> {
        let mut rows = self.0.lock();
        if rows.iter().any(|a| {
            a.id == asset.id
                || (a.product_id, &a.file_name, a.version) == (asset.product_id, &asset.file_name, asset.version)
        }) {
            return Err(Error::conflict(ConflictReason::Duplicate, "duplicate"));
        }
        rows.push(asset.clone());
        Ok(())
    }
    async fn get(&self, id: AssetId) -> Result<Option<Asset>> {
        Ok(self.0.lock().iter().find(|a| a.id == id).cloned())
    }
    async fn list_for_product(&self, product_id: ProductId) -> Result<Vec<Asset>> {
        Ok(self.0.lock().iter().filter(|a| a.product_id == product_id).cloned().collect())
    }
    async fn set_scan(&self, id: AssetId, status: ScanStatus) -> Result<()> {
        let mut rows = self.0.lock();
        let row = rows.iter_mut().find(|a| a.id == id).ok_or_else(|| Error::not_found("asset"))?;
        row.scan = status;
        Ok(())
    }
    async fn next_version(&self, product_id: ProductId, file_name: &FileName) -> Result<u32> {
        let rows = self.0.lock();
        Ok(rows
            .iter()
            .filter(|a| a.product_id == product_id && &a.file_name == file_name)
            .map(|a| a.version)
            .max()
            .unwrap_or(0)
            + 1)
    }
}

#[derive(Debug, Default)]
pub(crate) struct FakeBlobs(pub(crate) Mutex<HashMap<String, Vec<u8>>>);

#[async_trait]
impl BlobStore for FakeBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.0.lock().insert(key.to_owned(), bytes);
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.0.lock().get(key).cloned())
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.0.lock().remove(key);
        Ok(())
    }
}
