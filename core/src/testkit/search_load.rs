//! A search workload for benches and load runs: a catalog shaped like the
//! NestJS peer's ([`peer_catalog`]) and a mix of distinct storefront queries
//! over it ([`query_mix`]) that the peer can answer too, with the query
//! strings to send them over HTTP ([`query_string`]).
//!
//! # The peer
//! The NestJS catalog peer (`/work/shared/peers/nestjs-catalog`) serves
//! `GET /v1/products?category&kind&q&price_min&price_max&sort&page&limit`
//! over 10,000 generated products. Product `i` has the title
//! `"Product {i} {category} helper"`, one category `CATEGORIES[i % 8]`, kind
//! `ai_agent | n8n_workflow | automation_asset` by `i % 3`, the tag
//! `"tag{i % 20}"`, a one-time price of `500 + (i·37) % 10000` cents, stats
//! `{downloads: i % 1000, rating_sum: i % 50, rating_count: 10}` and
//! `created_at` one minute per `i` after 2023-11-14T22:13:20Z. It matches
//! `q` as one lower-cased substring of the title and always sorts newest
//! first.
//!
//! # Keeping the two workloads equal
//! Bazaar splits `q` into terms and looks in tags and the description too.
//! The mix only sends texts for which both rules find the same products:
//! one category word or `"helper"`/`"product"`; `"{category} helper"`, which
//! is contiguous in the titles that contain both words; and numbers of three
//! or four digits, which no tag (`tag0`–`tag19`) contains. The catalog has no
//! description. So every query finds the same set in both; only the order
//! differs where bazaar honours `sort` and the peer does not.

use std::collections::HashSet;

use uuid::Uuid;

use crate::catalog::search::{SearchParams, SortOrder};
use crate::catalog::{Pricing, Product, ProductKind, ProductStats, ProductStatus};
use crate::ids::{ProductId, UserId};
use crate::money::{Currency, Money};

/// The peer's categories, in its order.
pub const CATEGORIES: [&str; 8] = ["sales", "support", "marketing", "finance", "devops", "hr", "legal", "data"];

/// The peer's first `created_at`, in Unix seconds.
const EPOCH_SECS: i64 = 1_700_000_000;

/// Product `i` of the peer's catalog, with the peer's id
/// (`00000000-0000-7000-8000-{i:012}`), so results can be compared by id.
///
/// # Panics
/// When `i` has more than 12 digits.
pub fn peer_product(i: u64) -> Product {
    let idx = usize::try_from(i % 8).expect("below 8");
    let id: Uuid = format!("00000000-0000-7000-8000-{i:012}").parse().expect("at most 12 digits");
    let vendor = Uuid::from_u128((0x9000_u128 << 48) | u128::from(i % 50));
    let at = chrono::DateTime::from_timestamp(EPOCH_SECS + 60 * i64::try_from(i).expect("fits"), 0).expect("in range");
    Product {
        id: ProductId::from(id),
        vendor_id: UserId::from(vendor),
        title: format!("Product {i} {} helper", CATEGORIES[idx]),
        description: String::new(),
        short_description: "Automates a task".into(),
        kind: ProductKind::ALL[usize::try_from(i % 3).expect("below 3")],
        categories: vec![CATEGORIES[idx].to_owned()],
        tags: vec![format!("tag{}", i % 20)],
        pricing: Pricing::OneTime {
            price: Money::new(500 + i64::try_from((i * 37) % 10_000).expect("below 10000"), Currency::USD),
        },
        media: vec![],
        status: ProductStatus::Approved,
        stats: ProductStats { downloads: i % 1_000, rating_sum: i % 50, rating_count: 10 },
        version: 1,
        created_at: at,
        updated_at: at,
    }
}

/// The peer's catalog of `n` products (the peer itself serves 10,000).
pub fn peer_catalog(n: u64) -> Vec<Product> {
    (0..n).map(peer_product).collect()
}

/// A small deterministic generator, so a mix reproduces from its seed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[usize::try_from(self.below(from.len() as u64)).expect("an index")]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Page 1 most of the time, as real traffic.
    fn page(&mut self, deepest: u32) -> Option<u32> {
        if self.chance(60) { None } else { Some(1 + u32::try_from(self.below(u64::from(deepest))).expect("small")) }
    }
}

