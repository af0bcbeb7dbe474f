//! S3-compatible blob storage for Bazaar assets: [`S3BlobStore`], a
//! [`BlobStore`](bazaar_core::assets::BlobStore) over object_store's S3
//! client (AWS, MinIO, R2, Ceph, …), with presigned download URLs the
//! store serves itself. The local directory store stays the embedded
//! default; this one is for deployments with a bucket.
//!
//! Errors: a failing or unreachable store (after retries), a passed
//! deadline or an open breaker is `Unavailable`; refused credentials or a
//! missing bucket `Internal` (a configuration fault); a key that cannot
//! name an object `Validation`.
//!
//! ```no_run
//! use bazaar_s3::{S3BlobStore, S3Config};
//! # fn main() -> bazaar_core::Result<()> {
//! let config = S3Config::from_values("bazaar-assets", "eu-west-1", None, "AKIA…", "…")?;
//! let blobs = S3BlobStore::new(config)?;
//! # let _ = blobs; Ok(()) }
//! ```

mod config;
mod store;

pub use config::{MAX_PRESIGN_TTL, S3Config};
pub use store::{S3BlobStore, S3Failure};
