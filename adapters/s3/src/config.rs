//! The store's settings, with documented defaults.

use std::fmt;
use std::time::Duration;

use bazaar_core::resilience::circuit_breaker::{CircuitBreakerConfig, SlidingWindow};
use bazaar_core::resilience::retry::{Backoff, Jitter, RetryPolicy};
use bazaar_core::{Error, Result};

/// The longest a presigned URL may live: S3's SigV4 limit, seven days.
pub const MAX_PRESIGN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where the bucket is and how to reach it.
///
/// | field | default |
/// |---|---|
/// | `region` | `us-east-1` |
/// | `endpoint` | none: AWS itself; set it for MinIO, R2, Ceph, a local test server |
/// | `path_style` | `true` when an endpoint is set (what most S3-compatible servers want) |
/// | `prefix` | none: keys are used as they are |
/// | `connect_timeout` | 5 s |
/// | `attempt_timeout` | 30 s per HTTP request (a 50 MiB upload must fit) |
/// | `deadline` | 120 s per operation, all attempts and waits included |
/// | `retry` | 3 attempts, exponential 200 ms·2ⁿ capped at 5 s, full jitter |
/// | `retry_budget` | 500 tokens shared by every operation |
/// | `breaker` | last 50 operations, opens at 50 % failures once 20 are in, 30 s open, 3 probes |
#[derive(Clone)]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// The region the bucket is in (signing needs it even off AWS).
    pub region: String,
    /// The S3 API's base URL when not AWS (`http://127.0.0.1:9000`).
    pub endpoint: Option<String>,
    /// Access key id; with `secret_access_key`, the static credentials.
    pub access_key_id: String,
    /// Secret access key; never printed.
    secret_access_key: String,
    /// A session token for temporary credentials; never printed.
    session_token: Option<String>,
    /// Path-style URLs (`endpoint/bucket/key`) instead of virtual-hosted ones.
    pub path_style: bool,
    /// Put every key under this prefix (`bazaar/`), to share a bucket.
    pub prefix: Option<String>,
    /// Time to open a TCP + TLS connection.
    pub connect_timeout: Duration,
    /// Time one HTTP request may take.
    pub attempt_timeout: Duration,
    /// Time one store operation may take in all.
    pub deadline: Duration,
    /// Attempts and backoff (object_store's own retries are turned off, so
    /// these and the budget are the only ones).
    pub retry: RetryPolicy,
    /// Capacity of the token bucket shared by every operation's retries.
    pub retry_budget: u32,
    /// The circuit breaker in front of the store.
    pub breaker: CircuitBreakerConfig,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"****")
            .field("session_token", &self.session_token.as_ref().map(|_| "****"))
            .field("path_style", &self.path_style)
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("deadline", &self.deadline)
            .field("retry", &self.retry)
            .field("retry_budget", &self.retry_budget)
            .field("breaker", &self.breaker)
            .finish()
    }
}

fn required(name: &'static str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::invalid(name, "is required"));
    }
    Ok(value.to_owned())
}

impl S3Config {
    /// The configuration from the values of `S3_BUCKET`, `S3_REGION`
    /// (empty: `us-east-1`), `S3_ENDPOINT` (optional), `S3_ACCESS_KEY_ID`
    /// and `S3_SECRET_ACCESS_KEY`, as the caller read them, with the
    /// defaults above.
    ///
    /// # Errors
    /// [`Error::Validation`] naming the variable when the bucket or a key
    /// is empty, or the endpoint is not an http(s) URL.
    pub fn from_values(
        bucket: &str,
        region: &str,
        endpoint: Option<&str>,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Result<Self> {
        let endpoint = match endpoint.map(str::trim).filter(|e| !e.is_empty()) {
            Some(e) if e.starts_with("http://") || e.starts_with("https://") => {
                Some(e.trim_end_matches('/').to_owned())
            }
            Some(_) => return Err(Error::invalid("S3_ENDPOINT", "must be an http(s) URL")),
            None => None,
        };
        let region = match region.trim() {
            "" => "us-east-1".to_owned(),
            r => r.to_owned(),
        };
        let deadline = Duration::from_secs(120);
        Ok(Self {
            bucket: required("S3_BUCKET", bucket)?,
            region,
            path_style: endpoint.is_some(),
            endpoint,
            access_key_id: required("S3_ACCESS_KEY_ID", access_key_id)?,
            secret_access_key: required("S3_SECRET_ACCESS_KEY", secret_access_key)?,
            session_token: None,
            prefix: None,
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(30),
            deadline,
            retry: RetryPolicy::new(
                3,
                Backoff::exponential(Duration::from_millis(200), 2.0, Duration::from_secs(5)).with_jitter(Jitter::Full),
            )
            .with_max_elapsed(deadline),
            retry_budget: 500,
            breaker: CircuitBreakerConfig::builder()
                .sliding_window(SlidingWindow::CountBased(50))
                .minimum_number_of_calls(20)
                .failure_rate_threshold(50.0)
                .slow_call_duration_threshold(Duration::from_secs(30))
                .wait_in_open(Duration::from_secs(30))
                .permitted_calls_in_half_open(3)
                .build()
                .expect("the default breaker configuration is valid"),
        })
    }

    /// Uses temporary credentials' session token (`S3_SESSION_TOKEN`).
    #[must_use]
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    pub(crate) fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    pub(crate) fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_and_secrets_never_print() {
        let c = S3Config::from_values("assets", "", Some("http://127.0.0.1:9000/"), "AKIA1", "s3cr3t-value")
            .unwrap()
            .with_session_token("tok-3n");
        assert_eq!(
            (c.region.as_str(), c.endpoint.as_deref(), c.path_style),
            ("us-east-1", Some("http://127.0.0.1:9000"), true)
        );
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains("tok-3n"), "{shown}");
        let field = |r: Result<S3Config>| match r {
            Err(Error::Validation(f)) => f[0].field.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(field(S3Config::from_values(" ", "", None, "a", "b")), "S3_BUCKET");
        assert_eq!(field(S3Config::from_values("b", "", Some("s3.local"), "a", "b")), "S3_ENDPOINT");
        assert_eq!(field(S3Config::from_values("b", "", None, "a", "")), "S3_SECRET_ACCESS_KEY");
        assert!(!S3Config::from_values("b", "eu-west-1", None, "a", "b").unwrap().path_style, "AWS: virtual-hosted");
    }
}
