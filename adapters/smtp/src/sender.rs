//! [`SmtpSender`]: the [`NotificationSender`] port over SMTP.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bazaar_core::auth::UserRepository;
use bazaar_core::events::outbound_context;
use bazaar_core::notifications::{Channel, LogSender, Notification, NotificationSender};
use bazaar_core::resilience::ResilienceError;
use bazaar_core::resilience::circuit_breaker::{CircuitBreaker, Outcome};
use bazaar_core::resilience::clock::MonotonicClock;
use bazaar_core::resilience::retry::{Idempotency, Retrier, RetryDecision, Sleeper, TokenBucketBudget};
use bazaar_core::{Error, Result};
use lettre::message::Mailbox;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::response::Response;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use tracing::Instrument as _;

use crate::config::SmtpConfig;
use crate::message;

/// The dependency name in [`Error::Unavailable`].
const SMTP: &str = "smtp";

/// Why a message was not accepted; the cause inside the error `send`
/// returns. Holds reply codes, never addresses or bodies.
#[derive(Debug, thiserror::Error)]
pub enum SmtpFailure {
    /// The server answered with a transient (4xx) code after every attempt.
    #[error("the mail server deferred the message ({0})")]
    Deferred(u16),
    /// The server refused permanently (5xx).
    #[error("the mail server refused the message permanently ({0})")]
    Refused(u16),
    /// The server refused our credentials (530, 534, 535, 538).
    #[error("the mail server refused our credentials ({0})")]
    Authentication(u16),
    /// No answer in time, or the connection or TLS failed.
    #[error("could not talk to the mail server: {0}")]
    Connection(String),
    /// The send did not finish within its deadline.
    #[error("sending passed its deadline")]
    Deadline,
    /// The circuit breaker is open: recent sends failed, so none is tried.
    #[error("circuit breaker open: the mail server is failing, not calling it")]
    BreakerOpen,
}

/// One attempt's failure, as lettre reports it.
type Attempt = std::result::Result<Response, lettre::transport::smtp::Error>;

fn code(e: &lettre::transport::smtp::Error) -> u16 {
    e.status().map_or(0, u16::from)
}

/// Retry what a repeat can fix: deferrals (4xx), timeouts, lost
/// connections. A permanent refusal or a message lettre would not send
/// never gets better.
fn retry_decision(result: &Attempt) -> RetryDecision {
    match result {
        Ok(_) => RetryDecision::Done,
        Err(e) if e.is_permanent() || e.is_client() => RetryDecision::Done,
        Err(e) if e.is_timeout() => RetryDecision::RetryTimeout,
        Err(_) => RetryDecision::Retry,
    }
}

/// What counts against the server's health: no answer, deferrals, lost
/// connections. A permanent refusal of one recipient is the server working.
fn breaker_outcome(result: &std::result::Result<Response, Failed>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(Failed::Smtp(e)) if e.is_permanent() || e.is_client() => Outcome::Success,
        Err(_) => Outcome::Failure,
    }
}

/// The last attempt's error, or the deadline.
#[derive(Debug)]
enum Failed {
    Smtp(lettre::transport::smtp::Error),
    Deadline,
}

/// Our error for a send that failed: permanent refusals are
/// [`Error::Validation`] (the event flow dead-letters them at once),
/// rejected credentials [`Error::Internal`] (retried, then dead-lettered,
/// replayable once the configuration is fixed), everything else
/// [`Error::Unavailable`] (retried with backoff).
fn map_failure(failed: Failed) -> Error {
    let e = match failed {
        Failed::Deadline => return Error::unavailable(SMTP, SmtpFailure::Deadline),
        Failed::Smtp(e) => e,
    };
    let status = code(&e);
    if e.is_permanent() {
        if matches!(status, 530 | 534 | 535 | 538) {
            return Error::internal("sending e-mail", SmtpFailure::Authentication(status));
        }
        return Error::invalid("email", SmtpFailure::Refused(status).to_string());
    }
    if e.is_client() {
        return Error::internal("sending e-mail", SmtpFailure::Connection(e.to_string()));
    }
    if e.is_transient() {
        return Error::unavailable(SMTP, SmtpFailure::Deferred(status));
    }
    Error::unavailable(SMTP, SmtpFailure::Connection(e.to_string()))
}

/// Delivers `email` notifications over SMTP; every other channel goes to
/// the `others` sender ([`LogSender`] unless [`SmtpSender::with_others`]).
///
/// - The recipient is the notification's user, looked up in the
///   [`UserRepository`]; the text is the body the core rendered from the
///   template, the subject one per template (see [`crate::subject`]).
/// - `Ok` only once the server accepted the message (a 2xx reply to the
///   data); see [`SmtpFailure`] and the module docs for the error kinds.
/// - Each send goes through a circuit breaker, a deadline and retries
///   within a shared budget (breaker → deadline → retry → one attempt);
///   connections come from a pool.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    users: Arc<dyn UserRepository>,
    others: Arc<dyn NotificationSender>,
    breaker: CircuitBreaker,
    retrier: Retrier,
    deadline: Duration,
}

