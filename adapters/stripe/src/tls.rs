//! The HTTP client: rustls with the `ring` provider and the platform's
//! certificate verifier, built here and handed to reqwest ready-made, so
//! the process needs no default crypto provider and pulls in no second
//! crypto library.

use std::sync::Arc;
use std::time::Duration;

use rustls_platform_verifier::BuilderVerifierExt;

use crate::errors::StripeFailure;

/// A client with `connect_timeout` and `attempt_timeout` applied to every
/// request, keeping idle connections to the API for reuse.
///
/// # Errors
/// [`StripeFailure::Transport`] when TLS or the client cannot be set up
/// (no usable platform certificates).
pub(crate) fn client(connect_timeout: Duration, attempt_timeout: Duration) -> Result<reqwest::Client, StripeFailure> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| StripeFailure::Transport(format!("TLS set-up: {e}")))?
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(connect_timeout)
        .timeout(attempt_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("bazaar-stripe/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| StripeFailure::Transport(format!("HTTP client set-up: {e}")))
}
