//! The schema's output types: wrappers over the core's values whose
//! resolvers read fields, and, for related records (an order line's
//! product, an order's licenses), go through the request's batch loaders.
//!
//! Enums mirror the core's with `#[graphql(remote)]`, so a variant added in
//! the core is a compile error here. Money is `{minor, currency}` (integers
//! in minor units, never floats); timestamps are RFC 3339 strings.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use bazaar_core::catalog::{self, FacetCount};
use bazaar_core::clock::Timestamp;
use bazaar_core::marketplace::Marketplace;
use bazaar_core::{licensing, notifications, orders, payments, pricing};

use super::loaders::{Loaders, OrderLicenses};

// ------------------------------------------------------------------ enums

/// What is sold.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "bazaar_core::catalog::ProductKind")]
pub enum ProductKind {
    /// An AI agent.
    AiAgent,
    /// An n8n workflow.
    // The derived name would split the digits off (`N_8N_WORKFLOW`).
    #[graphql(name = "N8N_WORKFLOW")]
    N8nWorkflow,
    /// Scripts, templates, prompts.
    AutomationAsset,
}

/// Moderation status of a product.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "bazaar_core::catalog::ProductStatus")]
pub enum ProductStatus {
    /// Being written.
    Draft,
    /// Waiting for an admin.
    Pending,
    /// Live.
    Approved,
    /// Sent back with a reason.
    Rejected,
    /// Taken down.
    Suspended,
}

/// How a price is charged.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
pub enum PricingType {
    /// No charge.
    Free,
    /// Paid once.
    OneTime,
    /// Paid every interval.
    Subscription,
}

/// How often a subscription bills.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "bazaar_core::pricing::BillingInterval")]
pub enum BillingInterval {
    /// Every month.
    Monthly,
    /// Every year.
    Yearly,
}

/// Image or video.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "bazaar_core::catalog::MediaKind")]
pub enum MediaKind {
    /// A screenshot.
    Image,
    /// A demo video.
    Video,
}

/// Search result orderings.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "bazaar_core::catalog::SortOrder")]
pub enum SortOrder {
    /// Best text match first (the default with a text query).
    Relevance,
    /// Most recently created first (the default otherwise).
    Newest,
    /// Cheapest first (free = 0).
    PriceAsc,
    /// Most expensive first.
    PriceDesc,
    /// Highest display rating first.
    Rating,
    /// Most downloaded first.
    Downloads,
}

/// Where an order is in its life.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "bazaar_core::orders::OrderStatus")]
pub enum OrderStatus {
    /// Waiting for a successful payment.
    PendingPayment,
    /// Paid; licenses are being issued.
    Paid,
    /// Every line has its license.
    Fulfilled,
    /// Refunded; its licenses are revoked.
    Refunded,
    /// Canceled before payment.
    Canceled,
}

/// Status of a payment intent (Stripe's PaymentIntent semantics).
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "bazaar_core::payments::IntentStatus")]
pub enum IntentStatus {
    /// Waiting for a payment method (also after a failed attempt).
    RequiresPaymentMethod,
    /// A method is attached; waiting for confirmation.
    RequiresConfirmation,
    /// The customer must act (3-D Secure); a webhook finishes it.
    RequiresAction,
    /// The provider is working on it.
    Processing,
    /// The money was captured.
    Succeeded,
    /// Abandoned.
    Canceled,
}

/// The standing of a license now (revoked > suspended > expired > active).
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "bazaar_core::licensing::LicenseStatus")]
pub enum LicenseStatus {
    /// Usable.
    Active,
    /// Past its end.
    Expired,
    /// Suspended by an admin.
    Suspended,
    /// Revoked for good.
    Revoked,
}

/// The kind of license term.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
pub enum LicenseKind {
    /// Never expires by itself.
    Perpetual,
    /// Paid per period; ends at `endsAt` unless renewed.
    Subscription,
    /// Time-boxed; ends at `endsAt`.
    Trial,
}

