//! The command line: subcommands, global flags and the environment
//! variables behind them (clap derive).
//!
//! Every setting is a flag with an environment variable, so the same binary
//! is configured by hand (`--data-dir ./tmp`) or by a container
//! (`DATABASE_URL=postgres://…`). Flags win over variables. Values are only
//! collected here; [`bazaar_app::Config::validate`] judges them.

use std::path::PathBuf;

use bazaar_app::config::RawTraceSettings;
use bazaar_app::{RawConfig, RawProviders};
use clap::{Args, Parser, Subcommand};

/// Bazaar: a digital-goods marketplace (AI agents, n8n workflows,
/// automation assets) with orders, payments, licensing and downloads.
#[derive(Debug, Parser)]
#[command(name = "bazaar", version, propagate_version = true, arg_required_else_help = true)]
#[command(after_help = "Start here:  bazaar serve --demo   (then open http://127.0.0.1:8080/docs)")]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
    /// Settings shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API, the gRPC API and the event worker in one process
    /// (SQLite in the data dir, in-process bus, local blobs, sandbox payments
    /// by default).
    Serve(ServeArgs),
    /// Run the HTTP API alone (pair it with `bazaar worker`).
    Http(ReplicaArgs),
    /// Run the gRPC API alone.
    Grpc(ReplicaArgs),
    /// Run the API gateway in front of `bazaar http` / `bazaar grpc`
    /// replicas (routing, balancing, breakers, retries, edge auth, rate
    /// limits, WebSocket and gRPC proxying).
    Gateway(GatewayArgs),
    /// Run the event worker alone (outbox relay and event handlers), or
    /// manage its dead letters.
    Worker(WorkerArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Create the demo accounts and a demo catalog (idempotent), then exit.
    Seed(SeedArgs),
}

/// Event handler loops per worker unless `--consumers` says otherwise.
pub const DEFAULT_CONSUMERS: u16 = 16;

/// `bazaar serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// On first start, seed demo accounts and an approved demo catalog, and
    /// print the demo logins.
    #[arg(long, env = "BAZAAR_DEMO")]
    pub demo: bool,
    /// Event handler loops the worker runs at once. Each waits on the
    /// database and the bus most of the time, so more loops than cores pay off.
    #[arg(long, env = "BAZAAR_WORKER_CONSUMERS", default_value_t = DEFAULT_CONSUMERS, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub consumers: u16,
}

/// `bazaar http` and `bazaar grpc`.
#[derive(Debug, Clone, Default, Args)]
pub struct ReplicaArgs {
    /// Register this replica in the service directory (NATS JetStream KV
    /// with NATS_URL, else Redis with REDIS_URL) under this URL, e.g.
    /// http://10.0.0.5:8080, so gateways send it traffic; it heartbeats and
    /// deregisters on SIGTERM. Port 0 stands for the port it listens on.
    #[arg(long, env = "BAZAAR_ADVERTISE_ADDR", value_name = "URL")]
    pub advertise_addr: Option<String>,
}

/// `bazaar gateway`.
#[derive(Debug, Clone, Default, Args)]
#[command(after_help = "Either --config FILE or one or more --upstream; --http-addr overrides the file's \
                        server.http_addr [default: 127.0.0.1:8000].")]
pub struct GatewayArgs {
    /// The gateway's TOML configuration (pools, routes, auth, rate limits;
    /// see servers/gateway/gateway.example.toml).
    #[arg(long, env = "BAZAAR_GATEWAY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The short form: a pool and its instances, e.g.
    /// api=http://127.0.0.1:8081,http://127.0.0.1:8082; every path goes to
    /// the first pool given. Repeatable.
    #[arg(long, value_name = "NAME=URL[,URL...]")]
    pub upstream: Vec<String>,
}

/// `bazaar seed`.
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// How many approved products the demo vendor should list (tops up an
    /// existing demo catalog; never duplicates).
    #[arg(long, default_value_t = bazaar_app::demo::DEFAULT_DEMO_PRODUCTS, value_name = "N")]
    pub products: usize,
}

