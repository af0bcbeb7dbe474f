//! Product assets and licensed downloads.
//!
//! - [`Asset`]: one immutable version of a file ([`FileName`] validated,
//!   MIME from an allow-list, SHA-256, [`ScanStatus`]); uploading the same
//!   name again makes version + 1.
//! - [`AssetLimits`]: 50 MiB and an allow-list by default; too large is
//!   [`Error::TooLarge`](crate::Error::TooLarge) (HTTP 413).
//! - Ports: [`BlobStore`] (bytes), [`Scanner`] ([`EicarScanner`] by default),
//!   [`AssetRepository`] (metadata).
//! - [`UrlSigner`]: stateless HMAC-signed, short-lived download URLs.
//! - [`DownloadService`]: upload, issue a URL (counting the download), fetch.

mod asset;
mod blob;
mod download;
#[cfg(test)]
pub(crate) mod fakes;
mod limits;
mod repository;
mod scanner;
mod signed_url;

pub use asset::{Asset, FileName, ScanStatus, blob_key, sha256_hex};
pub use blob::BlobStore;
#[cfg(any(test, feature = "mocks"))]
pub use blob::MockBlobStore;
pub use download::{DEFAULT_URL_TTL_SECS, Download, DownloadDeps, DownloadService, REDIRECT_TTL_SECS};
pub use limits::{AssetLimits, DEFAULT_MAX_SIZE, DEFAULT_MIMES};
pub use repository::AssetRepository;
#[cfg(any(test, feature = "mocks"))]
pub use repository::MockAssetRepository;
#[cfg(any(test, feature = "mocks"))]
pub use scanner::MockScanner;
pub use scanner::{EICAR_SIGNATURE, EicarScanner, Scanner};
pub use signed_url::{MIN_SECRET_LEN, SignedDownload, UrlSigner};
