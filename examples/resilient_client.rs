//! The resilience kit around your own HTTP client: a reqwest client that
//! paces itself with a rate limiter, spreads requests over two upstreams
//! with P2C (least-request) balancing and outlier ejection, guards each
//! upstream with its own circuit breaker, and retries failed attempts
//! within a retry budget. The primitives are used as plain calls, in the
//! order the kit's guide recommends for clients (limit, then retry around
//! pick + breaker + request).
//!
//! The example starts its own two upstreams on loopback ports: `steady`
//! always answers, `flaky` answers 503 while it is failing. It then runs
//! four phases and prints what each primitive did:
//! 1. both healthy: P2C splits the traffic;
//! 2. `flaky` fails: its breaker opens and the balancer ejects it, retries
//!    land on `steady`, every request still succeeds, the budget pays;
//! 3. `flaky` recovers: after the ejection and the breaker's wait, a probe
//!    closes the breaker and `flaky` takes traffic again;
//! 4. a burst above the rate limit: the limiter admits its burst and
//!    refuses the rest with the time to wait.
//!
//! Needs nothing but loopback. Run with
//! `cargo run -p bazaar-examples --example resilient_client`; it exits
//! non-zero if any phase does not end as described.

use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State as Upstream;
use axum::http::StatusCode;
use axum::routing::get;
use bazaar_core::resilience::ResilienceError;
use bazaar_core::resilience::balance::{Endpoint, EndpointId, LoadBalancer, OutlierConfig, Strategy};
use bazaar_core::resilience::circuit_breaker::{
    CircuitBreakerConfig, CircuitBreakerEvent, CircuitBreakerRegistry, Outcome as Call, SlidingWindow, State,
};
use bazaar_core::resilience::rate_limit::{Quota, RateLimiter};
use bazaar_core::resilience::retry::{Backoff, Idempotency, Retrier, RetryDecision, RetryPolicy, TokenBucketBudget};

type Outcome<T = ()> = Result<T, Box<dyn Error>>;

fn ensure(ok: bool, message: &str) -> Outcome {
    if ok { Ok(()) } else { Err(message.into()) }
}

// ---- the two upstreams --------------------------------------------------

/// One upstream: its name, whether it is failing, how many requests it got.
#[derive(Debug, Default)]
struct Service {
    name: &'static str,
    failing: AtomicBool,
    served: AtomicU32,
}

async fn quote(Upstream(service): Upstream<Arc<Service>>) -> (StatusCode, String) {
    service.served.fetch_add(1, Ordering::Relaxed);
    if service.failing.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, format!("{} is failing", service.name))
    } else {
        (StatusCode::OK, format!("quote from {}", service.name))
    }
}

/// Serves `service` on an ephemeral loopback port until the process ends.
async fn start(name: &'static str) -> Outcome<(Arc<Service>, String)> {
    let service = Arc::new(Service { name, ..Service::default() });
    let app = Router::new().route("/quote", get(quote)).with_state(service.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((service, url))
}

// ---- the client ----------------------------------------------------------

/// Why one attempt failed.
#[derive(Debug)]
enum AttemptError {
    /// The upstream answered 5xx.
    Status(EndpointId, u16),
    /// The upstream's breaker is open: the request was not sent.
    Open(EndpointId),
    /// Connecting or reading failed.
    Transport(EndpointId, reqwest::Error),
    /// The breaker refused for another reason (its `code()`).
    Refused(EndpointId, &'static str),
    /// No endpoint to send to.
    NoEndpoint,
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(id, status) => write!(f, "{} answered {status}", id.as_str()),
            Self::Open(id) => write!(f, "the breaker of {} is open", id.as_str()),
            Self::Transport(id, e) => write!(f, "{}: {e}", id.as_str()),
            Self::Refused(id, code) => write!(f, "{} refused: {code}", id.as_str()),
            Self::NoEndpoint => f.write_str("no endpoint"),
        }
    }
}

impl Error for AttemptError {}

/// What the client did, for the report.
#[derive(Debug, Default)]
struct Tally {
    attempts: AtomicU32,
    refused_by_breaker: AtomicU32,
    paced: AtomicU32,
}

