//! Catalog search: the validated [`SearchQuery`], the [`SearchResult`] shape
//! and [`apply`], the pure reference implementation every adapter must
//! reproduce exactly (the contract suite compares adapters against it).
//!
//! # Semantics
//! 1. **Visibility.** Only products with status `approved` are considered.
//! 2. **Text.** `q` is trimmed; blank means "no text filter". Otherwise it is
//!    split on Unicode whitespace into terms, each lower-cased with Rust's
//!    `str::to_lowercase`. A product matches when *every* term is a substring
//!    of the lower-cased title, of at least one lower-cased tag, or of the
//!    lower-cased description (terms may match in different fields). The
//!    short description is not searched.
//! 3. **Relevance.** Score = Σ over terms of `3` if the term is in the title
//!    `+ 2` if it is in at least one tag `+ 1` if it is in the description.
//!    A repeated term counts each time it appears in `q`.
//! 4. **Filters.** `category`: the product's categories contain it exactly.
//!    `kind`: equal. `price_min` / `price_max`: inclusive bounds on the price
//!    in minor units, where free is 0; the currency is ignored (a catalog
//!    that mixes currencies should filter per currency at the transport).
//!    A range whose `price_max` is below its `price_min` matches nothing.
//! 5. **Sort.** `relevance` (score desc; the default when `q` is non-blank),
//!    `newest` (`created_at` desc; the default otherwise), `price_asc` /
//!    `price_desc` (price in minor units, free = 0), `rating` (display
//!    rating with [`RatingPrior::DEFAULT`], i.e. `(15 + rating_sum) / (5 +
//!    rating_count)`, desc), `downloads` (desc). Every sort breaks ties by
//!    `created_at` desc, then `id` desc (UUIDv7: later ids are newer).
//!    `relevance` without a text query scores everything 0, so it equals
//!    `newest`.
//! 6. **Paging.** `total` counts every product matching all filters; `items`
//!    is the slice `[(page-1)·limit, page·limit)` of the sorted matches;
//!    a page past the end is empty (with the real `total`). `limit` defaults
//!    to 20 and values above 100 are capped to 100 (reported back in
//!    [`SearchResult::limit`]); `page` defaults to 1.
//! 7. **Facets** ignore paging and are computed over approved products with
//!    every filter applied *except the facet's own dimension*: the category
//!    facet ignores `category`, the kind facet ignores `kind` (as most stores
//!    do, so picking one category still shows the others' counts). Each
//!    product counts once under each of its categories. Only non-zero counts
//!    are listed, ordered by count desc, then value asc.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::product::{Product, ProductKind, is_slug};
use super::rating::RatingPrior;
use crate::error::{Error, FieldError, Result};
use crate::page::{DEFAULT_LIMIT, PageRequest};

/// Longest accepted text query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// Result orderings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    /// Best text match first.
    Relevance,
    /// Most recently created first.
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

impl SortOrder {
    /// Every order.
    pub const ALL: [SortOrder; 6] =
        [Self::Relevance, Self::Newest, Self::PriceAsc, Self::PriceDesc, Self::Rating, Self::Downloads];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Relevance => "relevance",
            Self::Newest => "newest",
            Self::PriceAsc => "price_asc",
            Self::PriceDesc => "price_desc",
            Self::Rating => "rating",
            Self::Downloads => "downloads",
        }
    }

    /// Parses a snake_case name.
    ///
    /// # Errors
    /// [`Error::Validation`] on `sort` for anything else.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s).ok_or_else(|| {
            Error::invalid("sort", "must be relevance, newest, price_asc, price_desc, rating or downloads")
        })
    }
}

