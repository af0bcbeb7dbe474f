//! Routes: catalog — search, read, create, edit (optimistic, `If-Match`),
//! submit, moderate and review products.
//!
//! Visibility follows [`CatalogService`](bazaar_core::catalog::CatalogService):
//! a product that is not approved exists only for its vendor and admins (404
//! for everyone else); once a caller can see a product, an action they may
//! not take is 403. Every response carrying one product also carries its
//! `ETag` (`"<version>"`), which is what `PATCH` expects back in `If-Match`.

use axum::Json;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, ETAG, IF_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bazaar_core::catalog::{
    BillingInterval, FacetCount, Media, MediaKind, NewProduct, NewReview, Pricing, Product, ProductKind, ProductPatch,
    ProductStatus, Review, SearchParams, SearchQuery, SearchResult, SortOrder,
};
use bazaar_core::error::FieldError;
use bazaar_core::ids::ProductId;
use bazaar_core::money::{Currency, Money};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth, MaybeAuth, whole_number};
use crate::schema::{
    CurrencyCode, MediaUrl, Reason, SortName, Title, categories_schema, nullable_categories_schema,
    nullable_tags_schema, tags_schema,
};
use crate::state::AppState;

/// The catalog routes.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search_products, create_product))
        .routes(routes!(get_product, edit_product))
        .routes(routes!(submit_product))
        .routes(routes!(approve_product))
        .routes(routes!(reject_product))
        .routes(routes!(suspend_product))
        .routes(routes!(reinstate_product))
        .routes(routes!(review_product))
}

// ---------------------------------------------------------------- wire types

/// An amount of money in minor units (cents): never a float.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Money)]
pub(crate) struct MoneyDto {
    /// Minor units (1999 = 19.99 USD; JPY has none).
    #[serde(deserialize_with = "whole_number")]
    pub(crate) minor: i64,
    /// ISO 4217 code.
    #[schema(value_type = CurrencyCode, example = "USD")]
    pub(crate) currency: Currency,
}

impl From<Money> for MoneyDto {
    fn from(m: Money) -> Self {
        Self { minor: m.minor(), currency: m.currency() }
    }
}

impl From<MoneyDto> for Money {
    fn from(m: MoneyDto) -> Self {
        Money::new(m.minor, m.currency)
    }
}

/// The price of a paid product: a [`MoneyDto`] of more than zero.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct Price {
    /// Minor units, more than zero (1999 = 19.99 USD; JPY has none).
    #[schema(minimum = 1)]
    minor: i64,
    /// ISO 4217 code.
    #[schema(value_type = CurrencyCode)]
    currency: Currency,
}

/// How often a subscription bills.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum IntervalDto {
    /// Every month.
    Monthly,
    /// Every year.
    Yearly,
}

/// Price terms, tagged by `type`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum PricingDto {
    /// No charge. A struct variant, not a unit one, so that
    /// `deny_unknown_fields` refuses `{"type": "free", "price": …}` too.
    Free {},
    /// Paid once.
    OneTime {
        /// More than zero.
        #[schema(value_type = Price)]
        price: MoneyDto,
    },
    /// Paid every interval.
    Subscription {
        /// More than zero, per interval.
        #[schema(value_type = Price)]
        price: MoneyDto,
        /// Billing interval.
        interval: IntervalDto,
    },
}

impl From<PricingDto> for Pricing {
    fn from(p: PricingDto) -> Self {
        match p {
            PricingDto::Free {} => Pricing::Free,
            PricingDto::OneTime { price } => Pricing::OneTime { price: price.into() },
            PricingDto::Subscription { price, interval } => Pricing::Subscription {
                price: price.into(),
                interval: match interval {
                    IntervalDto::Monthly => BillingInterval::Monthly,
                    IntervalDto::Yearly => BillingInterval::Yearly,
                },
            },
        }
    }
}

impl From<Pricing> for PricingDto {
    fn from(p: Pricing) -> Self {
        match p {
            Pricing::Free => Self::Free {},
            Pricing::OneTime { price } => Self::OneTime { price: price.into() },
            Pricing::Subscription { price, interval } => Self::Subscription {
                price: price.into(),
                interval: match interval {
                    BillingInterval::Monthly => IntervalDto::Monthly,
                    BillingInterval::Yearly => IntervalDto::Yearly,
                },
            },
        }
    }
}