/// How a notification reaches its recipient.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "bazaar_core::notifications::Channel")]
pub enum Channel {
    /// Shown in the app.
    InApp,
    /// Sent by e-mail.
    Email,
    /// Posted to the user's webhook.
    Webhook,
}

/// What a notification is about.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "bazaar_core::notifications::Template")]
pub enum Template {
    /// The buyer's order was placed.
    OrderPlaced,
    /// A license was issued to the buyer.
    LicenseIssued,
    /// The buyer's order was refunded.
    OrderRefunded,
    /// The vendor's product was approved.
    ProductApproved,
    /// The vendor's product was rejected.
    ProductRejected,
}

/// Delivery status of a notification.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "bazaar_core::notifications::NotificationStatus")]
pub enum NotificationStatus {
    /// Not yet handed to the sender.
    Queued,
    /// Sent.
    Sent,
    /// The last attempt failed; it is retried with its event.
    Failed,
}

/// A user's role.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "bazaar_core::auth::Role")]
pub enum Role {
    /// Buys and reviews products.
    Customer,
    /// Sells products.
    Vendor,
    /// Moderates, refunds, revokes.
    Admin,
}

/// The roles anyone may sign up for (admins are created by the operator).
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
pub enum SignupRole {
    /// Buys products.
    Customer,
    /// Sells products.
    Vendor,
}

impl From<SignupRole> for bazaar_core::auth::Role {
    fn from(r: SignupRole) -> Self {
        match r {
            SignupRole::Customer => Self::Customer,
            SignupRole::Vendor => Self::Vendor,
        }
    }
}

// ---------------------------------------------------------------- objects

