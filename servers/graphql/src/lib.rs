//! The Bazaar GraphQL API over async-graphql: [`router`] serves the
//! marketplace's queries, mutations and live notifications as one schema,
//! next to (not instead of) the REST API, with the same bearer JWT, the same
//! authorization and the same error codes.
//!
//! # Endpoints
//! - `POST /graphql`: a GraphQL request (`{"query", "variables"?,
//!   "operationName"?}`) as JSON; the answer is `{"data", "errors"?}`.
//! - `GET /graphql`: GraphiQL, served entirely from this crate (its scripts
//!   and styles are vendored under `/graphql/assets/`), so it works offline.
//! - `GET /graphql/ws`: subscriptions over WebSocket, `graphql-transport-ws`
//!   (and the legacy `graphql-ws`); authenticate in the `connection_init`
//!   payload: `{"authorization": "Bearer <token>"}`.
//!
//! # Auth and errors
//! `Authorization: Bearer <access token>` as for REST (read by
//! [`bazaar_core::auth::bearer`], verified by the marketplace's token
//! verifier). No header is an anonymous caller; a header that does not
//! verify refuses the whole request (HTTP 401, one error with code
//! `unauthenticated`), as REST does. Fields that need a caller answer
//! `unauthenticated`; authorization is the core's (someone else's order is
//! `forbidden`, a hidden product `not_found`). Every error carries REST's
//! code in `extensions.code` ([`error::graphql_error`]).
//!
//! # Limits
//! [`GraphqlSettings`]: query depth (default 16) and complexity (default
//! 4000, where a list costs its page size times its items), body size, and
//! the auth mutations' per-IP quota.
//!
//! # Example
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//!
//! use axum::body::Body;
//! use axum::http::Request;
//! use bazaar_auth::{Argon2Passwords, JwtTokens};
//! use bazaar_core::clock::SystemClock;
//! use bazaar_core::marketplace::Marketplace;
//! use bazaar_memory::MemoryBackend;
//! use http_body_util::BodyExt;
//! use tower::ServiceExt;
//!
//! let market = Marketplace::builder(MemoryBackend::new(Arc::new(SystemClock)).ports())
//!     .passwords(Arc::new(Argon2Passwords::fast_for_tests()))
//!     .tokens(Arc::new(JwtTokens::new([7; 32])))
//!     .build()?;
//! let app = bazaar_graphql::router(Arc::new(market));
//!
//! let query = r#"{"query":"{ search(query: \"agent\", first: 5) { totalCount items { title } facets { kinds { value count } } } }"}"#;
//! let request = Request::post("/graphql").header("content-type", "application/json").body(Body::from(query))?;
//! let response = app.oneshot(request).await?;
//! let body: serde_json::Value = serde_json::from_slice(&response.into_body().collect().await?.to_bytes())?;
//! assert_eq!(body["data"]["search"]["totalCount"], 0);
//!
//! // Fields that need a caller say so with REST's code.
//! let app = bazaar_graphql::router(Arc::new(Marketplace::builder(MemoryBackend::new(Arc::new(SystemClock)).ports())
//!     .passwords(Arc::new(Argon2Passwords::fast_for_tests()))
//!     .tokens(Arc::new(JwtTokens::new([7; 32])))
//!     .build()?));
//! let request = Request::post("/graphql")
//!     .header("content-type", "application/json")
//!     .body(Body::from(r#"{"query":"{ myOrders { totalCount } }"}"#))?;
//! let body: serde_json::Value =
//!     serde_json::from_slice(&app.oneshot(request).await?.into_body().collect().await?.to_bytes())?;
//! assert_eq!(body["errors"][0]["extensions"]["code"], "unauthenticated");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

pub mod error;
mod graphiql;
pub mod schema;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Data, ErrorExtensions, Schema};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use bazaar_core::auth::client_ip::TrustedProxies;
use bazaar_core::auth::{Actor, bearer};
use bazaar_core::marketplace::Marketplace;

pub use crate::schema::BazaarSchema;
use crate::schema::loaders::Loaders;
use crate::schema::{Caller, ClientIp, Mutation, Query, Subscription};

