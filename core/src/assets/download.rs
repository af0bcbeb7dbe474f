//! Uploading assets and downloading them through short-lived signed URLs.
//!
//! # When a download is counted
//! At URL issue: [`DownloadService::create_download`] consumes one download
//! atomically (the store never goes over `max_downloads`, even under
//! concurrency) before it signs the URL. Fetching the URL again within its
//! lifetime costs nothing more; a holder who never fetches has still used a
//! download. The product's `stats.downloads` counts the same way. Counting at fetch time instead would let one license mint any
//! number of URLs and race them.
//!
//! # Checks, in order
//! `create_download`: the caller must hold the license and it must cover the
//! asset's product (`not_licensed` otherwise, so strangers learn nothing),
//! the license must be active (`license_revoked`, `license_suspended`,
//! `license_expired`), grant `download` (`not_licensed`), the asset must be
//! clean (`asset_not_clean`) and downloads must be left
//! (`download_limit_reached`). `fetch` verifies the URL (`url_invalid`,
//! `url_expired`) and re-checks that the license is still active — a refund
//! between issue and fetch kills the URL — before it reads the blob.
//! [`DownloadService::resolve`] makes the same checks, then hands a store
//! that serves downloads itself (S3) a presigned URL of
//! [`REDIRECT_TTL_SECS`] instead of reading the bytes: the marketplace
//! decides, the object store serves.
//!
//! # Previews
//! Assets uploaded with `is_preview` (screenshots, demos) are public:
//! [`DownloadService::fetch_preview`] serves them, once clean, without a
//! license and without counting a download.

use crate::error::ConflictReason;
use std::fmt;
use std::sync::Arc;

use chrono::Duration;

use super::asset::{Asset, FileName, ScanStatus, blob_key, sha256_hex};
use super::blob::BlobStore;
use super::limits::AssetLimits;
use super::repository::AssetRepository;
use super::scanner::Scanner;
use super::signed_url::{SignedDownload, UrlSigner};
use crate::auth::{Action, Actor, Resource, authorize, can};
use crate::catalog::ProductRepository;
use crate::clock::Clock;
use crate::error::{Denial, Error, Result};
use crate::events::{Event, ProductDownloaded};
use crate::ids::{AssetId, LicenseId, ProductId};
use crate::licensing::LicenseRepository;
use crate::page::{Page, PageRequest};

/// How long a signed URL lives by default.
pub const DEFAULT_URL_TTL_SECS: i64 = 300;

/// How long the presigned URL of [`DownloadService::resolve`] lives: long
/// enough to follow a redirect, short enough that a license revoked after
/// the check stops downloads soon.
pub const REDIRECT_TTL_SECS: u64 = 60;

/// Where the bytes of a checked download come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Download {
    /// The blob store serves them at `url` (a presigned URL, valid for
    /// [`REDIRECT_TTL_SECS`]): redirect the client there.
    Redirect {
        /// The asset.
        asset: Asset,
        /// The presigned URL.
        url: String,
    },
    /// They were read here and match the asset's recorded hash.
    Bytes {
        /// The asset.
        asset: Asset,
        /// Its bytes.
        bytes: Vec<u8>,
    },
}

/// How many version numbers an upload tries when concurrent uploads of the
/// same file name keep taking the next one.
const MAX_VERSION_ATTEMPTS: usize = 8;

/// The ports the [`DownloadService`] needs.
#[derive(Clone)]
pub struct DownloadDeps {
    /// Licenses (downloads are counted here).
    pub licenses: Arc<dyn LicenseRepository>,
    /// Asset metadata.
    pub assets: Arc<dyn AssetRepository>,
    /// Asset bytes.
    pub blobs: Arc<dyn BlobStore>,
    /// Malware scanner run on every upload.
    pub scanner: Arc<dyn Scanner>,
    /// Products, to find an upload's vendor.
    pub products: Arc<dyn ProductRepository>,
}

