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
//! # Example
//! Signing a download URL is local (no request), so this runs without a
//! bucket; `put`, `get` and `delete` are requests to the store.
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//!
//! use bazaar_core::assets::BlobStore;
//! use bazaar_s3::{S3BlobStore, S3Config};
//!
//! let config = S3Config::from_values("bazaar-assets", "eu-west-1", None, "AKIDEXAMPLE", "s3cr3t")?;
//! let blobs = S3BlobStore::new(config)?; // connects on the first request
//!
//! let url = blobs.presigned_get("assets/p/manual.pdf", Duration::from_secs(300)).await?.expect("S3 serves downloads");
//! assert!(url.starts_with("https://bazaar-assets.s3.eu-west-1.amazonaws.com/assets/p/manual.pdf?"), "{url}");
//! assert!(url.contains("X-Amz-Expires=300") && url.contains("X-Amz-Signature="), "{url}");
//! assert!(!url.contains("s3cr3t"), "the secret key never leaves the process");
//!
//! // A key that cannot name an object is refused before any request.
//! assert_eq!(blobs.put("../escape", b"x".to_vec()).await.unwrap_err().code(), "validation");
//! # Ok::<(), bazaar_core::Error>(())
//! # }).unwrap();
//! ```

mod config;
mod store;

pub use config::{MAX_PRESIGN_TTL, S3Config};
pub use store::{S3BlobStore, S3Failure};
