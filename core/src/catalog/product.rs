//! The product aggregate and its validated inputs ([`NewProduct`],
//! [`ProductPatch`]).
//!
//! Validation reports every failing field at once, so a form can show all
//! of its errors after one round trip. Text limits count Unicode scalar
//! values (`char`s) of the trimmed text, and trimmed text is what is stored.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::moderation::ProductStatus;
use crate::auth::{Action, Actor, Resource, can};
use crate::clock::Timestamp;
use crate::error::{Error, FieldError, Result};
use crate::ids::{ProductId, UserId};
use crate::pricing::Pricing;

/// Title length bounds, in characters.
pub const TITLE_CHARS: std::ops::RangeInclusive<usize> = 3..=120;
/// Longest short description, in characters.
pub const MAX_SHORT_DESCRIPTION_CHARS: usize = 280;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 20_000;
/// How many categories a product has.
pub const CATEGORY_COUNT: std::ops::RangeInclusive<usize> = 1..=5;
/// Longest category slug, in characters.
pub const MAX_CATEGORY_CHARS: usize = 64;
/// Most tags on a product.
pub const MAX_TAGS: usize = 10;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 32;
/// Most media items on a product.
pub const MAX_MEDIA: usize = 20;
/// Longest media URL, in bytes.
pub const MAX_MEDIA_URL_BYTES: usize = 2_048;

/// What is being sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductKind {
    /// An AI agent.
    AiAgent,
    /// An n8n workflow.
    N8nWorkflow,
    /// Any other automation asset (scripts, templates, prompts).
    AutomationAsset,
}

impl ProductKind {
    /// Every kind, in a stable order.
    pub const ALL: [ProductKind; 3] = [Self::AiAgent, Self::N8nWorkflow, Self::AutomationAsset];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AiAgent => "ai_agent",
            Self::N8nWorkflow => "n8n_workflow",
            Self::AutomationAsset => "automation_asset",
        }
    }

    /// Parses a snake_case kind name.
    ///
    /// # Errors
    /// [`Error::Validation`] on `kind` for anything else.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::invalid("kind", "must be ai_agent, n8n_workflow or automation_asset"))
    }
}

impl fmt::Display for ProductKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of a media item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A screenshot or illustration.
    Image,
    /// A demo video.
    Video,
}

/// A screenshot or video shown on the listing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Media {
    /// Image or video.
    pub kind: MediaKind,
    /// An absolute `https://` URL.
    pub url: String,
}

/// Counters kept exact as integers; display values are derived from them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProductStats {
    /// Completed downloads.
    pub downloads: u64,
    /// Sum of all review ratings (each 1..=5).
    pub rating_sum: u64,
    /// Number of reviews.
    pub rating_count: u64,
}

/// A listing in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Id.
    pub id: ProductId,
    /// The vendor who owns it.
    pub vendor_id: UserId,
    /// 3..=120 characters.
    pub title: String,
    /// Up to 20 000 characters.
    pub description: String,
    /// Up to 280 characters, for cards and search results.
    pub short_description: String,
    /// What is being sold.
    pub kind: ProductKind,
    /// 1..=5 lowercase slugs.
    pub categories: Vec<String>,
    /// Up to 10 tags of up to 32 characters.
    pub tags: Vec<String>,
    /// Price terms.
    pub pricing: Pricing,
    /// Screenshots and videos.
    pub media: Vec<Media>,
    /// Moderation status.
    pub status: ProductStatus,
    /// Exact counters; changed only by the repository's atomic increments.
    pub stats: ProductStats,
    /// Optimistic-concurrency version: 1 on creation, +1 on every change of
    /// the listing or its status (stats increments do not count).
    pub version: u64,
    /// When it was created.
    pub created_at: Timestamp,
    /// When the listing or status last changed.
    pub updated_at: Timestamp,
}

