//! Licenses ([`LicenseRepository`]). One license per (order, product) is a
//! table constraint; activation and download counting run the domain's own
//! rules ([`License::activate`], [`License::consume_download`]) on the row
//! read under the row lock, so concurrent calls can never exceed a limit.

use bazaar_core::ConflictReason;
use std::collections::HashSet;

use async_trait::async_trait;
use bazaar_core::clock::Timestamp;
use bazaar_core::events::Event;
use bazaar_core::ids::{LicenseId, OrderId, ProductId, UserId};
use bazaar_core::licensing::{ActivationOutcome, Fingerprint, License, LicenseRepository, check_distinct};
use bazaar_core::{Error, Result};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Row};

use crate::codec::{db_err, from_json, int, to_json};
use crate::outbox::{EventRows, append};
use crate::store::{PgStore, WriteTx};

pub(crate) const INSERT: &str = crate::outbox::with_events!(
    "INSERT INTO licenses (id, key, buyer_id, product_id, order_id, version, doc)
        VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING 1",
    "1",
    8,
    9,
    10,
    11
);
// INSERT for many licenses: a row whose order line, id or key is taken
// (also by an earlier row of the same statement) is skipped, not an error,
// so the others still go in; only inserted rows' events are appended.
pub(crate) const INSERT_MANY: &str = crate::outbox::with_owned_events!(
    "INSERT INTO licenses (id, key, buyer_id, product_id, order_id, version, doc)
        SELECT r.id, r.key, r.buyer_id, r.product_id, r.order_id, r.version, r.doc
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[])
            WITH ORDINALITY AS r(id, key, buyer_id, product_id, order_id, version, doc, n)
        ORDER BY r.n
        ON CONFLICT DO NOTHING RETURNING id",
    "id",
    8,
    9,
    10,
    11,
    12
);
pub(crate) const GET: &str = "SELECT doc FROM licenses WHERE id = $1";
// Activation, download counting and status changes lock the row they check,
// so concurrent calls on one license queue and each sees the last commit.
pub(crate) const GET_FOR_UPDATE: &str = "SELECT doc FROM licenses WHERE id = $1 FOR UPDATE";
pub(crate) const BY_KEY: &str = "SELECT doc FROM licenses WHERE key = $1";
// `pk` is insertion order: "oldest first" as the in-memory store has it.
pub(crate) const FOR_BUYER: &str = "SELECT doc FROM licenses WHERE buyer_id = $1 ORDER BY pk";
pub(crate) const FOR_BUYER_PRODUCTS: &str =
    "SELECT doc FROM licenses WHERE buyer_id = $1 AND product_id = ANY($2) ORDER BY pk";
pub(crate) const FOR_ORDER: &str = "SELECT doc FROM licenses WHERE order_id = $1 ORDER BY pk";
// Guarded by the version read in the same transaction: a write can only
// replace the exact row the rules were checked against.
pub(crate) const SAVE: &str = "UPDATE licenses SET version = $3, doc = $4 WHERE id = $1 AND version = $2";

/// Licenses in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgLicenses {
    store: PgStore,
}

impl PgLicenses {
    pub(crate) fn new(store: PgStore) -> Self {
        Self { store }
    }

    /// The licenses a query of `doc`s selects.
    async fn list(&self, query: Query<'_, Postgres, PgArguments>) -> Result<Vec<License>> {
        let rows = query.fetch_all(self.store.pool()).await.map_err(db_err)?;
        rows.iter().map(|r| from_json(r.get::<&str, _>(0))).collect()
    }

    async fn one(&self, sql: &'static str, key: String) -> Result<Option<License>> {
        let row = sqlx::query(sql).bind(key).fetch_optional(self.store.pool()).await.map_err(db_err)?;
        row.map(|r| from_json(r.get::<&str, _>(0))).transpose()
    }

    /// Loads the license under the row lock, lets `f` change a copy by the
    /// domain rules, and stores the copy if `f` succeeded and changed it.
    async fn with_license<T>(&self, id: LicenseId, f: impl FnOnce(&mut License) -> Result<T> + Send) -> Result<T> {
        let mut tx = self.store.write().await?;
        let stored = load(&mut tx, id).await?;
        let mut draft = stored.clone();
        let out = f(&mut draft)?;
        if draft != stored {
            save(&mut tx, &draft, stored.version).await?;
            self.store.commit(tx).await?;
        }
        Ok(out)
    }
}

async fn load(tx: &mut WriteTx, id: LicenseId) -> Result<License> {
    let row = sqlx::query(GET_FOR_UPDATE)
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?
        .ok_or_else(|| Error::not_found("license"))?;
    from_json(row.get::<&str, _>(0))
}

async fn save(tx: &mut WriteTx, license: &License, expected_version: u64) -> Result<()> {
    let done = sqlx::query(SAVE)
        .bind(license.id.to_string())
        .bind(int(expected_version)?)
        .bind(int(license.version)?)
        .bind(to_json(license)?)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    if done.rows_affected() != 1 {
        return Err(Error::internal("saving a license", "row changed under the row lock"));
    }
    Ok(())
}

