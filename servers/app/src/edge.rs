//! The edge: what `bazaar gateway` is built from, and how `bazaar http` /
//! `bazaar grpc` replicas announce themselves to it.
//!
//! - **Gateway**: its TOML file or the short form ([`GatewaySettings`]);
//!   bearer tokens verified with the API's own JWT secret
//!   ([`EdgeVerifier`]); pools that name a `service` read from the service
//!   directory (NATS JetStream KV when `NATS_URL` is set, Redis when only
//!   `REDIS_URL` is); rate limits shared through Redis GCRA when
//!   `REDIS_URL` is set, else kept in process.
//! - **Replicas**: `--advertise-addr` registers the replica in that same
//!   directory with a TTL, heartbeats, and deregisters on SIGTERM
//!   ([`Advertisement`]), so a gateway starts and stops sending it traffic
//!   without a config change.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bazaar_auth::JwtTokens;
use bazaar_core::resilience::rate_limit::RateLimitStore;
use bazaar_core::resilience::registry::{Advertiser, Registration, ServiceDirectory};
use bazaar_gateway::config::{AuthMode, parse_base_url};
use bazaar_gateway::{Gateway, GatewayConfig, TokenRejection, TokenVerifier, VerifiedToken};

use crate::StartError;
use crate::config_error::ConfigError;
use crate::keys::{KEY_VARS, Keys};

/// The Redis key prefix of the gateway's shared rate limits.
pub const RATE_LIMIT_PREFIX: &str = "bazaar:gateway:rl:";

/// The Redis key prefix of the service directory (when Redis holds it).
pub const DIRECTORY_PREFIX: &str = "bazaar:";

/// How long a registration lives without a heartbeat (replicas heartbeat
/// every third of it): a replica killed without deregistering stops getting
/// traffic from the directory this long after its last heartbeat, and
/// sooner through the gateway's health checks and breakers.
pub const ADVERTISE_TTL: Duration = Duration::from_secs(10);

/// The directory's service name for replicas of the REST API.
pub const HTTP_SERVICE: &str = "http";

/// The directory's service name for replicas of the gRPC API.
pub const GRPC_SERVICE: &str = "grpc";

/// Verifies the API's access tokens at the edge: HS256 with the secret every
/// replica signs with, expiry judged against the system clock, so the
/// gateway refuses exactly what the API would.
#[derive(Debug)]
pub struct EdgeVerifier {
    tokens: JwtTokens,
}

impl EdgeVerifier {
    /// A verifier for tokens signed with `secret`.
    pub fn new(secret: &crate::keys::Secret) -> Self {
        Self { tokens: JwtTokens::new(*secret.expose()) }
    }
}

impl TokenVerifier for EdgeVerifier {
    fn verify(&self, token: &str) -> Result<VerifiedToken, TokenRejection> {
        let claims = self.tokens.claims(token).map_err(|_| TokenRejection::Invalid)?;
        if claims.expired_at(chrono::Utc::now().timestamp()) {
            return Err(TokenRejection::Expired);
        }
        // The gateway's cache re-checks this on every hit.
        let expires_at = UNIX_EPOCH + Duration::from_secs(u64::try_from(claims.exp).unwrap_or(0));
        Ok(VerifiedToken { user_id: claims.sub, role: claims.role, expires_at })
    }
}

/// What `bazaar gateway` is given.
#[derive(Debug, Clone, Default)]
pub struct GatewaySettings {
    /// `--config`: the TOML file.
    pub config_file: Option<PathBuf>,
    /// `--upstream name=url[,url…]`: the short form.
    pub upstreams: Vec<String>,
    /// `--http-addr`: overrides the file's `server.http_addr`.
    pub http_addr: Option<String>,
    /// Where `keys.json` is looked for when `BAZAAR_JWT_SECRET` is unset.
    pub data_dir: PathBuf,
    /// `NATS_URL`: the service directory.
    pub nats_url: Option<String>,
    /// `REDIS_URL`: the service directory without NATS, and shared rate limits.
    pub redis_url: Option<String>,
}

