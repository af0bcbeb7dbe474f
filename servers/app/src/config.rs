//! What a Bazaar process is told at start, validated before anything opens.
//!
//! The CLI fills [`Config`] from flags and the environment; [`Config::validate`]
//! turns every mistake into one [`ConfigError`] whose message names the
//! setting and says what was expected, so a bad start fails in the first
//! line of output instead of half-way through opening stores.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use bazaar_core::auth::client_ip::{ForwardedHeader, TrustedProxies};
use bazaar_core::auth::{Email, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, check_password};
use bazaar_core::orders::IdempotencyTerms;
pub use bazaar_telemetry::{RawTraceSettings, TraceSettings};

pub use crate::config_error::ConfigError;
use crate::providers::{self, Blobs, Mail, Payments, RawProviders};

/// The default HTTP listen address.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
/// The default gRPC listen address.
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:50051";
/// The default data directory (SQLite file, keys, asset blobs).
pub const DEFAULT_DATA_DIR: &str = "./data";

/// Which engine holds the marketplace's state.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file (the embedded default: `<data dir>/bazaar.db`).
    Sqlite(String),
    /// A PostgreSQL server.
    Postgres(String),
}

impl fmt::Debug for Database {
    // URLs can carry passwords; only the engine is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(_) => f.write_str("Sqlite(..)"),
            Self::Postgres(_) => f.write_str("Postgres(..)"),
        }
    }
}

impl Database {
    /// Reads a `DATABASE_URL`.
    ///
    /// # Errors
    /// When the scheme is neither `sqlite:` nor `postgres:` / `postgresql:`.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let url = url.trim();
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(url.to_owned()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else {
            Err(ConfigError::new("DATABASE_URL", "expected sqlite://path/to/file.db or postgres://user@host:5432/db"))
        }
    }

    /// The engine's name, for logs.
    pub fn engine(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable when stderr is a terminal, JSON otherwise.
    #[default]
    Auto,
    /// Human-readable, coloured.
    Pretty,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Whether lines are JSON: always, never, or when stderr is not a terminal.
    pub fn is_json(self) -> bool {
        use std::io::IsTerminal as _;
        match self {
            Self::Json => true,
            Self::Pretty => false,
            Self::Auto => !std::io::stderr().is_terminal(),
        }
    }
}

impl std::str::FromStr for LogFormat {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "pretty" | "text" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            other => Err(ConfigError::new("BAZAAR_LOG_FORMAT", format!("{other:?}: expected auto, pretty or json"))),
        }
    }
}

/// Where catalog searches are answered (`BAZAAR_SEARCH_INDEX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchIndexKind {
    /// A tantivy read model held in memory, rebuilt from the store at
    /// every start (the default: 10,000 products take well under a second).
    #[default]
    Ram,
    /// A tantivy read model in `<data dir>/search`, memory-mapped.
    Disk,
    /// The database's own search behind the one-second result cache.
    Store,
}

impl SearchIndexKind {
    /// The setting's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ram => "ram",
            Self::Disk => "disk",
            Self::Store => "store",
        }
    }
}

impl std::str::FromStr for SearchIndexKind {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ram" => Ok(Self::Ram),
            "disk" => Ok(Self::Disk),
            "store" => Ok(Self::Store),
            other => Err(ConfigError::new("BAZAAR_SEARCH_INDEX", format!("{other:?}: expected ram, disk or store"))),
        }
    }
}

/// The admin created at start (`BAZAAR_ADMIN_EMAIL` + `BAZAAR_ADMIN_PASSWORD`).
#[derive(Clone)]
pub struct AdminBootstrap {
    /// Their e-mail.
    pub email: Email,
    /// Their password (hashed before it is stored; never logged).
    pub password: String,
}

impl fmt::Debug for AdminBootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminBootstrap").field("email", &self.email).finish_non_exhaustive()
    }
}

/// The longest idempotency lease accepted: a key is remembered 24 h, so a
/// longer lease could never end.
pub const MAX_IDEMPOTENCY_LEASE_SECS: i64 = 86_400;