/// `bazaar worker`.
#[derive(Debug, Clone, Args)]
#[command(after_help = "With --http-addr the worker also serves /health and /metrics on that address.")]
pub struct WorkerArgs {
    /// Manage dead letters instead of running the worker.
    #[command(subcommand)]
    pub command: Option<WorkerCommand>,
    /// Event handler loops the worker runs at once. Each waits on the
    /// database and the bus most of the time, so more loops than cores pay off.
    #[arg(long, env = "BAZAAR_WORKER_CONSUMERS", default_value_t = DEFAULT_CONSUMERS, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub consumers: u16,
}

/// `bazaar worker <command>`.
#[derive(Debug, Clone, Subcommand)]
pub enum WorkerCommand {
    /// Events whose handlers failed every retry.
    Dlq {
        /// What to do with them.
        #[command(subcommand)]
        action: DlqAction,
    },
}

/// `bazaar worker dlq <action>`.
#[derive(Debug, Clone, Subcommand)]
pub enum DlqAction {
    /// List dead letters, oldest first.
    List {
        /// Most letters to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Run a dead letter's handlers again; a success removes it.
    Replay {
        /// The dead letter's id (from `dlq list`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Replay every dead letter.
        #[arg(long)]
        all: bool,
    },
}

/// Settings every command reads. `global = true` lets them follow the
/// subcommand too (`bazaar serve --data-dir ./tmp`).
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Where the SQLite file, generated keys and asset blobs live.
    #[arg(long, global = true, env = "BAZAAR_DATA_DIR", value_name = "DIR", help_heading = "Settings")]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address (port 0 picks a free port) [default: 127.0.0.1:8080;
    /// for `gateway`, 127.0.0.1:8000].
    #[arg(long, global = true, env = "BAZAAR_HTTP_ADDR", value_name = "ADDR", help_heading = "Settings")]
    pub http_addr: Option<String>,
    /// gRPC listen address (port 0 picks a free port) [default: 127.0.0.1:50051].
    #[arg(long, global = true, env = "BAZAAR_GRPC_ADDR", value_name = "ADDR", help_heading = "Settings")]
    pub grpc_addr: Option<String>,
    /// The store: sqlite://path/to/file.db or postgres://user@host:5432/db
    /// [default: SQLite in the data dir].
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        hide_env_values = true,
        value_name = "URL",
        help_heading = "Settings"
    )]
    pub database_url: Option<String>,
    /// Redis (redis://host:6379): the event bus (Redis Streams) when neither
    /// NATS_URL nor AMQP_URL is set.
    #[arg(
        long,
        global = true,
        env = "REDIS_URL",
        hide_env_values = true,
        value_name = "URL",
        help_heading = "Settings"
    )]
    pub redis_url: Option<String>,
    /// NATS JetStream (nats://host:4222) as the event bus.
    #[arg(
        long,
        global = true,
        env = "NATS_URL",
        hide_env_values = true,
        value_name = "URL",
        help_heading = "Settings"
    )]
    pub nats_url: Option<String>,
    /// The JetStream stream of the event bus [default: BAZAAR_EVENTS]; every
    /// process of one deployment must use the same one.
    #[arg(long, global = true, env = "BAZAAR_NATS_STREAM", value_name = "NAME", help_heading = "Settings")]
    pub nats_stream: Option<String>,
    /// The JetStream subject prefix of the event bus [default: bazaar].
    #[arg(long, global = true, env = "BAZAAR_NATS_SUBJECT_PREFIX", value_name = "PREFIX", help_heading = "Settings")]
    pub nats_subject_prefix: Option<String>,
    /// The Redis key prefix of the Redis Streams event bus [default: bazaar:].
    #[arg(long, global = true, env = "BAZAAR_REDIS_BUS_PREFIX", value_name = "PREFIX", help_heading = "Settings")]
    pub redis_bus_prefix: Option<String>,
    /// RabbitMQ (amqp://user:password@host:5672/%2f) as the event bus; not
    /// together with NATS_URL.
    #[arg(
        long,
        global = true,
        env = "AMQP_URL",
        hide_env_values = true,
        value_name = "URL",
        help_heading = "Settings"
    )]
    pub amqp_url: Option<String>,
    /// The RabbitMQ topic exchange of the event bus [default: bazaar.events];
    /// every process of one deployment must use the same one.
    #[arg(long, global = true, env = "BAZAAR_AMQP_EXCHANGE", value_name = "NAME", help_heading = "Settings")]
    pub amqp_exchange: Option<String>,
    /// The prefix of the event bus's RabbitMQ queues [default: bazaar].
    #[arg(long, global = true, env = "BAZAAR_AMQP_QUEUE_PREFIX", value_name = "PREFIX", help_heading = "Settings")]
    pub amqp_queue_prefix: Option<String>,
    /// Where catalog searches are answered: `ram` (a search index rebuilt
    /// at start, the default), `disk` (the index in `<data dir>/search`) or
    /// `store` (the database's own search).
    #[arg(long, global = true, env = "BAZAAR_SEARCH_INDEX", value_name = "KIND", help_heading = "Settings")]
    pub search_index: Option<String>,
    /// E-mail of an admin to create at start (with the password).
    #[arg(long, global = true, env = "BAZAAR_ADMIN_EMAIL", value_name = "EMAIL", help_heading = "Settings")]
    pub admin_email: Option<String>,
    /// That admin's password (8 to 256 characters). Prefer the variable:
    /// flags are visible to other users in `ps`.
    #[arg(
        long,
        global = true,
        env = "BAZAAR_ADMIN_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD",
        help_heading = "Settings"
    )]
    pub admin_password: Option<String>,
    /// Log filter, e.g. `info` or `info,bazaar_http=debug` [default: info].
    #[arg(long, global = true, env = "BAZAAR_LOG", value_name = "FILTER", help_heading = "Settings")]
    pub log_level: Option<String>,
    /// Log format: auto (pretty on a terminal, JSON otherwise), pretty or json.
    #[arg(long, global = true, env = "BAZAAR_LOG_FORMAT", value_name = "FORMAT", help_heading = "Settings")]
    pub log_format: Option<String>,
    /// Who takes payments: stripe or sandbox (test cards, no real money).
    /// Required unless the process is the embedded setup (SQLite, no NATS or
    /// Redis) on loopback addresses, where the sandbox is the default.
    #[arg(long, global = true, env = "BAZAAR_PAYMENTS", value_name = "PROVIDER", help_heading = "Connectors")]
    pub payments: Option<String>,
    /// Stripe secret API key (sk_… or rk_…), with --payments stripe. Prefer
    /// the variable: flags are visible to other users in `ps`.
    #[arg(
        long,
        global = true,
        env = "STRIPE_SECRET_KEY",
        hide_env_values = true,
        value_name = "KEY",
        help_heading = "Connectors"
    )]
    pub stripe_secret_key: Option<String>,
    /// Stripe webhook signing secret(s) (whsec_…, comma-separated while
    /// rotating) verifying POST /v1/webhooks/stripe.
    #[arg(
        long,
        global = true,
        env = "STRIPE_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        help_heading = "Connectors"
    )]
    pub stripe_webhook_secret: Option<String>,
    /// Stripe's API base URL [default: `https://api.stripe.com`].
    #[arg(long, global = true, env = "STRIPE_API_BASE", value_name = "URL", help_heading = "Connectors")]
    pub stripe_api_base: Option<String>,
    /// SMTP server for e-mail notifications: smtps://user:pass@host:465,
    /// smtp://user:pass@host:587?tls=required or smtp://host:25 [default:
    /// none, e-mails are only logged].
    #[arg(
        long,
        global = true,
        env = "SMTP_URL",
        hide_env_values = true,
        value_name = "URL",
        help_heading = "Connectors"
    )]
    pub smtp_url: Option<String>,
    /// Sender of e-mail notifications, e.g. `Bazaar <noreply@example.com>` (with SMTP_URL).
    #[arg(long, global = true, env = "SMTP_FROM", value_name = "MAILBOX", help_heading = "Connectors")]
    pub smtp_from: Option<String>,
    /// S3 bucket for asset bytes [default: none, the data dir's blobs/].
    #[arg(long, global = true, env = "S3_BUCKET", value_name = "BUCKET", help_heading = "Connectors")]
    pub s3_bucket: Option<String>,
    /// The bucket's region [default: us-east-1].
    #[arg(long, global = true, env = "S3_REGION", value_name = "REGION", help_heading = "Connectors")]
    pub s3_region: Option<String>,
    /// S3 API URL when not AWS (MinIO, R2, Ceph): http(s)://host:port.
    #[arg(long, global = true, env = "S3_ENDPOINT", value_name = "URL", help_heading = "Connectors")]
    pub s3_endpoint: Option<String>,
    /// S3 access key id.
    #[arg(
        long,
        global = true,
        env = "S3_ACCESS_KEY_ID",
        hide_env_values = true,
        value_name = "ID",
        help_heading = "Connectors"
    )]
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key. Prefer the variable.
    #[arg(
        long,
        global = true,
        env = "S3_SECRET_ACCESS_KEY",
        hide_env_values = true,
        value_name = "KEY",
        help_heading = "Connectors"
    )]
    pub s3_secret_access_key: Option<String>,
    /// S3 session token of temporary credentials.
    #[arg(
        long,
        global = true,
        env = "S3_SESSION_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "Connectors"
    )]
    pub s3_session_token: Option<String>,
    /// Key prefix inside the bucket (to share one), e.g. `bazaar/`.
    #[arg(long, global = true, env = "S3_PREFIX", value_name = "PREFIX", help_heading = "Connectors")]
    pub s3_prefix: Option<String>,
    /// How long a request holds an idempotency key before a retry may take
    /// it over, in seconds [default: 60].
    #[arg(long, global = true, env = "BAZAAR_IDEMPOTENCY_LEASE_SECS", value_name = "SECS", help_heading = "Settings")]
    pub idempotency_lease_secs: Option<String>,
    /// Let vendors register `http://` webhook endpoints and loopback,
    /// private or link-local addresses (`true`/`false`) [default: false].
    /// For a local setup only: on a server it lets vendors reach its network.
    #[arg(long, global = true, env = "BAZAAR_WEBHOOKS_ALLOW_LOCAL", value_name = "BOOL", help_heading = "Settings")]
    pub webhooks_allow_local: Option<String>,
    /// Proxies whose forwarding header names the client, as addresses and
    /// blocks (`127.0.0.1,10.0.0.0/8`) [default: none: the peer is the
    /// client]. The right-most address not in the list is the client's.
    #[arg(long, global = true, env = "BAZAAR_TRUSTED_PROXIES", value_name = "LIST", help_heading = "Settings")]
    pub trusted_proxies: Option<String>,
    /// The header the trusted proxies write: `x-forwarded-for` or
    /// `forwarded` (RFC 7239) [default: x-forwarded-for].
    #[arg(long, global = true, env = "BAZAAR_FORWARDED_HEADER", value_name = "HEADER", help_heading = "Settings")]
    pub forwarded_header: Option<String>,
    /// Let the demo logins (public password) be created outside the
    /// embedded setup on loopback, and sign in in every process
    /// (`true`/`false`) [default: false: they sign in only under
    /// `serve --demo` and `seed`].
    #[arg(long, global = true, env = "BAZAAR_DEMO_LOGINS", value_name = "BOOL", help_heading = "Settings")]
    pub demo_logins: Option<String>,
}

