//! Asset metadata ([`AssetRepository`]); (product, file name, version) is
//! unique by constraint, so of two racing uploads of one version one gets
//! `Conflict` and retries with the next number.

use async_trait::async_trait;
use bazaar_core::ConflictReason;
use bazaar_core::assets::{Asset, AssetRepository, FileName, ScanStatus};
use bazaar_core::events::Event;
use bazaar_core::ids::{AssetId, ProductId};
use bazaar_core::{Error, Result};
use sqlx::Row;

use crate::codec::{db_err, from_json, to_json};
use crate::outbox::append;
use crate::store::PgStore;

pub(crate) const INSERT: &str =
    "INSERT INTO assets (id, product_id, file_name, version, doc) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const GET: &str = "SELECT doc FROM assets WHERE id = $1";
pub(crate) const GET_FOR_UPDATE: &str = "SELECT doc FROM assets WHERE id = $1 FOR UPDATE";
// Served by the (product_id, file_name, version) unique index.
pub(crate) const FOR_PRODUCT: &str = "SELECT doc FROM assets WHERE product_id = $1 ORDER BY file_name, version";
pub(crate) const SET_DOC: &str = "UPDATE assets SET doc = $2 WHERE id = $1";
pub(crate) const MAX_VERSION: &str = "SELECT MAX(version) FROM assets WHERE product_id = $1 AND file_name = $2";

/// Asset metadata in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgAssets {
    store: PgStore,
}

impl PgAssets {
    pub(crate) fn new(store: PgStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl AssetRepository for PgAssets {
    async fn insert(&self, asset: &Asset, events: &[Event]) -> Result<()> {
        self.store
            .run(async {
                let mut tx = self.store.write().await?;
                sqlx::query(INSERT)
                    .bind(asset.id.to_string())
                    .bind(asset.product_id.to_string())
                    .bind(asset.file_name.as_str())
                    .bind(i64::from(asset.version))
                    .bind(to_json(asset)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                append(&mut tx, events).await?;
                self.store.commit(tx).await
            })
            .await
    }

    async fn get(&self, id: AssetId) -> Result<Option<Asset>> {
        self.store
            .run(async {
                let row =
                    sqlx::query(GET).bind(id.to_string()).fetch_optional(self.store.pool()).await.map_err(db_err)?;
                row.map(|r| from_json(r.get::<&str, _>(0))).transpose()
            })
            .await
    }

    async fn list_for_product(&self, product_id: ProductId) -> Result<Vec<Asset>> {
        self.store
            .run(async {
                let rows = sqlx::query(FOR_PRODUCT)
                    .bind(product_id.to_string())
                    .fetch_all(self.store.pool())
                    .await
                    .map_err(db_err)?;
                rows.iter().map(|r| from_json(r.get::<&str, _>(0))).collect()
            })
            .await
    }

    async fn set_scan(&self, id: AssetId, status: ScanStatus) -> Result<()> {
        self.store
            .run(async {
                let mut tx = self.store.write().await?;
                let row = sqlx::query(GET_FOR_UPDATE)
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .ok_or_else(|| Error::not_found("asset"))?;
                let mut asset: Asset = from_json(row.get::<&str, _>(0))?;
                asset.scan = status;
                sqlx::query(SET_DOC)
                    .bind(id.to_string())
                    .bind(to_json(&asset)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                self.store.commit(tx).await
            })
            .await
    }

    async fn next_version(&self, product_id: ProductId, file_name: &FileName) -> Result<u32> {
        self.store
            .run(async {
                let max: Option<i64> = sqlx::query_scalar(MAX_VERSION)
                    .bind(product_id.to_string())
                    .bind(file_name.as_str())
                    .fetch_one(self.store.pool())
                    .await
                    .map_err(db_err)?;
                let max =
                    u32::try_from(max.unwrap_or(0)).map_err(|e| Error::internal("reading an asset version", e))?;
                max.checked_add(1)
                    .ok_or_else(|| Error::conflict(ConflictReason::Exceeded, "no asset version numbers left"))
            })
            .await
    }
}
