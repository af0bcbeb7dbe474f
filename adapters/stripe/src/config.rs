//! The connector's settings, with documented defaults, and the secret
//! wrapper that keeps keys out of logs.

use std::fmt;
use std::time::Duration;

use bazaar_core::resilience::circuit_breaker::{CircuitBreakerConfig, SlidingWindow};
use bazaar_core::resilience::retry::{Backoff, Jitter, RetryPolicy};
use bazaar_core::{Error, Result};

/// Stripe's API host.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// The API version every request pins (`Stripe-Version`), so a change of
/// the account's default version can never change what we parse. The test
/// fixtures are shaped by this version.
pub const API_VERSION: &str = "2024-06-20";

/// A credential that never reaches a log: `Debug` and `Display` print
/// `Secret(****)`, and only [`Secret::expose`] hands out the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// How the connector talks to Stripe.
///
/// [`StripeConfig::new`] fills in every default below; change fields
/// directly after it.
///
/// | field | default |
/// |---|---|
/// | `api_base` | [`DEFAULT_API_BASE`] |
/// | `connect_timeout` | 5 s |
/// | `attempt_timeout` | 10 s per HTTP attempt |
/// | `deadline` | 30 s per call, all attempts and waits included |
/// | `retry` | 3 attempts, exponential 250 ms·2ⁿ capped at 2 s, full jitter |
/// | `retry_budget` | 500 tokens (AWS standard: a retry costs 5, after a timeout 10) |
/// | `breaker` | last 50 calls, opens at 50 % failures once 20 are in, 30 s open, 3 probes |
/// | `payment_method_types` | `["card"]` |
/// | `return_url` | none: 3-D Secure is finished by Stripe.js (`use_stripe_sdk`) |
#[derive(Clone)]
pub struct StripeConfig {
    /// The secret API key (`sk_live_…`, `sk_test_…` or a restricted `rk_…`).
    pub secret_key: Secret,
    /// Webhook signing secrets (`whsec_…`); a signature made with any of
    /// them verifies, so the old and the new one can overlap while rotating.
    pub webhook_secrets: Vec<Secret>,
    /// Scheme and host of the API, without a trailing slash (tests point it
    /// at a local server).
    pub api_base: String,
    /// Time to open a TCP + TLS connection.
    pub connect_timeout: Duration,
    /// Time one HTTP attempt may take, headers and body.
    pub attempt_timeout: Duration,
    /// Time one provider call may take in all, retries and waits included.
    pub deadline: Duration,
    /// Attempts and backoff; a `Retry-After` from Stripe wins over the backoff.
    pub retry: RetryPolicy,
    /// Capacity of the token bucket shared by every call's retries.
    pub retry_budget: u32,
    /// The circuit breaker in front of the API.
    pub breaker: CircuitBreakerConfig,
    /// `payment_method_types` of new intents.
    pub payment_method_types: Vec<String>,
    /// Where Stripe sends the buyer back after a redirect-based action; sent
    /// with every confirmation when set.
    pub return_url: Option<String>,
}

impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("secret_key", &self.secret_key)
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("api_base", &self.api_base)
            .field("connect_timeout", &self.connect_timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("deadline", &self.deadline)
            .field("retry", &self.retry)
            .field("retry_budget", &self.retry_budget)
            .field("breaker", &self.breaker)
            .field("payment_method_types", &self.payment_method_types)
            .field("return_url", &self.return_url)
            .finish()
    }
}

impl StripeConfig {
    /// The defaults above with the account's secret key and webhook secret.
    pub fn new(secret_key: Secret, webhook_secret: Secret) -> Self {
        let deadline = Duration::from_secs(30);
        Self {
            secret_key,
            webhook_secrets: vec![webhook_secret],
            api_base: DEFAULT_API_BASE.to_owned(),
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(10),
            deadline,
            retry: RetryPolicy::new(
                3,
                Backoff::exponential(Duration::from_millis(250), 2.0, Duration::from_secs(2)).with_jitter(Jitter::Full),
            )
            .with_max_elapsed(deadline),
            retry_budget: 500,
            breaker: CircuitBreakerConfig::builder()
                .sliding_window(SlidingWindow::CountBased(50))
                .minimum_number_of_calls(20)
                .failure_rate_threshold(50.0)
                .slow_call_duration_threshold(Duration::from_secs(10))
                .wait_in_open(Duration::from_secs(30))
                .permitted_calls_in_half_open(3)
                .build()
                .expect("the default breaker configuration is valid"),
            payment_method_types: vec!["card".to_owned()],
            return_url: None,
        }
    }

    /// The configuration from the values of `STRIPE_SECRET_KEY`,
    /// `STRIPE_WEBHOOK_SECRET` (several may be given, comma-separated, for
    /// rotation) and `STRIPE_API_BASE` (optional), as the caller read them.
    ///
    /// # Errors
    /// [`Error::Validation`] naming the variable when the key or a secret
    /// is empty or has the wrong prefix, or the base is not an http(s) URL.
    pub fn from_values(secret_key: &str, webhook_secrets: &str, api_base: Option<&str>) -> Result<Self> {
        let secret_key = secret_key.trim();
        if !["sk_", "rk_"].iter().any(|p| secret_key.starts_with(p)) || secret_key.len() < 8 {
            return Err(Error::invalid("STRIPE_SECRET_KEY", "must be a Stripe secret key (sk_… or rk_…)"));
        }
        let secrets: Vec<Secret> =
            webhook_secrets.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Secret::new).collect();
        if secrets.is_empty() || secrets.iter().any(|s| !s.expose().starts_with("whsec_")) {
            return Err(Error::invalid(
                "STRIPE_WEBHOOK_SECRET",
                "must be one or more whsec_… secrets, comma-separated",
            ));
        }
        let mut config = Self::new(Secret::new(secret_key), secrets[0].clone());
        config.webhook_secrets = secrets;
        if let Some(base) = api_base.map(str::trim).filter(|b| !b.is_empty()) {
            if !(base.starts_with("https://") || base.starts_with("http://")) {
                return Err(Error::invalid("STRIPE_API_BASE", "must be an http(s) URL"));
            }
            config.api_base = base.trim_end_matches('/').to_owned();
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let config = StripeConfig::from_values("sk_test_abcdef123", "whsec_one, whsec_two", None).unwrap();
        let shown = format!("{config:?} {}", config.secret_key);
        assert!(!shown.contains("abcdef") && !shown.contains("whsec_"), "{shown}");
        assert_eq!(config.webhook_secrets.len(), 2);
        assert_eq!(config.api_base, DEFAULT_API_BASE);
    }

    #[test]
    fn values_are_checked_and_named() {
        let field = |r: Result<StripeConfig>| match r {
            Err(Error::Validation(f)) => f[0].field.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(field(StripeConfig::from_values("pk_test_123456", "whsec_1", None)), "STRIPE_SECRET_KEY");
        assert_eq!(field(StripeConfig::from_values("sk_test_123456", " , ", None)), "STRIPE_WEBHOOK_SECRET");
        assert_eq!(field(StripeConfig::from_values("sk_test_123456", "whsec_1", Some("ftp://x"))), "STRIPE_API_BASE");
        let local = StripeConfig::from_values("sk_test_123456", "whsec_1", Some("http://127.0.0.1:9/")).unwrap();
        assert_eq!(local.api_base, "http://127.0.0.1:9");
    }
}
