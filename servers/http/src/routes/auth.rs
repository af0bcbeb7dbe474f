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
use bazaar_core::auth::{Role, Session, Signup, User};
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
        (status = 429, description = "Too many attempts from this client (see `Retry-After`)", body = ErrorBody),
    )
)]
async fn register(
    State(state): State<AppState>,
    _: AuthRateLimit,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<(StatusCode, Json<SessionDto>), ApiError> {
    let RegisterBody { email, password, name, role } = body;
    let signup = Signup { email, password, name, role: role.map_or(Role::Customer, Role::from) };
    Ok((StatusCode::CREATED, Json(session_dto(&state, state.market.auth.register(signup).await?))))
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
        (status = 429, description = "Too many attempts from this client, or on this account from anywhere (see `Retry-After`)", body = ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    _: AuthRateLimit,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<SessionDto>, ApiError> {
    Ok(Json(session_dto(&state, state.market.auth.login(&body.email, &body.password).await?)))
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
        (status = 429, description = "Too many attempts from this client (see `Retry-After`)", body = ErrorBody),
    )
)]
async fn refresh(
    State(state): State<AppState>,
    _: AuthRateLimit,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Json<SessionDto>, ApiError> {
    Ok(Json(session_dto(&state, state.market.auth.refresh(&body.refresh_token).await?)))
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
    state.market.auth.logout(&body.refresh_token).await?;
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
    Ok(Json(UserDto::from(&state.market.auth.me(&actor).await?)))
}

/// Starts a new session (token family) for `user`.
fn session_dto(state: &AppState, session: Session) -> SessionDto {
    let Session { user, access, refresh_token } = session;
    SessionDto {
        user: UserDto::from(&user),
        access_token: access.token,
        token_type: "Bearer",
        expires_in: i64::try_from(state.market.auth.config().access_ttl.as_secs()).unwrap_or(i64::MAX),
        refresh_token,
    }
}
