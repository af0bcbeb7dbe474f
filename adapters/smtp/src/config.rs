//! The sender's settings, with documented defaults.

use std::fmt;
use std::time::Duration;

use bazaar_core::resilience::circuit_breaker::{CircuitBreakerConfig, SlidingWindow};
use bazaar_core::resilience::retry::{Backoff, Jitter, RetryPolicy};
use bazaar_core::{Error, Result};
use lettre::message::Mailbox;

/// How the sender reaches the mail server.
///
/// | field | default |
/// |---|---|
/// | `pool_max_size` | 10 open connections |
/// | `pool_idle_timeout` | 60 s |
/// | `command_timeout` | 10 s per SMTP command (connect, TLS, each reply) |
/// | `deadline` | 30 s per message, all attempts and waits included |
/// | `retry` | 3 attempts, exponential 500 ms·2ⁿ capped at 5 s, full jitter |
/// | `retry_budget` | 500 tokens shared by every send |
/// | `breaker` | last 20 sends, opens at 50 % failures once 10 are in, 30 s open, 2 probes |
#[derive(Clone)]
pub struct SmtpConfig {
    /// The server as lettre's URL: `smtps://user:pass@host:465` (TLS),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), or
    /// `smtp://host:25` (plain; only for a relay on the same machine or
    /// network). May hold a password, so it never prints.
    url: String,
    /// The `From` of every message.
    pub from: Mailbox,
    /// Connections the pool keeps open at most.
    pub pool_max_size: u32,
    /// How long an unused pooled connection stays open.
    pub pool_idle_timeout: Duration,
    /// Time each SMTP command may take.
    pub command_timeout: Duration,
    /// Time one message may take in all.
    pub deadline: Duration,
    /// Attempts and backoff for transient failures (4xx, timeouts, lost
    /// connections).
    pub retry: RetryPolicy,
    /// Capacity of the token bucket shared by every send's retries.
    pub retry_budget: u32,
    /// The circuit breaker in front of the server.
    pub breaker: CircuitBreakerConfig,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("url", &redacted(&self.url))
            .field("from", &self.from.to_string())
            .field("pool_max_size", &self.pool_max_size)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("deadline", &self.deadline)
            .field("retry", &self.retry)
            .field("retry_budget", &self.retry_budget)
            .field("breaker", &self.breaker)
            .finish()
    }
}

/// `url` with any user and password replaced by `****`.
fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://****{}", &url[at..]),
        _ => url.to_owned(),
    }
}

impl SmtpConfig {
    /// The configuration from the values of `SMTP_URL` and `SMTP_FROM`, as
    /// the caller read them, with the defaults above.
    ///
    /// # Errors
    /// [`Error::Validation`] on `SMTP_URL` unless it is an `smtp://` or
    /// `smtps://` URL with a host that lettre accepts (port, `tls=` mode), and on `SMTP_FROM` unless it is a
    /// mailbox (`Bazaar <noreply@example.com>` or a bare address).
    pub fn from_values(url: &str, from: &str) -> Result<Self> {
        let url = url.trim();
        let rest = url.strip_prefix("smtps://").or_else(|| url.strip_prefix("smtp://"));
        let host = rest.map(|r| r.rsplit_once('@').map_or(r, |(_, h)| h)).unwrap_or_default();
        if host.is_empty() || host.starts_with(':') || host.starts_with('?') {
            return Err(Error::invalid("SMTP_URL", "must be smtp://host[:port] or smtps://host[:port]"));
        }
        // lettre's own reading of the URL (port, `tls=` mode), so a URL the
        // sender could not use fails here, with the settings, not at start.
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(url)
            .map_err(|_| Error::invalid("SMTP_URL", "is not a URL lettre can use (check the port and tls= mode)"))?;
        let from: Mailbox = from
            .trim()
            .parse()
            .map_err(|_| Error::invalid("SMTP_FROM", "must be a mailbox such as `Bazaar <noreply@example.com>`"))?;
        let deadline = Duration::from_secs(30);
        Ok(Self {
            url: url.to_owned(),
            from,
            pool_max_size: 10,
            pool_idle_timeout: Duration::from_secs(60),
            command_timeout: Duration::from_secs(10),
            deadline,
            retry: RetryPolicy::new(
                3,
                Backoff::exponential(Duration::from_millis(500), 2.0, Duration::from_secs(5)).with_jitter(Jitter::Full),
            )
            .with_max_elapsed(deadline),
            retry_budget: 500,
            breaker: CircuitBreakerConfig::builder()
                .sliding_window(SlidingWindow::CountBased(20))
                .minimum_number_of_calls(10)
                .failure_rate_threshold(50.0)
                .slow_call_duration_threshold(Duration::from_secs(10))
                .wait_in_open(Duration::from_secs(30))
                .permitted_calls_in_half_open(2)
                .build()
                .expect("the default breaker configuration is valid"),
        })
    }

    /// The server URL (with its credentials, if any).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_never_print_credentials() {
        let config =
            SmtpConfig::from_values("smtps://mailer:hunter2@smtp.example.com:465", "Bazaar <no@example.com>").unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("mailer"), "{shown}");
        assert!(shown.contains("smtps://****@smtp.example.com:465"), "{shown}");
        for bad in
            ["", "http://x", "smtp://", "smtp://user@", "smtp://:25", "smtp://mail:99999", "smtp://mail?tls=maybe"]
        {
            let err = SmtpConfig::from_values(bad, "no@example.com").unwrap_err();
            assert!(matches!(&err, Error::Validation(f) if f[0].field == "SMTP_URL"), "{bad}: {err:?}");
        }
        let err = SmtpConfig::from_values("smtp://127.0.0.1:2525", "not an address").unwrap_err();
        assert!(matches!(&err, Error::Validation(f) if f[0].field == "SMTP_FROM"));
    }
}