impl fmt::Debug for DownloadDeps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadDeps").finish_non_exhaustive()
    }
}

/// Asset uploads and licensed downloads.
pub struct DownloadService {
    deps: DownloadDeps,
    urls: UrlSigner,
    clock: Arc<dyn Clock>,
    limits: AssetLimits,
    url_ttl: Duration,
}

impl fmt::Debug for DownloadService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadService")
            .field("limits", &self.limits)
            .field("url_ttl", &self.url_ttl)
            .finish_non_exhaustive()
    }
}

impl DownloadService {
    /// A service with [`AssetLimits::default`] and 5-minute URLs.
    pub fn new(deps: DownloadDeps, urls: UrlSigner, clock: Arc<dyn Clock>) -> Self {
        Self { deps, urls, clock, limits: AssetLimits::default(), url_ttl: Duration::seconds(DEFAULT_URL_TTL_SECS) }
    }

    /// Uses other upload limits.
    pub fn with_limits(mut self, limits: AssetLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Uses another URL lifetime.
    pub fn with_url_ttl(mut self, ttl: Duration) -> Self {
        self.url_ttl = ttl;
        self
    }

    /// Uploads a new version of `file_name` to the actor's product.
    ///
    /// Validates name, type and size, hashes and scans the bytes (once),
    /// stores them, and records the asset as the next version of that file
    /// name. An infected upload is recorded (so the vendor sees the verdict)
    /// but its bytes are not stored.
    ///
    /// # Errors
    /// `Validation` on `file_name`, `mime` or `size`; `TooLarge`; `NotFound` (`product`);
    /// `Forbidden` unless the actor is the product's vendor; scanner and
    /// store errors.
    pub async fn upload(
        &self,
        actor: &Actor,
        product_id: ProductId,
        file_name: &str,
        mime: &str,
        bytes: Vec<u8>,
        is_preview: bool,
    ) -> Result<Asset> {
        let file_name = FileName::parse(file_name)?;
        let mime = self.limits.check(mime, bytes.len() as u64)?;
        let product = self.deps.products.get(product_id).await?.ok_or_else(|| Error::not_found("product"))?;
        authorize(actor, Action::UploadAsset, &Resource::Product { vendor_id: product.vendor_id })?;

        let size = bytes.len() as u64;
        let sha256 = sha256_hex(&bytes);
        let scan = self.deps.scanner.scan(&bytes).await?;
        let id = AssetId::new();
        let key = blob_key(product_id, id);
        let stored = scan != ScanStatus::Infected;
        if stored {
            // Bytes first: an asset row must never point at a missing blob.
            self.deps.blobs.put(&key, bytes).await?;
        }
        let mut result =
            Err(Error::conflict(ConflictReason::Contended, "too many concurrent uploads of this file name"));
        for _ in 0..MAX_VERSION_ATTEMPTS {
            let version = match self.deps.assets.next_version(product_id, &file_name).await {
                Ok(v) => v,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let asset = Asset {
                id,
                product_id,
                file_name: file_name.clone(),
                mime: mime.clone(),
                size,
                sha256: sha256.clone(),
                version,
                is_preview,
                scan,
                created_at: self.clock.now(),
            };
            match self.deps.assets.insert(&asset, &[]).await {
                Ok(()) => return Ok(asset),
                // Someone else took this version number; take the next one.
                Err(e @ Error::Conflict { .. }) => result = Err(e),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if stored && let Err(e) = self.deps.blobs.delete(&key).await {
            tracing::warn!(error = %e, key, "could not remove the blob of a failed upload");
        }
        result
    }

    /// A page of a product's assets, every version, oldest first, for
    /// anyone who may see the product (a listing shows what a purchase
    /// contains; a draft's files only its vendor and admins).
    ///
    /// # Errors
    /// `NotFound` (`product`) for an unknown product or one the actor may
    /// not see; store errors.
    pub async fn list_assets(
        &self,
        actor: Option<&Actor>,
        product_id: ProductId,
        page: PageRequest,
    ) -> Result<Page<Asset>> {
        let product = self.deps.products.get(product_id).await?.ok_or_else(|| Error::not_found("product"))?;
        if !product.is_visible_to(actor) {
            return Err(Error::not_found("product"));
        }
        let all = self.deps.assets.list_for_product(product_id).await?;
        Ok(Page::of(&all, page))
    }

    /// Issues a signed URL for `asset_id` under the actor's license, counting
    /// one download (see the module docs for the order of checks).
    ///
    /// # Errors
    /// `Denied` with `NotLicensed`, `LicenseRevoked`, `LicenseSuspended`,
    /// `LicenseExpired`, `AssetNotClean` or `DownloadLimitReached`;
    /// `NotFound` (`asset`); store errors.
    pub async fn create_download(
        &self,
        actor: &Actor,
        license_id: LicenseId,
        asset_id: AssetId,
    ) -> Result<SignedDownload> {
        let license = self.deps.licenses.get(license_id).await?.ok_or(Denial::NotLicensed)?;
        if !can(actor, Action::UseLicense, &Resource::License { holder_id: license.buyer_id }) {
            return Err(Denial::NotLicensed.into());
        }
        let asset = self.deps.assets.get(asset_id).await?.ok_or_else(|| Error::not_found("asset"))?;
        if asset.product_id != license.product_id {
            return Err(Denial::NotLicensed.into());
        }
        let now = self.clock.now();
        license.ensure_active(now)?;
        if !license.permissions.download {
            return Err(Denial::NotLicensed.into());
        }
        if asset.scan != ScanStatus::Clean {
            return Err(Denial::AssetNotClean.into());
        }
        self.deps.licenses.consume_download(license_id, now).await?;
        // The product's public download count follows the license's. It is
        // a statistic: a failed write costs one count, not the buyer's
        // download, which the license has already paid for. Its event
        // carries the new count to the search read model.
        let counted = Event::new(&ProductDownloaded { product_id: license.product_id, license_id }, now);
        if let Err(e) = self.deps.products.record_download(license.product_id, &[counted]).await {
            tracing::warn!(product_id = %license.product_id, error = %e, "counting a product download failed");
        }
        Ok(self.urls.sign(license_id, asset_id, now + self.url_ttl))
    }

    /// Serves a preview asset (`is_preview`, clean) to anyone: screenshots
    /// and demos are meant to be seen before buying, so they need no license
    /// and count no download.
    ///
    /// # Errors
    /// `NotFound` (`asset`); `Denied(NotLicensed)` when the asset is not a
    /// preview; `Denied(AssetNotClean)`; the blob errors of [`fetch`](Self::fetch).
    pub async fn fetch_preview(&self, asset_id: AssetId) -> Result<(Asset, Vec<u8>)> {
        let asset = self.deps.assets.get(asset_id).await?.ok_or_else(|| Error::not_found("asset"))?;
        if !asset.is_preview {
            return Err(Denial::NotLicensed.into());
        }
        self.read_clean(asset).await
    }

    /// Serves a signed URL: the asset and its bytes.
    ///
    /// # Errors
    /// `Denied` with `UrlInvalid` or `UrlExpired`; the license's status
    /// denial if it stopped being active since the URL was issued;
    /// `AssetNotClean` if the asset was re-flagged; `Integrity` when the
    /// stored bytes no longer match the recorded hash; `Internal` when the
    /// blob is missing; store errors.
    pub async fn fetch(&self, token: &str) -> Result<(Asset, Vec<u8>)> {
        let asset = self.signed_asset(token).await?;
        self.read_clean(asset).await
    }

    /// The asset a signed URL names, once the URL verifies and its license
    /// is still active.
    async fn signed_asset(&self, token: &str) -> Result<Asset> {
        let now = self.clock.now();
        let (license_id, asset_id) = self.urls.verify(token, now)?;
        let license = self.deps.licenses.get(license_id).await?.ok_or(Denial::UrlInvalid)?;
        license.ensure_active(now)?;
        Ok(self.deps.assets.get(asset_id).await?.ok_or(Denial::UrlInvalid)?)
    }

    /// Serves a signed URL as [`fetch`](Self::fetch) does, but lets a blob
    /// store that serves downloads itself do so: after the same checks, a
    /// store with a presigned URL answers [`Download::Redirect`], any other
    /// [`Download::Bytes`].
    ///
    /// # Errors
    /// As [`fetch`](Self::fetch).
    pub async fn resolve(&self, token: &str) -> Result<Download> {
        let asset = self.signed_asset(token).await?;
        if asset.scan != ScanStatus::Clean {
            return Err(Denial::AssetNotClean.into());
        }
        let ttl = std::time::Duration::from_secs(REDIRECT_TTL_SECS);
        if let Some(url) = self.deps.blobs.presigned_get(&asset.blob_key(), ttl).await? {
            return Ok(Download::Redirect { asset, url });
        }
        let (asset, bytes) = self.read_clean(asset).await?;
        Ok(Download::Bytes { asset, bytes })
    }

    /// The bytes of a clean asset, checked against its recorded hash.
    async fn read_clean(&self, asset: Asset) -> Result<(Asset, Vec<u8>)> {
        if asset.scan != ScanStatus::Clean {
            return Err(Denial::AssetNotClean.into());
        }
        let bytes =
            self.deps.blobs.get(&asset.blob_key()).await?.ok_or_else(|| {
                Error::internal("reading an asset blob", format!("blob {} is missing", asset.blob_key()))
            })?;
        if sha256_hex(&bytes) != asset.sha256 {
            return Err(Error::Integrity(format!("asset {} does not match its recorded sha256", asset.id)));
        }
        Ok((asset, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::fakes::{FakeAssets, FakeBlobs};
    use crate::assets::{EICAR_SIGNATURE, EicarScanner, MockBlobStore, MockScanner};
    use crate::auth::Role;
    use crate::catalog::MockProductRepository;
    use crate::catalog::fixtures::approved;
    use crate::clock::ManualClock;
    use crate::events::EventType;
    use crate::ids::{OrderId, UserId};
    use crate::licensing::fakes::FakeLicenses;
    use crate::licensing::{License, LicenseAction, LicenseKind, LicenseSigner, Limits, NewLicense, Permissions};

    struct World {
        licenses: Arc<FakeLicenses>,
        assets: Arc<FakeAssets>,
        blobs: Arc<FakeBlobs>,
        clock: ManualClock,
        vendor: Actor,
        buyer: Actor,
        product_id: ProductId,
        /// Product downloads counted through the product store.
        counted: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl World {
        fn new() -> Self {
            let product = approved("Agent", 0);
            Self {
                licenses: Arc::default(),
                assets: Arc::default(),
                blobs: Arc::default(),
                clock: ManualClock::at_epoch_secs(1_700_000_000),
                vendor: Actor::new(product.vendor_id, Role::Vendor),
                buyer: Actor::new(UserId::new(), Role::Customer),
                product_id: product.id,
                counted: Arc::default(),
            }
        }

        fn products(&self) -> Arc<MockProductRepository> {
            let mut products = MockProductRepository::new();
            let mut product = approved("Agent", 0);
            product.id = self.product_id;
            product.vendor_id = self.vendor.user_id;
            products.expect_get().returning(move |id| Ok((id == product.id).then(|| product.clone())));
            let (counted, expected) = (self.counted.clone(), self.product_id);
            products.expect_record_download().returning(move |id, events| {
                assert_eq!(id, expected, "the download counts for the license's product");
                let [event] = events else { panic!("one event per download: {events:?}") };
                assert_eq!(event.event_type, EventType::ProductDownloaded);
                assert_eq!(event.data["product_id"], expected.to_string());
                let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                // The third count fails: a statistic must not cost the buyer a download.
                if n == 2 { Err(Error::unavailable("products", "the store is down")) } else { Ok(()) }
            });
            Arc::new(products)
        }

        fn service_with(&self, scanner: Arc<dyn Scanner>, blobs: Arc<dyn BlobStore>) -> DownloadService {
            let deps = DownloadDeps {
                licenses: self.licenses.clone(),
                assets: self.assets.clone(),
                blobs,
                scanner,
                products: self.products(),
            };
            DownloadService::new(deps, UrlSigner::new(&[9; 32]).unwrap(), Arc::new(self.clock.clone()))
        }

        fn service(&self) -> DownloadService {
            self.service_with(Arc::new(EicarScanner), self.blobs.clone())
        }

        async fn license(&self, limits: Limits, permissions: Permissions, kind: LicenseKind) -> License {
            let new = NewLicense {
                buyer_id: self.buyer.user_id,
                product_id: self.product_id,
                order_id: OrderId::new(),
                kind,
                permissions,
                limits,
            };
            let l = License::issue(new, &LicenseSigner::from_seed(&[1; 32]), self.clock.now());
            self.licenses.insert(&l, &[]).await.unwrap();
            l
        }

        async fn default_license(&self) -> License {
            self.license(Limits::default(), Permissions::default(), LicenseKind::Perpetual).await
        }

        async fn set_standing(&self, l: &License, action: LicenseAction) {
            let current = self.licenses.get(l.id).await.unwrap().unwrap();
            let next = current.apply(&action, self.clock.now()).unwrap();
            self.licenses.update_status(&next, current.version, &[]).await.unwrap();
        }
    }

    #[tokio::test]
    async fn upload_hashes_scans_stores_and_versions() {
        let w = World::new();
        let s = w.service();
        let a1 =
            s.upload(&w.vendor, w.product_id, "agent.zip", "application/zip", b"v1".to_vec(), false).await.unwrap();
        assert_eq!((a1.version, a1.scan, a1.size), (1, ScanStatus::Clean, 2));
        assert_eq!(a1.sha256, sha256_hex(b"v1"));
        assert_eq!(w.blobs.0.lock().get(&a1.blob_key()).map(Vec::as_slice), Some(&b"v1"[..]));
        let a2 =
            s.upload(&w.vendor, w.product_id, "agent.zip", "application/zip", b"v2".to_vec(), false).await.unwrap();
        assert_eq!(a2.version, 2, "a new upload of the same name is a new version");
        assert_eq!(w.blobs.0.lock().get(&a1.blob_key()).map(Vec::as_slice), Some(&b"v1"[..]), "versions are immutable");
        let shot = s.upload(&w.vendor, w.product_id, "shot.png", "image/png", b"png".to_vec(), true).await.unwrap();
        assert!(shot.is_preview);
        assert_eq!(s.list_assets(Some(&w.vendor), w.product_id, PageRequest::default()).await.unwrap().items.len(), 3);
    }

    #[tokio::test]
    async fn infected_uploads_are_recorded_without_their_bytes() {
        let w = World::new();
        let mut bytes = b"PK\x03\x04".to_vec();
        bytes.extend_from_slice(EICAR_SIGNATURE);
        let a = w.service().upload(&w.vendor, w.product_id, "bad.zip", "application/zip", bytes, false).await.unwrap();
        assert_eq!(a.scan, ScanStatus::Infected);
        assert!(w.blobs.0.lock().is_empty());
    }

    #[tokio::test]
    async fn upload_validation_and_authorization() {
        let w = World::new();
        let s = w.service().with_limits(AssetLimits { max_size: 4, ..AssetLimits::default() });
        let up = |actor: Actor, product: ProductId, name: &'static str, mime: &'static str, bytes: &'static [u8]| {
            let s = &s;
            async move { s.upload(&actor, product, name, mime, bytes.to_vec(), false).await }
        };
        assert!(matches!(
            up(w.vendor, w.product_id, "a.zip", "application/zip", b"12345").await.unwrap_err(),
            Error::TooLarge { .. }
        ));
        let err = up(w.vendor, w.product_id, "a.exe", "application/x-msdownload", b"1").await.unwrap_err();
        assert!(err.to_string().contains("mime"), "{err}");
        let err = up(w.vendor, w.product_id, "../a.zip", "application/zip", b"1").await.unwrap_err();
        assert!(err.to_string().contains("file_name"), "{err}");
        assert_eq!(up(w.buyer, w.product_id, "a.zip", "application/zip", b"1").await.unwrap_err().code(), "forbidden");
        assert_eq!(
            up(w.vendor, ProductId::new(), "a.zip", "application/zip", b"1").await.unwrap_err().code(),
            "not_found"
        );
        assert!(w.assets.0.lock().is_empty() && w.blobs.0.lock().is_empty(), "refused uploads store nothing");
    }

    #[tokio::test]
    async fn the_scanner_runs_exactly_once_per_upload() {
        let w = World::new();
        let mut scanner = MockScanner::new();
        scanner.expect_scan().withf(|b| b == b"payload").times(1).returning(|_| Ok(ScanStatus::Clean));
        let s = w.service_with(Arc::new(scanner), w.blobs.clone());
        s.upload(&w.vendor, w.product_id, "a.json", "application/json", b"payload".to_vec(), false).await.unwrap();
        // A refused upload never reaches the scanner (the mock would panic on a 2nd call).
        s.upload(&w.buyer, w.product_id, "a.json", "application/json", b"payload".to_vec(), false).await.unwrap_err();
    }

    #[tokio::test]
    async fn a_failed_product_count_does_not_cost_the_buyer_the_download() {
        let w = World::new();
        let s = w.service();
        let asset =
            s.upload(&w.vendor, w.product_id, "agent.zip", "application/zip", b"bytes".to_vec(), false).await.unwrap();
        let l = w.default_license().await;
        for n in 1..=4 {
            let url = s.create_download(&w.buyer, l.id, asset.id).await;
            assert!(url.is_ok(), "download {n}: {url:?}");
        }
        assert_eq!(w.counted.load(std::sync::atomic::Ordering::SeqCst), 4, "the third count failed, the rest went on");
        assert_eq!(w.licenses.get(l.id).await.unwrap().unwrap().downloads_used, 4);
    }

    #[tokio::test]
    async fn download_round_trip_counts_at_issue() {
        let w = World::new();
        let s = w.service();
        let asset =
            s.upload(&w.vendor, w.product_id, "agent.zip", "application/zip", b"bytes".to_vec(), false).await.unwrap();
        let l = w
            .license(
                Limits { max_downloads: Some(2), ..Limits::default() },
                Permissions::default(),
                LicenseKind::Perpetual,
            )
            .await;
        let url = s.create_download(&w.buyer, l.id, asset.id).await.unwrap();
        assert_eq!(url.expires_at, w.clock.now() + Duration::seconds(DEFAULT_URL_TTL_SECS));
        assert!(url.path.starts_with("/v1/downloads/"));
        let (got, bytes) = s.fetch(&url.token).await.unwrap();
        assert_eq!((got.id, bytes.as_slice()), (asset.id, &b"bytes"[..]));
        s.fetch(&url.token).await.expect("a URL can be fetched again within its lifetime");
        assert_eq!(w.licenses.get(l.id).await.unwrap().unwrap().downloads_used, 1, "counted once, at issue");
        s.create_download(&w.buyer, l.id, asset.id).await.unwrap();
        let err = s.create_download(&w.buyer, l.id, asset.id).await.unwrap_err();
        assert_eq!(err.code(), "download_limit_reached");
        let counted = w.counted.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(counted, 2, "the product counts each issued URL, not fetches nor refusals");

        w.clock.advance(Duration::seconds(DEFAULT_URL_TTL_SECS));
        assert_eq!(s.fetch(&url.token).await.unwrap_err().code(), "url_expired");
        let mut tampered = url.token.clone();
        tampered.insert(3, 'A');
        assert_eq!(s.fetch(&tampered).await.unwrap_err().code(), "url_invalid");
    }

    #[tokio::test]
    async fn distinct_denials() {
        let w = World::new();
        let s = w.service();
        let clean = s.upload(&w.vendor, w.product_id, "a.zip", "application/zip", b"ok".to_vec(), false).await.unwrap();
        let l = w.default_license().await;
        let code = |actor: Actor, lid: LicenseId, aid: AssetId| {
            let s = &s;
            async move { s.create_download(&actor, lid, aid).await.unwrap_err().code() }
        };
        let stranger = Actor::new(UserId::new(), Role::Customer);
        let admin = Actor::new(UserId::new(), Role::Admin);
        assert_eq!(code(stranger, l.id, clean.id).await, "not_licensed");
        assert_eq!(code(admin, l.id, clean.id).await, "not_licensed", "admins don't use buyers' licenses");
        assert_eq!(code(w.buyer, LicenseId::new(), clean.id).await, "not_licensed");
        assert_eq!(code(w.buyer, l.id, AssetId::new()).await, "not_found");
        let mut foreign = clean.clone();
        foreign.id = AssetId::new();
        foreign.product_id = ProductId::new();
        w.assets.insert(&foreign, &[]).await.unwrap();
        assert_eq!(code(w.buyer, l.id, foreign.id).await, "not_licensed", "the license covers another product");

        let no_download = w
            .license(
                Limits::default(),
                Permissions { download: false, ..Permissions::default() },
                LicenseKind::Perpetual,
            )
            .await;
        assert_eq!(code(w.buyer, no_download.id, clean.id).await, "not_licensed");
        let trial =
            w.license(Limits::default(), Permissions::default(), LicenseKind::Trial { ends_at: w.clock.now() }).await;
        assert_eq!(code(w.buyer, trial.id, clean.id).await, "license_expired");

        w.assets.set_scan(clean.id, ScanStatus::Pending).await.unwrap();
        assert_eq!(code(w.buyer, l.id, clean.id).await, "asset_not_clean");
        w.assets.set_scan(clean.id, ScanStatus::Clean).await.unwrap();

        w.set_standing(&l, LicenseAction::Suspend { reason: "x".into() }).await;
        assert_eq!(code(w.buyer, l.id, clean.id).await, "license_suspended");
        w.set_standing(&l, LicenseAction::Revoke { reason: "refund".into() }).await;
        assert_eq!(code(w.buyer, l.id, clean.id).await, "license_revoked");
        assert_eq!(w.licenses.get(l.id).await.unwrap().unwrap().downloads_used, 0, "denials count nothing");
    }

    #[tokio::test]
    async fn a_license_revoked_after_issue_never_reaches_the_blob_store() {
        let w = World::new();
        let asset = w
            .service()
            .upload(&w.vendor, w.product_id, "a.zip", "application/zip", b"x".to_vec(), false)
            .await
            .unwrap();
        let l = w.default_license().await;
        let mut blobs = MockBlobStore::new();
        blobs.expect_get().never();
        let s = w.service_with(Arc::new(EicarScanner), Arc::new(blobs));
        let url = s.create_download(&w.buyer, l.id, asset.id).await.unwrap();
        w.set_standing(&l, LicenseAction::Revoke { reason: "refund".into() }).await;
        assert_eq!(s.fetch(&url.token).await.unwrap_err().code(), "license_revoked");
    }

    #[tokio::test]
    async fn a_store_that_serves_downloads_gets_a_redirect_after_the_same_checks() {
        let w = World::new();
        let asset = w
            .service()
            .upload(&w.vendor, w.product_id, "a.zip", "application/zip", b"zip".to_vec(), false)
            .await
            .unwrap();
        let l = w.default_license().await;
        let key = asset.blob_key();
        let mut blobs = MockBlobStore::new();
        blobs.expect_get().never();
        blobs
            .expect_presigned_get()
            .withf(move |k, ttl| k == key && *ttl == std::time::Duration::from_secs(REDIRECT_TTL_SECS))
            .times(1)
            .returning(|_, _| Ok(Some("https://bucket.example/a.zip?X-Amz-Signature=abc".into())));
        let s = w.service_with(Arc::new(EicarScanner), Arc::new(blobs));
        let url = s.create_download(&w.buyer, l.id, asset.id).await.unwrap();
        match s.resolve(&url.token).await.unwrap() {
            Download::Redirect { asset: got, url } => {
                assert_eq!(got.id, asset.id);
                assert_eq!(url, "https://bucket.example/a.zip?X-Amz-Signature=abc");
            }
            Download::Bytes { .. } => panic!("a store with presigned URLs serves the bytes itself"),
        }
        assert_eq!(s.resolve("garbage").await.unwrap_err().code(), "url_invalid");
        w.set_standing(&l, LicenseAction::Revoke { reason: "refund".into() }).await;
        assert_eq!(s.resolve(&url.token).await.unwrap_err().code(), "license_revoked", "no URL for a revoked license");

        // A store without URLs of its own: the checked bytes.
        let l = w.default_license().await;
        let s = w.service();
        let url = s.create_download(&w.buyer, l.id, asset.id).await.unwrap();
        assert_eq!(s.resolve(&url.token).await.unwrap(), Download::Bytes { asset, bytes: b"zip".to_vec() });
    }

    #[tokio::test]
    async fn previews_are_public_and_uncounted() {
        let w = World::new();
        let s = w.service();
        let shot = s.upload(&w.vendor, w.product_id, "s.png", "image/png", b"png".to_vec(), true).await.unwrap();
        let product =
            s.upload(&w.vendor, w.product_id, "a.zip", "application/zip", b"zip".to_vec(), false).await.unwrap();
        assert_eq!(s.fetch_preview(shot.id).await.unwrap().1, b"png");
        assert_eq!(s.fetch_preview(product.id).await.unwrap_err().code(), "not_licensed");
        assert_eq!(s.fetch_preview(AssetId::new()).await.unwrap_err().code(), "not_found");
        w.assets.set_scan(shot.id, ScanStatus::Infected).await.unwrap();
        assert_eq!(s.fetch_preview(shot.id).await.unwrap_err().code(), "asset_not_clean");
    }

    #[tokio::test]
    async fn fetch_detects_tampered_blobs() {
        let w = World::new();
        let s = w.service();
        let asset = s.upload(&w.vendor, w.product_id, "a.zip", "application/zip", b"x".to_vec(), false).await.unwrap();
        let l = w.default_license().await;
        let url = s.create_download(&w.buyer, l.id, asset.id).await.unwrap();
        w.blobs.0.lock().insert(asset.blob_key(), b"y".to_vec());
        assert_eq!(s.fetch(&url.token).await.unwrap_err().code(), "integrity");
        w.blobs.0.lock().clear();
        assert_eq!(s.fetch(&url.token).await.unwrap_err().code(), "internal");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_uploads_of_one_name_get_distinct_versions() {
        let w = World::new();
        let s = Arc::new(w.service());
        let tasks: Vec<_> = (0..6u8)
            .map(|i| {
                let (s, vendor, pid) = (s.clone(), w.vendor, w.product_id);
                tokio::spawn(async move {
                    s.upload(&vendor, pid, "same.zip", "application/zip", vec![i], false).await.unwrap().version
                })
            })
            .collect();
        let mut versions = Vec::new();
        for t in tasks {
            versions.push(t.await.unwrap());
        }
        versions.sort_unstable();
        assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
    }
}