impl GatewaySettings {
    /// The gateway configuration these settings name.
    ///
    /// # Errors
    /// [`StartError::Gateway`] for a bad file or short form,
    /// [`StartError::Config`] for a bad `--http-addr` or a missing choice.
    pub fn gateway_config(&self) -> Result<GatewayConfig, StartError> {
        let http_addr = self
            .http_addr
            .as_deref()
            .map(|text| {
                text.parse::<SocketAddr>().map_err(|_| {
                    ConfigError::new("--http-addr", format!("{text:?} is not an address such as 127.0.0.1:8000"))
                })
            })
            .transpose()?;
        let config = match (&self.config_file, self.upstreams.as_slice()) {
            (Some(_), [_, ..]) => {
                return Err(ConfigError::new("--upstream", "give --config or --upstream, not both").into());
            }
            (None, []) => {
                return Err(ConfigError::new(
                    "--config",
                    "the gateway needs a config file (--config gateway.toml) or upstreams (--upstream api=http://host:port[,…])",
                )
                .into());
            }
            (None, upstreams) => GatewayConfig::short_form(http_addr, upstreams)?,
            (Some(file), []) => {
                let mut config = GatewayConfig::from_file(file)?;
                if let Some(addr) = http_addr {
                    config.server.http_addr = addr;
                }
                config
            }
        };
        Ok(config)
    }

    /// The gateway, with its verifier, directory and rate-limit store.
    ///
    /// # Errors
    /// As [`gateway_config`](Self::gateway_config); [`StartError::Config`]
    /// naming `BAZAAR_JWT_SECRET` when a route checks tokens and no secret
    /// is found; [`StartError::Keys`] for a malformed one;
    /// [`StartError::Backend`] when NATS or Redis cannot be reached.
    pub async fn build(&self) -> Result<Gateway, StartError> {
        self.build_with(|name| std::env::var(name).ok()).await
    }

    /// [`build`](Self::build) with the environment read through `var`.
    ///
    /// # Errors
    /// As [`build`](Self::build).
    pub async fn build_with(&self, var: impl Fn(&str) -> Option<String>) -> Result<Gateway, StartError> {
        let config = self.gateway_config()?;
        let checks_tokens = config.routes.iter().any(|route| route.auth != AuthMode::None);
        let secret = Keys::jwt_secret_with(&self.data_dir, var)?;
        let discovers = config.discovered_services().next().is_some();
        let mut builder = Gateway::builder(config);
        match secret {
            Some(secret) => builder = builder.verifier(Arc::new(EdgeVerifier::new(&secret))),
            None if checks_tokens => {
                return Err(ConfigError::new(
                    KEY_VARS[0],
                    format!(
                        "the gateway verifies bearer tokens with the API's JWT secret: set it as on the API \
                         replicas, or point --data-dir at a data dir holding their keys.json ({} has none)",
                        self.data_dir.display()
                    ),
                )
                .into());
            }
            None => {}
        }
        if discovers
            && let Some(directory) = open_directory(self.nats_url.as_deref(), self.redis_url.as_deref()).await?
        {
            builder = builder.directory(directory);
        }
        if let Some(url) = &self.redis_url {
            let conn = bazaar_redis::connect(url).await?;
            let store: Arc<dyn RateLimitStore> =
                Arc::new(bazaar_redis::RedisRateLimitStore::new(conn, RATE_LIMIT_PREFIX));
            builder = builder.rate_limit_store(store);
        }
        Ok(builder.build()?)
    }
}

/// Which service directory the settings name: NATS JetStream KV when
/// `nats_url` is set, else Redis when `redis_url` is, else none.
pub fn directory_kind(nats_url: Option<&str>, redis_url: Option<&str>) -> Option<&'static str> {
    match (nats_url, redis_url) {
        (Some(_), _) => Some("nats"),
        (None, Some(_)) => Some("redis"),
        (None, None) => None,
    }
}