/// What is being sold.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum KindDto {
    /// An AI agent.
    AiAgent,
    /// An n8n workflow.
    N8nWorkflow,
    /// Scripts, templates, prompts.
    AutomationAsset,
}

impl From<KindDto> for ProductKind {
    fn from(k: KindDto) -> Self {
        match k {
            KindDto::AiAgent => Self::AiAgent,
            KindDto::N8nWorkflow => Self::N8nWorkflow,
            KindDto::AutomationAsset => Self::AutomationAsset,
        }
    }
}

impl From<ProductKind> for KindDto {
    fn from(k: ProductKind) -> Self {
        match k {
            ProductKind::AiAgent => Self::AiAgent,
            ProductKind::N8nWorkflow => Self::N8nWorkflow,
            ProductKind::AutomationAsset => Self::AutomationAsset,
        }
    }
}

/// Moderation status.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StatusDto {
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

impl From<ProductStatus> for StatusDto {
    fn from(s: ProductStatus) -> Self {
        match s {
            ProductStatus::Draft => Self::Draft,
            ProductStatus::Pending => Self::Pending,
            ProductStatus::Approved => Self::Approved,
            ProductStatus::Rejected => Self::Rejected,
            ProductStatus::Suspended => Self::Suspended,
        }
    }
}

/// Image or video.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MediaKindDto {
    /// A screenshot.
    Image,
    /// A demo video.
    Video,
}

/// A screenshot or video of a listing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MediaDto {
    /// Image or video.
    kind: MediaKindDto,
    /// An absolute `https://` URL.
    #[schema(value_type = MediaUrl)]
    url: String,
}

impl From<MediaDto> for Media {
    fn from(m: MediaDto) -> Self {
        let kind = match m.kind {
            MediaKindDto::Image => MediaKind::Image,
            MediaKindDto::Video => MediaKind::Video,
        };
        Self { kind, url: m.url }
    }
}

impl From<Media> for MediaDto {
    fn from(m: Media) -> Self {
        let kind = match m.kind {
            MediaKind::Image => MediaKindDto::Image,
            MediaKind::Video => MediaKindDto::Video,
        };
        Self { kind, url: m.url }
    }
}

/// Exact counters and the display rating.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatsDto {
    /// Completed downloads.
    downloads: u64,
    /// Number of reviews.
    rating_count: u64,
    /// Sum of all ratings.
    rating_sum: u64,
    /// Bayesian average shown to buyers (a display value, 1.0 to 5.0).
    rating: f64,
}

