//! The connectors to the outside world a process uses, chosen by settings:
//! who takes payments (`BAZAAR_PAYMENTS`: Stripe or the sandbox), who
//! delivers e-mail (`SMTP_URL`: an SMTP server, otherwise only a log line)
//! and where asset bytes live (`S3_BUCKET`: an S3-compatible bucket,
//! otherwise the data directory).
//!
//! The sandbox hands out paid products for a test card number, so it is the
//! default only where nobody else can reach it: the embedded setup (SQLite,
//! no NATS or Redis bus) listening on loopback addresses. Any other start
//! must say `BAZAAR_PAYMENTS=stripe` or `BAZAAR_PAYMENTS=sandbox`.
//!
//! Every start logs which connector of each kind is live, never a secret.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use bazaar_core::assets::BlobStore;
use bazaar_core::auth::UserRepository;
use bazaar_core::notifications::NotificationSender;
use bazaar_core::payments::PaymentProvider;
use bazaar_s3::{S3BlobStore, S3Config};
use bazaar_smtp::{SmtpConfig, SmtpSender};
use bazaar_stripe::{StripeConfig, StripeProvider};

use crate::blobs::LocalBlobStore;
use crate::config_error::ConfigError;

/// Who takes payments.
#[derive(Clone, Debug)]
pub enum Payments {
    /// The core's sandbox: test cards, no real money.
    Sandbox,
    /// Stripe's API (the config's `Debug` hides the keys).
    Stripe(Box<StripeConfig>),
}

impl Payments {
    /// The provider's name, as logs and webhook URLs (`/v1/webhooks/{name}`) spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sandbox => bazaar_core::payments::SANDBOX,
            Self::Stripe(_) => bazaar_stripe::PROVIDER_NAME,
        }
    }
}

/// Who delivers e-mail notifications.
#[derive(Clone, Debug)]
pub enum Mail {
    /// Nobody: each notification becomes a log line and counts as sent.
    Log,
    /// An SMTP server (the config's `Debug` hides the credentials).
    Smtp(Box<SmtpConfig>),
}

/// Where asset bytes live.
#[derive(Clone, Debug)]
pub enum Blobs {
    /// `<data dir>/blobs`.
    Local,
    /// An S3-compatible bucket (the config's `Debug` hides the secret key).
    S3(Box<S3Config>),
}

/// The connector settings as flags and the environment give them.
#[derive(Clone, Default)]
pub struct RawProviders {
    /// `BAZAAR_PAYMENTS`.
    pub payments: Option<String>,
    /// `STRIPE_SECRET_KEY`.
    pub stripe_secret_key: Option<String>,
    /// `STRIPE_WEBHOOK_SECRET` (comma-separated while rotating).
    pub stripe_webhook_secret: Option<String>,
    /// `STRIPE_API_BASE`.
    pub stripe_api_base: Option<String>,
    /// `SMTP_URL`.
    pub smtp_url: Option<String>,
    /// `SMTP_FROM`.
    pub smtp_from: Option<String>,
    /// `S3_BUCKET`.
    pub s3_bucket: Option<String>,
    /// `S3_REGION`.
    pub s3_region: Option<String>,
    /// `S3_ENDPOINT`.
    pub s3_endpoint: Option<String>,
    /// `S3_ACCESS_KEY_ID`.
    pub s3_access_key_id: Option<String>,
    /// `S3_SECRET_ACCESS_KEY`.
    pub s3_secret_access_key: Option<String>,
    /// `S3_SESSION_TOKEN`.
    pub s3_session_token: Option<String>,
    /// `S3_PREFIX`.
    pub s3_prefix: Option<String>,
}

impl fmt::Debug for RawProviders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawProviders").field("payments", &self.payments).finish_non_exhaustive()
    }
}

/// The settings the adapters check themselves, as they name them in their
/// validation errors; anything else is reported under `fallback`.
const ADAPTER_SETTINGS: &[&str] = &[
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE",
    "SMTP_URL",
    "SMTP_FROM",
    "S3_BUCKET",
    "S3_REGION",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
];

/// An adapter's validation error as the [`ConfigError`] of the setting it names.
pub(crate) fn adapter_error(error: bazaar_core::Error, fallback: &'static str) -> ConfigError {
    match error {
        bazaar_core::Error::Validation(fields) if !fields.is_empty() => {
            let field = &fields[0];
            let setting = ADAPTER_SETTINGS.iter().copied().find(|s| *s == field.field).unwrap_or(fallback);
            ConfigError { setting, reason: field.message.clone() }
        }
        other => ConfigError { setting: fallback, reason: other.to_string() },
    }
}

fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn error(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError { setting, reason: reason.into() }
}

/// The payment provider `raw` asks for. `sandbox_allowed` says whether this
/// start is the embedded setup on loopback, where the sandbox is the default.
///
/// # Errors
/// `BAZAAR_PAYMENTS` when it is missing outside the embedded setup, unknown,
/// or missing while Stripe keys are set; the Stripe variables when
/// `stripe` is chosen without them or they are malformed.
pub fn payments(raw: &RawProviders, sandbox_allowed: bool) -> Result<Payments, ConfigError> {
    let stripe_set = set(&raw.stripe_secret_key).is_some() || set(&raw.stripe_webhook_secret).is_some();
    match set(&raw.payments).map(str::to_ascii_lowercase).as_deref() {
        Some("sandbox") => Ok(Payments::Sandbox),
        Some("stripe") => {
            let key = set(&raw.stripe_secret_key)
                .ok_or_else(|| error("STRIPE_SECRET_KEY", "must be set when BAZAAR_PAYMENTS=stripe"))?;
            let secret = set(&raw.stripe_webhook_secret)
                .ok_or_else(|| error("STRIPE_WEBHOOK_SECRET", "must be set when BAZAAR_PAYMENTS=stripe"))?;
            let config = StripeConfig::from_values(key, secret, set(&raw.stripe_api_base))
                .map_err(|e| adapter_error(e, "BAZAAR_PAYMENTS"))?;
            Ok(Payments::Stripe(Box::new(config)))
        }
        Some(other) => Err(error("BAZAAR_PAYMENTS", format!("{other:?}: expected stripe or sandbox"))),
        None if stripe_set => Err(error(
            "BAZAAR_PAYMENTS",
            "Stripe keys are set but no provider is chosen: set BAZAAR_PAYMENTS=stripe (or sandbox)",
        )),
        None if sandbox_allowed => Ok(Payments::Sandbox),
        None => Err(error(
            "BAZAAR_PAYMENTS",
            "must be set to stripe or sandbox: the sandbox, which takes no real money, is the default only for \
             the embedded setup (SQLite, no NATS or Redis) on loopback addresses",
        )),
    }
}

/// The e-mail sender `raw` asks for.
///
/// # Errors
/// `SMTP_URL` / `SMTP_FROM` when one is set without the other or malformed.
pub fn mail(raw: &RawProviders) -> Result<Mail, ConfigError> {
    match (set(&raw.smtp_url), set(&raw.smtp_from)) {
        (None, None) => Ok(Mail::Log),
        (None, Some(_)) => Err(error("SMTP_URL", "must be set with SMTP_FROM")),
        (Some(_), None) => Err(error("SMTP_FROM", "must be set with SMTP_URL (e.g. `Bazaar <noreply@example.com>`)")),
        (Some(url), Some(from)) => {
            let config = SmtpConfig::from_values(url, from).map_err(|e| adapter_error(e, "SMTP_URL"))?;
            Ok(Mail::Smtp(Box::new(config)))
        }
    }
}

/// The blob store `raw` asks for: S3 as soon as any `S3_*` setting is given.
///
/// # Errors
/// The `S3_*` setting that is missing or malformed.
pub fn blobs(raw: &RawProviders) -> Result<Blobs, ConfigError> {
    let any = [
        &raw.s3_bucket,
        &raw.s3_region,
        &raw.s3_endpoint,
        &raw.s3_access_key_id,
        &raw.s3_secret_access_key,
        &raw.s3_session_token,
        &raw.s3_prefix,
    ]
    .into_iter()
    .any(|v| set(v).is_some());
    if !any {
        return Ok(Blobs::Local);
    }
    let mut config = S3Config::from_values(
        set(&raw.s3_bucket).unwrap_or_default(),
        set(&raw.s3_region).unwrap_or_default(),
        set(&raw.s3_endpoint),
        set(&raw.s3_access_key_id).unwrap_or_default(),
        set(&raw.s3_secret_access_key).unwrap_or_default(),
    )
    .map_err(|e| adapter_error(e, "S3_BUCKET"))?;
    if let Some(token) = set(&raw.s3_session_token) {
        config = config.with_session_token(token);
    }
    if let Some(prefix) = set(&raw.s3_prefix) {
        if prefix.split('/').filter(|s| !s.is_empty()).any(|s| s == "." || s == "..") {
            return Err(error("S3_PREFIX", "must not contain . or .. segments"));
        }
        config.prefix = Some(prefix.to_owned());
    }
    Ok(Blobs::S3(Box::new(config)))
}