impl GlobalArgs {
    /// The raw settings, with `demo` as the command asked.
    pub fn raw_config(&self, demo: bool) -> RawConfig {
        RawConfig {
            schema_only: false,
            data_dir: self.data_dir.clone(),
            http_addr: self.http_addr.clone(),
            grpc_addr: self.grpc_addr.clone(),
            demo,
            database_url: self.database_url.clone(),
            redis_url: self.redis_url.clone(),
            nats_url: self.nats_url.clone(),
            nats_stream: self.nats_stream.clone(),
            nats_subject_prefix: self.nats_subject_prefix.clone(),
            redis_bus_prefix: self.redis_bus_prefix.clone(),
            amqp_url: self.amqp_url.clone(),
            amqp_exchange: self.amqp_exchange.clone(),
            amqp_queue_prefix: self.amqp_queue_prefix.clone(),
            admin_email: self.admin_email.clone(),
            admin_password: self.admin_password.clone(),
            log_level: self.log_level.clone(),
            log_format: self.log_format.clone(),
            search_index: self.search_index.clone(),
            providers: RawProviders {
                payments: self.payments.clone(),
                stripe_secret_key: self.stripe_secret_key.clone(),
                stripe_webhook_secret: self.stripe_webhook_secret.clone(),
                stripe_api_base: self.stripe_api_base.clone(),
                smtp_url: self.smtp_url.clone(),
                smtp_from: self.smtp_from.clone(),
                s3_bucket: self.s3_bucket.clone(),
                s3_region: self.s3_region.clone(),
                s3_endpoint: self.s3_endpoint.clone(),
                s3_access_key_id: self.s3_access_key_id.clone(),
                s3_secret_access_key: self.s3_secret_access_key.clone(),
                s3_session_token: self.s3_session_token.clone(),
                s3_prefix: self.s3_prefix.clone(),
            },
            idempotency_lease_secs: self.idempotency_lease_secs.clone(),
            webhooks_allow_local: self.webhooks_allow_local.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
            forwarded_header: self.forwarded_header.clone(),
            demo_logins: self.demo_logins.clone(),
            traces: trace_settings_from_env(),
        }
    }
}