/// A product listing.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProductDto {
    /// Id.
    id: Uuid,
    /// Its vendor.
    vendor_id: Uuid,
    /// Title.
    title: String,
    /// Long description.
    description: String,
    /// Card text.
    short_description: String,
    /// What is sold.
    kind: KindDto,
    /// Category slugs.
    categories: Vec<String>,
    /// Tags.
    tags: Vec<String>,
    /// Price terms.
    pricing: PricingDto,
    /// Screenshots and videos.
    media: Vec<MediaDto>,
    /// Moderation status.
    status: StatusDto,
    /// Counters.
    stats: StatsDto,
    /// Optimistic-concurrency version (send it back in `If-Match`).
    version: u64,
    /// Created.
    created_at: chrono::DateTime<chrono::Utc>,
    /// Last changed.
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl ProductDto {
    fn new(state: &AppState, p: Product) -> Self {
        let rating = state.market.catalog.display_rating(&p);
        Self {
            id: p.id.as_uuid(),
            vendor_id: p.vendor_id.as_uuid(),
            title: p.title,
            description: p.description,
            short_description: p.short_description,
            kind: p.kind.into(),
            categories: p.categories,
            tags: p.tags,
            pricing: p.pricing.into(),
            media: p.media.into_iter().map(MediaDto::from).collect(),
            status: p.status.into(),
            stats: StatsDto {
                downloads: p.stats.downloads,
                rating_count: p.stats.rating_count,
                rating_sum: p.stats.rating_sum,
                rating,
            },
            version: p.version,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// `POST /v1/products`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateProductBody {
    /// 3 to 120 characters.
    #[schema(value_type = Title)]
    title: String,
    /// Up to 20 000 characters.
    #[serde(default)]
    #[schema(max_length = 20_000)]
    description: String,
    /// Up to 280 characters.
    #[serde(default)]
    #[schema(max_length = 280)]
    short_description: String,
    /// What is sold.
    kind: KindDto,
    /// 1 to 5 distinct lowercase slugs.
    #[schema(schema_with = categories_schema)]
    categories: Vec<String>,
    /// Up to 10 tags, distinct ignoring case.
    #[serde(default)]
    #[schema(schema_with = tags_schema)]
    tags: Vec<String>,
    /// Price terms.
    pricing: PricingDto,
    /// Up to 20 `https://` media items.
    #[serde(default)]
    #[schema(max_items = 20)]
    media: Vec<MediaDto>,
}

impl From<CreateProductBody> for NewProduct {
    fn from(b: CreateProductBody) -> Self {
        Self {
            title: b.title,
            description: b.description,
            short_description: b.short_description,
            kind: b.kind.into(),
            categories: b.categories,
            tags: b.tags,
            pricing: b.pricing.into(),
            media: b.media.into_iter().map(Media::from).collect(),
        }
    }
}

/// `PATCH /v1/products/{id}`: fields left out stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchProductBody {
    /// New title.
    #[serde(default)]
    #[schema(value_type = Option<Title>)]
    title: Option<String>,
    /// New description.
    #[serde(default)]
    #[schema(max_length = 20_000)]
    description: Option<String>,
    /// New card text.
    #[serde(default)]
    #[schema(max_length = 280)]
    short_description: Option<String>,
    /// New kind.
    #[serde(default)]
    kind: Option<KindDto>,
    /// New categories (replaces the list).
    #[serde(default)]
    #[schema(schema_with = nullable_categories_schema)]
    categories: Option<Vec<String>>,
    /// New tags (replaces the list).
    #[serde(default)]
    #[schema(schema_with = nullable_tags_schema)]
    tags: Option<Vec<String>>,
    /// New price terms.
    #[serde(default)]
    pricing: Option<PricingDto>,
    /// New media (replaces the list).
    #[serde(default)]
    #[schema(max_items = 20)]
    media: Option<Vec<MediaDto>>,
}

impl From<PatchProductBody> for ProductPatch {
    fn from(b: PatchProductBody) -> Self {
        Self {
            title: b.title,
            description: b.description,
            short_description: b.short_description,
            kind: b.kind.map(Into::into),
            categories: b.categories,
            tags: b.tags,
            pricing: b.pricing.map(Into::into),
            media: b.media.map(|m| m.into_iter().map(Media::from).collect()),
        }
    }
}

/// `POST /v1/products/{id}/reject`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RejectBody {
    /// Why, for the vendor: 1 to 500 characters.
    #[schema(value_type = Reason)]
    reason: String,
}

/// `POST /v1/products/{id}/reviews`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReviewBody {
    /// 1 to 5 stars.
    #[schema(minimum = 1, maximum = 5)]
    #[serde(deserialize_with = "whole_number")]
    rating: u8,
    /// Up to 5 000 characters (may be empty).
    #[serde(default)]
    #[schema(max_length = 5_000)]
    body: String,
}

/// A review.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReviewDto {
    /// Id.
    id: Uuid,
    /// The product.
    product_id: Uuid,
    /// The reviewer.
    buyer_id: Uuid,
    /// 1 to 5 stars.
    rating: u8,
    /// Text.
    body: String,
    /// Written at.
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Review> for ReviewDto {
    fn from(r: Review) -> Self {
        Self {
            id: r.id.as_uuid(),
            product_id: r.product_id.as_uuid(),
            buyer_id: r.buyer_id.as_uuid(),
            rating: r.rating.stars(),
            body: r.body,
            created_at: r.created_at,
        }
    }
}