/// A reqwest client with the resilience kit around every request.
struct ResilientClient {
    http: reqwest::Client,
    base_urls: HashMap<EndpointId, String>,
    limiter: RateLimiter,
    retrier: Retrier,
    budget: Arc<TokenBucketBudget>,
    balancer: LoadBalancer,
    breakers: CircuitBreakerRegistry<String>,
    tally: Tally,
}

impl ResilientClient {
    fn new(upstreams: &[(&str, &str)]) -> Outcome<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        // 100 requests a second, bursts of 10.
        let quota = Quota::per_second(NonZeroU32::new(100).ok_or("non-zero")?)
            .allow_burst(NonZeroU32::new(10).ok_or("non-zero")?);
        // A retry costs 5 tokens of 100; a first-try success earns one back.
        let budget = Arc::new(TokenBucketBudget::new(100));
        let retrier =
            Retrier::new(RetryPolicy::new(4, Backoff::constant(Duration::from_millis(10)))).with_budget(budget.clone());
        // Two failures in a row eject an upstream for 300 ms (600 ms the
        // second time); with two upstreams one may be out at a time.
        let balancer = LoadBalancer::builder(Strategy::LeastRequest)
            .outlier_detection(OutlierConfig {
                consecutive_failures: 2,
                base_ejection_time: Duration::from_millis(300),
                max_ejection_time: Duration::from_millis(600),
                max_ejection_percent: 50,
            })
            .build();
        balancer.set_endpoints(upstreams.iter().map(|(name, _)| Endpoint::new(*name)));
        // Each upstream's breaker opens when half of its last 4 calls
        // failed, waits 250 ms, then lets one probe decide.
        let breakers = CircuitBreakerRegistry::new(
            CircuitBreakerConfig::builder()
                .sliding_window(SlidingWindow::CountBased(4))
                .minimum_number_of_calls(4)
                .failure_rate_threshold(50.0)
                .wait_in_open(Duration::from_millis(250))
                .permitted_calls_in_half_open(1)
                .build()?,
        );
        breakers.subscribe(|name: &str, event: &CircuitBreakerEvent| {
            if let CircuitBreakerEvent::StateTransition { from, to } = event {
                println!("    breaker {name}: {from:?} -> {to:?}");
            }
        });
        let base_urls = upstreams.iter().map(|(name, url)| (EndpointId::new(*name), (*url).to_owned())).collect();
        Ok(Self {
            http,
            base_urls,
            limiter: RateLimiter::new(quota),
            retrier,
            budget,
            balancer,
            breakers,
            tally: Tally::default(),
        })
    }

    /// GET `path` from some upstream: waits for the rate limiter, then
    /// retries failed attempts (5xx, open breaker, transport) within the
    /// budget. A GET is idempotent, so retrying it is safe.
    async fn get(&self, path: &str) -> Result<String, AttemptError> {
        while let Err(not_until) = self.limiter.check() {
            self.tally.paced.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(not_until.wait_time()).await;
        }
        let retry_failures = |r: &Result<String, AttemptError>| match r {
            Ok(_) | Err(AttemptError::NoEndpoint) => RetryDecision::Done,
            Err(_) => RetryDecision::Retry,
        };
        self.retrier.call_with(Idempotency::Idempotent, retry_failures, || self.attempt(path)).await
    }

    /// One attempt: pick an upstream (P2C), ask its breaker, send.
    async fn attempt(&self, path: &str) -> Result<String, AttemptError> {
        self.tally.attempts.fetch_add(1, Ordering::Relaxed);
        let pick = self.balancer.pick(None).ok_or(AttemptError::NoEndpoint)?;
        let id = pick.id().clone();
        let url = format!("{}{path}", self.base_urls.get(&id).ok_or(AttemptError::NoEndpoint)?);
        let breaker = self.breakers.get(&id.as_str().to_owned());
        // A 5xx arrives as `Ok`, but counts as the upstream failing.
        let by_status = |r: &Result<(u16, String), reqwest::Error>| match r {
            Ok((status, _)) if *status >= 500 => Call::Failure,
            Ok(_) => Call::Success,
            Err(_) => Call::Failure,
        };
        let sent = breaker
            .call_with(by_status, || async {
                let response = self.http.get(&url).send().await?;
                let status = response.status().as_u16();
                Ok((status, response.text().await?))
            })
            .await;
        // Every failure, a refusal by the breaker included, counts towards
        // ejecting the upstream from the balancer.
        match sent {
            Ok((status, body)) if status < 500 => {
                pick.success();
                Ok(body)
            }
            Ok((status, _)) => {
                pick.failure();
                Err(AttemptError::Status(id, status))
            }
            Err(ResilienceError::Open) => {
                pick.failure();
                self.tally.refused_by_breaker.fetch_add(1, Ordering::Relaxed);
                Err(AttemptError::Open(id))
            }
            Err(ResilienceError::Inner(e)) => {
                pick.failure();
                Err(AttemptError::Transport(id, e))
            }
            Err(other) => {
                pick.failure();
                Err(AttemptError::Refused(id, other.code()))
            }
        }
    }

    fn breaker_state(&self, name: &str) -> State {
        self.breakers.get(&name.to_owned()).state()
    }
}