impl fmt::Display for SortOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Raw search parameters as a transport receives them (`?q&category&…`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchParams {
    /// Free text.
    #[serde(default)]
    pub q: Option<String>,
    /// A category slug.
    #[serde(default)]
    pub category: Option<String>,
    /// A product kind.
    #[serde(default)]
    pub kind: Option<ProductKind>,
    /// Inclusive lower price bound, minor units.
    #[serde(default)]
    pub price_min: Option<i64>,
    /// Inclusive upper price bound, minor units.
    #[serde(default)]
    pub price_max: Option<i64>,
    /// Ordering.
    #[serde(default)]
    pub sort: Option<SortOrder>,
    /// Page from 1.
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A validated search; see the module docs for what each part means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchQuery {
    q: Option<String>,
    terms: Vec<String>,
    category: Option<String>,
    kind: Option<ProductKind>,
    price_min: Option<i64>,
    price_max: Option<i64>,
    sort: SortOrder,
    page: PageRequest,
}

impl SearchQuery {
    /// Validates `params`.
    ///
    /// # Errors
    /// [`Error::Validation`] naming every failing field: `q` longer than 200
    /// characters; `category` not a slug (it is trimmed and lower-cased
    /// first); negative `price_min`/`price_max`;
    /// `page` 0; `limit` 0. A `limit` over 100 is capped, not refused.
    pub fn new(params: SearchParams) -> Result<Self> {
        Self::new_after(params, Vec::new())
    }

    /// [`new`](Self::new) for a transport that already found `problems` of
    /// its own while reading the parameters (an unknown `kind` or `sort`
    /// name): every problem is reported at once, the transport's first.
    ///
    /// # Errors
    /// [`Error::Validation`] naming `problems` and every field [`new`](Self::new) refuses.
    pub fn new_after(params: SearchParams, problems: Vec<FieldError>) -> Result<Self> {
        let mut errors = problems;
        let q = params.q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
        if q.as_ref().is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
            errors.push(FieldError::new("q", format!("must be at most {MAX_QUERY_CHARS} characters")));
        }
        let category = params.category.map(|c| c.trim().to_lowercase()).filter(|c| !c.is_empty());
        if category.as_ref().is_some_and(|c| !is_slug(c)) {
            errors.push(FieldError::new("category", "must be a category slug"));
        }
        for (field, v) in [("price_min", params.price_min), ("price_max", params.price_max)] {
            if v.is_some_and(|v| v < 0) {
                errors.push(FieldError::new(field, "must not be negative"));
            }
        }
        let page = match PageRequest::new(params.page.unwrap_or(1), params.limit.unwrap_or(DEFAULT_LIMIT)) {
            Ok(p) => Some(p),
            Err(Error::Validation(f)) => {
                errors.extend(f);
                None
            }
            Err(other) => return Err(other),
        };
        let (Some(page), true) = (page, errors.is_empty()) else {
            return Err(Error::Validation(errors));
        };
        let terms = q.as_deref().map(terms).unwrap_or_default();
        let sort = params.sort.unwrap_or(if q.is_some() { SortOrder::Relevance } else { SortOrder::Newest });
        Ok(Self {
            q,
            terms,
            category,
            kind: params.kind,
            price_min: params.price_min,
            price_max: params.price_max,
            sort,
            page,
        })
    }

    /// The trimmed text query, if any.
    pub fn q(&self) -> Option<&str> {
        self.q.as_deref()
    }

    /// The lower-cased terms of the text query.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// The category filter, lower-cased.
    pub fn category(&self) -> Option<&str> {
        self.category.as_deref()
    }

    /// The kind filter.
    pub fn kind(&self) -> Option<ProductKind> {
        self.kind
    }

    /// Inclusive lower price bound, minor units.
    pub fn price_min(&self) -> Option<i64> {
        self.price_min
    }

    /// Inclusive upper price bound, minor units.
    pub fn price_max(&self) -> Option<i64> {
        self.price_max
    }

    /// The effective ordering (defaults applied).
    pub fn sort(&self) -> SortOrder {
        self.sort
    }

    /// The page (limit capped at [`MAX_LIMIT`](super::MAX_LIMIT)).
    pub fn page(&self) -> PageRequest {
        self.page
    }
}

impl Default for SearchQuery {
    /// Every approved product, newest first, page 1 of 20.
    fn default() -> Self {
        Self::new(SearchParams::default()).expect("default parameters are valid")
    }
}

/// How many products fall under one facet value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FacetCount {
    /// The category slug or kind name.
    pub value: String,
    /// How many products.
    pub count: u64,
}