/// Raw settings as flags and the environment give them.
#[derive(Clone, Default)]
pub struct RawConfig {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--http-addr`.
    pub http_addr: Option<String>,
    /// `--grpc-addr`.
    pub grpc_addr: Option<String>,
    /// `--demo`.
    pub demo: bool,
    /// `DATABASE_URL`.
    pub database_url: Option<String>,
    /// `REDIS_URL`.
    pub redis_url: Option<String>,
    /// `NATS_URL`.
    pub nats_url: Option<String>,
    /// `BAZAAR_NATS_STREAM`.
    pub nats_stream: Option<String>,
    /// `BAZAAR_NATS_SUBJECT_PREFIX`.
    pub nats_subject_prefix: Option<String>,
    /// `BAZAAR_REDIS_BUS_PREFIX`.
    pub redis_bus_prefix: Option<String>,
    /// `AMQP_URL`.
    pub amqp_url: Option<String>,
    /// `BAZAAR_AMQP_EXCHANGE`.
    pub amqp_exchange: Option<String>,
    /// `BAZAAR_AMQP_QUEUE_PREFIX`.
    pub amqp_queue_prefix: Option<String>,
    /// `BAZAAR_ADMIN_EMAIL`.
    pub admin_email: Option<String>,
    /// `BAZAAR_ADMIN_PASSWORD`.
    pub admin_password: Option<String>,
    /// `BAZAAR_LOG` / `--log-level` (an `EnvFilter` directive such as `info,bazaar=debug`).
    pub log_level: Option<String>,
    /// `BAZAAR_LOG_FORMAT` / `--log-format`.
    pub log_format: Option<String>,
    /// `BAZAAR_SEARCH_INDEX`: `ram`, `disk` or `store`.
    pub search_index: Option<String>,
    /// Payments, e-mail and blob storage (`BAZAAR_PAYMENTS`, `STRIPE_*`, `SMTP_*`, `S3_*`).
    pub providers: RawProviders,
    /// The process only migrates the database (`bazaar migrate`): it takes
    /// no payments, so it needs no `BAZAAR_PAYMENTS`.
    pub schema_only: bool,
    /// `BAZAAR_IDEMPOTENCY_LEASE_SECS` / `--idempotency-lease-secs`.
    pub idempotency_lease_secs: Option<String>,
    /// `BAZAAR_WEBHOOKS_ALLOW_LOCAL` / `--webhooks-allow-local`.
    pub webhooks_allow_local: Option<String>,
    /// `BAZAAR_TRUSTED_PROXIES` / `--trusted-proxies`.
    pub trusted_proxies: Option<String>,
    /// `BAZAAR_DEMO_LOGINS` / `--demo-logins`.
    pub demo_logins: Option<String>,
    /// `BAZAAR_FORWARDED_HEADER` / `--forwarded-header`.
    pub forwarded_header: Option<String>,
    /// The `OTEL_*` trace export variables.
    pub traces: RawTraceSettings,
}

impl fmt::Debug for RawConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawConfig").field("data_dir", &self.data_dir).field("demo", &self.demo).finish_non_exhaustive()
    }
}

/// Validated settings.
#[derive(Clone)]
pub struct Config {
    /// Where the SQLite file, the generated keys and local asset blobs live.
    pub data_dir: PathBuf,
    /// HTTP listen address.
    pub http_addr: SocketAddr,
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// This process creates the demo logins (`serve --demo`, `seed`): only
    /// on the embedded setup on loopback unless `demo_logins` is set.
    pub demo: bool,
    /// `BAZAAR_DEMO_LOGINS`: the demo logins (public password) may be
    /// created anywhere and sign in in every process. Without it they sign
    /// in only in a process that is a demo (`demo`).
    pub demo_logins: bool,
    /// The store.
    pub database: Database,
    /// Redis, when set: the event bus (Redis Streams) unless `nats_url` is set,
    /// in which case nothing reads it.
    pub redis_url: Option<String>,
    /// NATS, when set (the event bus).
    pub nats_url: Option<String>,
    /// The JetStream stream name, when not the default `BAZAAR_EVENTS`.
    /// Every process of one deployment must use the same one.
    pub nats_stream: Option<String>,
    /// The JetStream subject prefix, when not the default `bazaar`. Two
    /// streams on one server need distinct prefixes as well as names.
    pub nats_subject_prefix: Option<String>,
    /// The Redis key prefix of the Redis Streams bus, when not the
    /// default `bazaar:`.
    pub redis_bus_prefix: Option<String>,
    /// RabbitMQ, when set (the event bus). Never set together with
    /// `nats_url`.
    pub amqp_url: Option<String>,
    /// The RabbitMQ topic exchange, when not the default `bazaar.events`.
    /// Every process of one deployment must use the same one.
    pub amqp_exchange: Option<String>,
    /// The prefix of the RabbitMQ queues, when not the default `bazaar`.
    /// Two deployments on one vhost need distinct exchanges and prefixes.
    pub amqp_queue_prefix: Option<String>,
    /// The admin to create at start, when both variables are set.
    pub admin: Option<AdminBootstrap>,
    /// Log filter directive.
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Where catalog searches are answered.
    pub search_index: SearchIndexKind,
    /// Who takes payments.
    pub payments: Payments,
    /// Who delivers e-mail.
    pub mail: Mail,
    /// Where asset bytes live.
    pub blobs: Blobs,
    /// How long a request holds an idempotency key before a retry may take
    /// it over (the request died, say).
    pub idempotency_lease: chrono::Duration,
    /// Whether vendor webhook endpoints may be `http://` URLs and loopback,
    /// private or link-local addresses (a local setup); off by default.
    pub webhooks_allow_local: bool,
    /// The proxies whose forwarding header names the client, for the
    /// sign-in quota per client; none by default.
    pub trusted_proxies: TrustedProxies,
    /// OpenTelemetry trace export, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
    pub traces: Option<TraceSettings>,
}

