//! The GraphQL schema: [`Query`], [`Mutation`] and [`Subscription`] roots
//! over the marketplace's services.
//!
//! Resolvers are thin like REST handlers: parse the arguments, take the
//! caller from the request, call one core service, map the result. Every
//! rule (visibility, ownership, idempotency, payment) is the core's.

pub(crate) mod loaders;
pub mod page;
pub mod types;

use std::net::IpAddr;

use async_graphql::{Context, ErrorExtensions, ID, InputObject, Object, Schema, Subscription as SubscriptionRoot};
use bazaar_core::Error;
use bazaar_core::auth::{Actor, Signup};
use bazaar_core::catalog::{SearchParams, SearchQuery};
use bazaar_core::ids::{OrderId, ProductId};
use bazaar_core::orders::PlaceOrder;
use futures::Stream;

use crate::error::CoreResultExt;
use page::Connection;
use types::{
    License, Notification, Order, PaymentIntent, PlacedOrder, Product, ProductKind, ProductSearch, Session, SignupRole,
    SortOrder, User, market,
};

/// The schema type served by [`router`](crate::router).
pub type BazaarSchema = Schema<Query, Mutation, Subscription>;

/// Who is calling: the actor of a verified bearer token, or `None`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller(pub(crate) Option<Actor>);

/// The client's IP, for the auth mutations' rate limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

/// The caller, or `unauthenticated`.
fn actor(ctx: &Context<'_>) -> async_graphql::Result<Actor> {
    caller(ctx).ok_or_else(|| Error::Unauthenticated("a bearer token is required".into())).gql()
}

fn caller(ctx: &Context<'_>) -> Option<Actor> {
    ctx.data_opt::<Caller>().and_then(|c| c.0)
}

/// Spends one attempt of the client's sign-in quota (`rate_limited` when
/// used up); a schema run without a client (in process) has none to spend.
async fn spend_auth_quota(ctx: &Context<'_>) -> async_graphql::Result<()> {
    let Some(ClientIp(ip)) = ctx.data_opt::<ClientIp>() else { return Ok(()) };
    market(ctx).auth.admit_client(*ip).await.gql()
}

/// A path-like id: one that does not parse names nothing, so it is
/// `not_found`, as REST answers an unparsable path id.
fn lookup_id<T: std::str::FromStr>(id: &ID, entity: &'static str) -> async_graphql::Result<T> {
    id.parse::<T>().map_err(|_| Error::not_found(entity)).gql()
}

/// The core names fields as REST's wire does (`price_max`,
/// `items[0].product_id`); validation details here name this schema's
/// arguments instead: `renames` first, else the camelCase of the name.
fn argument_names<T>(result: bazaar_core::Result<T>, renames: &[(&str, &str)]) -> bazaar_core::Result<T> {
    result.map_err(|e| match e {
        Error::Validation(fields) => Error::Validation(
            fields
                .into_iter()
                .map(|mut f| {
                    f.field = rename(&f.field, renames);
                    f
                })
                .collect(),
        ),
        other => other,
    })
}