#[async_trait]
impl LicenseRepository for PgLicenses {
    async fn insert(&self, license: &License, events: &[Event]) -> Result<()> {
        self.store
            .traced("INSERT licenses", "INSERT", "licenses", async {
                let (id, buyer) = (license.id.to_string(), license.buyer_id.to_string());
                let (product, order) = (license.product_id.to_string(), license.order_id.to_string());
                let (version, doc) = (int(license.version)?, to_json(license)?);
                let events = EventRows::new(events)?;
                self.store
                    .write_rows(|| {
                        events.bind(
                            sqlx::query(INSERT)
                                .bind(&id)
                                .bind(license.key.as_str())
                                .bind(&buyer)
                                .bind(&product)
                                .bind(&order)
                                .bind(version)
                                .bind(&doc),
                        )
                    })
                    .await?;
                Ok(())
            })
            .await
    }

    async fn insert_all(&self, licenses: &[(License, Vec<Event>)]) -> Result<Vec<Result<()>>> {
        check_distinct(licenses)?;
        if licenses.is_empty() {
            return Ok(Vec::new());
        }
        self.store
            .traced("INSERT licenses", "INSERT", "licenses", async {
                let n = licenses.len();
                let (mut ids, mut keys, mut buyers) =
                    (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
                let (mut products, mut orders) = (Vec::with_capacity(n), Vec::with_capacity(n));
                let (mut versions, mut docs) = (Vec::with_capacity(n), Vec::with_capacity(n));
                for (license, _) in licenses {
                    ids.push(license.id.to_string());
                    keys.push(license.key.as_str());
                    buyers.push(license.buyer_id.to_string());
                    products.push(license.product_id.to_string());
                    orders.push(license.order_id.to_string());
                    versions.push(int(license.version)?);
                    docs.push(to_json(license)?);
                }
                let events = EventRows::owned(ids.iter().cloned().zip(licenses.iter().map(|(_, e)| e.as_slice())))?;
                let rows = self
                    .store
                    .write_rows(|| {
                        events.bind(
                            sqlx::query(INSERT_MANY)
                                .bind(ids.as_slice())
                                .bind(keys.as_slice())
                                .bind(buyers.as_slice())
                                .bind(products.as_slice())
                                .bind(orders.as_slice())
                                .bind(versions.as_slice())
                                .bind(docs.as_slice()),
                        )
                    })
                    .await?;
                let inserted: HashSet<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
                Ok(ids
                    .iter()
                    .map(|id| {
                        if inserted.contains(id) {
                            Ok(())
                        } else {
                            Err(Error::conflict(
                                ConflictReason::Duplicate,
                                "a license already exists for this order line, id or key",
                            ))
                        }
                    })
                    .collect())
            })
            .await
    }

    async fn get(&self, id: LicenseId) -> Result<Option<License>> {
        self.store.run(async { self.one(GET, id.to_string()).await }).await
    }

    async fn get_by_key(&self, key: &str) -> Result<Option<License>> {
        self.store.run(async { self.one(BY_KEY, key.to_owned()).await }).await
    }

    async fn list_for_buyer(&self, buyer: UserId) -> Result<Vec<License>> {
        self.store.run(async { self.list(sqlx::query(FOR_BUYER).bind(buyer.to_string())).await }).await
    }

    async fn list_for_buyer_products(&self, buyer: UserId, products: &[ProductId]) -> Result<Vec<License>> {
        let products: Vec<String> = products.iter().map(ToString::to_string).collect();
        let query = sqlx::query(FOR_BUYER_PRODUCTS).bind(buyer.to_string()).bind(products);
        self.store.run(self.list(query)).await
    }

    async fn list_for_order(&self, order: OrderId) -> Result<Vec<License>> {
        self.store.run(async { self.list(sqlx::query(FOR_ORDER).bind(order.to_string())).await }).await
    }

    async fn activate(&self, id: LicenseId, fingerprint: &Fingerprint, now: Timestamp) -> Result<ActivationOutcome> {
        self.store.run(async { self.with_license(id, |l| l.activate(fingerprint, now)).await }).await
    }

    async fn deactivate(&self, id: LicenseId, fingerprint: &Fingerprint, now: Timestamp) -> Result<()> {
        self.store.run(async { self.with_license(id, |l| l.deactivate(fingerprint, now)).await }).await
    }

    async fn update_status(&self, license: &License, expected_version: u64, events: &[Event]) -> Result<()> {
        self.store
            .run(async {
                let mut tx = self.store.write().await?;
                let mut stored = load(&mut tx, license.id).await?;
                if stored.version != expected_version {
                    return Err(Error::VersionMismatch { expected: expected_version, current: stored.version });
                }
                // Only the standing comes from the caller; usage stays as stored.
                stored.revoked_at = license.revoked_at;
                stored.revoked_reason.clone_from(&license.revoked_reason);
                stored.suspended_at = license.suspended_at;
                stored.suspended_reason.clone_from(&license.suspended_reason);
                stored.updated_at = license.updated_at;
                stored.version = expected_version + 1;
                save(&mut tx, &stored, expected_version).await?;
                append(&mut tx, events).await?;
                self.store.commit(tx).await
            })
            .await
    }

    async fn consume_download(&self, id: LicenseId, now: Timestamp) -> Result<License> {
        self.store
            .run(async {
                self.with_license(id, |l| {
                    l.consume_download(now)?;
                    Ok(l.clone())
                })
                .await
            })
            .await
    }
}
