//! [`S3BlobStore`]: the [`BlobStore`] port over an S3-compatible bucket.

use bazaar_core::ConflictReason;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bazaar_core::assets::BlobStore;
use bazaar_core::resilience::ResilienceError;
use bazaar_core::resilience::circuit_breaker::{CircuitBreaker, Outcome};
use bazaar_core::resilience::clock::MonotonicClock;
use bazaar_core::resilience::retry::{Idempotency, Retrier, RetryDecision, Sleeper, TokenBucketBudget};
use bazaar_core::{Error, Result};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::signer::{Method, Signer};
use object_store::{ClientOptions, ObjectStoreExt, PutPayload, RetryConfig};

use crate::config::{MAX_PRESIGN_TTL, S3Config};

/// The dependency name in [`Error::Unavailable`].
const S3: &str = "s3";

/// Why an operation reached no answer; the cause inside
/// [`Error::Unavailable`].
#[derive(Debug, thiserror::Error)]
pub enum S3Failure {
    /// The store failed (5xx, throttling, a lost connection, a timeout).
    #[error("the object store failed: {0}")]
    Store(String),
    /// The operation did not finish within its deadline.
    #[error("the object store call passed its deadline")]
    Deadline,
    /// The circuit breaker is open: recent calls failed, so none is sent.
    #[error("circuit breaker open: the object store is failing, not calling it")]
    BreakerOpen,
}

/// The last attempt's error, or the deadline.
#[derive(Debug)]
enum Failed {
    Store(object_store::Error),
    Deadline,
}

/// Errors a repeat cannot fix: the store answered, and said no.
fn is_definite(e: &object_store::Error) -> bool {
    !matches!(e, object_store::Error::Generic { .. } | object_store::Error::JoinError { .. })
}

fn retry_decision<T>(result: &object_store::Result<T>) -> RetryDecision {
    match result {
        Ok(_) => RetryDecision::Done,
        Err(e) if is_definite(e) => RetryDecision::Done,
        Err(_) => RetryDecision::Retry,
    }
}

fn breaker_outcome<T>(result: &std::result::Result<T, Failed>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(Failed::Store(e)) if is_definite(e) => Outcome::Success,
        Err(_) => Outcome::Failure,
    }
}

fn map_store_error(e: object_store::Error) -> Error {
    match e {
        object_store::Error::InvalidPath { .. } => Error::invalid("key", "is not a valid object key"),
        object_store::Error::AlreadyExists { .. }
        | object_store::Error::Precondition { .. }
        | object_store::Error::NotModified { .. } => {
            Error::conflict(ConflictReason::Contended, "the object changed meanwhile")
        }
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            Error::internal("the object store refused our credentials", e)
        }
        // A missing bucket (a missing key is answered before mapping).
        object_store::Error::NotFound { .. } => Error::internal("the bucket does not exist", e),
        object_store::Error::Generic { .. } | object_store::Error::JoinError { .. } => {
            Error::unavailable(S3, S3Failure::Store(e.to_string()))
        }
        other => Error::internal("calling the object store", other),
    }
}

/// Asset bytes in an S3-compatible bucket.
///
/// - Keys (`assets/<product>/<asset>`) become object keys under the
///   optional prefix; a key that could not name a file (empty, `..`, `//`,
///   a leading or trailing `/`) is refused, as the local store refuses it.
/// - `put` is one `PutObject` (objects up to S3's 5 GiB single-put limit,
///   far above the asset limit); `get` of a missing key is `None`;
///   `delete` of a missing key succeeds.
/// - [`BlobStore::presigned_get`] answers a SigV4 presigned GET URL, so the
///   store serves downloads itself; the URL is valid for the `ttl` asked
///   (at most [`MAX_PRESIGN_TTL`]).
/// - Every operation goes through a circuit breaker, a deadline and
///   retries within a shared budget; object_store's own retries are off.
pub struct S3BlobStore {
    store: AmazonS3,
    prefix: Option<String>,
    bucket: String,
    breaker: CircuitBreaker,
    retrier: Retrier,
    deadline: Duration,
}

impl fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("breaker", &self.breaker.state())
            .finish_non_exhaustive()
    }
}

