//! Search equivalence on a generated catalog: a backend's
//! [`ProductRepository::search`] against the reference [`search::apply`].
//!
//! The generated catalog stresses what the fixed contract fixture
//! ([`super::catalog::product_search`]) does not: non-ASCII case folding,
//! terms shorter than a trigram, query syntax inside terms (quotes, `*`, `-`,
//! `AND`, `NEAR`), repeated terms, shared timestamps (ties broken by id) and
//! equal ratings. A backend with syntax of its own to escape (e.g. `LIKE`
//! wildcards) passes extra words for the catalog and extra query texts.
//!
//! The generator is deterministic, so a failure reproduces.

use crate::catalog::search::{self, SearchParams, SearchQuery, SortOrder};
use crate::catalog::{Product, ProductKind, ProductRepository, ProductStats, ProductStatus};
use crate::ids::{ProductId, UserId};
use crate::money::{Currency, Money};
use crate::pricing::Pricing;

/// A tiny deterministic generator, so a failure reproduces.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(self.0 >> 33).expect("31 bits fit") % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.next(from.len())]
    }
}

const BASE_WORDS: &[&str] = &[
    "Gmail",
    "ÄRGER",
    "straße",
    "İstanbul",
    "CRM",
    "ai",
    "Slack",
    "\"quoted\"",
    "x*y",
    "re-run",
    "AND",
    "NEAR",
    "naïve",
    "ΣΟΦΙΑ",
    "digest",
    "n8n",
    "OCR",
    "日本語",
    "a",
    "invoice",
];
const CATEGORIES: &[&str] = &["email", "sales", "finance", "productivity", "ops"];
const TAGS: &[&str] = &["gmail", "Crm", "ÉTÉ", "n8n-flow", "ai", "x\"y", "ocr"];

fn catalog(words_list: &[&str]) -> Vec<Product> {
    let mut rng = Lcg(42);
    let base = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("in range");
    (0..80)
        .map(|_| {
            let words = |rng: &mut Lcg, n| (0..n).map(|_| rng.pick(words_list)).collect::<Vec<_>>().join(" ");
            let title = words(&mut rng, 3);
            let description = words(&mut rng, 6);
            let categories: Vec<String> = {
                let mut c: Vec<String> = (0..1 + rng.next(3)).map(|_| rng.pick(CATEGORIES).to_owned()).collect();
                c.sort();
                c.dedup();
                c
            };
            let tags = (0..rng.next(3)).map(|_| rng.pick(TAGS).to_owned()).collect();
            let pricing = match rng.next(3) {
                0 => Pricing::Free,
                _ => Pricing::OneTime {
                    price: Money::new(i64::try_from(100 * (1 + rng.next(5))).unwrap(), Currency::USD),
                },
            };
            let status = if rng.next(5) == 0 { ProductStatus::Draft } else { ProductStatus::Approved };
            let kind = ProductKind::ALL[rng.next(3)];
            // Few distinct instants, so ties on created_at are common.
            let created_at = base + chrono::Duration::seconds(i64::try_from(rng.next(6)).unwrap());
            let stats = ProductStats {
                downloads: u64::try_from(rng.next(4)).unwrap(),
                rating_sum: u64::try_from(rng.next(3) * 5).unwrap(),
                rating_count: u64::try_from(rng.next(3)).unwrap(),
            };
            Product {
                id: ProductId::new(),
                vendor_id: UserId::new(),
                title,
                description,
                short_description: String::new(),
                kind,
                categories,
                tags,
                pricing,
                media: vec![],
                status,
                stats,
                version: 1,
                created_at,
                updated_at: created_at,
            }
        })
        .collect()
}

/// Seeds `repo` (fresh and empty) with 80 generated products, then runs
/// every query text (the built-in ones, then `extra_texts`) under every sort
/// order and the default, each with randomly drawn category, kind, price
/// bounds, page and limit, and asserts that `repo.search` returns exactly
/// what [`search::apply`] returns on the same products: the same page,
/// order, total and facets. `extra_words` are appended to the vocabulary the
/// titles and descriptions are drawn from.
///
/// Returns how many queries were compared (for the caller to pin). Also
/// asserts that every query ran and that more than half of them matched
/// something, so the comparison is not trivially between empty results.
///
/// # Panics
/// When an insert or search fails, when a search differs from the reference
/// (the message shows the query's parameters), or when the generator made
/// the comparisons mostly empty.
pub async fn search_equivalence(repo: &dyn ProductRepository, extra_words: &[&str], extra_texts: &[&str]) -> usize {
    let words: Vec<&str> = BASE_WORDS.iter().chain(extra_words).copied().collect();
    let products = catalog(&words);
    for p in &products {
        repo.insert(p, &[]).await.expect("insert");
    }

    const BASE_TEXTS: &[Option<&str>] = &[
        None,
        Some("gmail"),
        Some("GMAIL crm"),
        Some("ärger"),
        Some("STRASSE"),
        Some("straße"),
        Some("i̇stanbul"),
        Some("σοφια"),
        Some("ai"),
        Some("a"),
        Some("ai ai"),
        Some("\"quoted\""),
        Some("\""),
        Some("x*y"),
        Some("re-run"),
        Some("and"),
        Some("near digest"),
        Some("日本"),
        Some("n8n"),
        Some("été"),
        Some("x\"y"),
        Some("nothing-matches-this"),
    ];
    let texts: Vec<Option<&str>> = BASE_TEXTS.iter().copied().chain(extra_texts.iter().copied().map(Some)).collect();
    let mut rng = Lcg(7);
    let (mut checked, mut nonempty) = (0, 0);
    for &text in &texts {
        for sort in SortOrder::ALL.iter().copied().map(Some).chain([None]) {
            let params = SearchParams {
                q: text.map(str::to_owned),
                category: (rng.next(3) == 0).then(|| rng.pick(CATEGORIES).to_owned()),
                kind: (rng.next(3) == 0).then(|| ProductKind::ALL[rng.next(3)]),
                price_min: (rng.next(4) == 0).then_some(100),
                price_max: (rng.next(4) == 0).then_some(300),
                sort,
                page: Some(1 + u32::try_from(rng.next(2)).unwrap()),
                limit: Some(1 + u32::try_from(rng.next(30)).unwrap()),
            };
            let query = SearchQuery::new(params.clone()).expect("valid query");
            let got = repo.search(&query).await.expect("search");
            let want = search::apply(&products, &query);
            assert_eq!(got, want, "search differs from the reference for {params:?}");
            checked += 1;
            nonempty += usize::from(want.total > 0);
        }
    }
    assert_eq!(checked, texts.len() * (SortOrder::ALL.len() + 1), "every text ran under every sort order");
    // Guard against a generator that makes every comparison trivially empty.
    assert!(nonempty > checked / 2, "only {nonempty} of {checked} queries matched anything");
    checked
}