/// The standard OpenTelemetry variables (no flags: every OpenTelemetry
/// SDK reads these, and operators set them per deployment).
fn trace_settings_from_env() -> RawTraceSettings {
    let var = |value: Result<String, std::env::VarError>| value.ok();
    RawTraceSettings {
        endpoint: var(std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")),
        protocol: var(std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL")),
        service_name: var(std::env::var("OTEL_SERVICE_NAME")),
        sampler: var(std::env::var("OTEL_TRACES_SAMPLER")),
        sampler_arg: var(std::env::var("OTEL_TRACES_SAMPLER_ARG")),
        resource_attributes: var(std::env::var("OTEL_RESOURCE_ATTRIBUTES")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_are_accepted_after_the_subcommand() {
        let cli =
            Cli::try_parse_from(["bazaar", "serve", "--demo", "--data-dir", "/tmp/x", "--http-addr", "127.0.0.1:0"])
                .unwrap();
        assert!(matches!(cli.command, Command::Serve(ServeArgs { demo: true, consumers: DEFAULT_CONSUMERS })));
        let raw = cli.global.raw_config(true);
        assert_eq!(raw.data_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(raw.http_addr.as_deref(), Some("127.0.0.1:0"));
    }

    #[test]
    fn dlq_replay_needs_an_id_or_all_but_not_both() {
        assert!(Cli::try_parse_from(["bazaar", "worker", "dlq", "replay"]).is_err());
        assert!(Cli::try_parse_from(["bazaar", "worker", "dlq", "replay", "abc", "--all"]).is_err());
        let cli = Cli::try_parse_from(["bazaar", "worker", "dlq", "replay", "--all"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Worker(WorkerArgs {
                command: Some(WorkerCommand::Dlq { action: DlqAction::Replay { id: None, all: true } }),
                ..
            })
        ));
    }

    #[test]
    fn seed_defaults_to_the_demo_size() {
        let cli = Cli::try_parse_from(["bazaar", "seed"]).unwrap();
        assert!(matches!(cli.command, Command::Seed(SeedArgs { products: 50 })));
        let cli = Cli::try_parse_from(["bazaar", "seed", "--products", "7"]).unwrap();
        assert!(matches!(cli.command, Command::Seed(SeedArgs { products: 7 })));
        assert!(Cli::try_parse_from(["bazaar", "seed", "--products", "many"]).is_err());
    }
}