/// The payment provider to build the marketplace with: `None` keeps the
/// builder's sandbox (signing with the process's webhook key).
///
/// # Errors
/// `BAZAAR_PAYMENTS` when the Stripe client cannot be built.
pub fn open_payments(payments: &Payments) -> Result<Option<Arc<dyn PaymentProvider>>, ConfigError> {
    match payments {
        Payments::Sandbox => {
            tracing::info!(
                payments = "sandbox",
                webhook = "/v1/webhooks/sandbox",
                "payment provider selected: the sandbox, which takes no real money"
            );
            Ok(None)
        }
        Payments::Stripe(config) => {
            let key = config.secret_key.expose();
            // The key's kind only, never the key: live and test keys must be told apart in logs.
            let mode = if key.starts_with("sk_live_") || key.starts_with("rk_live_") { "live" } else { "test" };
            tracing::info!(
                payments = "stripe",
                mode,
                api_base = config.api_base.as_str(),
                webhook_secrets = config.webhook_secrets.len(),
                webhook = "/v1/webhooks/stripe",
                "payment provider selected: Stripe"
            );
            let provider = StripeProvider::new((**config).clone()).map_err(|e| adapter_error(e, "BAZAAR_PAYMENTS"))?;
            Ok(Some(Arc::new(provider)))
        }
    }
}

/// The notification sender: `fallback` alone when e-mail is only logged,
/// otherwise SMTP for e-mail with `fallback` for every other channel.
///
/// # Errors
/// `SMTP_URL` when lettre cannot use the URL.
pub fn open_mail(
    mail: &Mail,
    users: Arc<dyn UserRepository>,
    fallback: Arc<dyn NotificationSender>,
) -> Result<Arc<dyn NotificationSender>, ConfigError> {
    match mail {
        Mail::Log => {
            tracing::info!(email = "log", "e-mail sender selected: none, e-mail notifications are only logged");
            Ok(fallback)
        }
        Mail::Smtp(config) => {
            tracing::info!(email = "smtp", server = ?config, "e-mail sender selected: SMTP");
            let sender = SmtpSender::new((**config).clone(), users).map_err(|e| adapter_error(e, "SMTP_URL"))?;
            Ok(Arc::new(sender.with_others(fallback)))
        }
    }
}

