//! Conversions between the `bazaar.v1` messages and core types.
//!
//! Requests become core inputs with `TryFrom` (a malformed field is an
//! [`Error::Validation`] naming the proto field, so it reaches the client as
//! `INVALID_ARGUMENT` with a `BadRequest`); core results become messages
//! with `From`, or with a function when the message needs context the core
//! value does not carry (a license's status at `now`, a product's display
//! rating, an order's payment). Core types never go on the wire as they are.

use bazaar_core::catalog::{
    BillingInterval, FacetCount, Facets, Media, MediaKind, Pricing, Product, ProductKind, ProductStatus, SearchParams,
    SearchQuery, SearchResult, SortOrder,
};
use bazaar_core::clock::Timestamp;
use bazaar_core::error::FieldError;
use bazaar_core::ids::ProductId;
use bazaar_core::licensing::{
    Activation, ActivationOutcome, License, LicenseKind, LicenseStatus, Limits, Permissions, ValidationCode,
    ValidationResult,
};
use bazaar_core::money::Money;
use bazaar_core::notifications::{Channel, Notification, NotificationStatus, Template};
use bazaar_core::orders::{Order, OrderLine, OrderStatus, PlaceOrder, PlaceOrderItem};
use bazaar_core::payments::{IntentStatus, PaymentIntent};
use bazaar_core::{Error, Result};

use crate::pb;

/// A `google.protobuf.Timestamp` for a core instant.
pub fn timestamp(t: Timestamp) -> prost_types::Timestamp {
    // chrono encodes a leap second as nanos >= 1e9; protobuf allows at most 999_999_999.
    let nanos = t.timestamp_subsec_nanos().min(999_999_999);
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(nanos).unwrap_or(999_999_999) }
}

fn opt_timestamp(t: Option<Timestamp>) -> Option<prost_types::Timestamp> {
    t.map(timestamp)
}

// ---------------------------------------------------------------- money, pricing

impl From<Money> for pb::Money {
    fn from(m: Money) -> Self {
        Self { minor: m.minor(), currency: m.currency().code().to_owned() }
    }
}

impl From<BillingInterval> for pb::BillingInterval {
    fn from(i: BillingInterval) -> Self {
        match i {
            BillingInterval::Monthly => Self::Monthly,
            BillingInterval::Yearly => Self::Yearly,
        }
    }
}

impl From<Pricing> for pb::Pricing {
    fn from(p: Pricing) -> Self {
        use pb::pricing::{Free, OneTime, Pricing as Case, Subscription};
        let case = match p {
            Pricing::Free => Case::Free(Free {}),
            Pricing::OneTime { price } => Case::OneTime(OneTime { price: Some(price.into()) }),
            Pricing::Subscription { price, interval } => Case::Subscription(Subscription {
                price: Some(price.into()),
                interval: pb::BillingInterval::from(interval).into(),
            }),
        };
        Self { pricing: Some(case) }
    }
}

// ---------------------------------------------------------------- catalog

impl From<ProductKind> for pb::ProductKind {
    fn from(k: ProductKind) -> Self {
        match k {
            ProductKind::AiAgent => Self::AiAgent,
            ProductKind::N8nWorkflow => Self::N8nWorkflow,
            ProductKind::AutomationAsset => Self::AutomationAsset,
        }
    }
}