const BROWSE_SORTS: [Option<SortOrder>; 6] = [
    None,
    Some(SortOrder::Newest),
    Some(SortOrder::PriceAsc),
    Some(SortOrder::PriceDesc),
    Some(SortOrder::Rating),
    Some(SortOrder::Downloads),
];

/// The kinds of query in the mix, with their share in percent.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Browse,
    Text,
    PriceBand,
}

const SHAPES: [(Shape, usize); 3] = [(Shape::Browse, 45), (Shape::Text, 35), (Shape::PriceBand, 20)];

/// One query of `shape`; see [`query_mix`] for what each looks like.
fn draw(shape: Shape, rng: &mut Lcg, catalog_size: u64) -> SearchParams {
    let category = |rng: &mut Lcg, percent| rng.chance(percent).then(|| rng.pick(&CATEGORIES).to_owned());
    let kind = |rng: &mut Lcg, percent| rng.chance(percent).then(|| rng.pick(&ProductKind::ALL));
    let limit = |rng: &mut Lcg| Some(if rng.chance(80) { 20 } else { rng.pick(&[10, 50, 100]) });
    match shape {
        Shape::Browse => SearchParams {
            category: category(rng, 85),
            kind: kind(rng, 25),
            sort: rng.pick(&BROWSE_SORTS),
            page: rng.page(5),
            limit: limit(rng),
            ..SearchParams::default()
        },
        Shape::Text => {
            let q = match rng.below(10) {
                0..3 => rng.pick(&[&CATEGORIES[..], &["helper", "product"]].concat()).to_owned(),
                3..5 => format!("{} helper", rng.pick(&CATEGORIES)),
                _ => (100 + rng.below(catalog_size.clamp(101, 10_000) - 100)).to_string(),
            };
            SearchParams {
                q: Some(q),
                category: category(rng, 30),
                kind: kind(rng, 15),
                sort: if rng.chance(70) { None } else { rng.pick(&BROWSE_SORTS) },
                page: rng.page(3),
                limit: limit(rng),
                ..SearchParams::default()
            }
        }
        Shape::PriceBand => {
            let min = rng.pick(&[0, 500, 1_000, 2_000, 3_500, 5_000, 7_500]);
            SearchParams {
                price_min: Some(min),
                price_max: Some(min + rng.pick(&[500, 1_000, 2_500, 5_000])),
                category: category(rng, 50),
                kind: kind(rng, 20),
                sort: rng.pick(&[None, Some(SortOrder::PriceAsc), Some(SortOrder::PriceDesc)]),
                page: rng.page(3),
                limit: limit(rng),
                ..SearchParams::default()
            }
        }
    }
}

/// `count` distinct, valid queries over a [`peer_catalog`] of
/// `catalog_size` products, drawn deterministically from `seed` and
/// shuffled, in fixed shares:
/// - 45 % browsing: a category (85 %), a kind (25 %), any sort but
///   relevance, pages 1–5;
/// - 35 % text: a category word or `helper`/`product` (30 %), `"{category}
///   helper"` (20 %) or a product number of 3–4 digits (50 %), sometimes
///   with a category, kind or sort, pages 1–3;
/// - 20 % price bands: `price_min` and `price_max` from a grid, maybe a
///   category or kind, by price either way, pages 1–3;
///
/// each with page 1 60 % of the time and 20 items 80 % of the time (else 10,
/// 50 or 100). Every text finds the same products in bazaar and in the peer
/// (see the module docs).
///
/// # Panics
/// When a share is more than its shape can make distinct: `count` up to
/// 8,000 always works.
pub fn query_mix(count: usize, catalog_size: u64, seed: u64) -> Vec<SearchParams> {
    let mut rng = Lcg(seed);
    let mut seen = HashSet::new();
    let mut mix = Vec::with_capacity(count);
    for (i, (shape, percent)) in SHAPES.into_iter().enumerate() {
        // The last shape takes the rounding remainder.
        let target = if i + 1 == SHAPES.len() { count } else { mix.len() + count * percent / 100 };
        let mut misses = 0;
        while mix.len() < target {
            let params = draw(shape, &mut rng, catalog_size);
            if seen.insert(query_string(&params)) {
                mix.push(params);
                misses = 0;
            } else {
                misses += 1;
                assert!(misses < 100_000, "{shape:?} ran out of distinct queries at {}", mix.len());
            }
        }
    }
    // Fisher–Yates, so a load run meets the shapes interleaved.
    for i in (1..mix.len()).rev() {
        let j = usize::try_from(rng.below(i as u64 + 1)).expect("an index");
        mix.swap(i, j);
    }
    mix
}