fn rename(field: &str, renames: &[(&str, &str)]) -> String {
    // `items[3].product_id` is the product id of the fourth item: `productIds[3]`.
    if let Some(index) = field.strip_prefix("items[").and_then(|rest| rest.strip_suffix("].product_id")) {
        return format!("productIds[{index}]");
    }
    if let Some((_, to)) = renames.iter().find(|(from, _)| *from == field) {
        return (*to).to_owned();
    }
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The complexity of a list field: its page size times its items' cost.
fn list_cost(first: Option<i32>, after: Option<&str>, child_complexity: usize) -> usize {
    let size = page::request(first, after).map_or(bazaar_core::page::DEFAULT_LIMIT, |p| p.limit());
    usize::try_from(size).unwrap_or(usize::MAX).saturating_mul(child_complexity)
}

/// Queries.
#[derive(Debug, Default)]
pub struct Query;

#[Object]
impl Query {
    /// A product: approved ones for everyone, others for their vendor and
    /// admins (`not_found` for everyone else).
    async fn product(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Product>> {
        let id: ProductId = lookup_id(&id, "product")?;
        let found = market(ctx).catalog.get(caller(ctx).as_ref(), id).await.gql()?;
        Ok(Some(Product(found)))
    }

    /// Searches approved products (open to everyone): text over title,
    /// tags and description, filters, sort, and facet counts.
    #[graphql(complexity = "list_cost(first, after.as_deref(), child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn search(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Free text (every word must match).")] query: Option<String>,
        #[graphql(desc = "A category slug.")] category: Option<String>,
        kind: Option<ProductKind>,
        #[graphql(desc = "Inclusive lower price bound in minor units (free = 0).")] price_min: Option<i64>,
        #[graphql(desc = "Inclusive upper price bound in minor units.")] price_max: Option<i64>,
        #[graphql(desc = "`RELEVANCE` by default with a text query, else `NEWEST`.")] sort: Option<SortOrder>,
        #[graphql(desc = "Page size, 1 to 100 (larger is capped); 20 by default.")] first: Option<i32>,
        #[graphql(desc = "The `nextCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<ProductSearch> {
        let page = page::request(first, after.as_deref()).gql()?;
        let params = SearchParams {
            q: query,
            category,
            kind: kind.map(Into::into),
            price_min,
            price_max,
            sort: sort.map(Into::into),
            page: Some(page.page()),
            limit: Some(page.limit()),
        };
        let query = argument_names(SearchQuery::new(params), &[("q", "query")]).gql()?;
        let result = market(ctx).catalog.search_shared(&query).await.gql()?;
        Ok(ProductSearch {
            items: result.items.iter().cloned().map(Product).collect(),
            total_count: result.total,
            next_cursor: page::next_cursor(result.page, result.limit, result.total),
            facets: types::Facets {
                categories: result.facets.categories.iter().cloned().map(Into::into).collect(),
                kinds: result.facets.kinds.iter().cloned().map(Into::into).collect(),
            },
        })
    }

    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let user = market(ctx).auth.me(&actor(ctx)?).await.gql()?;
        Ok(User::from(&user))
    }

    /// One order, for its buyer or an admin (`forbidden` for anyone else).
    async fn order(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Order>> {
        let id: OrderId = lookup_id(&id, "order")?;
        let order = market(ctx).orders.get(&actor(ctx)?, id).await.gql()?;
        Ok(Some(Order(order)))
    }

    /// The caller's orders, newest first.
    #[graphql(complexity = "list_cost(first, after.as_deref(), child_complexity)")]
    async fn my_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (larger is capped); 20 by default.")] first: Option<i32>,
        #[graphql(desc = "The `nextCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<Connection<Order>> {
        let actor = actor(ctx)?;
        let page = page::request(first, after.as_deref()).gql()?;
        let orders = market(ctx).orders.list_mine(&actor, page).await.gql()?;
        Ok(Connection::of(orders, Order))
    }

    /// The caller's licenses, oldest first.
    #[graphql(complexity = "list_cost(first, after.as_deref(), child_complexity)")]
    async fn my_licenses(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (larger is capped); 20 by default.")] first: Option<i32>,
        #[graphql(desc = "The `nextCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<Connection<License>> {
        let actor = actor(ctx)?;
        let page = page::request(first, after.as_deref()).gql()?;
        let licenses = market(ctx).licenses.list_mine(&actor, page).await.gql()?;
        Ok(Connection::of(licenses, License))
    }

    /// The caller's notifications (every channel), newest first.
    #[graphql(complexity = "list_cost(first, after.as_deref(), child_complexity)")]
    async fn my_notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (larger is capped); 20 by default.")] first: Option<i32>,
        #[graphql(desc = "The `nextCursor` of the previous page.")] after: Option<String>,
    ) -> async_graphql::Result<Connection<Notification>> {
        let actor = actor(ctx)?;
        let page = page::request(first, after.as_deref()).gql()?;
        let notifications = market(ctx).notifications.list_mine(&actor, page).await.gql()?;
        Ok(Connection::of(notifications, Notification))
    }
}

/// `register` input. (No `Debug`: it holds a password.)
#[derive(InputObject)]
pub struct RegisterInput {
    /// E-mail address (normalised to lower case).
    pub email: String,
    /// 8 to 256 characters.
    pub password: String,
    /// Display name, 1 to 100 characters.
    pub name: String,
    /// `CUSTOMER` (default) or `VENDOR`.
    pub role: Option<SignupRole>,
}

impl std::fmt::Debug for RegisterInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterInput").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Mutations.
#[derive(Debug, Default)]
pub struct Mutation;