impl From<ProductStatus> for pb::ProductStatus {
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

impl From<Media> for pb::Media {
    fn from(m: Media) -> Self {
        let kind = match m.kind {
            MediaKind::Image => pb::MediaKind::Image,
            MediaKind::Video => pb::MediaKind::Video,
        };
        Self { kind: kind.into(), url: m.url }
    }
}

/// A product message; `rating` is its display rating under the catalog's prior.
pub fn product(p: Product, rating: f64) -> pb::Product {
    pb::Product {
        id: p.id.to_string(),
        vendor_id: p.vendor_id.to_string(),
        title: p.title,
        description: p.description,
        short_description: p.short_description,
        kind: pb::ProductKind::from(p.kind).into(),
        categories: p.categories,
        tags: p.tags,
        pricing: Some(p.pricing.into()),
        media: p.media.into_iter().map(Into::into).collect(),
        status: pb::ProductStatus::from(p.status).into(),
        stats: Some(pb::ProductStats {
            downloads: p.stats.downloads,
            rating_sum: p.stats.rating_sum,
            rating_count: p.stats.rating_count,
            rating,
        }),
        version: p.version,
        created_at: Some(timestamp(p.created_at)),
        updated_at: Some(timestamp(p.updated_at)),
    }
}

impl From<FacetCount> for pb::FacetCount {
    fn from(f: FacetCount) -> Self {
        Self { value: f.value, count: f.count }
    }
}

impl From<Facets> for pb::Facets {
    fn from(f: Facets) -> Self {
        Self {
            categories: f.categories.into_iter().map(Into::into).collect(),
            kinds: f.kinds.into_iter().map(Into::into).collect(),
        }
    }
}

/// A search response; `rating` gives each product's display rating.
pub fn search_result(r: SearchResult, rating: impl Fn(&Product) -> f64) -> pb::SearchProductsResponse {
    pb::SearchProductsResponse {
        items: r
            .items
            .into_iter()
            .map(|p| {
                let r = rating(&p);
                product(p, r)
            })
            .collect(),
        total: r.total,
        page: r.page,
        limit: r.limit,
        facets: Some(r.facets.into()),
    }
}

fn kind_filter(kind: i32) -> Result<Option<ProductKind>, FieldError> {
    match pb::ProductKind::try_from(kind) {
        Ok(pb::ProductKind::Unspecified) => Ok(None),
        Ok(pb::ProductKind::AiAgent) => Ok(Some(ProductKind::AiAgent)),
        Ok(pb::ProductKind::N8nWorkflow) => Ok(Some(ProductKind::N8nWorkflow)),
        Ok(pb::ProductKind::AutomationAsset) => Ok(Some(ProductKind::AutomationAsset)),
        Err(_) => Err(FieldError::new("kind", format!("unknown product kind {kind}"))),
    }
}

fn sort_order(sort: i32) -> Result<Option<SortOrder>, FieldError> {
    match pb::SortOrder::try_from(sort) {
        Ok(pb::SortOrder::Unspecified) => Ok(None),
        Ok(pb::SortOrder::Relevance) => Ok(Some(SortOrder::Relevance)),
        Ok(pb::SortOrder::Newest) => Ok(Some(SortOrder::Newest)),
        Ok(pb::SortOrder::PriceAsc) => Ok(Some(SortOrder::PriceAsc)),
        Ok(pb::SortOrder::PriceDesc) => Ok(Some(SortOrder::PriceDesc)),
        Ok(pb::SortOrder::Rating) => Ok(Some(SortOrder::Rating)),
        Ok(pb::SortOrder::Downloads) => Ok(Some(SortOrder::Downloads)),
        Err(_) => Err(FieldError::new("sort", format!("unknown sort order {sort}"))),
    }
}

impl TryFrom<pb::SearchProductsRequest> for SearchQuery {
    type Error = Error;