/// The shared service directory [`directory_kind`] names, connected.
///
/// # Errors
/// [`StartError::Backend`] when it cannot be reached.
pub async fn open_directory(
    nats_url: Option<&str>,
    redis_url: Option<&str>,
) -> Result<Option<Arc<dyn ServiceDirectory>>, StartError> {
    let directory: Arc<dyn ServiceDirectory> = match (nats_url, redis_url) {
        (Some(url), _) => {
            Arc::new(bazaar_nats::NatsDirectory::connect(url, bazaar_nats::DirectoryOptions::default()).await?)
        }
        (None, Some(url)) => {
            Arc::new(bazaar_redis::RedisDirectory::connect(url, DIRECTORY_PREFIX, ADVERTISE_TTL).await?)
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(directory))
}

/// A replica's entry in the service directory, kept alive while it serves.
#[derive(Debug)]
pub struct Advertisement {
    directory: Arc<dyn ServiceDirectory>,
    registration: Registration,
}

impl Advertisement {
    /// The registration of a replica of `service` reachable at `url`
    /// (`--advertise-addr`, `http://host:port`; port 0 stands for the port
    /// the replica actually listens on, `bound`), in `directory`. The id is
    /// the advertised address, so a replica restarted on the same address
    /// replaces its stale entry instead of adding one.
    ///
    /// # Errors
    /// [`ConfigError`] on `--advertise-addr` for anything but a base URL
    /// with a port.
    pub fn new(
        directory: Arc<dyn ServiceDirectory>,
        service: &str,
        url: &str,
        bound: SocketAddr,
    ) -> Result<Self, ConfigError> {
        let base = parse_base_url(url).map_err(|reason| ConfigError::new("--advertise-addr", reason))?;
        let authority = match base.authority.rsplit_once(':') {
            Some((host, "0")) => format!("{host}:{}", bound.port()),
            _ => base.authority,
        };
        let registration =
            Registration::new(service, authority.clone(), format!("http://{authority}")).ttl(ADVERTISE_TTL);
        Ok(Self { directory, registration })
    }

    /// [`new`](Self::new) in the directory the process's settings name
    /// (see [`open_directory`]).
    ///
    /// # Errors
    /// [`StartError::Config`] on `--advertise-addr` for a bad URL or when
    /// neither `NATS_URL` nor `REDIS_URL` names a directory;
    /// [`StartError::Backend`] when the directory cannot be reached.
    pub async fn connect(
        config: &crate::Config,
        service: &str,
        url: &str,
        bound: SocketAddr,
    ) -> Result<Self, StartError> {
        // The URL first: a typo fails before any connection is tried.
        parse_base_url(url).map_err(|reason| ConfigError::new("--advertise-addr", reason))?;
        let Some(directory) = open_directory(config.nats_url.as_deref(), config.redis_url.as_deref()).await? else {
            return Err(ConfigError::new(
                "--advertise-addr",
                "a replica registers in a shared service directory: set NATS_URL (JetStream KV) or REDIS_URL",
            )
            .into());
        };
        Ok(Self::new(directory, service, url, bound)?)
    }

    /// What is registered.
    pub fn registration(&self) -> &Registration {
        &self.registration
    }

    /// Registers now, so a replica that cannot announce itself fails its
    /// start; then keeps the entry alive until `shutdown`, and removes it
    /// (see [`Advertiser::run`]).
    ///
    /// # Errors
    /// The first registration's error.
    pub async fn start(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<tokio::task::JoinHandle<bazaar_core::Result<()>>, StartError> {
        self.directory.register(&self.registration).await?;
        let advertiser = Advertiser::new(self.directory, self.registration);
        Ok(tokio::spawn(advertiser.run(shutdown)))
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use bazaar_core::auth::{Actor, Role, TokenIssuer as _};
    use bazaar_core::ids::UserId;
    use bazaar_core::resilience::registry::InMemoryDirectory;

    use super::*;
    use crate::keys::Secret;

    fn issue(secret: [u8; 32], ttl_secs: i64) -> (UserId, String) {
        let user = UserId::new();
        let now = chrono::Utc::now();
        let token = JwtTokens::new(secret)
            .issue(Actor::new(user, Role::Vendor), now, now + chrono::Duration::seconds(ttl_secs))
            .unwrap();
        (user, token.token)
    }

    #[test]
    fn the_edge_refuses_what_the_api_would_and_says_why() {
        let verifier = EdgeVerifier::new(&Secret::new([9; 32]));
        let (user, token) = issue([9; 32], 60);
        let verified = verifier.verify(&token).unwrap();
        assert_eq!((verified.user_id, verified.role), (user, Role::Vendor));
        assert!(verified.expires_at > SystemTime::now());
        let (_, expired) = issue([9; 32], -5);
        assert_eq!(verifier.verify(&expired).unwrap_err(), TokenRejection::Expired);
        let (_, forged) = issue([8; 32], 60);
        assert_eq!(verifier.verify(&forged).unwrap_err(), TokenRejection::Invalid);
        assert_eq!(verifier.verify("not-a-token").unwrap_err(), TokenRejection::Invalid);
    }

    fn settings(upstreams: &[&str]) -> GatewaySettings {
        GatewaySettings { upstreams: upstreams.iter().map(|s| (*s).to_owned()).collect(), ..Default::default() }
    }

    fn config_error(err: StartError) -> String {
        match err {
            StartError::Config(e) => e.to_string(),
            StartError::Gateway(e) => e.to_string(),
            other => panic!("not a settings error: {other}"),
        }
    }

    #[test]
    fn the_gateway_needs_exactly_one_way_to_be_configured() {
        let err = config_error(settings(&[]).gateway_config().unwrap_err());
        assert!(err.starts_with("invalid --config: the gateway needs"), "{err}");
        let both =
            GatewaySettings { config_file: Some("gateway.toml".into()), ..settings(&["api=http://127.0.0.1:1"]) };
        assert_eq!(
            config_error(both.gateway_config().unwrap_err()),
            "invalid --upstream: give --config or --upstream, not both"
        );
        let bad_addr = GatewaySettings { http_addr: Some("localhost".into()), ..settings(&["api=http://127.0.0.1:1"]) };
        assert!(config_error(bad_addr.gateway_config().unwrap_err()).starts_with("invalid --http-addr"));
        let bad_upstream = config_error(settings(&["api=ftp://x:1"]).gateway_config().unwrap_err());
        assert!(bad_upstream.contains("upstream"), "{bad_upstream}");
    }

    #[test]
    fn the_flag_address_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(
            &file,
            "[server]\nhttp_addr = \"127.0.0.1:9100\"\n[pools.api]\ninstances = [\"http://127.0.0.1:1\"]\n[[routes]]\nprefix = \"/\"\npool = \"api\"\n",
        )
        .unwrap();
        let from_file = GatewaySettings { config_file: Some(file.clone()), ..Default::default() };
        assert_eq!(from_file.gateway_config().unwrap().server.http_addr.port(), 9100);
        let overridden = GatewaySettings { http_addr: Some("127.0.0.1:9200".into()), ..from_file };
        assert_eq!(overridden.gateway_config().unwrap().server.http_addr.port(), 9200);
    }

    #[tokio::test]
    async fn a_gateway_that_checks_tokens_will_not_start_without_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let settings = GatewaySettings { data_dir: dir.path().to_owned(), ..settings(&["api=http://127.0.0.1:1"]) };
        let err = config_error(settings.build_with(|_| None).await.unwrap_err());
        assert!(err.starts_with("invalid BAZAAR_JWT_SECRET: the gateway verifies bearer tokens"), "{err}");
        assert!(!dir.path().join(crate::keys::KEYS_FILE).exists(), "no secret of its own is made up");
        let hex = "aa".repeat(32);
        let gateway = settings.build_with(|name| (name == KEY_VARS[0]).then(|| hex.clone())).await.unwrap();
        assert_eq!(gateway.config().pools["api"].instances.len(), 1);
    }

    #[tokio::test]
    async fn a_replica_advertises_its_real_port_until_it_stops() {
        let directory = Arc::new(InMemoryDirectory::new(Duration::from_secs(30)));
        let bound: SocketAddr = "127.0.0.1:43210".parse().unwrap();
        let ad = Advertisement::new(directory.clone(), HTTP_SERVICE, "http://127.0.0.1:0", bound).unwrap();
        assert_eq!(ad.registration().address, "http://127.0.0.1:43210");
        assert_eq!(ad.registration().ttl, Some(ADVERTISE_TTL));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = ad
            .start(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        let live = directory.instances(HTTP_SERVICE).await.unwrap();
        assert_eq!(live.len(), 1, "registered before start returns");
        assert_eq!(live[0].address, "http://127.0.0.1:43210");
        stop.send(()).unwrap();
        running.await.unwrap().unwrap();
        assert!(directory.instances(HTTP_SERVICE).await.unwrap().is_empty(), "deregistered on shutdown");

        let kept = Advertisement::new(directory.clone(), GRPC_SERVICE, "http://10.0.0.7:50051", bound).unwrap();
        assert_eq!(kept.registration().address, "http://10.0.0.7:50051");
        let err = Advertisement::new(directory, HTTP_SERVICE, "https://10.0.0.7:443", bound).unwrap_err();
        assert!(err.to_string().starts_with("invalid --advertise-addr"), "{err}");
    }
}
