//! The index against the reference [`search::apply`]: on generated catalogs
//! and queries (proptest), after generated edits, and through the core's
//! contract suites ([`testkit::catalog::product_search`],
//! [`testkit::search::search_equivalence`]).
//!
//! [`search::apply`]: bazaar_core::catalog::search::apply

mod common;

use bazaar_core::catalog::search::{self, SearchParams, SearchQuery, SortOrder};
use bazaar_core::catalog::{Pricing, Product, ProductKind, ProductStats, ProductStatus};
use bazaar_core::ids::{ProductId, UserId};
use bazaar_core::money::{Currency, Money};
use bazaar_core::testkit;
use bazaar_tantivy::{CatalogIndex, Checkpoint};
use common::Indexed;
use futures::executor::block_on;
use proptest::prelude::*;

/// Title and description words: mixed case, non-ASCII case folding (ß, a
/// dotted capital I whose lower case is two characters, a final sigma, a
/// title-case digraph), CJK, repeated letters (a phrase whose grams repeat)
/// and query-syntax characters.
const WORDS: &[&str] = &[
    "Gmail",
    "mail",
    "agent",
    "SYNC",
    "crm",
    "bot",
    "straße",
    "İstanbul",
    "ΣΟΦΙΑΣ",
    "日本語",
    "aaaa",
    "aa",
    "a",
    "naïve",
    "x*y",
    "\"q\"",
    "ÄRGER",
    "re-run",
    "ǅemal",
    "n8n",
    "mailbox",
    "Mailbot",
    "synchro",
    "syncing",
];
const TAGS: &[&str] = &["gmail", "Crm", "ÉTÉ", "n8n-flow", "ai", "x\"y", "ΣΟΦΙΑΣ", "aaaaaa"];
const CATEGORIES: &[&str] = &["email", "sales", "finance", "ops"];
/// Characters for made-up terms, several of which change under lower-casing.
const ALPHABET: &[char] = &['a', 'i', 's', 'ß', 'Σ', 'σ', 'ς', '日', 'x', '*', '"', 'İ', '̇'];

fn words(range: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), range).prop_map(|w| w.join(" "))
}

fn product() -> impl Strategy<Value = Product> {
    (
        // Ids share their high half often (as UUIDv7s of one millisecond do),
        // so the tie-break must compare the low half too.
        ((0u64..3, any::<u64>()), words(1..4), words(0..5)),
        prop::sample::subsequence(TAGS, 0..=3),
        prop::sample::subsequence(CATEGORIES, 1..=3),
        prop::sample::select(ProductKind::ALL.as_slice()),
        prop::option::of(1i64..3_000),
        // Mostly approved, so most queries have something to find.
        prop_oneof![3 => Just(ProductStatus::Approved), 1 => prop::sample::select(ProductStatus::ALL.as_slice())],
        (0u64..4, 0u64..12, 0u64..4),
        // Few instants, some with a fraction of a second, so created_at ties
        // (broken by id) and sub-second order both occur.
        (0i64..5, prop::sample::select(&[0u32, 500_000_000, 999_999_999][..])),
    )
        .prop_map(
            |(((hi, lo), title, description), tags, categories, kind, price, status, (d, sum, count), (s, ns))| {
                let at = chrono::DateTime::from_timestamp(1_700_000_000 + s, ns).expect("in range");
                Product {
                    id: ProductId::from(uuid::Uuid::from_u128((u128::from(hi) << 64) | u128::from(lo))),
                    vendor_id: UserId::new(),
                    title,
                    description,
                    short_description: "not searched: mail".into(),
                    kind,
                    categories: categories.into_iter().map(str::to_owned).collect(),
                    tags: tags.into_iter().map(str::to_owned).collect(),
                    pricing: price.map_or(Pricing::Free, |p| Pricing::OneTime { price: Money::new(p, Currency::USD) }),
                    media: vec![],
                    status,
                    stats: ProductStats { downloads: d, rating_sum: sum.min(5 * count), rating_count: count },
                    version: 1,
                    created_at: at,
                    updated_at: at,
                }
            },
        )
}