/// Search parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchParamsDto {
    /// Free text over title, tags and description (every word must match), at most 200 characters.
    #[param(max_length = 200)]
    q: Option<String>,
    /// A category slug of at most 64 characters (compared in lower case;
    /// blank means any). The lookahead bounds the slug, not the white space
    /// around it, which is trimmed.
    #[param(pattern = r"^\s*(?=[A-Za-z0-9-]{0,64}\s*$)([A-Za-z0-9]+(-[A-Za-z0-9]+)*)?\s*$")]
    category: Option<String>,
    /// What is sold.
    #[param(value_type = Option<KindDto>)]
    kind: Option<String>,
    /// Inclusive lower price bound in minor units (free = 0).
    #[param(minimum = 0)]
    price_min: Option<i64>,
    /// Inclusive upper price bound in minor units; below `price_min`, nothing matches.
    #[param(minimum = 0)]
    price_max: Option<i64>,
    /// The order: `relevance` is the default with `q`, `newest` otherwise.
    #[param(value_type = Option<SortName>)]
    sort: Option<String>,
    /// Page from 1.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4_294_967_295_i64)]
    page: Option<u32>,
    /// Page size from 1; above 100 it is capped at 100.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4_294_967_295_i64)]
    limit: Option<u32>,
}

impl TryFrom<SearchParamsDto> for SearchQuery {
    type Error = bazaar_core::Error;

    /// Reports every bad parameter at once, the names parsed here included.
    fn try_from(p: SearchParamsDto) -> Result<Self, Self::Error> {
        let mut errors: Vec<FieldError> = Vec::new();
        let kind = p.kind.as_deref().and_then(|k| collect_errors(&mut errors, ProductKind::parse(k)));
        let sort = p.sort.as_deref().and_then(|s| collect_errors(&mut errors, SortOrder::parse(s)));
        let params = SearchParams {
            q: p.q,
            category: p.category,
            kind,
            price_min: p.price_min,
            price_max: p.price_max,
            sort,
            page: p.page,
            limit: p.limit,
        };
        SearchQuery::new_after(params, errors)
    }
}

/// The value, or `None` with its field errors moved into `errors`.
fn collect_errors<T>(errors: &mut Vec<FieldError>, result: bazaar_core::Result<T>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(bazaar_core::Error::Validation(fields)) => {
            errors.extend(fields);
            None
        }
        Err(other) => {
            errors.push(FieldError::new("query", other.to_string()));
            None
        }
    }
}

/// One facet value and its count.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FacetCountDto {
    /// Category slug or kind name.
    value: String,
    /// Matching products.
    count: u64,
}

impl From<FacetCount> for FacetCountDto {
    fn from(f: FacetCount) -> Self {
        Self { value: f.value, count: f.count }
    }
}

/// Facet counts over all matches (each facet ignores its own filter).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FacetsDto {
    /// Per category.
    categories: Vec<FacetCountDto>,
    /// Per kind.
    kinds: Vec<FacetCountDto>,
}

/// A page of search results.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProductPage {
    /// The products on this page.
    items: Vec<ProductDto>,
    /// Matches in all pages.
    total: u64,
    /// Page number from 1.
    page: u32,
    /// Page size used.
    limit: u32,
    /// Facet counts.
    facets: FacetsDto,
}

impl ProductPage {
    fn new(state: &AppState, r: &SearchResult) -> Self {
        Self {
            items: r.items.iter().map(|p| ProductDto::new(state, p.clone())).collect(),
            total: r.total,
            page: r.page,
            limit: r.limit,
            facets: FacetsDto {
                categories: r.facets.categories.iter().cloned().map(Into::into).collect(),
                kinds: r.facets.kinds.iter().cloned().map(Into::into).collect(),
            },
        }
    }
}

// ------------------------------------------------------------------ helpers

/// `"<version>"`, the product's entity tag.
fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).expect("digits and quotes are a valid header value")
}

/// A product response with its `ETag`.
fn product_response(state: &AppState, status: StatusCode, product: Product) -> Response {
    let tag = etag(product.version);
    (status, [(ETAG, tag)], Json(ProductDto::new(state, product))).into_response()
}

/// The version in `If-Match`: `3`, `"3"` or `W/"3"` (428 when absent).
fn if_match(headers: &HeaderMap) -> Result<u64, ApiError> {
    let value = headers.get(IF_MATCH).ok_or_else(|| ApiError::precondition_required("If-Match"))?;
    let digits = value.to_str().ok().and_then(|v| {
        let tag = v.strip_prefix("W/").unwrap_or(v);
        match tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(quoted) => Some(quoted),
            None if tag.len() == v.len() => Some(v),
            None => None,
        }
    });
    digits
        .filter(|d| (1..=19).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u64>().ok())
        .ok_or_else(|| ApiError::invalid("If-Match", "must be the product's version, as in its ETag"))
}

// ----------------------------------------------------------------- handlers