impl Product {
    /// A new draft at version 1 built from a valid `input`.
    ///
    /// # Errors
    /// [`Error::Validation`] naming every failing field of `input`.
    pub fn create(id: ProductId, vendor_id: UserId, input: NewProduct, now: Timestamp) -> Result<Self> {
        input.validate()?;
        Ok(Self {
            id,
            vendor_id,
            title: input.title.trim().to_owned(),
            description: input.description.trim().to_owned(),
            short_description: input.short_description.trim().to_owned(),
            kind: input.kind,
            categories: input.categories,
            tags: normalize_tags(&input.tags),
            pricing: input.pricing,
            media: input.media,
            status: ProductStatus::Draft,
            stats: ProductStats::default(),
            version: 1,
            created_at: now,
            updated_at: now,
        })
    }

    /// Whether buyers can find and buy it: only when approved.
    pub fn is_purchasable(&self) -> bool {
        self.status == ProductStatus::Approved
    }

    /// Whether `search` may return it; same rule as [`Product::is_purchasable`].
    pub fn is_searchable(&self) -> bool {
        self.is_purchasable()
    }

    /// Whether `actor` (or an anonymous caller) may see it and what belongs
    /// to it: everyone once approved, otherwise its vendor and admins.
    pub fn is_visible_to(&self, actor: Option<&Actor>) -> bool {
        self.status == ProductStatus::Approved
            || actor.is_some_and(|a| {
                can(a, Action::ViewUnpublishedProduct, &Resource::Product { vendor_id: self.vendor_id })
            })
    }
}

/// What a vendor sends to create a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProduct {
    /// 3..=120 characters.
    pub title: String,
    /// Up to 20 000 characters.
    #[serde(default)]
    pub description: String,
    /// Up to 280 characters.
    #[serde(default)]
    pub short_description: String,
    /// What is being sold.
    pub kind: ProductKind,
    /// 1..=5 lowercase slugs (`[a-z0-9]+(-[a-z0-9]+)*`, ≤ 64 chars), no duplicates.
    pub categories: Vec<String>,
    /// Up to 10 non-blank tags of up to 32 characters; a tag given again
    /// (ignoring case and surrounding white space) counts once.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Price terms; a paid price must be more than zero.
    pub pricing: Pricing,
    /// Up to 20 items with `https://` URLs.
    #[serde(default)]
    pub media: Vec<Media>,
}