/// A search term: a vocabulary word in some case, a piece of one (long
/// pieces of words sharing a prefix, such as "mailbox" and "mailbot", catch
/// a phrase that ignores the term's tail), the end of one word or tag run
/// into the start of another (which must not match across a space or
/// between two tags), or made-up characters.
fn term() -> impl Strategy<Value = String> {
    let word = (prop::sample::select(WORDS), 0..3u8).prop_map(|(w, case)| match case {
        0 => w.to_owned(),
        1 => w.to_lowercase(),
        _ => w.to_uppercase(),
    });
    let piece = (prop::sample::select(WORDS), any::<prop::sample::Index>(), 1usize..10).prop_map(|(w, at, len)| {
        let chars: Vec<char> = w.to_lowercase().chars().collect();
        let start = at.index(chars.len());
        chars[start..(start + len).min(chars.len())].iter().collect()
    });
    let any_word = || prop::sample::select([WORDS, TAGS].concat());
    let spanning = (any_word(), any_word(), 1usize..4, 1usize..4).prop_map(|(a, b, tail, head)| {
        let (a, b): (Vec<char>, Vec<char>) = (a.to_lowercase().chars().collect(), b.to_lowercase().chars().collect());
        a[a.len().saturating_sub(tail)..].iter().chain(&b[..head.min(b.len())]).collect()
    });
    let made_up = prop::collection::vec(prop::sample::select(ALPHABET), 1..5).prop_map(|c| c.into_iter().collect());
    prop_oneof![2 => word, 3 => piece, 1 => spanning, 1 => made_up]
}

fn params() -> impl Strategy<Value = SearchParams> {
    // Filters are set less often than not, so text decides most results.
    use prop::option::weighted as some;
    (
        some(0.8, prop::collection::vec(term(), 1..4)),
        some(0.3, prop::sample::select(&["email", "sales", "finance", "ops", "absent"][..])),
        some(0.3, prop::sample::select(ProductKind::ALL.as_slice())),
        (some(0.3, 0i64..2_000), some(0.3, 0i64..2_000)),
        // Relevance (explicit, or the default with text) half the time.
        prop_oneof![
            1 => Just(None),
            1 => Just(Some(SortOrder::Relevance)),
            2 => prop::sample::select(SortOrder::ALL.as_slice()).prop_map(Some),
        ],
        (prop_oneof![3 => Just(1u32), 1 => 2u32..4], 1u32..12),
    )
        .prop_map(|(terms, category, kind, (min, span), sort, (page, limit))| SearchParams {
            // Doubled spaces: splitting must not make empty terms.
            q: terms.map(|t| t.join(if t.len() % 2 == 0 { " " } else { "  " })),
            category: category.map(str::to_owned),
            kind,
            price_min: min,
            price_max: span.map(|s| min.unwrap_or(0) + s),
            sort,
            page: Some(page),
            limit: Some(limit),
        })
}

/// A change to one product, as the store would make it.
#[derive(Debug, Clone)]
enum Edit {
    /// A moderation move (version + 1).
    Status(ProductStatus),
    /// A download and a review (counters only; same version).
    Stats(u64, u64),
    /// A new title, price and categories (version + 1).
    Listing(String, Option<i64>, Vec<String>),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        prop::sample::select(ProductStatus::ALL.as_slice()).prop_map(Edit::Status),
        (1u64..3, 1u64..6).prop_map(|(d, r)| Edit::Stats(d, r)),
        (words(1..3), prop::option::of(1i64..3_000), prop::sample::subsequence(CATEGORIES, 1..=2))
            .prop_map(|(t, p, c)| Edit::Listing(t, p, c.into_iter().map(str::to_owned).collect())),
    ]
}

fn apply_edit(p: &mut Product, e: &Edit) {
    match e {
        Edit::Status(s) => {
            p.status = *s;
            p.version += 1;
        }
        Edit::Stats(d, r) => {
            p.stats.downloads += d;
            p.stats.rating_sum += r;
            p.stats.rating_count += 1;
        }
        Edit::Listing(title, price, categories) => {
            p.title.clone_from(title);
            p.pricing = price.map_or(Pricing::Free, |p| Pricing::OneTime { price: Money::new(p, Currency::USD) });
            p.categories.clone_from(categories);
            p.version += 1;
        }
    }
}

