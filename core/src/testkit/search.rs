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
use crate::catalog::{
    Product, ProductKind, ProductRepository, ProductStats, ProductStatus, SearchIndex, rebuild_from_store,
};
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

fn texts<'a>(extra: &[&'a str]) -> Vec<Option<&'a str>> {
    BASE_TEXTS.iter().copied().chain(extra.iter().copied().map(Some)).collect()
}

/// Every text under every sort order and the default, each with randomly
/// drawn category, kind, price bounds, page and limit (deterministic).
fn queries(texts: &[Option<&str>]) -> Vec<SearchParams> {
    let mut rng = Lcg(7);
    let mut all = Vec::new();
    for &text in texts {
        for sort in SortOrder::ALL.iter().copied().map(Some).chain([None]) {
            all.push(SearchParams {
                q: text.map(str::to_owned),
                category: (rng.next(3) == 0).then(|| rng.pick(CATEGORIES).to_owned()),
                kind: (rng.next(3) == 0).then(|| ProductKind::ALL[rng.next(3)]),
                price_min: (rng.next(4) == 0).then_some(100),
                price_max: (rng.next(4) == 0).then_some(300),
                sort,
                page: Some(1 + u32::try_from(rng.next(2)).unwrap()),
                limit: Some(1 + u32::try_from(rng.next(30)).unwrap()),
            });
        }
    }
    all
}

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

    let texts = texts(extra_texts);
    let (mut checked, mut nonempty) = (0, 0);
    for params in queries(&texts) {
        let query = SearchQuery::new(params.clone()).expect("valid query");
        let got = repo.search(&query).await.expect("search");
        let want = search::apply(&products, &query);
        assert_eq!(got, want, "search differs from the reference for {params:?}");
        checked += 1;
        nonempty += usize::from(want.total > 0);
    }
    assert_eq!(checked, texts.len() * (SortOrder::ALL.len() + 1), "every text ran under every sort order");
    // Guard against a generator that makes every comparison trivially empty.
    assert!(nonempty > checked / 2, "only {nonempty} of {checked} queries matched anything");
    checked
}

/// How long [`search_index`] gives an index to show a change: the
/// freshness promise of [`SearchIndex::index`].
pub const FRESHNESS: std::time::Duration = std::time::Duration::from_secs(1);

/// The [`SearchIndex`] contract, for the store's own search and for every
/// read model alike: the same answers for the same catalog.
///
/// Seeds `store` (fresh and empty) with the generated catalog (drafts
/// included), rebuilds `index` from it with
/// [`rebuild_from_store`] (in pages of 7, so paging is exercised), and
/// asserts that every generated query gets from `index` exactly what
/// [`search::apply`] and `store.search` return. Then checks freshness
/// through [`SearchIndex::index`], each within [`FRESHNESS`]: a draft that
/// is approved becomes searchable, an approved product that is suspended
/// disappears, an edit shows its new title, and an older state handed in
/// afterwards does not bring the suspended product back.
///
/// Returns how many queries were compared.
///
/// # Panics
/// When a store call or search fails, when an answer differs, or when a
/// change is not visible in time.
pub async fn search_index(store: &dyn ProductRepository, index: &dyn SearchIndex) -> usize {
    let mut products = catalog(BASE_WORDS);
    for p in &products {
        store.insert(p, &[]).await.expect("insert");
    }
    let approved = products.iter().filter(|p| p.status == ProductStatus::Approved).count();
    assert_eq!(rebuild_from_store(store, index, 7).await.expect("rebuild"), approved, "every approved product");

    let texts = texts(&[]);
    let mut checked = 0;
    for params in queries(&texts) {
        let query = SearchQuery::new(params.clone()).expect("valid query");
        let got = index.search(&query).await.expect("index search");
        let want = search::apply(&products, &query);
        assert_eq!(got, want, "index differs from the reference for {params:?}");
        assert_eq!(store.search(&query).await.expect("store search"), want, "store differs for {params:?}");
        checked += 1;
    }

    // Each change is written to the store, then handed to the index as the
    // catalog service and the event consumer do.
    async fn change(store: &dyn ProductRepository, index: &dyn SearchIndex, products: &mut [Product], at: usize) {
        let mut next = products[at].clone();
        let expected = next.version;
        next.version += 1;
        store.update(&next, expected, &[]).await.expect("update");
        index.index(std::slice::from_ref(&next)).await.expect("index");
        products[at] = next;
    }
    let by_title = |title: &str| {
        SearchQuery::new(SearchParams { q: Some(title.to_owned()), ..SearchParams::default() }).expect("valid")
    };
    let draft = products.iter().position(|p| p.status == ProductStatus::Draft).expect("the catalog has drafts");
    products[draft].status = ProductStatus::Approved;
    products[draft].title = "Freshly approved listing".into();
    change(store, index, &mut products, draft).await;
    let id = products[draft].id;
    wait_until(index, &by_title("freshly approved"), "an approved product to be found", |r| {
        r.items.iter().any(|p| p.id == id)
    })
    .await;

    let live = products.iter().position(|p| p.status == ProductStatus::Approved && p.id != id).expect("approved");
    let before_suspension = products[live].clone();
    products[live].status = ProductStatus::Suspended;
    products[live].title = "Soon suspended listing".into();
    change(store, index, &mut products, live).await;
    let gone = products[live].id;
    let everything = SearchQuery::new(SearchParams { limit: Some(100), ..SearchParams::default() }).expect("valid");
    wait_until(index, &everything, "a suspended product to disappear", |r| r.items.iter().all(|p| p.id != gone)).await;

    // A redelivered older state must not resurrect it; a later edit of the
    // approved product is the marker that the older state was processed.
    index.index(std::slice::from_ref(&before_suspension)).await.expect("index");
    products[draft].title = "Renamed approved listing".into();
    change(store, index, &mut products, draft).await;
    wait_until(index, &by_title("renamed approved"), "an edit to show", |r| r.items.iter().any(|p| p.id == id)).await;
    let now = index.search(&everything).await.expect("search");
    assert!(now.items.iter().all(|p| p.id != gone), "an older state brought a suspended product back");
    assert_eq!(now, search::apply(&products, &everything), "after the changes");
    checked
}

async fn wait_until(
    index: &dyn SearchIndex,
    query: &SearchQuery,
    what: &str,
    done: impl Fn(&crate::catalog::SearchResult) -> bool,
) {
    let start = std::time::Instant::now();
    loop {
        let found = index.search(query).await.expect("search");
        if done(&found) {
            return;
        }
        assert!(start.elapsed() < FRESHNESS, "waited {FRESHNESS:?} for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