impl NewProduct {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::Validation`] listing every failing field (not just the first).
    pub fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        check_title(&self.title, &mut errors);
        check_short_description(&self.short_description, &mut errors);
        check_description(&self.description, &mut errors);
        check_categories(&self.categories, &mut errors);
        check_tags(&self.tags, &mut errors);
        self.pricing.check("pricing", &mut errors);
        check_media(&self.media, &mut errors);
        finish(errors)
    }
}

/// A partial update of a listing: `None` leaves a field as it is.
///
/// Status and stats are not editable here: status moves only through
/// moderation, stats only through the repository's increments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductPatch {
    /// New title.
    #[serde(default)]
    pub title: Option<String>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New short description.
    #[serde(default)]
    pub short_description: Option<String>,
    /// New kind.
    #[serde(default)]
    pub kind: Option<ProductKind>,
    /// New categories (replaces the list).
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    /// New tags (replaces the list).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// New pricing.
    #[serde(default)]
    pub pricing: Option<Pricing>,
    /// New media (replaces the list).
    #[serde(default)]
    pub media: Option<Vec<Media>>,
}

impl ProductPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Checks every field that is present, with the same rules as
    /// [`NewProduct::validate`]. An empty patch is valid: it changes
    /// nothing (see [`CatalogService::edit`](super::CatalogService::edit)).
    ///
    /// # Errors
    /// [`Error::Validation`] listing every failing field.
    pub fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        if let Some(t) = &self.title {
            check_title(t, &mut errors);
        }
        if let Some(s) = &self.short_description {
            check_short_description(s, &mut errors);
        }
        if let Some(d) = &self.description {
            check_description(d, &mut errors);
        }
        if let Some(c) = &self.categories {
            check_categories(c, &mut errors);
        }
        if let Some(t) = &self.tags {
            check_tags(t, &mut errors);
        }
        if let Some(p) = &self.pricing {
            p.check("pricing", &mut errors);
        }
        if let Some(m) = &self.media {
            check_media(m, &mut errors);
        }
        finish(errors)
    }

    /// Validates the patch and writes its fields into `product`, leaving
    /// status, version and timestamps to the caller.
    ///
    /// # Errors
    /// [`Error::Validation`] listing every failing field; `product` is then
    /// unchanged.
    pub fn apply_to(&self, product: &mut Product) -> Result<()> {
        self.validate()?;
        if let Some(t) = &self.title {
            product.title = t.trim().to_owned();
        }
        if let Some(d) = &self.description {
            product.description = d.trim().to_owned();
        }
        if let Some(s) = &self.short_description {
            product.short_description = s.trim().to_owned();
        }
        if let Some(k) = self.kind {
            product.kind = k;
        }
        if let Some(c) = &self.categories {
            product.categories.clone_from(c);
        }
        if let Some(t) = &self.tags {
            product.tags = normalize_tags(t);
        }
        if let Some(p) = self.pricing {
            product.pricing = p;
        }
        if let Some(m) = &self.media {
            product.media.clone_from(m);
        }
        Ok(())
    }
}

fn finish(errors: Vec<FieldError>) -> Result<()> {
    if errors.is_empty() { Ok(()) } else { Err(Error::Validation(errors)) }
}

fn chars(s: &str) -> usize {
    s.trim().chars().count()
}

fn check_title(title: &str, errors: &mut Vec<FieldError>) {
    let n = chars(title);
    if !TITLE_CHARS.contains(&n) {
        errors.push(FieldError::new(
            "title",
            format!("must be {} to {} characters", TITLE_CHARS.start(), TITLE_CHARS.end()),
        ));
    }
}

fn check_short_description(s: &str, errors: &mut Vec<FieldError>) {
    if chars(s) > MAX_SHORT_DESCRIPTION_CHARS {
        errors.push(FieldError::new(
            "short_description",
            format!("must be at most {MAX_SHORT_DESCRIPTION_CHARS} characters"),
        ));
    }
}

fn check_description(s: &str, errors: &mut Vec<FieldError>) {
    if chars(s) > MAX_DESCRIPTION_CHARS {
        errors.push(FieldError::new("description", format!("must be at most {MAX_DESCRIPTION_CHARS} characters")));
    }
}

/// Whether `s` is a lowercase slug: `[a-z0-9]+(-[a-z0-9]+)*`.
pub(crate) fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_CATEGORY_CHARS
        && s.split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

fn check_categories(categories: &[String], errors: &mut Vec<FieldError>) {
    if !CATEGORY_COUNT.contains(&categories.len()) {
        errors.push(FieldError::new(
            "categories",
            format!("must have {} to {} entries", CATEGORY_COUNT.start(), CATEGORY_COUNT.end()),
        ));
    }
    let mut seen = HashSet::new();
    for (i, c) in categories.iter().enumerate() {
        if !is_slug(c) {
            errors.push(FieldError::new(
                format!("categories[{i}]"),
                format!(
                    "must be a lowercase slug (a-z, 0-9, single hyphens) of at most {MAX_CATEGORY_CHARS} characters"
                ),
            ));
        } else if !seen.insert(c.as_str()) {
            errors.push(FieldError::new(format!("categories[{i}]"), "is a duplicate"));
        }
    }
}

fn check_tags(tags: &[String], errors: &mut Vec<FieldError>) {
    if tags.len() > MAX_TAGS {
        errors.push(FieldError::new("tags", format!("must have at most {MAX_TAGS} entries")));
    }
    for (i, t) in tags.iter().enumerate() {
        let n = chars(t);
        if n == 0 || n > MAX_TAG_CHARS {
            errors.push(FieldError::new(format!("tags[{i}]"), format!("must be 1 to {MAX_TAG_CHARS} characters")));
        }
    }
}

/// Tags as stored: trimmed, each once ignoring case, the first spelling
/// kept. Tags are a set, so a repeat is dropped rather than refused (as a
/// webhook's repeated event is): two spellings that differ only in case or
/// white space are easy to send by accident and mean the same thing.
fn normalize_tags(tags: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    tags.iter().map(|t| t.trim()).filter(|t| seen.insert(t.to_lowercase())).map(str::to_owned).collect()
}

fn check_media(media: &[Media], errors: &mut Vec<FieldError>) {
    if media.len() > MAX_MEDIA {
        errors.push(FieldError::new("media", format!("must have at most {MAX_MEDIA} entries")));
    }
    for (i, m) in media.iter().enumerate() {
        if !is_https_url(&m.url) {
            errors.push(FieldError::new(
                format!("media[{i}].url"),
                format!(
                    "must be an absolute https:// URL with a host name, of at most {MAX_MEDIA_URL_BYTES} visible ASCII characters"
                ),
            ));
        }
    }
}

/// A cheap structural check: `https://`, a host name of letters, digits
/// and hyphens in dot-separated labels, an optional port, then visible
/// ASCII (a URL percent-encodes everything else), so no white space,
/// credentials or bracketed literals. The transport or a media proxy may
/// check more (reachability, content type); the core only refuses what can
/// never be right.
fn is_https_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
    let label = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let port_ok =
        authority.len() == host.len() || (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit());
    url.len() <= MAX_MEDIA_URL_BYTES
        && host.split('.').all(label)
        && port_ok
        && url.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{Currency, Money};