/// An amount of money in minor units (cents): never a float.
#[derive(Debug, Clone, SimpleObject)]
pub struct Money {
    /// Minor units (1999 = 19.99 USD; JPY has none).
    pub minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

impl From<bazaar_core::money::Money> for Money {
    fn from(m: bazaar_core::money::Money) -> Self {
        Self { minor: m.minor(), currency: m.currency().to_string() }
    }
}

/// Price terms.
#[derive(Debug, Clone, SimpleObject)]
pub struct Pricing {
    /// How it is charged.
    #[graphql(name = "type")]
    pub kind: PricingType,
    /// The price (`null` when free).
    pub price: Option<Money>,
    /// The billing interval (subscriptions only).
    pub interval: Option<BillingInterval>,
}

impl From<pricing::Pricing> for Pricing {
    fn from(p: pricing::Pricing) -> Self {
        match p {
            pricing::Pricing::Free => Self { kind: PricingType::Free, price: None, interval: None },
            pricing::Pricing::OneTime { price } => {
                Self { kind: PricingType::OneTime, price: Some(price.into()), interval: None }
            }
            pricing::Pricing::Subscription { price, interval } => {
                Self { kind: PricingType::Subscription, price: Some(price.into()), interval: Some(interval.into()) }
            }
        }
    }
}

/// A screenshot or video of a listing.
#[derive(Debug, Clone, SimpleObject)]
pub struct Media {
    /// Image or video.
    pub kind: MediaKind,
    /// An absolute `https://` URL.
    pub url: String,
}

/// Exact counters and the display rating.
#[derive(Debug, Clone, Copy, SimpleObject)]
pub struct ProductStats {
    /// Completed downloads.
    pub downloads: u64,
    /// Number of reviews.
    pub rating_count: u64,
    /// Sum of all ratings.
    pub rating_sum: u64,
    /// Bayesian average shown to buyers (a display value, 1.0 to 5.0).
    pub rating: f64,
}

/// A product listing.
#[derive(Debug, Clone)]
pub struct Product(pub(crate) catalog::Product);

#[Object]
impl Product {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Its vendor.
    async fn vendor_id(&self) -> ID {
        ID(self.0.vendor_id.to_string())
    }
    /// Title.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// Long description.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// Card text.
    async fn short_description(&self) -> &str {
        &self.0.short_description
    }
    /// What is sold.
    async fn kind(&self) -> ProductKind {
        self.0.kind.into()
    }
    /// Category slugs.
    async fn categories(&self) -> &[String] {
        &self.0.categories
    }
    /// Tags.
    async fn tags(&self) -> &[String] {
        &self.0.tags
    }
    /// Price terms.
    async fn pricing(&self) -> Pricing {
        self.0.pricing.into()
    }
    /// Screenshots and videos.
    async fn media(&self) -> Vec<Media> {
        self.0.media.iter().map(|m| Media { kind: m.kind.into(), url: m.url.clone() }).collect()
    }
    /// Moderation status.
    async fn status(&self) -> ProductStatus {
        self.0.status.into()
    }
    /// Counters and the display rating.
    async fn stats(&self, ctx: &Context<'_>) -> ProductStats {
        let s = self.0.stats;
        let rating = market(ctx).catalog.display_rating(&self.0);
        ProductStats { downloads: s.downloads, rating_count: s.rating_count, rating_sum: s.rating_sum, rating }
    }
    /// Optimistic-concurrency version.
    async fn version(&self) -> u64 {
        self.0.version
    }
    /// Created.
    async fn created_at(&self) -> Timestamp {
        self.0.created_at
    }
    /// Last changed.
    async fn updated_at(&self) -> Timestamp {
        self.0.updated_at
    }
}

/// One facet value and its count.
#[derive(Debug, Clone, SimpleObject)]
pub struct Facet {
    /// Category slug or kind name (snake_case, as REST).
    pub value: String,
    /// Matching products.
    pub count: u64,
}

impl From<FacetCount> for Facet {
    fn from(f: FacetCount) -> Self {
        Self { value: f.value, count: f.count }
    }
}

/// Facet counts over all matches (each facet ignores its own filter).
#[derive(Debug, Clone, SimpleObject)]
pub struct Facets {
    /// Per category.
    pub categories: Vec<Facet>,
    /// Per kind.
    pub kinds: Vec<Facet>,
}

/// A page of search results with facets.
#[derive(Debug, SimpleObject)]
pub struct ProductSearch {
    /// The products of this page.
    pub items: Vec<Product>,
    /// Matches in all pages.
    pub total_count: u64,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// Facet counts.
    pub facets: Facets,
}

/// One purchased product, priced when bought.
#[derive(Debug, Clone)]
pub struct OrderLine(pub(crate) orders::OrderLine);

#[Object]
impl OrderLine {
    /// The product's id.
    async fn product_id(&self) -> ID {
        ID(self.0.product_id.to_string())
    }
    /// Its vendor.
    async fn vendor_id(&self) -> ID {
        ID(self.0.vendor_id.to_string())
    }
    /// Its title when bought.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// What the buyer pays for it.
    async fn unit_price(&self) -> Money {
        self.0.unit_price.into()
    }
    /// The platform's commission (`platformFee + vendorNet == unitPrice`).
    async fn platform_fee(&self) -> Money {
        self.0.platform_fee.into()
    }
    /// What the vendor receives.
    async fn vendor_net(&self) -> Money {
        self.0.vendor_net.into()
    }
    /// The product as listed now, when the caller may see it (`null` once
    /// it is no longer visible to them, e.g. suspended). Batched: every
    /// line of a response is read in one call.
    async fn product(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Product>> {
        product(ctx, self.0.product_id).await
    }
}

/// An order.
#[derive(Debug, Clone)]
pub struct Order(pub(crate) orders::Order);

#[Object]
impl Order {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Who placed it.
    async fn buyer_id(&self) -> ID {
        ID(self.0.buyer_id.to_string())
    }
    /// Where it is in its life.
    async fn status(&self) -> OrderStatus {
        self.0.status.into()
    }
    /// Sum of the lines' unit prices.
    async fn total(&self) -> Money {
        self.0.total.into()
    }
    /// What was bought, in request order.
    async fn lines(&self) -> Vec<OrderLine> {
        self.0.lines.iter().cloned().map(OrderLine).collect()
    }
    /// The licenses issued for it (empty until it is fulfilled). Batched:
    /// every order of a response is read in one call per buyer.
    async fn licenses(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<License>> {
        let key = OrderLicenses { holder: self.0.buyer_id, order: self.0.id };
        let found = loaders(ctx).licenses.load_one(key).await?;
        Ok(found.unwrap_or_default().into_iter().map(License).collect())
    }
    /// When it was placed.
    async fn created_at(&self) -> Timestamp {
        self.0.created_at
    }
    /// When its status last changed.
    async fn updated_at(&self) -> Timestamp {
        self.0.updated_at
    }
}

/// A payment intent.
#[derive(Debug, Clone)]
pub struct PaymentIntent(pub(crate) payments::PaymentIntent);

#[Object]
impl PaymentIntent {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The order it pays.
    async fn order_id(&self) -> ID {
        ID(self.0.order_id.to_string())
    }
    /// The amount to capture.
    async fn amount(&self) -> Money {
        self.0.amount.into()
    }
    /// Where it is.
    async fn status(&self) -> IntentStatus {
        self.0.status.into()
    }
    /// How many confirmation attempts were made.
    async fn attempts(&self) -> usize {
        self.0.attempts.len()
    }
    /// The provider's decline code of the last attempt, if it failed.
    async fn last_decline_code(&self) -> Option<&str> {
        self.0.attempts.last().and_then(|a| a.decline_code.as_deref())
    }
    /// Refunded so far.
    async fn amount_refunded(&self) -> Money {
        self.0.amount_refunded.into()
    }
    /// Created.
    async fn created_at(&self) -> Timestamp {
        self.0.created_at
    }
    /// Last changed.
    async fn updated_at(&self) -> Timestamp {
        self.0.updated_at
    }
}

/// What `placeOrder` answers: the order and its payment intent.
#[derive(Debug, SimpleObject)]
pub struct PlacedOrder {
    /// The order (as first placed, for a replayed idempotency key).
    pub order: Order,
    /// Its payment intent (`null` only when the provider could not create it
    /// at placement; `pay` creates it then).
    pub payment: Option<PaymentIntent>,
}

/// What the holder may do with the product.
#[derive(Debug, Clone, Copy, SimpleObject)]
pub struct Permissions {
    /// May download the product's assets.
    pub download: bool,
    /// May use it commercially.
    pub commercial_use: bool,
    /// May redistribute it.
    pub redistribution: bool,
    /// May modify it.
    pub modification: bool,
}

/// Usage limits of a license.
#[derive(Debug, Clone, Copy, SimpleObject)]
pub struct Limits {
    /// Download URLs that may be issued (`null`: unlimited).
    pub max_downloads: Option<u32>,
    /// Machines that may be active at once (`null`: unlimited).
    pub max_activations: Option<u32>,
    /// A hard end, if any.
    pub expires_at: Option<Timestamp>,
}

/// An activated machine.
#[derive(Debug, Clone, SimpleObject)]
pub struct Activation {
    /// The machine's fingerprint.
    pub fingerprint: String,
    /// When it was activated.
    pub activated_at: Timestamp,
}

/// A license.
#[derive(Debug, Clone)]
pub struct License(pub(crate) licensing::License);

#[Object]
impl License {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The signed license key (verifiable offline with the public key).
    async fn key(&self) -> &str {
        &self.0.key
    }
    /// The holder.
    async fn buyer_id(&self) -> ID {
        ID(self.0.buyer_id.to_string())
    }
    /// The licensed product's id.
    async fn product_id(&self) -> ID {
        ID(self.0.product_id.to_string())
    }
    /// The order it was issued for.
    async fn order_id(&self) -> ID {
        ID(self.0.order_id.to_string())
    }
    /// The kind of term.
    async fn kind(&self) -> LicenseKind {
        match self.0.kind {
            licensing::LicenseKind::Perpetual => LicenseKind::Perpetual,
            licensing::LicenseKind::Subscription { .. } => LicenseKind::Subscription,
            licensing::LicenseKind::Trial { .. } => LicenseKind::Trial,
        }
    }
    /// When the term ends by itself (subscriptions and trials).
    async fn ends_at(&self) -> Option<Timestamp> {
        self.0.kind.ends_at()
    }
    /// Its standing now.
    async fn status(&self, ctx: &Context<'_>) -> LicenseStatus {
        self.0.status(market(ctx).clock.now()).into()
    }
    /// What the holder may do.
    async fn permissions(&self) -> Permissions {
        let p = self.0.permissions;
        Permissions {
            download: p.download,
            commercial_use: p.commercial_use,
            redistribution: p.redistribution,
            modification: p.modification,
        }
    }
    /// Its limits.
    async fn limits(&self) -> Limits {
        let l = self.0.limits;
        Limits { max_downloads: l.max_downloads, max_activations: l.max_activations, expires_at: l.expires_at }
    }
    /// Download URLs issued so far.
    async fn downloads_used(&self) -> u32 {
        self.0.downloads_used
    }
    /// Activated machines.
    async fn activations(&self) -> Vec<Activation> {
        self.0
            .activations
            .iter()
            .map(|a| Activation { fingerprint: a.fingerprint.as_str().to_owned(), activated_at: a.activated_at })
            .collect()
    }
    /// When it was revoked.
    async fn revoked_at(&self) -> Option<Timestamp> {
        self.0.revoked_at
    }
    /// When it was issued.
    async fn created_at(&self) -> Timestamp {
        self.0.created_at
    }
    /// The licensed product as listed now, when the caller may see it.
    /// Batched with every other product of the response.
    async fn product(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Product>> {
        product(ctx, self.0.product_id).await
    }
}

/// A notification.
#[derive(Debug, Clone)]
pub struct Notification(pub(crate) notifications::Notification);

#[Object]
impl Notification {
    /// Id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The order it is about, if any.
    async fn order_id(&self) -> Option<ID> {
        self.0.order_id.map(|id| ID(id.to_string()))
    }
    /// How it is delivered.
    async fn channel(&self) -> Channel {
        self.0.channel.into()
    }
    /// What it is about.
    async fn template(&self) -> Template {
        self.0.template.into()
    }
    /// The rendered text.
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// Delivery status.
    async fn status(&self) -> NotificationStatus {
        self.0.status.into()
    }
    /// Send attempts so far.
    async fn attempts(&self) -> u32 {
        self.0.attempts
    }
    /// When it was created.
    async fn created_at(&self) -> Timestamp {
        self.0.created_at
    }
    /// When it was sent.
    async fn sent_at(&self) -> Option<Timestamp> {
        self.0.sent_at
    }
}

/// A user as the API shows it.
#[derive(Debug, Clone, SimpleObject)]
pub struct User {
    /// Id.
    pub id: ID,
    /// E-mail address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
}

impl From<&bazaar_core::auth::User> for User {
    fn from(u: &bazaar_core::auth::User) -> Self {
        Self { id: ID(u.id.to_string()), email: u.email.as_str().to_owned(), name: u.name.clone(), role: u.role.into() }
    }
}

/// A signed-in session. Tokens are secrets: keep them out of logs.
#[derive(SimpleObject)]
pub struct Session {
    /// Who signed in.
    pub user: User,
    /// Bearer token for `Authorization: Bearer …` (a JWT).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until `accessToken` expires.
    pub expires_in: i64,
    /// Exchange at REST `/v1/auth/refresh` for a new pair; single use.
    pub refresh_token: String,
}

impl std::fmt::Debug for Session {
    // Tokens stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("user", &self.user).finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------- helpers

/// The marketplace the schema serves.
pub(crate) fn market<'a>(ctx: &Context<'a>) -> &'a Arc<Marketplace> {
    ctx.data_unchecked::<Arc<Marketplace>>()
}

/// The request's batch loaders.
pub(crate) fn loaders<'a>(ctx: &Context<'a>) -> &'a Loaders {
    ctx.data_unchecked::<Loaders>()
}

async fn product(ctx: &Context<'_>, id: bazaar_core::ids::ProductId) -> async_graphql::Result<Option<Product>> {
    Ok(loaders(ctx).products.load_one(id).await?.map(Product))
}
