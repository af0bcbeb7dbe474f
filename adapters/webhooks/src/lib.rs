//! Vendor webhook delivery for Bazaar: [`HttpTransport`], a
//! [`WebhookTransport`] that POSTs over reqwest with rustls.
//!
//! Endpoints are the vendors' own URLs, so the client is built not to be
//! turned against the marketplace's network: it follows no redirects, and
//! unless local endpoints are allowed its resolver drops loopback, private
//! and link-local addresses from every DNS answer (the core's
//! [`check_url`](bazaar_core::webhooks::check_url) refuses such literal
//! addresses at registration; this catches names that resolve to them,
//! including names re-pointed after registration).
//!
//! # Example
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use bazaar_core::webhooks::{OutboundWebhook, WebhookTransport};
//! use bazaar_webhooks::{HttpTransport, TransportConfig};
//!
//! let transport = HttpTransport::new(TransportConfig::default())?;
//! let status = transport
//!     .post(&OutboundWebhook { url: "https://hooks.example.com/bazaar".into(), headers: vec![], body: "{}".into() })
//!     .await?;
//! println!("answered {status}");
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bazaar_core::webhooks::{OutboundWebhook, WebhookTransport, is_local};
use bazaar_core::{Error, Result};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How the client connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportConfig {
    /// TCP and TLS set-up (default 5 s).
    pub connect_timeout: Duration,
    /// The whole request (default 10 s; the deliverer has its own deadline too).
    pub timeout: Duration,
    /// Whether loopback, private and link-local addresses may be reached
    /// (default false; turn on with the core's `EndpointPolicy::allow_local`).
    pub allow_local: bool,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(5), timeout: Duration::from_secs(10), allow_local: false }
    }
}

/// POSTs webhook deliveries with a pooled reqwest client.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    http: reqwest::Client,
}

impl HttpTransport {
    /// A transport with `config`.
    ///
    /// # Errors
    /// [`Error::Internal`] when the TLS set-up fails.
    pub fn new(config: TransportConfig) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("bazaar-webhooks/", env!("CARGO_PKG_VERSION")));
        if !config.allow_local {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let http = builder.build().map_err(|e| Error::internal("webhook HTTP client", e))?;
        Ok(Self { http })
    }
}

#[async_trait]
impl WebhookTransport for HttpTransport {
    async fn post(&self, request: &OutboundWebhook) -> Result<u16> {
        let mut call = self
            .http
            .post(&request.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(request.body.clone());
        for (name, value) in &request.headers {
            call = call.header(*name, value);
        }
        let response = call.send().await.map_err(|e| Error::unavailable("webhook endpoint", describe(&e)))?;
        Ok(response.status().as_u16())
    }
}

/// What went wrong, without the URL (it may carry the vendor's token).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_request() {
        "the request failed"
    } else {
        "no response"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() { what.to_string() } else { format!("{what}: {cause}") }
}

/// The system resolver with every local address dropped from its answers.
#[derive(Debug, Clone, Copy)]
pub struct PublicOnly;

impl PublicOnly {
    /// The public addresses `host` resolves to.
    ///
    /// # Errors
    /// When resolution fails, or when every address is local.
    pub async fn lookup(host: &str) -> std::result::Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
        let public: Vec<SocketAddr> = all.iter().copied().filter(|a| !is_local(a.ip())).collect();
        if public.is_empty() {
            return Err(format!("{host} resolves only to local addresses, which webhooks may not reach").into());
        }
        Ok(public)
    }
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let addrs = Self::lookup(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