/// The URL query string of `params` (without `?`), fields in a fixed order,
/// values percent-encoded: what a load generator appends to `/v1/products?`.
pub fn query_string(params: &SearchParams) -> String {
    let mut parts = Vec::new();
    if let Some(q) = &params.q {
        parts.push(format!("q={}", encode(q)));
    }
    if let Some(c) = &params.category {
        parts.push(format!("category={}", encode(c)));
    }
    if let Some(k) = params.kind {
        parts.push(format!("kind={}", k.as_str()));
    }
    if let Some(m) = params.price_min {
        parts.push(format!("price_min={m}"));
    }
    if let Some(m) = params.price_max {
        parts.push(format!("price_max={m}"));
    }
    if let Some(s) = params.sort {
        parts.push(format!("sort={}", s.as_str()));
    }
    if let Some(p) = params.page {
        parts.push(format!("page={p}"));
    }
    if let Some(l) = params.limit {
        parts.push(format!("limit={l}"));
    }
    parts.join("&")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::search::{SearchQuery, apply};

    #[test]
    fn the_catalog_is_the_peers() {
        let p = peer_product(12);
        assert_eq!(p.id.to_string(), "00000000-0000-7000-8000-000000000012");
        assert_eq!(p.title, "Product 12 devops helper");
        assert_eq!(
            (p.kind, p.categories.as_slice(), p.tags.as_slice()),
            (ProductKind::AiAgent, &["devops".to_owned()][..], &["tag12".to_owned()][..])
        );
        assert_eq!(p.pricing.sort_minor(), 500 + 12 * 37);
        assert_eq!(p.created_at.timestamp(), 1_700_000_000 + 720);
        assert_eq!(peer_catalog(3).len(), 3);
    }

    #[test]
    fn the_mix_is_distinct_valid_deterministic_and_mostly_finds_something() {
        let mix = query_mix(4_000, 10_000, 1);
        assert_eq!(mix, query_mix(4_000, 10_000, 1));
        let distinct: HashSet<String> = mix.iter().map(query_string).collect();
        assert_eq!(distinct.len(), 4_000);
        let catalog = peer_catalog(10_000);
        let mut found = 0;
        for params in mix.iter().take(500) {
            let q = SearchQuery::new(params.clone()).expect("valid");
            found += usize::from(apply(&catalog, &q).total > 0);
        }
        assert!(found > 400, "only {found} of 500 found something");
        let texts = mix.iter().filter(|p| p.q.is_some()).count();
        assert_eq!(texts, 1_400, "35 % of the mix is text");
        assert!(mix[..100].iter().any(|p| p.q.is_some()) && mix[..100].iter().any(|p| p.q.is_none()), "shuffled");
    }

    /// The peer's rule (one lower-cased substring of the title) and
    /// bazaar's find the same products for every text of the mix.
    #[test]
    fn the_peer_finds_what_bazaar_finds() {
        let catalog = peer_catalog(10_000);
        let texts: HashSet<String> = query_mix(4_000, 10_000, 2).into_iter().filter_map(|p| p.q).collect();
        for text in texts.iter().take(300) {
            let q = SearchQuery::new(SearchParams { q: Some(text.clone()), limit: Some(100), ..Default::default() })
                .expect("valid");
            let ours = apply(&catalog, &q).total;
            let peers = catalog.iter().filter(|p| p.title.to_lowercase().contains(&text.to_lowercase())).count();
            assert_eq!(ours, peers as u64, "{text}");
        }
    }

    #[test]
    fn the_mix_scales_to_its_documented_bound() {
        assert_eq!(query_mix(8_000, 10_000, 3).len(), 8_000);
    }

    #[test]
    fn query_strings_encode_values() {
        let p = SearchParams {
            q: Some("sales helper".into()),
            category: Some("hr".into()),
            kind: Some(ProductKind::N8nWorkflow),
            price_min: Some(0),
            price_max: Some(500),
            sort: Some(SortOrder::PriceAsc),
            page: Some(2),
            limit: Some(20),
        };
        assert_eq!(
            query_string(&p),
            "q=sales%20helper&category=hr&kind=n8n_workflow&price_min=0&price_max=500&sort=price_asc&page=2&limit=20"
        );
        assert_eq!(encode("é&"), "%C3%A9%26");
    }
}