// ---- the phases ----------------------------------------------------------

/// Sends `n` requests one after another; all must succeed.
/// Returns how many requests each upstream served, and the retries.
async fn run_phase(client: &ResilientClient, upstreams: &[&Arc<Service>], n: u32) -> Outcome<(Vec<u32>, u32)> {
    let before: Vec<u32> = upstreams.iter().map(|s| s.served.load(Ordering::Relaxed)).collect();
    let attempts = client.tally.attempts.load(Ordering::Relaxed);
    for _ in 0..n {
        client.get("/quote").await?;
    }
    let served: Vec<u32> = upstreams.iter().zip(&before).map(|(s, b)| s.served.load(Ordering::Relaxed) - b).collect();
    let retries = client.tally.attempts.load(Ordering::Relaxed) - attempts - n;
    println!(
        "  {n} requests, all answered; {retries} retries; served by steady {}, flaky {}; retry budget {} of 100 tokens",
        served[0],
        served[1],
        client.budget.tokens()
    );
    for status in client.balancer.status() {
        let ejected = status.ejected_for.map_or(String::new(), |d| format!(", ejected for {} ms", d.as_millis()));
        println!("    {}: ejected {} time(s){ejected}", status.id.as_str(), status.times_ejected);
    }
    Ok((served, retries))
}

#[tokio::main]
async fn main() -> Outcome {
    let (steady, steady_url) = start("steady").await?;
    let (flaky, flaky_url) = start("flaky").await?;
    println!("upstreams: steady at {steady_url}, flaky at {flaky_url}");
    let client = ResilientClient::new(&[("steady", &steady_url), ("flaky", &flaky_url)])?;
    let both = [&steady, &flaky];

    println!("1. both upstreams healthy");
    let (served, _) = run_phase(&client, &both, 20).await?;
    ensure(served[0] > 0 && served[1] > 0, "P2C sends traffic to both healthy upstreams")?;

    println!("2. flaky starts answering 503");
    flaky.failing.store(true, Ordering::Relaxed);
    let (_, retries) = run_phase(&client, &both, 30).await?;
    ensure(client.breaker_state("flaky") != State::Closed, "flaky's breaker opened")?;
    // A retry that succeeds is refunded: the budget drains only while
    // retries keep failing, which is when retrying would add to an outage.
    ensure(retries > 0, "the failed attempts were retried on steady")?;
    println!("    {} attempt(s) refused by an open breaker", client.tally.refused_by_breaker.load(Ordering::Relaxed));

    println!("3. flaky recovers; wait out its ejection and its breaker");
    flaky.failing.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (served, _) = run_phase(&client, &both, 20).await?;
    ensure(served[1] > 0, "flaky takes traffic again")?;
    ensure(client.breaker_state("flaky") == State::Closed, "a probe closed flaky's breaker")?;

    println!("4. a burst of 40 requests at once against 100/s with bursts of 10");
    // Let the limiter refill its burst first.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut admitted = 0;
    let mut refused = Vec::new();
    for _ in 0..40 {
        match client.limiter.check() {
            Ok(()) => admitted += 1,
            Err(not_until) => refused.push(not_until.wait_time()),
        }
    }
    let longest = refused.iter().max().copied().unwrap_or_default();
    println!("  {admitted} admitted, {} refused, each told to retry within {} ms", refused.len(), longest.as_millis());
    ensure((10..40).contains(&admitted) && !refused.is_empty(), "the limiter admits the burst and refuses the rest")?;
    println!("done: {} requests paced by the limiter over the run", client.tally.paced.load(Ordering::Relaxed));
    Ok(())
}