/// Where [`router`] serves queries and mutations (and GraphiQL on `GET`).
pub const PATH: &str = "/graphql";
/// Where [`router`] serves subscriptions.
pub const WS_PATH: &str = "/graphql/ws";

/// Limits of the GraphQL server.
#[derive(Debug, Clone)]
pub struct GraphqlSettings {
    /// Deepest selection accepted (GraphiQL's introspection query needs 15;
    /// the deepest query of the schema's own types is 6).
    pub max_depth: usize,
    /// Highest query complexity accepted: each field costs 1, and a list
    /// field costs its page size (`first`, 20 by default) times its items.
    /// The default, 4000, admits the largest page REST hands out (a
    /// `search` page of 100 products with every field and the facets costs
    /// 3,200: the page size multiplies the whole selection) and refuses what
    /// multiplies it (aliases, nested pages).
    pub max_complexity: usize,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// How long one query or mutation may run before it is answered
    /// `408` with the code `timeout` (REST's limit, 30 s); subscriptions
    /// are not limited.
    pub request_timeout: Duration,
    /// The proxies whose forwarding header names the client (for the
    /// sign-in quota per client, which `register` and `login` spend as
    /// REST's do); none by default: the peer is the client.
    pub trusted_proxies: TrustedProxies,
}

impl Default for GraphqlSettings {
    fn default() -> Self {
        Self {
            max_depth: 16,
            max_complexity: 4_000,
            body_limit: 256 * 1024,
            request_timeout: Duration::from_secs(30),
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// What the GraphQL routes share (cheap to clone).
#[derive(Clone)]
pub struct GraphqlState {
    /// The marketplace.
    pub market: Arc<Marketplace>,
    /// The schema, with its limits.
    pub schema: BazaarSchema,
    /// Limits and policies.
    pub settings: Arc<GraphqlSettings>,
}

impl fmt::Debug for GraphqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphqlState").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl GraphqlState {
    /// State over `market` with `settings`.
    pub fn new(market: Arc<Marketplace>, settings: GraphqlSettings) -> Self {
        Self { schema: schema(market.clone(), &settings), settings: Arc::new(settings), market }
    }
}

/// The schema over `market`, with `settings`' depth and complexity limits.
pub fn schema(market: Arc<Marketplace>, settings: &GraphqlSettings) -> BazaarSchema {
    Schema::build(Query, Mutation, Subscription)
        .data(market)
        .limit_depth(settings.max_depth)
        .limit_complexity(settings.max_complexity)
        .finish()
}

/// The schema's SDL (what `docs/graphql.graphql` holds).
pub fn sdl() -> String {
    Schema::build(Query, Mutation, Subscription).finish().sdl()
}

/// The GraphQL routes with default settings: see the crate docs.
pub fn router(market: Arc<Marketplace>) -> Router {
    router_with(GraphqlState::new(market, GraphqlSettings::default()))
}

/// The GraphQL routes over `state`.
pub fn router_with(state: GraphqlState) -> Router {
    let limit = state.settings.body_limit;
    Router::new()
        .route(PATH, get(graphiql::page).post(execute))
        .route(WS_PATH, get(subscribe))
        .merge(graphiql::assets())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// `POST /graphql`.
async fn execute(
    State(state): State<GraphqlState>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match authenticate(&state.market, &headers) {
        Ok(caller) => caller,
        Err(error) => return unauthenticated(error),
    };
    let request = match serde_json::from_slice::<async_graphql::Request>(&body) {
        Ok(request) => request,
        Err(e) => return malformed(&format!("the body is not a GraphQL request: {e}")),
    };
    let ip = client_of(&state.settings.trusted_proxies, connect_info, &headers);
    let request = request.data(Caller(caller)).data(ClientIp(ip)).data(Loaders::new(state.market.clone(), caller));
    let Ok(mut response) = tokio::time::timeout(state.settings.request_timeout, state.schema.execute(request)).await
    else {
        return timed_out();
    };
    error::code_engine_errors(&mut response);
    json_response(StatusCode::OK, &response)
}

/// `GET /graphql/ws`: the WebSocket handshake, then graphql-transport-ws.
async fn subscribe(
    State(state): State<GraphqlState>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    // Operations over the socket may be mutations too: `register` and
    // `login` spend the same per-client quota there.
    let ip = client_of(&state.settings.trusted_proxies, connect_info, &headers);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let schema = state.schema.clone();
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let mut data = connection_data(&state.market, &payload)?;
                    data.insert(ClientIp(ip));
                    Ok(data)
                })
                .serve()
        })
        .into_response()
}