    fn valid() -> NewProduct {
        crate::catalog::fixtures::new_product()
    }

    fn fields(err: Error) -> Vec<String> {
        match err {
            Error::Validation(f) => f.into_iter().map(|f| f.field).collect(),
            other => panic!("expected validation, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_input_creates_a_draft_at_version_one() {
        let now = chrono::Utc::now();
        let mut input = valid();
        input.title = "  Inbox triage agent  ".into();
        let p = Product::create(ProductId::new(), UserId::new(), input, now).unwrap();
        assert_eq!((p.status, p.version, p.stats), (ProductStatus::Draft, 1, ProductStats::default()));
        assert_eq!(p.title, "Inbox triage agent");
        assert!(!p.is_purchasable());
    }

    #[test]
    fn every_failing_field_is_reported_at_once() {
        let input = NewProduct {
            title: "ab".into(),
            description: "d".repeat(20_001),
            short_description: "s".repeat(281),
            kind: ProductKind::N8nWorkflow,
            categories: vec!["Email".into(), "ok".into(), "ok".into(), "a--b".into(), "x".into(), "y".into()],
            tags: (0..11).map(|i| format!("t{i}")).chain(["".into(), "T1".into(), "x".repeat(33)]).collect(),
            pricing: Pricing::OneTime { price: Money::new(0, Currency::USD) },
            media: vec![
                Media { kind: MediaKind::Image, url: "http://insecure.example.com/a.png".into() },
                Media { kind: MediaKind::Video, url: "https://ok.example.com/v.mp4".into() },
                Media { kind: MediaKind::Video, url: "https:// spaces.example.com".into() },
            ],
        };
        let got = fields(input.validate().unwrap_err());
        let want = [
            "title",
            "short_description",
            "description",
            "categories",
            "categories[0]",
            "categories[2]",
            "categories[3]",
            "tags",
            "tags[11]",
            "tags[13]",
            "pricing.price.minor",
            "media[0].url",
            "media[2].url",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn bounds_are_inclusive_and_count_characters() {
        let mut input = valid();
        input.title = "é".repeat(120);
        input.short_description = "ß".repeat(280);
        input.description = "x".repeat(20_000);
        input.categories = (1..=5).map(|i| format!("cat-{i}")).collect();
        input.tags = (0..10).map(|i| format!("{i:0>32}")).collect();
        input.pricing = Pricing::Free;
        input.media = Vec::new();
        input.validate().unwrap();
        input.title = "abc".into();
        input.validate().unwrap();
        input.categories = Vec::new();
        assert_eq!(fields(input.validate().unwrap_err()), ["categories"]);
    }

    #[test]
    fn slugs_are_strict() {
        for ok in ["a", "ai", "n8n", "lead-gen", "a1-b2-c3"] {
            assert!(is_slug(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "A", "a b", "a_b", "é", &"a".repeat(65)] {
            assert!(!is_slug(bad), "{bad}");
        }
    }

    #[test]
    fn patches_validate_only_present_fields_and_apply() {
        assert!(ProductPatch::default().validate().is_ok());
        let bad = ProductPatch { title: Some("x".into()), tags: Some(vec![String::new()]), ..Default::default() };
        assert_eq!(fields(bad.validate().unwrap_err()), ["title", "tags[0]"]);

        let mut p = Product::create(ProductId::new(), UserId::new(), valid(), chrono::Utc::now()).unwrap();
        let before = p.clone();
        assert!(bad.apply_to(&mut p).is_err());
        assert_eq!(p, before);
        let patch =
            ProductPatch { title: Some(" New title ".into()), pricing: Some(Pricing::Free), ..Default::default() };
        patch.apply_to(&mut p).unwrap();
        assert_eq!((p.title.as_str(), p.pricing), ("New title", Pricing::Free));
        assert_eq!(p.categories, before.categories);
    }

    #[test]
    fn media_urls_name_a_host() {
        for good in [
            "https://cdn.example.com/a.png",
            "https://cdn.example.com",
            "https://cdn-1.example.com:8443/v.mp4?t=1#start",
            "https://localhost/a%20b.png",
        ] {
            assert!(is_https_url(good), "{good}");
        }
        let long = format!("https://cdn.example.com/{}", "a".repeat(MAX_MEDIA_URL_BYTES));
        for bad in [
            "http://cdn.example.com/a.png",
            "https://",
            "https://.example.com/",
            "https://cdn..example.com/",
            "https://a*b.example.com/",
            "https://[::1]/a.png",
            "https://a[b/",
            "https://user@cdn.example.com/",
            "https://cdn.example.com:/",
            "https://cdn.example.com:123456/",
            "https://cdn.example.com:80a/",
            "https://cdn.example.com/a b",
            "https://cdn.example.com/\u{7f}",
            long.as_str(),
        ] {
            assert!(!is_https_url(bad), "{bad}");
        }
    }

    #[test]
    fn tags_are_a_set_ignoring_case_and_white_space() {
        let mut input = valid();
        input.tags = vec![" n8n ".into(), "Email".into(), "N8N".into(), "email\t".into(), "crm".into()];
        let p = Product::create(ProductId::new(), UserId::new(), input, chrono::Utc::now()).unwrap();
        assert_eq!(p.tags, ["n8n", "Email", "crm"], "the first spelling of each is kept, trimmed");

        let mut p = p;
        let patch = ProductPatch { tags: Some(vec!["\u{1}".into(), " \u{1}\n".into()]), ..Default::default() };
        patch.apply_to(&mut p).unwrap();
        assert_eq!(p.tags, ["\u{1}"]);

        // The count is of what was sent: eleven with repeats are still too many.
        let mut input = valid();
        input.tags = (0..11).map(|i| format!("t{}", i % 2)).collect();
        assert_eq!(fields(input.validate().unwrap_err()), ["tags"]);
    }

    #[test]
    fn kinds_round_trip_as_snake_case() {
        for k in ProductKind::ALL {
            assert_eq!(ProductKind::parse(k.as_str()).unwrap(), k);
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(k.as_str()));
        }
        assert!(ProductKind::parse("AiAgent").is_err());
    }
}
