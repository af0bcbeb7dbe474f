//! Every core service wired over a [`Stores`] bundle and the process's
//! [`Keys`]: what the HTTP, gRPC and worker servers share.

use std::fmt;
use std::sync::Arc;

use bazaar_core::Result;
use bazaar_core::assets::{DownloadService, UrlSigner};
use bazaar_core::auth::{Email, RefreshToken, Role, Rotation, TokenHash, User, check_registration};
use bazaar_core::catalog::CatalogService;
use bazaar_core::clock::Clock;
use bazaar_core::entropy::{Entropy, OsEntropy};
use bazaar_core::events::{Dispatcher, DispatcherConfig, Event, EventHandler, Relay, UserRegistered};
use bazaar_core::ids::{SessionId, UserId};
use bazaar_core::licensing::{LicensePublicKey, LicenseService, LicenseSigner};
use bazaar_core::notifications::{LogSender, NotificationSender, NotificationService};
use bazaar_core::orders::OrderService;
use bazaar_core::payments::{PaymentService, SandboxProvider};
use bazaar_core::services::{ServiceKeys, ServiceOptions, Services};
use uuid::Uuid;

use crate::auth::{AccessTokens, Passwords, REFRESH_TOKEN_TTL, new_refresh_token};
use crate::keys::Keys;
use crate::stores::Stores;

/// Knobs of [`Marketplace::new`] beyond the stores and keys.
#[derive(Clone)]
pub struct MarketplaceOptions {
    /// Time for every service.
    pub clock: Arc<dyn Clock>,
    /// Randomness (password salts, refresh tokens, ids of secrets).
    pub entropy: Arc<dyn Entropy>,
    /// How notifications go out ([`LogSender`] by default).
    pub sender: Arc<dyn NotificationSender>,
    /// Retry and dead-letter policy of the dispatcher.
    pub dispatcher: DispatcherConfig,
    /// Handlers to run besides the marketplace's own.
    pub extra_handlers: Vec<Arc<dyn EventHandler>>,
    /// Password hashing parameters.
    pub passwords: Passwords,
}

impl fmt::Debug for MarketplaceOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MarketplaceOptions").field("dispatcher", &self.dispatcher).finish_non_exhaustive()
    }
}

impl MarketplaceOptions {
    /// Defaults: OS entropy, the log sender, [`DispatcherConfig::default`],
    /// production argon2 parameters.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            entropy: Arc::new(OsEntropy),
            sender: Arc::new(LogSender),
            dispatcher: DispatcherConfig::default(),
            extra_handlers: Vec::new(),
            passwords: Passwords::default(),
        }
    }
}

/// The marketplace: services, event plumbing and credentials.
pub struct Marketplace {
    /// The ports.
    pub stores: Stores,
    /// The clock everything reads.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub entropy: Arc<dyn Entropy>,
    /// Catalog and moderation.
    pub catalog: Arc<CatalogService>,
    /// The sandbox provider payments go through.
    pub provider: Arc<SandboxProvider>,
    /// Payments.
    pub payments: Arc<PaymentService>,
    /// Orders.
    pub orders: Arc<OrderService>,
    /// Licensing.
    pub licenses: Arc<LicenseService>,
    /// Asset uploads and licensed downloads.
    pub downloads: Arc<DownloadService>,
    /// Notifications.
    pub notifications: Arc<NotificationService>,
    /// Outbox → bus.
    pub relay: Relay,
    /// Bus → handlers.
    pub dispatcher: Dispatcher,
    /// Access tokens (HTTP and gRPC).
    pub tokens: AccessTokens,
    /// Password hashing.
    pub passwords: Passwords,
    /// The public half of the license signing key (offline verification).
    pub license_public_key: LicensePublicKey,
}

impl fmt::Debug for Marketplace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Marketplace").field("stores", &self.stores).finish_non_exhaustive()
    }
}

/// What presenting a refresh token to [`Marketplace::renew_session`] led to.
#[derive(Debug)]
pub enum Renewal {
    /// The token was spent for `refresh_token`, the session's next one.
    Renewed {
        /// The session's user, read afresh.
        user: User,
        /// The next refresh token.
        refresh_token: String,
    },
    /// The token had been spent before: the session is now revoked.
    Reused,
    /// Unknown, expired, revoked, malformed, or its user is gone.
    Invalid,
}