impl fmt::Debug for Config {
    // Redis, NATS and AMQP URLs can carry credentials: only whether they are set is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("data_dir", &self.data_dir)
            .field("http_addr", &self.http_addr)
            .field("grpc_addr", &self.grpc_addr)
            .field("demo", &self.demo)
            .field("demo_logins", &self.demo_logins)
            .field("database", &self.database)
            .field("redis", &self.redis_url.is_some())
            .field("nats", &self.nats_url.is_some())
            .field("nats_stream", &self.nats_stream)
            .field("nats_subject_prefix", &self.nats_subject_prefix)
            .field("redis_bus_prefix", &self.redis_bus_prefix)
            .field("amqp", &self.amqp_url.is_some())
            .field("amqp_exchange", &self.amqp_exchange)
            .field("amqp_queue_prefix", &self.amqp_queue_prefix)
            .field("admin", &self.admin)
            .field("log_level", &self.log_level)
            .field("log_format", &self.log_format)
            .field("search_index", &self.search_index)
            .field("payments", &self.payments.name())
            .field("mail", &matches!(self.mail, Mail::Smtp(_)))
            .field("blobs", &matches!(self.blobs, Blobs::S3(_)))
            .field("idempotency_lease", &self.idempotency_lease)
            .field("webhooks_allow_local", &self.webhooks_allow_local)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("traces", &self.traces.as_ref().map(|t| (t.protocol, t.sampler)))
            .finish()
    }
}