fn assert_same(index: &CatalogIndex, products: &[Product], queries: &[SearchParams]) -> Result<(), TestCaseError> {
    for params in queries {
        let q = SearchQuery::new(params.clone()).expect("generated queries are valid");
        let got = index.search(&q).expect("search");
        let want = search::apply(products, &q);
        prop_assert_eq!(got, want, "query {:?}", params);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Built by upserts and edited by upserts: after each commit, every
    /// query answers exactly what the reference answers.
    #[test]
    fn upserted_and_edited_catalogs_search_like_the_reference(
        mut products in prop::collection::vec(product(), 0..40),
        queries in prop::collection::vec(params(), 1..16),
        edits in prop::collection::vec((any::<prop::sample::Index>(), edit()), 0..10),
    ) {
        let index = CatalogIndex::in_memory().unwrap();
        prop_assert_eq!(index.upsert_all(&products).unwrap(), products.len());
        index.commit().unwrap();
        assert_same(&index, &products, &queries)?;

        if !products.is_empty() {
            for (at, e) in &edits {
                let i = at.index(products.len());
                apply_edit(&mut products[i], e);
                prop_assert!(index.upsert(&products[i]).unwrap(), "a newer state is written");
            }
            index.commit().unwrap();
            assert_same(&index, &products, &queries)?;
        }
    }

    /// A rebuild answers like the reference too, and replaces what was there.
    #[test]
    fn rebuilt_catalogs_search_like_the_reference(
        before in prop::collection::vec(product(), 0..10),
        products in prop::collection::vec(product(), 0..40),
        queries in prop::collection::vec(params(), 1..12),
    ) {
        let index = CatalogIndex::in_memory().unwrap();
        index.upsert_all(&before).unwrap();
        index.rebuild(&products, Checkpoint::new(3)).unwrap();
        assert_same(&index, &products, &queries)?;
    }
}

/// The core's fixed search contract, with the index answering.
#[test]
fn the_search_contract_holds() {
    let repo = Indexed::new(CatalogIndex::in_memory().unwrap());
    block_on(testkit::catalog::product_search(&repo));
}

/// The core's generated equivalence suite (the one SQLite and PostgreSQL
/// pass), with the index answering.
#[test]
fn the_generated_equivalence_suite_holds() {
    let repo = Indexed::new(CatalogIndex::in_memory().unwrap());
    let checked = block_on(testkit::search::search_equivalence(&repo, &[], &[]));
    assert_eq!(checked, 22 * 7);
}

/// Guards the generators above against drifting into trivial comparisons:
/// a good share of generated queries must find something in a generated
/// catalog, and some must rank products of different scores (45 % and 6 %
/// when written).
#[test]
fn generated_queries_often_find_something() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut found, mut ranked, mut total) = (0, 0, 0);
    for _ in 0..100 {
        let products = prop::collection::vec(product(), 20..40).new_tree(&mut runner).unwrap().current();
        for _ in 0..10 {
            let q = SearchQuery::new(params().new_tree(&mut runner).unwrap().current()).unwrap();
            let r = search::apply(&products, &q);
            total += 1;
            found += usize::from(r.total > 0);
            let scores: std::collections::BTreeSet<u64> =
                r.items.iter().filter_map(|p| search::relevance(p, q.terms())).collect();
            ranked += usize::from(q.sort() == SortOrder::Relevance && scores.len() > 1);
        }
    }
    assert!(found * 3 > total, "only {found} of {total} queries found anything");
    eprintln!("{found} of {total} found something, {ranked} ranked by distinct scores");
    assert!(ranked * 25 > total, "only {ranked} of {total} queries ranked by distinct scores");
}