/// Searches approved products.
///
/// Repeated pages come from the catalog's search cache; their JSON is
/// rendered once per cached result ([`RenderedPages`](crate::pages::RenderedPages)).
#[utoipa::path(
    get,
    path = "/v1/products",
    tag = "catalog",
    params(SearchParamsDto),
    responses(
        (status = 200, description = "A page of approved products with facets", body = ProductPage),
        (status = 422, description = "Invalid parameter (details name it)", body = ErrorBody),
    )
)]
async fn search_products(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<SearchParamsDto>,
) -> Result<Response, ApiError> {
    let query = SearchQuery::try_from(params)?;
    let result = state.market.catalog.search_shared(&query).await?;
    let body = state.pages.get_or_render(result, |r| {
        serde_json::to_vec(&ProductPage::new(&state, r)).expect("a product page serializes").into()
    });
    Ok(([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response())
}

/// Creates a draft listing (vendors).
#[utoipa::path(
    post,
    path = "/v1/products",
    tag = "catalog",
    security(("bearer" = [])),
    request_body = CreateProductBody,
    responses(
        (status = 201, description = "The draft", body = ProductDto, headers(("ETag" = String, description = "The version"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Only vendors create products", body = ErrorBody),
        (status = 422, description = "Invalid fields (details name every one)", body = ErrorBody),
    )
)]
async fn create_product(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(body): ApiJson<CreateProductBody>,
) -> Result<Response, ApiError> {
    let product = state.market.catalog.create(&actor, body.into()).await?;
    Ok(product_response(&state, StatusCode::CREATED, product))
}

/// A product: approved ones for everyone, others for their vendor and admins.
#[utoipa::path(
    get,
    path = "/v1/products/{id}",
    tag = "catalog",
    params(("id" = Uuid, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = ProductDto, headers(("ETag" = String, description = "The version"))),
        (status = 401, description = "A bearer token was sent but is invalid", body = ErrorBody),
        (status = 404, description = "No such product, or not visible to the caller", body = ErrorBody),
    )
)]
async fn get_product(
    State(state): State<AppState>,
    MaybeAuth(actor): MaybeAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let product = state.market.catalog.get(actor.as_ref(), ProductId::from_uuid(id)).await?;
    Ok(product_response(&state, StatusCode::OK, product))
}

/// Edits the vendor's listing; an approved product goes back to draft. An empty patch changes nothing.
#[utoipa::path(
    patch,
    path = "/v1/products/{id}",
    tag = "catalog",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "Product id"),
        ("If-Match" = String, Header, description = "The version the edit is based on (its ETag): `3`, `\"3\"` or `W/\"3\"`", pattern = r#"^((W/)?"[0-9]{1,19}"|[0-9]{1,19})$"#),
    ),
    request_body = PatchProductBody,
    responses(
        (status = 200, description = "The edited product", body = ProductDto, headers(("ETag" = String, description = "The new version"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Not the product's vendor", body = ErrorBody),
        (status = 404, description = "No such product, or not visible to the caller", body = ErrorBody),
        (status = 409, description = "`version_mismatch` (stale If-Match) or `invalid_transition` (pending or suspended)", body = ErrorBody),
        (status = 422, description = "Invalid fields (details name every one)", body = ErrorBody),
        (status = 428, description = "If-Match is missing", body = ErrorBody),
    )
)]
async fn edit_product(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<PatchProductBody>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let product = state.market.catalog.edit(&actor, ProductId::from_uuid(id), expected, body.into()).await?;
    Ok(product_response(&state, StatusCode::OK, product))
}

/// Submits the vendor's draft for review.
#[utoipa::path(
    post,
    path = "/v1/products/{id}/submit",
    tag = "catalog",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id")),
    responses(
        (status = 200, description = "Now pending", body = ProductDto, headers(("ETag" = String, description = "The new version"))),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Not the product's vendor", body = ErrorBody),
        (status = 404, description = "No such product, or not visible to the caller", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: not a draft", body = ErrorBody),
    )
)]
async fn submit_product(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let product = state.market.catalog.submit(&actor, ProductId::from_uuid(id)).await?;
    Ok(product_response(&state, StatusCode::OK, product))
}