impl S3BlobStore {
    /// A store for `config`. Connects lazily, on the first operation; the
    /// bucket must exist.
    ///
    /// # Errors
    /// [`Error::Validation`] on `S3` when object_store refuses the
    /// settings (a malformed endpoint).
    pub fn new(config: S3Config) -> Result<Self> {
        let insecure = config.endpoint.as_deref().is_some_and(|e| e.starts_with("http://"));
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(config.secret_access_key())
            .with_virtual_hosted_style_request(!config.path_style)
            .with_retry(RetryConfig { max_retries: 0, retry_timeout: config.deadline, ..RetryConfig::default() })
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(config.attempt_timeout)
                    .with_connect_timeout(config.connect_timeout)
                    .with_allow_http(insecure),
            );
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(insecure);
        }
        if let Some(token) = config.session_token() {
            builder = builder.with_token(token);
        }
        let store = builder.build().map_err(|e| Error::invalid("S3", format!("object store settings: {e}")))?;
        let prefix = config.prefix.as_deref().map(|p| p.trim_matches('/').to_owned()).filter(|p| !p.is_empty());
        Ok(Self {
            store,
            prefix,
            bucket: config.bucket.clone(),
            breaker: CircuitBreaker::new("s3", config.breaker.clone()),
            retrier: Retrier::new(config.retry).with_budget(Arc::new(TokenBucketBudget::new(config.retry_budget))),
            deadline: config.deadline,
        })
    }

    /// Measures breaker and retry time on `clock` and waits between
    /// attempts with `sleeper` (tests pass a manual pair).
    #[must_use]
    pub fn with_timing(mut self, clock: Arc<dyn MonotonicClock>, sleeper: Arc<dyn Sleeper>) -> Self {
        self.breaker = CircuitBreaker::new("s3", self.breaker.config().clone()).with_clock(Arc::clone(&clock));
        self.retrier = self.retrier.with_clock(clock).with_sleeper(sleeper);
        self
    }

    /// The circuit breaker in front of the store (state and metrics).
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    fn path(&self, key: &str) -> Result<Path> {
        let safe = !key.is_empty()
            && !key.starts_with('/')
            && !key.ends_with('/')
            && key.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
        if !safe {
            return Err(Error::invalid("key", "is not a relative blob key"));
        }
        let full = match &self.prefix {
            Some(prefix) => format!("{prefix}/{key}"),
            None => key.to_owned(),
        };
        Path::parse(full).map_err(|_| Error::invalid("key", "has a control character"))
    }

    /// Runs `op` (idempotent: every blob operation is) through the breaker,
    /// the deadline and the retries.
    async fn guarded<T, F, Fut>(&self, op: F) -> std::result::Result<T, Failed>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = object_store::Result<T>>,
    {
        let guarded = self
            .breaker
            .call_with(breaker_outcome, || async move {
                let attempts = self.retrier.call_with(Idempotency::Idempotent, retry_decision, op);
                match tokio::time::timeout(self.deadline, attempts).await {
                    Ok(result) => result.map_err(Failed::Store),
                    Err(_) => Err(Failed::Deadline),
                }
            })
            .await;
        match guarded {
            Ok(value) => Ok(value),
            Err(ResilienceError::Inner(failed)) => Err(failed),
            Err(ResilienceError::Open) => Err(Failed::Store(object_store::Error::Generic {
                store: "S3",
                source: Box::new(S3Failure::BreakerOpen),
            })),
            Err(other) => Err(Failed::Store(object_store::Error::Generic {
                store: "S3",
                source: format!("rejected by the guard ({})", other.code()).into(),
            })),
        }
    }
}

fn unavailable_or_mapped(failed: Failed) -> Error {
    match failed {
        Failed::Deadline => Error::unavailable(S3, S3Failure::Deadline),
        Failed::Store(object_store::Error::Generic { source, .. }) if source.is::<S3Failure>() => {
            Error::unavailable(S3, *source.downcast::<S3Failure>().expect("checked by is"))
        }
        Failed::Store(e) => map_store_error(e),
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.path(key)?;
        let payload = PutPayload::from(bytes);
        self.guarded(|| self.store.put(&path, payload.clone())).await.map(|_| ()).map_err(unavailable_or_mapped)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(key)?;
        let read = self
            .guarded(|| async {
                match self.store.get(&path).await {
                    Ok(found) => found.bytes().await.map(Some),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await;
        read.map(|bytes| bytes.map(|b| b.to_vec())).map_err(unavailable_or_mapped)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        let deleted = self
            .guarded(|| async {
                match self.store.delete(&path).await {
                    Err(object_store::Error::NotFound { .. }) => Ok(()),
                    other => other,
                }
            })
            .await;
        deleted.map_err(unavailable_or_mapped)
    }

    async fn presigned_get(&self, key: &str, ttl: Duration) -> Result<Option<String>> {
        if ttl.is_zero() || ttl > MAX_PRESIGN_TTL {
            return Err(Error::invalid("ttl", "must be more than zero and at most seven days"));
        }
        let path = self.path(key)?;
        // Signing is local (static credentials), so it needs no breaker.
        let url = self.store.signed_url(Method::GET, &path, ttl).await.map_err(map_store_error)?;
        Ok(Some(url.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(prefix: Option<&str>) -> S3BlobStore {
        let mut config =
            S3Config::from_values("assets", "", Some("http://127.0.0.1:9"), "AKIDEXAMPLE", "secret").unwrap();
        config.prefix = prefix.map(Into::into);
        S3BlobStore::new(config).unwrap()
    }

    #[test]
    fn keys_that_cannot_name_a_file_are_refused() {
        let s = store(None);
        for bad in ["", "/etc/passwd", "a//b", "a/", "a/../b", "./a", "a/b\u{7}c", "a/b\nc"] {
            assert_eq!(s.path(bad).unwrap_err().code(), "validation", "{bad:?}");
        }
        for good in ["assets/p/a b (1).zip", "assets/p/100%", "assets/p/{x}?y#z", "assets/p/ünï"] {
            assert_eq!(s.path(good).unwrap().as_ref(), good, "object_store escapes it in the URL");
        }
        assert_eq!(store(Some("/tenant-a/")).path("assets/x").unwrap().as_ref(), "tenant-a/assets/x");
    }

    #[tokio::test]
    async fn presigned_urls_are_sigv4_for_the_asked_lifetime() {
        let url = store(Some("tenant")).presigned_get("assets/p/a", Duration::from_secs(300)).await.unwrap().unwrap();
        assert!(url.starts_with("http://127.0.0.1:9/assets/tenant/assets/p/a?"), "{url}");
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Expires=300",
            "X-Amz-Signature=",
            "X-Amz-Credential=AKIDEXAMPLE",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
        assert!(!url.contains("secret"), "{url}");
        let too_long = store(None).presigned_get("assets/p/a", MAX_PRESIGN_TTL + Duration::from_secs(1)).await;
        assert_eq!(too_long.unwrap_err().code(), "validation");
    }
}