/// A description that is one word of 2,500 characters (the limit is 20,000)
/// is indexed as overlapping windows: terms of up to 200 characters (the
/// longest query) taken
/// anywhere in it, across window boundaries too, must still be found, and
/// near misses must not.
#[test]
fn terms_inside_very_long_words_are_found() {
    // Pseudo-random letters, so no stretch of the word repeats elsewhere.
    let mut seed = 7u64;
    let word: String = (0..2_500)
        .map(|_| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            char::from(b'a' + u8::try_from((seed >> 33) % 26).unwrap())
        })
        .collect();
    let mut long = common::approved("Long one", 0);
    long.description = format!("intro {word} outro");
    let other = common::approved("Other", 1);
    let products = vec![long, other];
    let index = CatalogIndex::in_memory().unwrap();
    index.upsert_all(&products).unwrap();
    index.commit().unwrap();
    let chars: Vec<char> = word.chars().collect();
    let mut texts: Vec<String> = Vec::new();
    for start in (0..chars.len() - 200).step_by(61).chain([790, 801, 900, 990, 1_599, 1_790, 1_990, 2_300]) {
        for len in [3, 57, 199] {
            let term: String = chars[start..start + len].iter().collect();
            texts.push(term.clone());
            texts.push(format!("{term}z"));
        }
        texts.push(chars[start..start + 200].iter().collect());
    }
    let mut found = 0;
    for text in texts {
        let q = SearchQuery::new(SearchParams { q: Some(text), ..Default::default() }).unwrap();
        let want = search::apply(&products, &q);
        found += usize::from(want.total > 0);
        assert_eq!(index.search(&q).unwrap(), want, "{:?}", q.q());
    }
    assert!(found > 100, "only {found} texts matched");
}

/// Searches without text over a catalog big enough for several count
/// blocks of the price order (512 documents each), after changes that leave
/// deleted documents behind in the first segment: every sort, price bands
/// from narrow to wide (edges on real prices too), categories (one that no
/// product has included), kinds and pages.
#[test]
fn browsing_a_large_catalog_matches_the_reference() {
    use bazaar_core::testkit::search_load::{CATEGORIES, peer_catalog};
    let mut products = peer_catalog(3_000);
    for (i, p) in products.iter_mut().enumerate() {
        if i % 5 == 0 {
            p.categories.push(CATEGORIES[(i / 5) % 8].to_owned());
            p.categories.dedup();
        }
    }
    let index = CatalogIndex::in_memory().unwrap();
    index.rebuild(&products, Checkpoint::new(1)).unwrap();
    for (i, p) in products.iter_mut().enumerate().filter(|(i, _)| i % 7 == 3) {
        p.version += 1;
        if i % 2 == 0 {
            p.status = ProductStatus::Suspended;
        } else {
            p.pricing = Pricing::OneTime { price: Money::new(4_242, Currency::USD) };
        }
        index.upsert(p).unwrap();
    }
    index.commit().unwrap();
    assert!(index.stats().segments > 1, "the changes live in a second segment");

    let prices: Vec<i64> = products.iter().map(|p| p.pricing.sort_minor()).collect();
    let bands = [
        (None, None),
        (Some(4_242), Some(4_242)),
        (Some(prices[10]), Some(prices[10] + 40)),
        (Some(1_000), Some(3_000)),
        (Some(0), Some(9_000)),
        (Some(prices[77]), None),
        (None, Some(prices[1_234])),
    ];
    let categories = [None, Some("sales"), Some("data"), Some("absent")];
    let kinds = [None, Some(ProductKind::N8nWorkflow)];
    let pages = [(1, 20), (3, 7), (1, 100), (90, 50)];
    let (mut checked, mut nonempty) = (0, 0);
    for sort in SortOrder::ALL.iter().copied().map(Some).chain([None]) {
        for (price_min, price_max) in bands {
            for category in categories {
                for kind in kinds {
                    for (page, limit) in pages {
                        let params = SearchParams {
                            q: None,
                            category: category.map(str::to_owned),
                            kind,
                            price_min,
                            price_max,
                            sort,
                            page: Some(page),
                            limit: Some(limit),
                        };
                        let q = SearchQuery::new(params.clone()).unwrap();
                        let want = search::apply(&products, &q);
                        assert_eq!(index.search(&q).unwrap(), want, "{params:?}");
                        checked += 1;
                        nonempty += usize::from(!want.items.is_empty());
                    }
                }
            }
        }
    }
    assert_eq!(checked, 7 * 7 * 4 * 2 * 4);
    assert!(nonempty > checked / 3, "only {nonempty} of {checked} pages had items");
}
