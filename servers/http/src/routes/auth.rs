//! Routes: auth — register, login, refresh (rotating), logout, and `GET /v1/me`.
//!
//! # Refresh tokens on the wire
//! A refresh token is `{session}.{user}.{secret}`: the family (login) id and
//! the user id as simple-hex UUIDs, then 32 random bytes in base64url. The
//! store keeps only the SHA-256 of the whole string, so changing any part
//! makes it an unknown token; the ids are there because
//! [`RefreshTokenStore::rotate`] stores the successor in the presented
//! token's family atomically and so must be told that family up front.
//! Clients treat the token as opaque.
//!
//! Register, login and refresh spend the client IP's auth quota
//! ([`AuthRateLimit`]); logout does not (it only ever removes access).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bazaar_app::auth::{REFRESH_TOKEN_TTL, new_refresh_token};
use bazaar_core::auth::{Email, RefreshToken, RefreshTokenStore, Role, Rotation, TokenHash, User};
use bazaar_core::ids::{SessionId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, Auth};
use crate::middleware::AuthRateLimit;
use crate::state::AppState;

/// The auth routes.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
}

/// The roles anyone may sign up for (admins are created by the operator).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SignupRole {
    /// Buys products.
    Customer,
    /// Sells products.
    Vendor,
}

impl From<SignupRole> for Role {
    fn from(r: SignupRole) -> Self {
        match r {
            SignupRole::Customer => Role::Customer,
            SignupRole::Vendor => Role::Vendor,
        }
    }
}

/// A role on the wire.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RoleDto {
    /// Buys and reviews products.
    Customer,
    /// Sells products.
    Vendor,
    /// Moderates, refunds, revokes.
    Admin,
}

impl From<Role> for RoleDto {
    fn from(r: Role) -> Self {
        match r {
            Role::Customer => Self::Customer,
            Role::Vendor => Self::Vendor,
            Role::Admin => Self::Admin,
        }
    }
}

/// `POST /v1/auth/register`. (No `Debug`: it holds a password.)
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterBody {
    /// E-mail address (normalised to lower case).
    email: String,
    /// 8 to 256 characters.
    password: String,
    /// Display name, 1 to 100 characters.
    name: String,
    /// `customer` (default) or `vendor`.
    #[serde(default)]
    role: Option<SignupRole>,
}

/// `POST /v1/auth/login`. (No `Debug`: it holds a password.)
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginBody {
    /// E-mail address.
    email: String,
    /// Password.
    password: String,
}

/// `POST /v1/auth/refresh` and `POST /v1/auth/logout`. (No `Debug`: it holds a token.)
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshBody {
    /// The refresh token from the last login or refresh.
    refresh_token: String,
}

/// A user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserDto {
    /// Id.
    id: Uuid,
    /// E-mail address.
    email: String,
    /// Display name.
    name: String,
    /// Role.
    role: RoleDto,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        Self { id: u.id.as_uuid(), email: u.email.as_str().to_owned(), name: u.name.clone(), role: u.role.into() }
    }
}

/// A signed-in session. (No `Debug`: it holds tokens.)
#[derive(Serialize, ToSchema)]
pub(crate) struct SessionDto {
    /// Who signed in.
    user: UserDto,
    /// Bearer token for `Authorization: Bearer …` (a JWT).
    access_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until `access_token` expires.
    expires_in: i64,
    /// Exchange at `/v1/auth/refresh` for a new pair; single use.
    refresh_token: String,
}

/// Creates a customer or vendor account and signs it in.
#[utoipa::path(
    post,
    path = "/v1/auth/register",
    tag = "auth",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "Registered and signed in", body = SessionDto),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "The e-mail is taken", body = ErrorBody),
        (status = 422, description = "Invalid field (details name it); `admin` cannot be chosen", body = ErrorBody),
        (status = 429, description = "Too many attempts from this IP (see `Retry-After`)", body = ErrorBody),
    )
)]
async fn register(
    State(state): State<AppState>,
    _: AuthRateLimit,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<SessionDto>), ApiError> {
    let email = Email::parse(&body.email)?;
    let role = body.role.map_or(Role::Customer, Role::from);
    let user = state.market.register(email, &body.password, &body.name, role).await?;
    tracing::info!(user_id = %user.id, role = role.as_str(), "user registered");
    Ok((StatusCode::CREATED, Json(start_session(&state, &user).await?)))
}