/// Facet counts; see the module docs for which filters apply to each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facets {
    /// Counts per category.
    pub categories: Vec<FacetCount>,
    /// Counts per kind.
    pub kinds: Vec<FacetCount>,
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    /// The products on this page, in order.
    pub items: Vec<Product>,
    /// How many products match in all pages.
    pub total: u64,
    /// The page number, from 1.
    pub page: u32,
    /// The page size used (after capping at 100).
    pub limit: u32,
    /// Facet counts over all matches.
    pub facets: Facets,
}

fn terms(q: &str) -> Vec<String> {
    q.split_whitespace().map(str::to_lowercase).collect()
}

/// Lower-cased searchable text of one product, computed once per search.
struct Haystack {
    title: String,
    tags: Vec<String>,
    description: String,
}

impl Haystack {
    fn of(p: &Product) -> Self {
        Self {
            title: p.title.to_lowercase(),
            tags: p.tags.iter().map(|t| t.to_lowercase()).collect(),
            description: p.description.to_lowercase(),
        }
    }

    /// The relevance score, or `None` when some term matches nowhere.
    fn score(&self, terms: &[String]) -> Option<u64> {
        terms.iter().try_fold(0u64, |acc, term| {
            let t = u64::from(self.title.contains(term.as_str())) * 3
                + u64::from(self.tags.iter().any(|tag| tag.contains(term.as_str()))) * 2
                + u64::from(self.description.contains(term.as_str()));
            (t > 0).then_some(acc + t)
        })
    }
}

/// The relevance score of `product` for `terms` (lower-cased), or `None`
/// when it does not match. Exposed so adapters can test their scoring.
pub fn relevance(product: &Product, terms: &[String]) -> Option<u64> {
    Haystack::of(product).score(terms)
}

/// Which filters to apply, so facets can leave out their own dimension.
#[derive(Clone, Copy)]
struct Skip {
    category: bool,
    kind: bool,
}

fn passes(p: &Product, q: &SearchQuery, skip: Skip) -> bool {
    let price = p.pricing.sort_minor();
    p.is_searchable()
        && (skip.category || q.category.as_ref().is_none_or(|c| p.categories.iter().any(|pc| pc == c)))
        && (skip.kind || q.kind.is_none_or(|k| p.kind == k))
        && q.price_min.is_none_or(|min| price >= min)
        && q.price_max.is_none_or(|max| price <= max)
}

fn tie_break(a: &Product, b: &Product) -> Ordering {
    b.created_at.cmp(&a.created_at).then_with(|| b.id.cmp(&a.id))
}

fn facet(counts: BTreeMap<String, u64>) -> Vec<FacetCount> {
    let mut v: Vec<FacetCount> = counts.into_iter().map(|(value, count)| FacetCount { value, count }).collect();
    // BTreeMap already yields values ascending; a stable sort by count keeps that as the tie-break.
    v.sort_by_key(|f| std::cmp::Reverse(f.count));
    v
}