/// Approves a pending product (admins).
#[utoipa::path(
    post,
    path = "/v1/products/{id}/approve",
    tag = "moderation",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id")),
    responses(
        (status = 200, description = "Now approved", body = ProductDto, headers(("ETag" = String, description = "The new version"))),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: not pending", body = ErrorBody),
    )
)]
async fn approve_product(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let product = state.market.catalog.approve(&actor, ProductId::from_uuid(id)).await?;
    Ok(product_response(&state, StatusCode::OK, product))
}

/// Rejects a pending product with a reason (admins).
#[utoipa::path(
    post,
    path = "/v1/products/{id}/reject",
    tag = "moderation",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id")),
    request_body = RejectBody,
    responses(
        (status = 200, description = "Now rejected", body = ProductDto, headers(("ETag" = String, description = "The new version"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: not pending", body = ErrorBody),
        (status = 422, description = "`reason` blank or too long", body = ErrorBody),
    )
)]
async fn reject_product(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RejectBody>,
) -> Result<Response, ApiError> {
    let product = state.market.catalog.reject(&actor, ProductId::from_uuid(id), &body.reason).await?;
    Ok(product_response(&state, StatusCode::OK, product))
}

/// Takes an approved product down (admins).
#[utoipa::path(
    post,
    path = "/v1/products/{id}/suspend",
    tag = "moderation",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id")),
    responses(
        (status = 200, description = "Now suspended", body = ProductDto, headers(("ETag" = String, description = "The new version"))),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: not approved", body = ErrorBody),
    )
)]
async fn suspend_product(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let product = state.market.catalog.suspend(&actor, ProductId::from_uuid(id)).await?;
    Ok(product_response(&state, StatusCode::OK, product))
}

/// Puts a suspended product back up (admins).
#[utoipa::path(
    post,
    path = "/v1/products/{id}/reinstate",
    tag = "moderation",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id")),
    responses(
        (status = 200, description = "Approved again", body = ProductDto, headers(("ETag" = String, description = "The new version"))),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "Admins only", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: not suspended", body = ErrorBody),
    )
)]
async fn reinstate_product(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let product = state.market.catalog.reinstate(&actor, ProductId::from_uuid(id)).await?;
    Ok(product_response(&state, StatusCode::OK, product))
}

/// Reviews a product the caller bought (one review per buyer).
#[utoipa::path(
    post,
    path = "/v1/products/{id}/reviews",
    tag = "catalog",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Product id")),
    request_body = ReviewBody,
    responses(
        (status = 201, description = "The review", body = ReviewDto),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or invalid bearer token", body = ErrorBody),
        (status = 403, description = "`not_licensed` (never bought), `license_revoked` (refunded), or the product's own vendor", body = ErrorBody),
        (status = 404, description = "No such product, or not visible to the caller", body = ErrorBody),
        (status = 409, description = "Already reviewed (`conflict`), or the product is not approved (`invalid_transition`)", body = ErrorBody),
        (status = 422, description = "`rating` not 1 to 5, or `body` too long", body = ErrorBody),
    )
)]
async fn review_product(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<(StatusCode, Json<ReviewDto>), ApiError> {
    let input = NewReview { rating: body.rating, body: body.body };
    let review = state.market.catalog.add_review(&actor, ProductId::from_uuid(id), input).await?;
    Ok((StatusCode::CREATED, Json(review.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_accepts_bare_quoted_and_weak_versions() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(IF_MATCH, HeaderValue::from_static(v));
            if_match(&h)
        };
        assert_eq!(with("3").unwrap(), 3);
        assert_eq!(with("\"4\"").unwrap(), 4);
        assert_eq!(with("W/\"5\"").unwrap(), 5);
        assert_eq!(with("abc").unwrap_err().code, "validation");
        for bad in ["*", "+3", "W/3", "\"3", "3\"", "", "99999999999999999999"] {
            assert_eq!(with(bad).unwrap_err().code, "validation", "{bad}");
        }
        assert_eq!(if_match(&HeaderMap::new()).unwrap_err().status, StatusCode::PRECONDITION_REQUIRED);
    }

    #[test]
    fn search_parameters_report_every_bad_field() {
        let params = SearchParamsDto {
            kind: Some("robot".into()),
            sort: Some("best".into()),
            page: Some(0),
            ..SearchParamsDto::default()
        };
        let Err(bazaar_core::Error::Validation(fields)) = SearchQuery::try_from(params) else {
            panic!("expected a validation error")
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["kind", "sort", "page"]);
    }
}