/// The session and user named by a refresh token, if it has our shape.
fn parse_refresh_token(token: &str) -> Option<(SessionId, UserId)> {
    let mut parts = token.splitn(3, '.');
    let session = Uuid::try_parse(parts.next()?).ok()?;
    let user = Uuid::try_parse(parts.next()?).ok()?;
    parts.next().filter(|secret| !secret.is_empty())?;
    Some((SessionId::from_uuid(session), UserId::from_uuid(user)))
}

impl Marketplace {
    /// The consumer group the in-process dispatcher reads.
    pub const CONSUMER: &'static str = "worker";
    /// Outbox entries relayed per batch by [`Marketplace::pump`].
    pub const RELAY_BATCH: usize = 100;

    /// Wires every service over `stores`, signing with `keys`.
    pub fn new(stores: Stores, keys: &Keys, options: MarketplaceOptions) -> Self {
        let MarketplaceOptions { clock, entropy, sender, dispatcher, extra_handlers, passwords } = options;
        let service_keys = ServiceKeys {
            license_signer: LicenseSigner::from_seed(keys.license_signing.expose()),
            url_signer: UrlSigner::new(keys.url_signing.expose()).expect("32 bytes is a valid URL signing key"),
            webhook_secret: keys.webhook.expose().to_vec(),
        };
        let services = Services::wire(
            stores.ports(),
            service_keys,
            ServiceOptions { clock: clock.clone(), sender, dispatcher, extra_handlers },
        );
        let Services {
            catalog,
            provider,
            payments,
            orders,
            licenses,
            license_public_key,
            downloads,
            notifications,
            fulfillment: _,
            relay,
            dispatcher,
        } = services;
        Self {
            tokens: AccessTokens::new(&keys.jwt),
            passwords,
            license_public_key,
            stores,
            clock,
            entropy,
            catalog,
            provider,
            payments,
            orders,
            licenses,
            downloads,
            notifications,
            relay,
            dispatcher,
        }
    }

    /// Relays the outbox and dispatches the bus until neither has anything
    /// due; returns how many deliveries were handled. For tests and for
    /// `bazaar serve`'s in-process worker.
    ///
    /// # Errors
    /// The relay's or the dispatcher's own errors (handler failures are
    /// retried or dead-lettered, not returned).
    pub async fn pump(&self) -> Result<usize> {
        bazaar_core::events::pump(&self.relay, &self.dispatcher, Self::CONSUMER, Self::RELAY_BATCH).await
    }

    /// Registers a user with a hashed password, committing `user.registered`.
    ///
    /// # Errors
    /// [`bazaar_core::Error::Validation`] on `name` and `password` as
    /// [`check_registration`] reports them;
    /// [`bazaar_core::Error::Conflict`] when the e-mail is taken.
    pub async fn register(&self, email: Email, password: &str, name: &str, role: Role) -> Result<User> {
        let name = check_registration(name, password)?;
        let now = self.clock.now();
        let user = User {
            id: UserId::new(),
            email,
            name: name.to_owned(),
            role,
            password_hash: self.passwords.hash(password, self.entropy.as_ref())?,
            created_at: now,
        };
        let event = Event::new(&UserRegistered { user_id: user.id, role: role.as_str().into() }, now);
        self.stores.users.insert(&user, &[event]).await?;
        Ok(user)
    }