impl Config {
    /// The defaults of `bazaar serve` rooted at `data_dir` (SQLite file there).
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            database: Database::Sqlite(sqlite_url(&data_dir)),
            data_dir,
            http_addr: DEFAULT_HTTP_ADDR.parse().expect("valid default"),
            grpc_addr: DEFAULT_GRPC_ADDR.parse().expect("valid default"),
            demo: false,
            demo_logins: false,
            redis_url: None,
            nats_url: None,
            nats_stream: None,
            nats_subject_prefix: None,
            redis_bus_prefix: None,
            amqp_url: None,
            amqp_exchange: None,
            amqp_queue_prefix: None,
            admin: None,
            log_level: "info".into(),
            log_format: LogFormat::Auto,
            search_index: SearchIndexKind::default(),
            payments: Payments::Sandbox,
            mail: Mail::Log,
            blobs: Blobs::Local,
            idempotency_lease: IdempotencyTerms::default().lease,
            webhooks_allow_local: false,
            trusted_proxies: TrustedProxies::default(),
            traces: None,
        }
    }

    /// Validates raw settings, filling defaults.
    ///
    /// # Errors
    /// The first setting that cannot be used, named as the user spells it.
    pub fn validate(raw: RawConfig) -> Result<Self, ConfigError> {
        let data_dir = raw.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        if data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("--data-dir", "must not be empty"));
        }
        let http_addr = addr("--http-addr", raw.http_addr.as_deref().unwrap_or(DEFAULT_HTTP_ADDR))?;
        let grpc_addr = addr("--grpc-addr", raw.grpc_addr.as_deref().unwrap_or(DEFAULT_GRPC_ADDR))?;
        if http_addr == grpc_addr && http_addr.port() != 0 {
            return Err(ConfigError::new("--grpc-addr", format!("{grpc_addr} is also the HTTP address")));
        }
        let database = match non_empty(raw.database_url) {
            Some(url) => Database::parse(&url)?,
            None => Database::Sqlite(sqlite_url(&data_dir)),
        };
        let redis_url = non_empty(raw.redis_url);
        if let Some(url) = &redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(ConfigError::new("REDIS_URL", "expected redis://host:6379"));
        }
        let nats_url = non_empty(raw.nats_url);
        if let Some(url) = &nats_url
            && !(url.starts_with("nats://") || url.starts_with("tls://"))
        {
            return Err(ConfigError::new("NATS_URL", "expected nats://host:4222"));
        }
        // Checked with the adapter's own rules, so a bad name fails here,
        // named as the user spells it, rather than at the first connect.
        let nats_stream = non_empty(raw.nats_stream);
        if let Some(stream) = &nats_stream {
            let options = bazaar_nats::JetStreamOptions { stream: stream.clone(), ..Default::default() };
            options.validate().map_err(|e| ConfigError::new("BAZAAR_NATS_STREAM", e.to_string()))?;
        }
        let nats_subject_prefix = non_empty(raw.nats_subject_prefix);
        if let Some(prefix) = &nats_subject_prefix {
            let options = bazaar_nats::JetStreamOptions { subject_prefix: prefix.clone(), ..Default::default() };
            options.validate().map_err(|e| ConfigError::new("BAZAAR_NATS_SUBJECT_PREFIX", e.to_string()))?;
        }
        let redis_bus_prefix = non_empty(raw.redis_bus_prefix);
        let amqp_url = non_empty(raw.amqp_url);
        if let Some(url) = &amqp_url {
            if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
                return Err(ConfigError::new("AMQP_URL", "expected amqp://user:password@host:5672/%2f"));
            }
            // Both are buses: which one carries events must not depend on a
            // precedence rule the operator may not know.
            if nats_url.is_some() {
                return Err(ConfigError::new("AMQP_URL", "set either NATS_URL or AMQP_URL: both name the event bus"));
            }
        }
        let amqp_exchange = non_empty(raw.amqp_exchange);
        if let Some(exchange) = &amqp_exchange {
            let options = bazaar_rabbitmq::RabbitOptions { exchange: exchange.clone(), ..Default::default() };
            options.validate().map_err(|e| ConfigError::new("BAZAAR_AMQP_EXCHANGE", e.to_string()))?;
        }
        let amqp_queue_prefix = non_empty(raw.amqp_queue_prefix);
        if let Some(prefix) = &amqp_queue_prefix {
            let options = bazaar_rabbitmq::RabbitOptions { queue_prefix: prefix.clone(), ..Default::default() };
            options.validate().map_err(|e| ConfigError::new("BAZAAR_AMQP_QUEUE_PREFIX", e.to_string()))?;
        }
        let admin = match (non_empty(raw.admin_email), raw.admin_password.filter(|p| !p.is_empty())) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new("BAZAAR_ADMIN_PASSWORD", "must be set with BAZAAR_ADMIN_EMAIL"));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new("BAZAAR_ADMIN_EMAIL", "must be set with BAZAAR_ADMIN_PASSWORD"));
            }
            (Some(email), Some(password)) => {
                let email = Email::parse(&email)
                    .map_err(|_| ConfigError::new("BAZAAR_ADMIN_EMAIL", "is not a valid e-mail address"))?;
                if check_password(&password).is_err() {
                    return Err(ConfigError::new(
                        "BAZAAR_ADMIN_PASSWORD",
                        format!("must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"),
                    ));
                }
                Some(AdminBootstrap { email, password })
            }
        };
        let log_level = non_empty(raw.log_level).unwrap_or_else(|| "info".into());
        bazaar_telemetry::check_filter(&log_level)
            .map_err(|e| ConfigError::new("BAZAAR_LOG", format!("{log_level:?} is not a log filter: {e}")))?;
        let log_format = raw.log_format.as_deref().map(str::parse).transpose()?.unwrap_or_default();
        let search_index = non_empty(raw.search_index).as_deref().map(str::parse).transpose()?.unwrap_or_default();
        // The sandbox gives paid products away for a test card: it is the
        // default only where nobody else can reach it.
        let embedded =
            matches!(database, Database::Sqlite(_)) && nats_url.is_none() && redis_url.is_none() && amqp_url.is_none();
        let loopback = http_addr.ip().is_loopback() && grpc_addr.ip().is_loopback();
        let payments = providers::payments(&raw.providers, raw.schema_only || (embedded && loopback))?;
        let demo_logins = flag("BAZAAR_DEMO_LOGINS", raw.demo_logins)?;
        // Everyone knows the demo password: an account with it must not
        // appear where anyone but the person at this machine can sign in.
        if raw.demo && !(embedded && loopback) && !demo_logins {
            return Err(ConfigError::new(
                "BAZAAR_DEMO_LOGINS",
                "`--demo` and `bazaar seed` create logins with a public password, so only on the embedded setup \
                 (SQLite, no broker) listening on loopback; set BAZAAR_DEMO_LOGINS=true to create them here anyway",
            ));
        }
        let mail = providers::mail(&raw.providers)?;
        let blobs = providers::blobs(&raw.providers)?;
        let idempotency_lease = match non_empty(raw.idempotency_lease_secs) {
            None => IdempotencyTerms::default().lease,
            Some(secs) => match secs.parse::<i64>() {
                Ok(n) if (1..=MAX_IDEMPOTENCY_LEASE_SECS).contains(&n) => chrono::Duration::seconds(n),
                _ => {
                    return Err(ConfigError::new(
                        "BAZAAR_IDEMPOTENCY_LEASE_SECS",
                        format!("{secs:?}: expected whole seconds from 1 to {MAX_IDEMPOTENCY_LEASE_SECS}"),
                    ));
                }
            },
        };
        let webhooks_allow_local = flag("BAZAAR_WEBHOOKS_ALLOW_LOCAL", raw.webhooks_allow_local)?;
        let trusted_proxies = TrustedProxies::parse_list(raw.trusted_proxies.as_deref().unwrap_or_default())
            .map_err(|e| ConfigError::new("BAZAAR_TRUSTED_PROXIES", e))?;
        let forwarded_header = non_empty(raw.forwarded_header)
            .as_deref()
            .map(str::parse::<ForwardedHeader>)
            .transpose()
            .map_err(|e| ConfigError::new("BAZAAR_FORWARDED_HEADER", e))?
            .unwrap_or_default();
        let trusted_proxies = trusted_proxies.with_header(forwarded_header);
        let traces = raw.traces.validate().map_err(|e| ConfigError::new(e.setting, e.reason))?;
        Ok(Self {
            data_dir,
            http_addr,
            grpc_addr,
            demo: raw.demo,
            demo_logins,
            database,
            redis_url,
            nats_url,
            nats_stream,
            nats_subject_prefix,
            redis_bus_prefix,
            amqp_url,
            amqp_exchange,
            amqp_queue_prefix,
            admin,
            log_level,
            log_format,
            search_index,
            payments,
            mail,
            blobs,
            idempotency_lease,
            webhooks_allow_local,
            trusted_proxies,
            traces,
        })
    }
}