/// The reference search over `products`: exactly the semantics in the module
/// docs. The in-memory adapter calls it; SQL adapters are checked against it.
pub fn apply(products: &[Product], q: &SearchQuery) -> SearchResult {
    let all = Skip { category: false, kind: false };
    // Text matching is the costly part; do it once per product.
    let scored: Vec<(&Product, u64)> = products
        .iter()
        .filter(|p| p.is_searchable())
        .filter_map(|p| if q.terms.is_empty() { Some((p, 0)) } else { Haystack::of(p).score(&q.terms).map(|s| (p, s)) })
        .collect();

    let mut categories = BTreeMap::new();
    let mut kinds = BTreeMap::new();
    for (p, _) in &scored {
        if passes(p, q, Skip { category: true, kind: false }) {
            for c in &p.categories {
                *categories.entry(c.clone()).or_insert(0u64) += 1;
            }
        }
        if passes(p, q, Skip { category: false, kind: true }) {
            *kinds.entry(p.kind.as_str().to_owned()).or_insert(0u64) += 1;
        }
    }

    let mut matches: Vec<(&Product, u64)> = scored.into_iter().filter(|(p, _)| passes(p, q, all)).collect();
    let prior = RatingPrior::DEFAULT;
    matches.sort_by(|(a, sa), (b, sb)| {
        let primary = match q.sort {
            SortOrder::Relevance => sb.cmp(sa),
            SortOrder::Newest => Ordering::Equal,
            SortOrder::PriceAsc => a.pricing.sort_minor().cmp(&b.pricing.sort_minor()),
            SortOrder::PriceDesc => b.pricing.sort_minor().cmp(&a.pricing.sort_minor()),
            SortOrder::Rating => prior.display(&b.stats).total_cmp(&prior.display(&a.stats)),
            SortOrder::Downloads => b.stats.downloads.cmp(&a.stats.downloads),
        };
        primary.then_with(|| tie_break(a, b))
    });

    let total = matches.len() as u64;
    let items = q.page.slice(&matches).into_iter().map(|(p, _)| p.clone()).collect();
    SearchResult {
        items,
        total,
        page: q.page.page(),
        limit: q.page.limit(),
        facets: Facets { categories: facet(categories), kinds: facet(kinds) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::fixtures::approved;
    use crate::catalog::{Pricing, ProductStats, ProductStatus};
    use crate::money::{Currency, Money};

    fn params() -> SearchParams {
        SearchParams::default()
    }

    fn query(p: SearchParams) -> SearchQuery {
        SearchQuery::new(p).unwrap()
    }

    fn titles(r: &SearchResult) -> Vec<&str> {
        r.items.iter().map(|p| p.title.as_str()).collect()
    }

    fn usd(minor: i64) -> Pricing {
        Pricing::OneTime { price: Money::new(minor, Currency::USD) }
    }

    /// A small catalog: created one second apart, in this order.
    fn catalog() -> Vec<Product> {
        let mut a = approved("Gmail triage agent", 0);
        a.tags = vec!["email".into()];
        a.description = "Reads your inbox.".into();
        a.categories = vec!["email".into(), "productivity".into()];
        a.pricing = usd(1500);
        a.stats = ProductStats { downloads: 10, rating_sum: 45, rating_count: 10 };

        let mut b = approved("Slack digest workflow", 1);
        b.kind = ProductKind::N8nWorkflow;
        b.tags = vec!["slack".into(), "gmail-export".into()];
        b.description = "Posts an email digest.".into();
        b.categories = vec!["productivity".into()];
        b.pricing = Pricing::Free;
        b.stats = ProductStats { downloads: 99, rating_sum: 5, rating_count: 1 };

        let mut c = approved("Invoice OCR", 2);
        c.kind = ProductKind::AutomationAsset;
        c.tags = vec!["finance".into()];
        c.description = "Extracts totals from GMAIL attachments.".into();
        c.categories = vec!["finance".into()];
        c.pricing = usd(500);

        let mut hidden = approved("Gmail hidden draft", 3);
        hidden.status = ProductStatus::Draft;
        let mut suspended = approved("Gmail suspended", 4);
        suspended.status = ProductStatus::Suspended;
        vec![a, b, c, hidden, suspended]
    }

    #[test]
    fn only_approved_products_are_found() {
        let r = apply(&catalog(), &SearchQuery::default());
        assert_eq!(r.total, 3);
        assert_eq!(titles(&r), ["Invoice OCR", "Slack digest workflow", "Gmail triage agent"]);
    }

    #[test]
    fn every_term_must_match_somewhere_case_insensitively() {
        let r = apply(&catalog(), &query(SearchParams { q: Some("GMAIL".into()), ..params() }));
        // title (3) > tag (2) > description (1).
        assert_eq!(titles(&r), ["Gmail triage agent", "Slack digest workflow", "Invoice OCR"]);
        let r = apply(&catalog(), &query(SearchParams { q: Some("gmail  digest".into()), ..params() }));
        assert_eq!(titles(&r), ["Slack digest workflow"]);
        let r = apply(&catalog(), &query(SearchParams { q: Some("gmail nothing".into()), ..params() }));
        assert_eq!(r.total, 0);
    }

    #[test]
    fn relevance_scores_follow_the_formula() {
        let cat = catalog();
        let t = |q: &str| terms(q);
        // "email": tag (2) + description? "Reads your inbox." no -> 2; title no.
        assert_eq!(relevance(&cat[0], &t("email")), Some(2));
        // "gmail" in title (3) + tag? "email" no -> 3; description no.
        assert_eq!(relevance(&cat[0], &t("gmail")), Some(3));
        // b: "email" in description ("email digest") 1 + tag "gmail-export" contains "email"?
        // no ("gmail-export" contains "mail" but "email"? g-m-a-i-l: no) -> 1.
        assert_eq!(relevance(&cat[1], &t("email")), Some(1));
        // repeated terms count twice.
        assert_eq!(relevance(&cat[0], &t("gmail gmail")), Some(6));
        assert_eq!(relevance(&cat[2], &t("absent")), None);
    }

    #[test]
    fn relevance_ties_break_by_newest_then_id() {
        let mut older = approved("Same title", 0);
        let mut newer = approved("Same title", 5);
        older.tags.clear();
        newer.tags.clear();
        let r = apply(&[older.clone(), newer.clone()], &query(SearchParams { q: Some("same".into()), ..params() }));
        assert_eq!(r.items[0].id, newer.id);
        // Same instant: higher id first.
        let mut twin = older.clone();
        twin.id = crate::ids::ProductId::new();
        let r = apply(&[twin.clone(), older.clone()], &query(SearchParams { q: Some("same".into()), ..params() }));
        let mut ids = [older.id, twin.id];
        ids.sort();
        assert_eq!(r.items.iter().map(|p| p.id).collect::<Vec<_>>(), [ids[1], ids[0]]);
    }

    #[test]
    fn filters_combine() {
        let cat = catalog();
        let r = apply(&cat, &query(SearchParams { category: Some(" Productivity ".into()), ..params() }));
        assert_eq!(titles(&r), ["Slack digest workflow", "Gmail triage agent"]);
        let r = apply(&cat, &query(SearchParams { kind: Some(ProductKind::AutomationAsset), ..params() }));
        assert_eq!(titles(&r), ["Invoice OCR"]);
        let r = apply(&cat, &query(SearchParams { price_min: Some(0), price_max: Some(500), ..params() }));
        assert_eq!(titles(&r), ["Invoice OCR", "Slack digest workflow"]);
        let r = apply(&cat, &query(SearchParams { price_min: Some(501), ..params() }));
        assert_eq!(titles(&r), ["Gmail triage agent"]);
    }

    #[test]
    fn sorts() {
        let cat = catalog();
        let by = |sort| titles(&apply(&cat, &query(SearchParams { sort: Some(sort), ..params() }))).join(" | ");
        assert_eq!(by(SortOrder::PriceAsc), "Slack digest workflow | Invoice OCR | Gmail triage agent");
        assert_eq!(by(SortOrder::PriceDesc), "Gmail triage agent | Invoice OCR | Slack digest workflow");
        // a: (15+45)/15 = 4.0; b: (15+5)/6 ≈ 3.33; c: 3.0.
        assert_eq!(by(SortOrder::Rating), "Gmail triage agent | Slack digest workflow | Invoice OCR");
        assert_eq!(by(SortOrder::Downloads), "Slack digest workflow | Gmail triage agent | Invoice OCR");
        assert_eq!(by(SortOrder::Newest), "Invoice OCR | Slack digest workflow | Gmail triage agent");
        assert_eq!(by(SortOrder::Relevance), by(SortOrder::Newest));
    }

    #[test]
    fn default_sort_depends_on_q() {
        assert_eq!(query(params()).sort(), SortOrder::Newest);
        assert_eq!(query(SearchParams { q: Some("   ".into()), ..params() }).sort(), SortOrder::Newest);
        assert_eq!(query(SearchParams { q: Some("x".into()), ..params() }).sort(), SortOrder::Relevance);
        let q = query(SearchParams { q: Some("x".into()), sort: Some(SortOrder::PriceAsc), ..params() });
        assert_eq!(q.sort(), SortOrder::PriceAsc);
    }

    #[test]
    fn facets_ignore_their_own_dimension_and_paging() {
        let cat = catalog();
        let q = query(SearchParams {
            category: Some("productivity".into()),
            kind: Some(ProductKind::AiAgent),
            limit: Some(1),
            page: Some(9),
            ..params()
        });
        let r = apply(&cat, &q);
        assert_eq!(r.total, 1);
        assert!(r.items.is_empty());
        // Categories: kind=ai_agent applies, category doesn't -> only a.
        let fc = |v: &str, c| FacetCount { value: v.into(), count: c };
        assert_eq!(r.facets.categories, [fc("email", 1), fc("productivity", 1)]);
        // Kinds: category=productivity applies, kind doesn't -> a and b.
        assert_eq!(r.facets.kinds, [fc("ai_agent", 1), fc("n8n_workflow", 1)]);

        let r = apply(&cat, &SearchQuery::default());
        assert_eq!(r.facets.categories, [fc("productivity", 2), fc("email", 1), fc("finance", 1)]);
        // Text filters apply to facets too.
        let r = apply(&cat, &query(SearchParams { q: Some("invoice".into()), ..params() }));
        assert_eq!(r.facets.categories, [fc("finance", 1)]);
        assert_eq!(r.facets.kinds, [fc("automation_asset", 1)]);
    }

    #[test]
    fn paging_and_the_limit_cap() {
        let products: Vec<Product> = (0..250).map(|i| approved(&format!("Product {i:03}"), i)).collect();
        let r = apply(&products, &query(SearchParams { limit: Some(1_000), ..params() }));
        assert_eq!((r.items.len(), r.limit, r.total), (100, 100, 250));
        assert_eq!(r.items[0].title, "Product 249");
        let r = apply(&products, &query(SearchParams { page: Some(3), limit: Some(100), ..params() }));
        assert_eq!((r.items.len(), r.page), (50, 3));
        assert_eq!(r.items[49].title, "Product 000");
        let r = apply(&products, &query(SearchParams { page: Some(2), limit: Some(7), ..params() }));
        assert_eq!(r.items[0].title, "Product 242");
    }

    #[test]
    fn invalid_queries_name_every_field() {
        let err = SearchQuery::new(SearchParams {
            q: Some("x".repeat(201)),
            category: Some("Not A Slug".into()),
            price_min: Some(-1),
            price_max: Some(-5),
            page: Some(0),
            limit: Some(0),
            ..params()
        })
        .unwrap_err();
        let Error::Validation(f) = err else { panic!("{err:?}") };
        let names: Vec<_> = f.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["q", "category", "price_min", "price_max", "page", "limit"]);
        assert!(SearchQuery::new(SearchParams { q: Some("é".repeat(200)), ..params() }).is_ok());
    }

    #[test]
    fn an_inverted_price_range_matches_nothing() {
        let r = apply(&catalog(), &query(SearchParams { price_min: Some(300), price_max: Some(100), ..params() }));
        assert_eq!((r.total, r.items.len()), (0, 0));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const WORDS: [&str; 5] = ["mail", "agent", "sync", "crm", "bot"];
        const CATEGORIES: [&str; 3] = ["email", "sales", "ops"];

        fn product() -> impl Strategy<Value = Product> {
            (
                prop::collection::vec(prop::sample::select(WORDS.to_vec()), 1..4),
                prop::collection::vec(prop::sample::select(WORDS.to_vec()), 0..3),
                prop::sample::subsequence(CATEGORIES.to_vec(), 1..=3),
                prop::sample::select(ProductKind::ALL.to_vec()),
                prop::option::of(1i64..3_000),
                prop::sample::select(ProductStatus::ALL.to_vec()),
                (0u64..50, 0u64..100, 0u64..20),
                0i64..8,
            )
                .prop_map(|(title, tags, cats, kind, price, status, (downloads, sum, count), secs)| {
                    let mut p = approved(&format!("Title {}", title.join(" ")), secs);
                    let mut tags: Vec<String> = tags.into_iter().map(str::to_owned).collect();
                    tags.dedup();
                    p.tags = tags;
                    p.categories = cats.into_iter().map(str::to_owned).collect();
                    p.kind = kind;
                    p.pricing = price.map_or(Pricing::Free, usd);
                    p.status = status;
                    p.stats = ProductStats { downloads, rating_sum: sum, rating_count: count };
                    p
                })
        }

        fn params() -> impl Strategy<Value = SearchParams> {
            (
                prop::option::of(prop::collection::vec(prop::sample::select(WORDS.to_vec()), 1..3)),
                prop::option::of(prop::sample::select(CATEGORIES.to_vec())),
                prop::option::of(prop::sample::select(ProductKind::ALL.to_vec())),
                prop::option::of(0i64..1_500),
                prop::option::of(prop::sample::select(SortOrder::ALL.to_vec())),
                1u32..6,
            )
                .prop_map(|(q, category, kind, price_min, sort, limit)| SearchParams {
                    q: q.map(|w| w.join(" ")),
                    category: category.map(str::to_owned),
                    kind,
                    price_min,
                    price_max: price_min.map(|m| m + 1_000),
                    sort,
                    page: None,
                    limit: Some(limit),
                })
        }

        fn key(p: &Product, sort: SortOrder, terms: &[String]) -> f64 {
            #[allow(clippy::cast_precision_loss)]
            match sort {
                SortOrder::Relevance => relevance(p, terms).unwrap_or(0) as f64,
                SortOrder::Newest => 0.0,
                SortOrder::PriceAsc => -(p.pricing.sort_minor() as f64),
                SortOrder::PriceDesc => p.pricing.sort_minor() as f64,
                SortOrder::Rating => RatingPrior::DEFAULT.display(&p.stats),
                SortOrder::Downloads => p.stats.downloads as f64,
            }
        }

        proptest! {
            #[test]
            fn pages_tile_an_ordered_filtered_result(
                products in prop::collection::vec(product(), 0..25),
                params in params(),
            ) {
                let q = SearchQuery::new(params.clone()).unwrap();
                let first = apply(&products, &q);
                // Independent count of what must match.
                let expected = products.iter().filter(|p| {
                    let price = p.pricing.sort_minor();
                    p.status == ProductStatus::Approved
                        && q.category().is_none_or(|c| p.categories.iter().any(|pc| pc == c))
                        && q.kind().is_none_or(|k| p.kind == k)
                        && q.price_min().is_none_or(|m| price >= m)
                        && q.price_max().is_none_or(|m| price <= m)
                        && q.terms().iter().all(|t| {
                            p.title.to_lowercase().contains(t.as_str())
                                || p.tags.iter().any(|g| g.to_lowercase().contains(t.as_str()))
                                || p.description.to_lowercase().contains(t.as_str())
                        })
                }).count() as u64;
                prop_assert_eq!(first.total, expected);

                let mut all = Vec::new();
                let pages = first.total.div_ceil(u64::from(first.limit)).max(1);
                for page in 1..=pages + 1 {
                    let r = apply(&products, &SearchQuery::new(SearchParams { page: Some(u32::try_from(page).unwrap()), ..params.clone() }).unwrap());
                    prop_assert_eq!(r.total, expected);
                    prop_assert!(r.items.len() <= r.limit as usize);
                    all.extend(r.items);
                }
                prop_assert_eq!(all.len() as u64, expected);
                let mut ids: Vec<_> = all.iter().map(|p| p.id).collect();
                ids.sort();
                ids.dedup();
                prop_assert_eq!(ids.len(), all.len());
                for w in all.windows(2) {
                    let (a, b) = (key(&w[0], q.sort(), q.terms()), key(&w[1], q.sort(), q.terms()));
                    prop_assert!(a > b || (a == b && (w[0].created_at, w[0].id) > (w[1].created_at, w[1].id)));
                }
                if q.kind().is_none() {
                    prop_assert_eq!(first.facets.kinds.iter().map(|f| f.count).sum::<u64>(), expected);
                }
            }
        }
    }
}