impl fmt::Debug for SmtpSender {
    // By hand: lettre's transport would print its credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender")
            .field("from", &self.from.to_string())
            .field("breaker", &self.breaker.state())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// A sender for `config`, addressing users found in `users`. Connects
    /// lazily, on the first send.
    ///
    /// # Errors
    /// [`Error::Validation`] on `SMTP_URL` when lettre cannot use the URL
    /// (an unknown `tls=` mode, a bad port).
    pub fn new(config: SmtpConfig, users: Arc<dyn UserRepository>) -> Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(config.url())
            .map_err(|_| Error::invalid("SMTP_URL", "is not a URL lettre can use"))?
            .timeout(Some(config.command_timeout))
            .pool_config(PoolConfig::new().max_size(config.pool_max_size).idle_timeout(config.pool_idle_timeout))
            .build();
        Ok(Self {
            transport,
            from: config.from.clone(),
            users,
            others: Arc::new(LogSender),
            breaker: CircuitBreaker::new("smtp", config.breaker.clone()),
            retrier: Retrier::new(config.retry).with_budget(Arc::new(TokenBucketBudget::new(config.retry_budget))),
            deadline: config.deadline,
        })
    }

    /// Sends notifications on other channels (in-app, webhook) with `others`.
    #[must_use]
    pub fn with_others(mut self, others: Arc<dyn NotificationSender>) -> Self {
        self.others = others;
        self
    }

    /// Measures breaker and retry time on `clock` and waits between
    /// attempts with `sleeper` (tests pass a manual pair).
    #[must_use]
    pub fn with_timing(mut self, clock: Arc<dyn MonotonicClock>, sleeper: Arc<dyn Sleeper>) -> Self {
        self.breaker = CircuitBreaker::new("smtp", self.breaker.config().clone()).with_clock(Arc::clone(&clock));
        self.retrier = self.retrier.with_clock(clock).with_sleeper(sleeper);
        self
    }

    /// The circuit breaker in front of the server (state and metrics).
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    async fn deliver(&self, message: &Message) -> Result<()> {
        let guarded = self
            .breaker
            .call_with(breaker_outcome, || async {
                // Re-sending after a lost reply may duplicate the e-mail; the
                // port promises at-least-once, and the fixed Message-ID lets
                // mail clients fold the copies.
                let attempts = self
                    .retrier
                    .call_with(Idempotency::MarkedSafe, retry_decision, || self.transport.send(message.clone()));
                match tokio::time::timeout(self.deadline, attempts).await {
                    Ok(result) => result.map_err(Failed::Smtp),
                    Err(_) => Err(Failed::Deadline),
                }
            })
            .await;
        match guarded {
            // lettre returns non-2xx replies as errors; checked anyway
            // because "sent" must mean accepted.
            Ok(response) if response.is_positive() => Ok(()),
            Ok(response) => Err(Error::unavailable(SMTP, SmtpFailure::Deferred(u16::from(response.code())))),
            Err(ResilienceError::Inner(failed)) => Err(map_failure(failed)),
            Err(ResilienceError::Open) => Err(Error::unavailable(SMTP, SmtpFailure::BreakerOpen)),
            Err(other) => Err(Error::unavailable(
                SMTP,
                SmtpFailure::Connection(format!("rejected by the guard ({})", other.code())),
            )),
        }
    }
}

#[async_trait]
impl NotificationSender for SmtpSender {
    async fn send(&self, notification: &Notification) -> Result<()> {
        if notification.channel != Channel::Email {
            return self.others.send(notification).await;
        }
        let user = self
            .users
            .get(notification.user_id)
            .await?
            .ok_or_else(|| Error::invalid("user_id", "no such user: the e-mail cannot be addressed"))?;
        // The client span of the delivery; its context travels in the
        // message (the caller's, unchanged, when this process does not trace).
        let span = tracing::info_span!(
            "smtp_send",
            otel.name = "smtp send",
            otel.kind = "client",
            network.protocol.name = "smtp",
            notification.id = %notification.id,
        );
        let trace = outbound_context(&span);
        let message = message::build(notification, &user, &self.from, trace.as_ref())?;
        let result = self.deliver(&message).instrument(span).await;
        match &result {
            Ok(()) => tracing::debug!(notification_id = %notification.id, "e-mail accepted by the server"),
            Err(e) => tracing::warn!(notification_id = %notification.id, error = %e, "e-mail not accepted"),
        }
        result
    }
}