fn sqlite_url(data_dir: &std::path::Path) -> String {
    format!("sqlite://{}", data_dir.join("bazaar.db").display())
}

/// A true/false setting, false when unset.
fn flag(setting: &'static str, value: Option<String>) -> Result<bool, ConfigError> {
    match non_empty(value).as_deref() {
        None | Some("0" | "false" | "no") => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some(other) => Err(ConfigError::new(setting, format!("{other:?}: expected true or false"))),
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn addr(setting: &'static str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.trim().parse().map_err(|_| ConfigError::new(setting, format!("{s:?} is not an address such as 127.0.0.1:8080")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_setup() {
        let config = Config::validate(RawConfig::default()).unwrap();
        assert_eq!(config.http_addr.to_string(), DEFAULT_HTTP_ADDR);
        assert_eq!(config.grpc_addr.to_string(), DEFAULT_GRPC_ADDR);
        assert_eq!(config.database, Database::Sqlite("sqlite://./data/bazaar.db".into()));
        assert!(config.admin.is_none() && config.redis_url.is_none() && config.nats_url.is_none());
    }

    #[test]
    fn every_bad_setting_is_named() {
        let cases: Vec<(RawConfig, &str)> = vec![
            (RawConfig { http_addr: Some("localhost".into()), ..Default::default() }, "--http-addr"),
            (RawConfig { grpc_addr: Some("1.2.3.4".into()), ..Default::default() }, "--grpc-addr"),
            (RawConfig { grpc_addr: Some(DEFAULT_HTTP_ADDR.into()), ..Default::default() }, "--grpc-addr"),
            (RawConfig { database_url: Some("mysql://x".into()), ..Default::default() }, "DATABASE_URL"),
            (RawConfig { redis_url: Some("localhost:6379".into()), ..Default::default() }, "REDIS_URL"),
            (RawConfig { nats_url: Some("localhost".into()), ..Default::default() }, "NATS_URL"),
            (RawConfig { nats_stream: Some("bad.name".into()), ..Default::default() }, "BAZAAR_NATS_STREAM"),
            (
                RawConfig { nats_subject_prefix: Some("a..b".into()), ..Default::default() },
                "BAZAAR_NATS_SUBJECT_PREFIX",
            ),
            (RawConfig { amqp_url: Some("localhost:5672".into()), ..Default::default() }, "AMQP_URL"),
            (
                RawConfig {
                    amqp_url: Some("amqp://127.0.0.1:5672".into()),
                    nats_url: Some("nats://127.0.0.1:4222".into()),
                    ..Default::default()
                },
                "AMQP_URL",
            ),
            (RawConfig { amqp_exchange: Some("amq.topic".into()), ..Default::default() }, "BAZAAR_AMQP_EXCHANGE"),
            (RawConfig { amqp_queue_prefix: Some("a b".into()), ..Default::default() }, "BAZAAR_AMQP_QUEUE_PREFIX"),
            (RawConfig { admin_email: Some("a@b.io".into()), ..Default::default() }, "BAZAAR_ADMIN_PASSWORD"),
            (RawConfig { admin_password: Some("longenough".into()), ..Default::default() }, "BAZAAR_ADMIN_EMAIL"),
            (
                RawConfig {
                    admin_email: Some("nope".into()),
                    admin_password: Some("longenough".into()),
                    ..Default::default()
                },
                "BAZAAR_ADMIN_EMAIL",
            ),
            (
                RawConfig {
                    admin_email: Some("a@b.io".into()),
                    admin_password: Some("short".into()),
                    ..Default::default()
                },
                "BAZAAR_ADMIN_PASSWORD",
            ),
            (RawConfig { log_level: Some("info,=[".into()), ..Default::default() }, "BAZAAR_LOG"),
            (RawConfig { log_format: Some("xml".into()), ..Default::default() }, "BAZAAR_LOG_FORMAT"),
            (
                RawConfig { idempotency_lease_secs: Some("0".into()), ..Default::default() },
                "BAZAAR_IDEMPOTENCY_LEASE_SECS",
            ),
            (
                RawConfig { idempotency_lease_secs: Some("1.5".into()), ..Default::default() },
                "BAZAAR_IDEMPOTENCY_LEASE_SECS",
            ),
            (
                RawConfig { idempotency_lease_secs: Some("86401".into()), ..Default::default() },
                "BAZAAR_IDEMPOTENCY_LEASE_SECS",
            ),
            (
                RawConfig { trusted_proxies: Some("10.0.0.0/8, 10.0.0.300".into()), ..Default::default() },
                "BAZAAR_TRUSTED_PROXIES",
            ),
            (RawConfig { forwarded_header: Some("x-real-ip".into()), ..Default::default() }, "BAZAAR_FORWARDED_HEADER"),
            (RawConfig { demo_logins: Some("maybe".into()), ..Default::default() }, "BAZAAR_DEMO_LOGINS"),
            (
                RawConfig {
                    traces: RawTraceSettings { endpoint: Some("collector:4318".into()), ..Default::default() },
                    ..Default::default()
                },
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                RawConfig {
                    traces: RawTraceSettings { sampler: Some("most".into()), ..Default::default() },
                    ..Default::default()
                },
                "OTEL_TRACES_SAMPLER",
            ),
        ];
        for (raw, setting) in cases {
            assert_eq!(Config::validate(raw).unwrap_err().setting, setting);
        }
    }

    #[test]
    fn demo_logins_are_made_only_on_the_embedded_setup_on_loopback_unless_asked() {
        let demo = |raw: RawConfig| Config::validate(RawConfig { demo: true, ..raw });
        assert!(demo(RawConfig::default()).is_ok());
        let postgres = RawConfig { database_url: Some("postgres://u@db:5432/x".into()), ..Default::default() };
        let exposed = RawConfig { http_addr: Some("0.0.0.0:8080".into()), ..Default::default() };
        let broker = RawConfig { nats_url: Some("nats://127.0.0.1:4222".into()), ..Default::default() };
        for raw in [postgres, exposed, broker] {
            let payments = RawProviders { payments: Some("sandbox".into()), ..Default::default() };
            let raw = RawConfig { providers: payments, ..raw };
            let refused = demo(raw.clone()).unwrap_err();
            assert_eq!(refused.setting, "BAZAAR_DEMO_LOGINS");
            assert!(refused.to_string().contains("public password"), "{refused}");
            let asked = demo(RawConfig { demo_logins: Some("true".into()), ..raw }).unwrap();
            assert!(asked.demo_logins);
        }
    }

    #[test]
    fn trusted_proxies_name_whose_header_is_read() {
        let peer = "10.1.2.3".parse().unwrap();
        let xff = |name: &str| if name == "x-forwarded-for" { vec!["203.0.113.5"] } else { vec!["for=198.51.100.5"] };
        assert_eq!(Config::validate(RawConfig::default()).unwrap().trusted_proxies.client(peer, xff), peer);
        let raw = RawConfig { trusted_proxies: Some("127.0.0.1, 10.0.0.0/8".into()), ..Default::default() };
        let proxies = Config::validate(raw.clone()).unwrap().trusted_proxies;
        assert_eq!(proxies.client(peer, xff), "203.0.113.5".parse::<std::net::IpAddr>().unwrap());
        let raw = RawConfig { forwarded_header: Some("Forwarded".into()), ..raw };
        let proxies = Config::validate(raw).unwrap().trusted_proxies;
        assert_eq!(proxies.client(peer, xff), "198.51.100.5".parse::<std::net::IpAddr>().unwrap());
    }

    #[test]
    fn the_sandbox_is_the_default_only_for_the_embedded_setup_on_loopback() {
        let embedded = Config::validate(RawConfig::default()).unwrap();
        assert!(matches!(
            (embedded.payments, embedded.mail, embedded.blobs),
            (Payments::Sandbox, Mail::Log, Blobs::Local)
        ));
        let ipv6 =
            RawConfig { http_addr: Some("[::1]:0".into()), grpc_addr: Some("[::1]:1".into()), ..Default::default() };
        assert!(matches!(Config::validate(ipv6).unwrap().payments, Payments::Sandbox));
        let elsewhere = [
            RawConfig { http_addr: Some("0.0.0.0:8080".into()), ..Default::default() },
            RawConfig { grpc_addr: Some("10.0.0.5:50051".into()), ..Default::default() },
            RawConfig { database_url: Some("postgres://db/bazaar".into()), ..Default::default() },
            RawConfig { nats_url: Some("nats://127.0.0.1:4222".into()), ..Default::default() },
            RawConfig { redis_url: Some("redis://127.0.0.1:6379".into()), ..Default::default() },
            RawConfig { amqp_url: Some("amqp://127.0.0.1:5672/%2f".into()), ..Default::default() },
        ];
        for raw in elsewhere {
            let chosen = RawConfig {
                providers: RawProviders { payments: Some("sandbox".into()), ..Default::default() },
                ..raw.clone()
            };
            assert!(matches!(Config::validate(chosen).unwrap().payments, Payments::Sandbox));
            assert_eq!(Config::validate(raw).unwrap_err().setting, "BAZAAR_PAYMENTS");
        }
    }

    #[test]
    fn urls_pick_the_engine_and_stay_out_of_debug_output() {
        let raw = RawConfig {
            database_url: Some("postgres://app:hunter2@db:5432/bazaar".into()),
            amqp_url: Some("amqp://app:rabbit-secret@mq:5672/%2f".into()),
            admin_email: Some("Root@Example.com".into()),
            admin_password: Some("correct horse".into()),
            providers: RawProviders { payments: Some("sandbox".into()), ..Default::default() },
            ..Default::default()
        };
        let config = Config::validate(raw).unwrap();
        assert_eq!(config.database.engine(), "postgres");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("rabbit-secret") && !shown.contains("correct horse"),
            "{shown}"
        );
        assert_eq!(config.admin.unwrap().email.as_str(), "root@example.com");
    }
}