    /// The same validation as `GET /v1/products` (the core's
    /// [`SearchQuery::new`]), plus unknown enum values; every bad field is
    /// reported at once.
    fn try_from(r: pb::SearchProductsRequest) -> Result<Self> {
        let mut problems = Vec::new();
        let kind = kind_filter(r.kind).unwrap_or_else(|e| {
            problems.push(e);
            None
        });
        let sort = sort_order(r.sort).unwrap_or_else(|e| {
            problems.push(e);
            None
        });
        let params = SearchParams {
            q: r.q,
            category: r.category,
            kind,
            price_min: r.price_min,
            price_max: r.price_max,
            sort,
            page: r.page,
            limit: r.limit,
        };
        SearchQuery::new_after(params, problems)
    }
}

// ---------------------------------------------------------------- licensing

impl From<ValidationCode> for pb::ValidationCode {
    fn from(c: ValidationCode) -> Self {
        match c {
            ValidationCode::NotFound => Self::NotFound,
            ValidationCode::Revoked => Self::Revoked,
            ValidationCode::Suspended => Self::Suspended,
            ValidationCode::Expired => Self::Expired,
            ValidationCode::ActivationRequired => Self::ActivationRequired,
            ValidationCode::TooManyActivations => Self::TooManyActivations,
            ValidationCode::FingerprintMismatch => Self::FingerprintMismatch,
            ValidationCode::Valid => Self::Valid,
        }
    }
}

impl From<LicenseStatus> for pb::LicenseStatus {
    fn from(s: LicenseStatus) -> Self {
        match s {
            LicenseStatus::Active => Self::Active,
            LicenseStatus::Expired => Self::Expired,
            LicenseStatus::Suspended => Self::Suspended,
            LicenseStatus::Revoked => Self::Revoked,
        }
    }
}

impl From<ActivationOutcome> for pb::ActivationOutcome {
    fn from(o: ActivationOutcome) -> Self {
        match o {
            ActivationOutcome::Activated => Self::Activated,
            ActivationOutcome::AlreadyActive => Self::AlreadyActive,
        }
    }
}

impl From<Permissions> for pb::Permissions {
    fn from(p: Permissions) -> Self {
        Self {
            download: p.download,
            commercial_use: p.commercial_use,
            redistribution: p.redistribution,
            modification: p.modification,
        }
    }
}

impl From<Limits> for pb::Limits {
    fn from(l: Limits) -> Self {
        Self {
            max_downloads: l.max_downloads,
            max_activations: l.max_activations,
            expires_at: opt_timestamp(l.expires_at),
        }
    }
}

impl From<Activation> for pb::Activation {
    fn from(a: Activation) -> Self {
        Self { fingerprint: a.fingerprint.into(), activated_at: Some(timestamp(a.activated_at)) }
    }
}

/// A license message with its status as of `now`.
pub fn license(l: License, now: Timestamp) -> pb::License {
    let (kind, renews_at, ends_at) = match l.kind {
        LicenseKind::Perpetual => (pb::LicenseKind::Perpetual, None, None),
        LicenseKind::Subscription { renews_at } => (pb::LicenseKind::Subscription, Some(renews_at), None),
        LicenseKind::Trial { ends_at } => (pb::LicenseKind::Trial, None, Some(ends_at)),
    };
    pb::License {
        status: pb::LicenseStatus::from(l.status(now)).into(),
        expires_at: opt_timestamp(l.expires_at()),
        id: l.id.to_string(),
        key: l.key,
        buyer_id: l.buyer_id.to_string(),
        product_id: l.product_id.to_string(),
        order_id: l.order_id.to_string(),
        kind: kind.into(),
        renews_at: opt_timestamp(renews_at),
        ends_at: opt_timestamp(ends_at),
        permissions: Some(l.permissions.into()),
        limits: Some(l.limits.into()),
        downloads_used: l.downloads_used,
        activations: l.activations.into_iter().map(Into::into).collect(),
        revoked_at: opt_timestamp(l.revoked_at),
        suspended_at: opt_timestamp(l.suspended_at),
        created_at: Some(timestamp(l.created_at)),
        updated_at: Some(timestamp(l.updated_at)),
        version: l.version,
    }
}

/// A validation response; the license's status is as of `now`.
pub fn validation(r: ValidationResult, now: Timestamp) -> pb::ValidateLicenseResponse {
    pb::ValidateLicenseResponse {
        valid: r.valid,
        code: pb::ValidationCode::from(r.code).into(),
        license: r.license.map(|l| license(l, now)),
    }
}

// ---------------------------------------------------------------- orders

impl From<OrderStatus> for pb::OrderStatus {
    fn from(s: OrderStatus) -> Self {
        match s {
            OrderStatus::PendingPayment => Self::PendingPayment,
            OrderStatus::Paid => Self::Paid,
            OrderStatus::Fulfilled => Self::Fulfilled,
            OrderStatus::Refunded => Self::Refunded,
            OrderStatus::Canceled => Self::Canceled,
        }
    }
}

impl From<IntentStatus> for pb::PaymentStatus {
    fn from(s: IntentStatus) -> Self {
        match s {
            IntentStatus::RequiresPaymentMethod => Self::RequiresPaymentMethod,
            IntentStatus::RequiresConfirmation => Self::RequiresConfirmation,
            IntentStatus::RequiresAction => Self::RequiresAction,
            IntentStatus::Processing => Self::Processing,
            IntentStatus::Succeeded => Self::Succeeded,
            IntentStatus::Canceled => Self::Canceled,
        }
    }
}

impl From<&PaymentIntent> for pb::Payment {
    fn from(p: &PaymentIntent) -> Self {
        Self { id: p.id.to_string(), status: pb::PaymentStatus::from(p.status).into() }
    }
}

impl From<OrderLine> for pb::OrderLine {
    fn from(l: OrderLine) -> Self {
        Self {
            product_id: l.product_id.to_string(),
            vendor_id: l.vendor_id.to_string(),
            title: l.title,
            pricing: Some(l.pricing.into()),
            unit_price: Some(l.unit_price.into()),
            platform_fee: Some(l.platform_fee.into()),
            vendor_net: Some(l.vendor_net.into()),
        }
    }
}

/// An order message with its payment intent, if it has one.
pub fn order(o: Order, payment: Option<&PaymentIntent>) -> pb::Order {
    pb::Order {
        id: o.id.to_string(),
        buyer_id: o.buyer_id.to_string(),
        lines: o.lines.into_iter().map(Into::into).collect(),
        total: Some(o.total.into()),
        status: pb::OrderStatus::from(o.status).into(),
        payment: payment.map(Into::into),
        created_at: Some(timestamp(o.created_at)),
        updated_at: Some(timestamp(o.updated_at)),
    }
}

impl TryFrom<&pb::PlaceOrderRequest> for PlaceOrder {
    type Error = Error;