    /// Starts a new session (refresh-token family) for `user_id`; returns
    /// its first refresh token, `<session>.<user>.<secret>`. Only the token's
    /// SHA-256 is stored.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn start_session(&self, user_id: UserId) -> Result<String> {
        let (token, record) = self.refresh_token(SessionId::new(), user_id);
        self.stores.refresh_tokens.insert(&record).await?;
        Ok(token)
    }

    /// Spends `refresh_token` for the next token of its session. Presenting
    /// a spent token again means it leaked: the whole session is revoked,
    /// its latest token included. The user is read afresh, as the role may
    /// have changed since login.
    ///
    /// # Errors
    /// The stores' errors.
    pub async fn renew_session(&self, refresh_token: &str) -> Result<Renewal> {
        let Some((session, user_id)) = parse_refresh_token(refresh_token) else {
            return Ok(Renewal::Invalid);
        };
        let (next_token, next) = self.refresh_token(session, user_id);
        match self.stores.refresh_tokens.rotate(&TokenHash::of(refresh_token), &next, self.clock.now()).await? {
            Rotation::Rotated(_) => {}
            Rotation::Reused { session, user_id } => {
                tracing::warn!(%session, %user_id, "refresh token reused: session revoked");
                return Ok(Renewal::Reused);
            }
            Rotation::Invalid => return Ok(Renewal::Invalid),
        }
        Ok(match self.stores.users.get(user_id).await? {
            Some(user) => Renewal::Renewed { user, refresh_token: next_token },
            None => Renewal::Invalid,
        })
    }

    /// Revokes the session `refresh_token` belongs to; whether there was one.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn end_session(&self, refresh_token: &str) -> Result<bool> {
        self.stores.refresh_tokens.revoke_session(&TokenHash::of(refresh_token)).await
    }

    /// A fresh refresh token of `session` and its stored record.
    fn refresh_token(&self, session: SessionId, user_id: UserId) -> (String, RefreshToken) {
        let now = self.clock.now();
        let secret = new_refresh_token(self.entropy.as_ref());
        let token = format!("{}.{}.{secret}", session.as_uuid().simple(), user_id.as_uuid().simple());
        let ttl = chrono::Duration::from_std(REFRESH_TOKEN_TTL).expect("the refresh TTL fits a chrono duration");
        let record =
            RefreshToken { hash: TokenHash::of(&token), session, user_id, issued_at: now, expires_at: now + ttl };
        (token, record)
    }

    /// The user with these credentials, or `None` (unknown e-mail and wrong
    /// password are indistinguishable to the caller).
    ///
    /// # Errors
    /// The store's errors.
    pub async fn authenticate(&self, email: &Email, password: &str) -> Result<Option<User>> {
        match self.stores.users.find_by_email(email).await? {
            Some(user) if self.passwords.verify(password, &user.password_hash) => Ok(Some(user)),
            Some(_) => Ok(None),
            None => {
                // Hash anyway so the response time does not reveal which e-mails exist.
                let _ = self.passwords.verify(password, DUMMY_HASH);
                Ok(None)
            }
        }
    }

    /// Makes sure an admin with `email` exists (creating it with `password`);
    /// an existing account is left as it is. Returns the admin.
    ///
    /// # Errors
    /// [`bazaar_core::Error::Conflict`] when the e-mail belongs to a
    /// non-admin; the store's errors.
    pub async fn ensure_admin(&self, email: &Email, password: &str) -> Result<User> {
        if let Some(user) = self.stores.users.find_by_email(email).await? {
            return if user.role == Role::Admin {
                Ok(user)
            } else {
                Err(bazaar_core::Error::Conflict(format!("{} exists and is not an admin", email.as_str())))
            };
        }
        match self.register(email.clone(), password, "Administrator", Role::Admin).await {
            // Another replica created it first: take theirs if it is an admin.
            Err(e) if e.code() == "conflict" => match self.stores.users.find_by_email(email).await? {
                Some(user) if user.role == Role::Admin => Ok(user),
                _ => Err(e),
            },
            other => other,
        }
    }
}

// An argon2id hash of a random string, verified against when the e-mail is
// unknown so that login takes as long either way.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2WTmcW1BoS8Gr1Rm+VfnZ4Au5WZRIxS6jw8kQbOlbzs";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_parse_only_in_our_shape() {
        let (s, u) = (SessionId::new(), UserId::new());
        let token = format!("{}.{}.c2VjcmV0", s.as_uuid().simple(), u.as_uuid().simple());
        assert_eq!(parse_refresh_token(&token), Some((s, u)));
        assert_eq!(parse_refresh_token(&format!("{}.{}.", s.as_uuid().simple(), u.as_uuid().simple())), None);
        assert_eq!(parse_refresh_token("not-a-token"), None);
        assert_eq!(parse_refresh_token(&format!("{}.x.secret", s.as_uuid().simple())), None);
    }
}