#[Object]
impl Mutation {
    /// Creates a customer or vendor account and signs it in (spends the
    /// client IP's auth quota, as REST's register).
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> async_graphql::Result<Session> {
        spend_auth_quota(ctx).await?;
        let RegisterInput { email, password, name, role } = input;
        let signup = Signup { email, password, name, role: role.map_or(bazaar_core::auth::Role::Customer, Into::into) };
        let session = market(ctx).auth.register(signup).await.gql()?;
        Ok(session_of(ctx, session))
    }

    /// Signs in with e-mail and password (spends the client IP's auth quota).
    async fn login(&self, ctx: &Context<'_>, email: String, password: String) -> async_graphql::Result<Session> {
        spend_auth_quota(ctx).await?;
        let session = market(ctx).auth.login(&email, &password).await.gql()?;
        Ok(session_of(ctx, session))
    }

    /// Places an order for 1 to 20 distinct approved products.
    ///
    /// With an `idempotencyKey` (scoped to the caller), the same key and
    /// products again answer the first order; other products with the same
    /// key are `idempotency_mismatch`, a key whose first request is still
    /// running `conflict`.
    async fn place_order(
        &self,
        ctx: &Context<'_>,
        product_ids: Vec<ID>,
        #[graphql(desc = "1 to 255 visible ASCII characters.")] idempotency_key: Option<String>,
    ) -> async_graphql::Result<PlacedOrder> {
        let actor = actor(ctx)?;
        let ids = product_ids
            .iter()
            .enumerate()
            .map(|(i, id)| ProductId::parse(&format!("productIds[{i}]"), id))
            .collect::<bazaar_core::Result<Vec<_>>>()
            .gql()?;
        let placed =
            market(ctx).orders.place_with_payment(&actor, PlaceOrder::new(ids), idempotency_key.as_deref()).await;
        let placed = argument_names(placed, &[("items", "productIds")]).gql()?;
        Ok(PlacedOrder { order: Order(placed.order), payment: placed.payment.map(PaymentIntent) })
    }

    /// The buyer pays a pending order (`pm_card_visa`, `pm_card_declined`
    /// and `pm_card_3ds` on the sandbox provider). A decline is not an
    /// error: the intent comes back `REQUIRES_PAYMENT_METHOD`.
    async fn pay(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        payment_method: String,
    ) -> async_graphql::Result<PaymentIntent> {
        let actor = actor(ctx)?;
        let order_id: OrderId = lookup_id(&order_id, "order")?;
        let intent = argument_names(market(ctx).orders.pay(&actor, order_id, &payment_method).await, &[]).gql()?;
        Ok(PaymentIntent(intent))
    }
}

fn session_of(ctx: &Context<'_>, session: bazaar_core::auth::Session) -> Session {
    let bazaar_core::auth::Session { user, access, refresh_token } = session;
    Session {
        user: User::from(&user),
        access_token: access.token,
        token_type: "Bearer",
        expires_in: i64::try_from(market(ctx).auth.config().access_ttl.as_secs()).unwrap_or(i64::MAX),
        refresh_token,
    }
}

/// Subscriptions (over the WebSocket endpoint).
#[derive(Debug, Default)]
pub struct Subscription;

#[SubscriptionRoot]
impl Subscription {
    /// The caller's in-app notifications as they are created. A client that
    /// reads too slowly gets one last error with code `lagged` (`shutdown`
    /// when the server stops) and the stream completes; re-read
    /// `myNotifications` then.
    async fn my_notifications(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Notification>> + use<>> {
        let actor = actor(ctx)?;
        let live = market(ctx).live.subscribe(&actor).gql()?;
        Ok(futures::stream::unfold(Some(live), |live| async move {
            let mut live = live?;
            match live.next().await {
                Ok(notification) => Some((Ok(Notification(notification)), Some(live))),
                Err(end) => {
                    let error = async_graphql::Error::new(format!("the stream ended: {end}"))
                        .extend_with(|_, ext| ext.set("code", end.as_str()));
                    Some((Err(error), None))
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::rename;

    #[test]
    fn core_field_names_become_argument_names() {
        assert_eq!(rename("items[3].product_id", &[]), "productIds[3]");
        assert_eq!(rename("items", &[("items", "productIds")]), "productIds");
        assert_eq!(rename("q", &[("q", "query")]), "query");
        assert_eq!(rename("price_max", &[]), "priceMax");
        assert_eq!(rename("idempotency_key", &[]), "idempotencyKey");
        assert_eq!(rename("password", &[]), "password");
    }
}