    /// Parses every `items[i].product_id`, reporting every bad one at once
    /// (the core then checks count, repeats and purchasability).
    fn try_from(r: &pb::PlaceOrderRequest) -> Result<Self> {
        let mut problems = Vec::new();
        let mut items = Vec::with_capacity(r.items.len());
        for (i, item) in r.items.iter().enumerate() {
            match ProductId::parse(&format!("items[{i}].product_id"), &item.product_id) {
                Ok(product_id) => items.push(PlaceOrderItem { product_id }),
                Err(Error::Validation(fields)) => problems.extend(fields),
                Err(other) => return Err(other),
            }
        }
        if problems.is_empty() { Ok(PlaceOrder { items }) } else { Err(Error::Validation(problems)) }
    }
}

// ---------------------------------------------------------------- notifications

impl From<Channel> for pb::Channel {
    fn from(c: Channel) -> Self {
        match c {
            Channel::InApp => Self::InApp,
            Channel::Email => Self::Email,
            Channel::Webhook => Self::Webhook,
        }
    }
}

impl From<Template> for pb::Template {
    fn from(t: Template) -> Self {
        match t {
            Template::OrderPlaced => Self::OrderPlaced,
            Template::LicenseIssued => Self::LicenseIssued,
            Template::OrderRefunded => Self::OrderRefunded,
            Template::ProductApproved => Self::ProductApproved,
            Template::ProductRejected => Self::ProductRejected,
        }
    }
}

impl From<NotificationStatus> for pb::NotificationStatus {
    fn from(s: NotificationStatus) -> Self {
        match s {
            NotificationStatus::Queued => Self::Queued,
            NotificationStatus::Sent => Self::Sent,
            NotificationStatus::Failed => Self::Failed,
        }
    }
}

impl From<Notification> for pb::Notification {
    /// The message; the internal de-duplication key stays behind.
    fn from(n: Notification) -> Self {
        Self {
            id: n.id.to_string(),
            user_id: n.user_id.to_string(),
            order_id: n.order_id.map(|id| id.to_string()),
            channel: pb::Channel::from(n.channel).into(),
            template: pb::Template::from(n.template).into(),
            body: n.body,
            status: pb::NotificationStatus::from(n.status).into(),
            attempts: n.attempts,
            created_at: Some(timestamp(n.created_at)),
            sent_at: opt_timestamp(n.sent_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use bazaar_core::money::Currency;

    use super::*;

    fn fields(e: Error) -> Vec<String> {
        match e {
            Error::Validation(f) => f.into_iter().map(|f: FieldError| f.field).collect(),
            other => panic!("expected validation, got {other:?}"),
        }
    }

    #[test]
    fn timestamps_keep_seconds_and_nanos() {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(timestamp(t), prost_types::Timestamp { seconds: 1_700_000_000, nanos: 123_456_789 });
    }

    #[test]
    fn pricing_is_a_oneof_with_integer_money() {
        let p: pb::Pricing = Pricing::Subscription {
            price: Money::new(999, Currency::parse("JPY").unwrap()),
            interval: BillingInterval::Yearly,
        }
        .into();
        let Some(pb::pricing::Pricing::Subscription(s)) = p.pricing else { panic!("{p:?}") };
        assert_eq!(s.price, Some(pb::Money { minor: 999, currency: "JPY".into() }));
        assert_eq!(s.interval(), pb::BillingInterval::Yearly);
        assert!(matches!(pb::Pricing::from(Pricing::Free).pricing, Some(pb::pricing::Pricing::Free(_))));
    }

    #[test]
    fn search_requests_map_every_filter() {
        let q = SearchQuery::try_from(pb::SearchProductsRequest {
            q: Some("  Agent  ".into()),
            category: Some("Sales".into()),
            kind: pb::ProductKind::N8nWorkflow.into(),
            price_min: Some(100),
            price_max: Some(5_000),
            sort: pb::SortOrder::PriceDesc.into(),
            page: Some(2),
            limit: Some(500),
        })
        .unwrap();
        assert_eq!((q.q(), q.category(), q.kind()), (Some("Agent"), Some("sales"), Some(ProductKind::N8nWorkflow)));
        assert_eq!((q.price_min(), q.price_max(), q.sort()), (Some(100), Some(5_000), SortOrder::PriceDesc));
        assert_eq!((q.page().page(), q.page().limit()), (2, 100), "limit is capped like HTTP");
        let q = SearchQuery::try_from(pb::SearchProductsRequest::default()).unwrap();
        assert_eq!((q.kind(), q.sort(), q.page().page(), q.page().limit()), (None, SortOrder::Newest, 1, 20));
    }

    #[test]
    fn bad_search_requests_name_every_field() {
        let err = SearchQuery::try_from(pb::SearchProductsRequest {
            kind: 42,
            sort: -1,
            price_min: Some(-5),
            page: Some(0),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(fields(err), ["kind", "sort", "price_min", "page"]);
    }

    #[test]
    fn place_order_requests_name_each_bad_id() {
        let good = ProductId::new();
        let req = pb::PlaceOrderRequest {
            items: vec![
                pb::OrderItem { product_id: good.to_string() },
                pb::OrderItem { product_id: "nope".into() },
                pb::OrderItem { product_id: String::new() },
            ],
            idempotency_key: String::new(),
        };
        assert_eq!(fields(PlaceOrder::try_from(&req).unwrap_err()), ["items[1].product_id", "items[2].product_id"]);
        let ok = pb::PlaceOrderRequest { items: req.items[..1].to_vec(), idempotency_key: String::new() };
        assert_eq!(PlaceOrder::try_from(&ok).unwrap(), PlaceOrder::new([good]));
    }
}