/// The data of a subscription connection: its caller, from the
/// `connection_init` payload's `authorization` (`Bearer <token>`). No
/// token is an anonymous connection (its subscriptions answer
/// `unauthenticated`); a token that does not verify refuses the connection.
fn connection_data(market: &Arc<Marketplace>, payload: &serde_json::Value) -> async_graphql::Result<Data> {
    let header =
        payload.get("authorization").or_else(|| payload.get("Authorization")).and_then(serde_json::Value::as_str);
    let caller = match header {
        None => None,
        Some(value) => {
            let token = bearer::from_authorization(value)
                .ok_or_else(|| bazaar_core::Error::Unauthenticated("expected Bearer <token>".into()))
                .map_err(error::graphql_error)?;
            Some(market.auth.verify(token).map_err(error::graphql_error)?)
        }
    };
    let mut data = Data::default();
    data.insert(Caller(caller));
    // A connection lives long: its loaders batch but do not cache, so a
    // query over it never answers from a stale copy.
    let loaders = Loaders::new(market.clone(), caller);
    loaders.products.enable_all_cache(false);
    data.insert(loaders);
    Ok(data)
}

/// The caller of a request: `None` without `Authorization`, the verified
/// actor with a valid bearer token.
fn authenticate(market: &Marketplace, headers: &HeaderMap) -> bazaar_core::Result<Option<Actor>> {
    let Some(value) = headers.get(AUTHORIZATION) else { return Ok(None) };
    let token = value
        .to_str()
        .ok()
        .and_then(bearer::from_authorization)
        .ok_or_else(|| bazaar_core::Error::Unauthenticated("expected Authorization: Bearer <token>".into()))?;
    market.auth.verify(token).map(Some)
}

/// The client's address by the core's rule; loopback for in-process
/// callers (tests) that have no peer.
fn client_of(
    proxies: &TrustedProxies,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> IpAddr {
    let peer = connect_info.map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |Extension(ConnectInfo(addr))| addr.ip());
    proxies.client(peer, |name| headers.get_all(name).iter().filter_map(|v| v.to_str().ok()))
}

/// A whole request refused for its credentials: 401 and one error.
fn unauthenticated(error: bazaar_core::Error) -> Response {
    let response = async_graphql::Response::from_errors(vec![request_error(error::graphql_error(error))]);
    let mut response = json_response(StatusCode::UNAUTHORIZED, &response);
    response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// What REST answers a request past its deadline, in GraphQL's shape.
fn timed_out() -> Response {
    refused(StatusCode::REQUEST_TIMEOUT, "timeout", "the request took too long")
}

/// A body that is not a GraphQL request: 400 and one `malformed` error.
fn malformed(message: &str) -> Response {
    refused(StatusCode::BAD_REQUEST, error::MALFORMED, message)
}

/// A whole request refused with `status`: one error with `code`.
fn refused(status: StatusCode, code: &'static str, message: &str) -> Response {
    let error = async_graphql::Error::new(message).extend_with(|_, ext| ext.set("code", code));
    json_response(status, &async_graphql::Response::from_errors(vec![request_error(error)]))
}

/// An error about the request as a whole (no position in a query).
fn request_error(error: async_graphql::Error) -> async_graphql::ServerError {
    let mut server_error = async_graphql::ServerError::new(error.message, None);
    server_error.extensions = error.extensions;
    server_error
}

fn json_response(status: StatusCode, response: &async_graphql::Response) -> Response {
    let body = serde_json::to_vec(response).expect("GraphQL responses serialize");
    (status, [(CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}