/// The blob store: `<data_dir>/blobs` or the bucket.
///
/// # Errors
/// [`crate::StartError::Config`] naming `S3_ENDPOINT` when object_store
/// refuses the settings; [`crate::StartError::Backend`] when the local
/// directory cannot be created.
pub async fn open_blobs(blobs: &Blobs, data_dir: &Path) -> Result<Arc<dyn BlobStore>, crate::StartError> {
    match blobs {
        Blobs::Local => {
            let dir = data_dir.join("blobs");
            tracing::info!(blobs = "local", dir = %dir.display(), "blob store selected: the data directory");
            Ok(Arc::new(LocalBlobStore::open(dir).await?))
        }
        Blobs::S3(config) => {
            tracing::info!(
                blobs = "s3",
                bucket = config.bucket.as_str(),
                region = config.region.as_str(),
                endpoint = config.endpoint.as_deref().unwrap_or("aws"),
                prefix = config.prefix.as_deref().unwrap_or(""),
                "blob store selected: S3"
            );
            Ok(Arc::new(S3BlobStore::new((**config).clone()).map_err(|e| adapter_error(e, "S3_ENDPOINT"))?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(payments: Option<&str>) -> RawProviders {
        RawProviders { payments: payments.map(Into::into), ..Default::default() }
    }

    fn stripe(payments: Option<&str>, key: Option<&str>, secret: Option<&str>) -> RawProviders {
        RawProviders {
            payments: payments.map(Into::into),
            stripe_secret_key: key.map(Into::into),
            stripe_webhook_secret: secret.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn the_sandbox_is_the_default_only_where_allowed() {
        assert!(matches!(payments(&raw(None), true), Ok(Payments::Sandbox)));
        assert_eq!(payments(&raw(None), false).unwrap_err().setting, "BAZAAR_PAYMENTS");
        assert!(matches!(payments(&raw(Some("sandbox")), false), Ok(Payments::Sandbox)));
        assert!(matches!(payments(&raw(Some(" Sandbox ")), false), Ok(Payments::Sandbox)));
        assert_eq!(payments(&raw(Some("paypal")), true).unwrap_err().setting, "BAZAAR_PAYMENTS");
        // Keys without a choice are a mistake, not a silent sandbox.
        let keys_only = stripe(None, Some("sk_test_123456789"), Some("whsec_1"));
        assert_eq!(payments(&keys_only, true).unwrap_err().setting, "BAZAAR_PAYMENTS");
    }

    #[test]
    fn stripe_needs_its_keys_and_hides_them() {
        let cases = [
            (stripe(Some("stripe"), None, Some("whsec_1")), "STRIPE_SECRET_KEY"),
            (stripe(Some("stripe"), Some("sk_test_123456789"), None), "STRIPE_WEBHOOK_SECRET"),
            (stripe(Some("stripe"), Some("pk_test_123456789"), Some("whsec_1")), "STRIPE_SECRET_KEY"),
            (stripe(Some("stripe"), Some("sk_test_123456789"), Some("secret")), "STRIPE_WEBHOOK_SECRET"),
            (
                RawProviders {
                    stripe_api_base: Some("api.stripe.com".into()),
                    ..stripe(Some("stripe"), Some("sk_test_123456789"), Some("whsec_1"))
                },
                "STRIPE_API_BASE",
            ),
        ];
        for (raw, setting) in cases {
            assert_eq!(payments(&raw, true).unwrap_err().setting, setting);
        }
        let chosen = payments(&stripe(Some("STRIPE"), Some("sk_live_abcdefgh123"), Some("whsec_zz9")), false).unwrap();
        assert_eq!(chosen.name(), "stripe");
        let shown = format!("{chosen:?}");
        assert!(!shown.contains("abcdefgh123") && !shown.contains("whsec_zz9"), "{shown}");
    }

    #[test]
    fn smtp_needs_url_and_from() {
        assert!(matches!(mail(&RawProviders::default()), Ok(Mail::Log)));
        let with = |url: Option<&str>, from: Option<&str>| RawProviders {
            smtp_url: url.map(Into::into),
            smtp_from: from.map(Into::into),
            ..Default::default()
        };
        assert_eq!(mail(&with(Some("smtp://127.0.0.1:2525"), None)).unwrap_err().setting, "SMTP_FROM");
        assert_eq!(mail(&with(None, Some("no@example.com"))).unwrap_err().setting, "SMTP_URL");
        assert_eq!(mail(&with(Some("http://x"), Some("no@example.com"))).unwrap_err().setting, "SMTP_URL");
        assert_eq!(mail(&with(Some("smtp://127.0.0.1:2525"), Some("nobody"))).unwrap_err().setting, "SMTP_FROM");
        let chosen = mail(&with(Some("smtps://u:hunter2@mail.example.com:465"), Some("Bazaar <no@example.com>")));
        let shown = format!("{:?}", chosen.unwrap());
        assert!(shown.starts_with("Smtp(") && !shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn any_s3_setting_selects_s3_and_the_rest_is_checked() {
        assert!(matches!(blobs(&RawProviders::default()), Ok(Blobs::Local)));
        let s3 = |bucket: Option<&str>, endpoint: Option<&str>, prefix: Option<&str>| RawProviders {
            s3_bucket: bucket.map(Into::into),
            s3_endpoint: endpoint.map(Into::into),
            s3_access_key_id: Some("AKIAEXAMPLE".into()),
            s3_secret_access_key: Some("s3cr3t-value".into()),
            s3_prefix: prefix.map(Into::into),
            ..Default::default()
        };
        assert_eq!(blobs(&s3(None, None, None)).unwrap_err().setting, "S3_BUCKET");
        assert_eq!(blobs(&s3(Some("assets"), Some("minio:9000"), None)).unwrap_err().setting, "S3_ENDPOINT");
        assert_eq!(blobs(&s3(Some("assets"), None, Some("a/../b"))).unwrap_err().setting, "S3_PREFIX");
        let only_secret = RawProviders { s3_secret_access_key: Some("x".into()), ..Default::default() };
        assert_eq!(blobs(&only_secret).unwrap_err().setting, "S3_BUCKET");
        let chosen = blobs(&s3(Some("assets"), Some("http://127.0.0.1:9000"), Some("tenant"))).unwrap();
        let Blobs::S3(config) = &chosen else { panic!("{chosen:?}") };
        assert_eq!((config.bucket.as_str(), config.prefix.as_deref()), ("assets", Some("tenant")));
        assert!(!format!("{chosen:?}").contains("s3cr3t"));
    }
}