/// Signs in with e-mail and password.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in", body = SessionDto),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Wrong e-mail or password", body = ErrorBody),
        (status = 422, description = "Missing or mistyped field", body = ErrorBody),
        (status = 429, description = "Too many attempts from this IP (see `Retry-After`)", body = ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    _: AuthRateLimit,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<SessionDto>, ApiError> {
    // A malformed e-mail cannot belong to anyone: same answer as a wrong password.
    let user = match Email::parse(&body.email) {
        Ok(email) => state.market.authenticate(&email, &body.password).await?,
        Err(_) => None,
    };
    let user = user.ok_or_else(|| ApiError::unauthenticated("wrong e-mail or password"))?;
    Ok(Json(start_session(&state, &user).await?))
}

/// Exchanges a refresh token for a new access token and refresh token.
///
/// The presented token is spent. Presenting a spent token again means it
/// leaked: the whole login is revoked and its latest token stops working too.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "A new pair", body = SessionDto),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token", body = ErrorBody),
        (status = 422, description = "Missing field", body = ErrorBody),
        (status = 429, description = "Too many attempts from this IP (see `Retry-After`)", body = ErrorBody),
    )
)]
async fn refresh(
    State(state): State<AppState>,
    _: AuthRateLimit,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Json<SessionDto>, ApiError> {
    let invalid = || ApiError::unauthenticated("invalid or expired refresh token");
    let (session, user_id) = parse_refresh_token(&body.refresh_token).ok_or_else(invalid)?;
    let market = &state.market;
    let now = market.clock.now();
    let (next_token, next) = new_token(&state, session, user_id);
    let store: &dyn RefreshTokenStore = market.stores.refresh_tokens.as_ref();
    match store.rotate(&TokenHash::of(&body.refresh_token), &next, now).await? {
        Rotation::Rotated(_) => {}
        Rotation::Reused { session, user_id } => {
            tracing::warn!(%session, %user_id, "refresh token reused: session revoked");
            return Err(ApiError::unauthenticated("refresh token was already used; the session is revoked"));
        }
        Rotation::Invalid => return Err(invalid()),
    }
    // The role may have changed since login: read it fresh.
    let user = market.stores.users.get(user_id).await?.ok_or_else(invalid)?;
    Ok(Json(session_dto(&state, &user, next_token)))
}

/// Signs out: revokes the refresh token's whole session.
///
/// Unknown tokens are accepted silently (RFC 7009): the answer must not
/// tell a guesser whether a token exists.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "auth",
    request_body = RefreshBody,
    responses(
        (status = 204, description = "Signed out"),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 422, description = "Missing field", body = ErrorBody),
    )
)]
async fn logout(State(state): State<AppState>, ApiJson(body): ApiJson<RefreshBody>) -> Result<StatusCode, ApiError> {
    let store = &state.market.stores.refresh_tokens;
    if store.revoke_session(&TokenHash::of(&body.refresh_token)).await? {
        tracing::info!("session revoked by logout");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserDto),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 404, description = "The account no longer exists", body = ErrorBody),
    )
)]
async fn me(State(state): State<AppState>, Auth(actor): Auth) -> Result<Json<UserDto>, ApiError> {
    let user = state.market.stores.users.get(actor.user_id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(Json(UserDto::from(&user)))
}

/// Starts a new session (token family) for `user`.
async fn start_session(state: &AppState, user: &User) -> Result<SessionDto, ApiError> {
    let (token, record) = new_token(state, SessionId::new(), user.id);
    state.market.stores.refresh_tokens.insert(&record).await?;
    Ok(session_dto(state, user, token))
}

/// A fresh refresh token of `session` and its stored record.
fn new_token(state: &AppState, session: SessionId, user_id: UserId) -> (String, RefreshToken) {
    let market = &state.market;
    let now = market.clock.now();
    let secret = new_refresh_token(market.entropy.as_ref());
    let token = format!("{}.{}.{secret}", session.as_uuid().simple(), user_id.as_uuid().simple());
    let ttl = chrono::Duration::from_std(REFRESH_TOKEN_TTL).expect("the refresh TTL fits a chrono duration");
    let record = RefreshToken { hash: TokenHash::of(&token), session, user_id, issued_at: now, expires_at: now + ttl };
    (token, record)
}

/// The session and user named by a refresh token, if it has our shape.
fn parse_refresh_token(token: &str) -> Option<(SessionId, UserId)> {
    let mut parts = token.splitn(3, '.');
    let session = Uuid::try_parse(parts.next()?).ok()?;
    let user = Uuid::try_parse(parts.next()?).ok()?;
    parts.next().filter(|secret| !secret.is_empty())?;
    Some((SessionId::from_uuid(session), UserId::from_uuid(user)))
}

fn session_dto(state: &AppState, user: &User, refresh_token: String) -> SessionDto {
    let now = state.market.clock.now();
    let access = state.market.tokens.issue(user.id, user.role, now);
    SessionDto {
        user: UserDto::from(user),
        access_token: access.token,
        token_type: "Bearer",
        expires_in: (access.expires_at - now).num_seconds(),
        refresh_token,
    }
}

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
