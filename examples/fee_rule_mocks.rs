//! Unit-test a business rule of your own with the core's mockall mocks of
//! the ports, without a database or a marketplace.
//!
//! The rule is a vendor fee policy a marketplace operator might add on top
//! of the flat platform fee: a 5 % launch fee for a product's first 30
//! days, 15 % for top-rated products (an average of 4.5 stars or more over
//! at least 10 reviews), the house 20 % otherwise, and nothing on free
//! products. It reads the product through the [`ProductRepository`] port
//! and the time through the [`Clock`] port, so each scenario hands it a
//! [`MockProductRepository`] and a [`MockClock`] and asserts the
//! interactions too: the product is looked up exactly once, with the right
//! id, and the clock is not read when the answer cannot depend on it.
//!
//! The mocks come from `bazaar-core`'s `mocks` feature (in your
//! `Cargo.toml`: `bazaar-core = { version = "…", features = ["mocks"] }`,
//! as a dev-dependency). Use the in-memory adapters when you want real
//! behaviour; use mocks, as here, to pin down interactions and to produce
//! failures (a database that is down) that are hard to provoke otherwise.
//!
//! Needs nothing. `cargo run -p bazaar-examples --example fee_rule_mocks`
//! runs every scenario and exits non-zero if one fails;
//! `cargo test -p bazaar-examples --example fee_rule_mocks` runs them as tests.

use std::sync::Arc;

use bazaar_core::Error;
use bazaar_core::catalog::{MockProductRepository, NewProduct, Pricing, Product, ProductKind, ProductRepository};
use bazaar_core::clock::{Clock, MockClock, Timestamp};
use bazaar_core::error::ErrorKind;
use bazaar_core::ids::{ProductId, UserId};
use bazaar_core::money::{Currency, FeeRate, FeeSplit, Money};
use chrono::{Duration, TimeZone, Utc};
use mockall::predicate::eq;

/// Which part of the policy set the fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeeTier {
    /// The product is free: nothing to split.
    Free,
    /// Within [`LAUNCH_WINDOW`] of the product's creation.
    Launch,
    /// An average of at least 4.5 stars over at least 10 reviews.
    TopRated,
    /// Everything else.
    House,
}

/// How long the launch fee applies.
const LAUNCH_WINDOW: Duration = Duration::days(30);

impl FeeTier {
    fn rate(self) -> FeeRate {
        let bps = match self {
            Self::Free => 0,
            Self::Launch => 500,
            Self::TopRated => 1_500,
            Self::House => 2_000,
        };
        FeeRate::from_bps(bps).expect("every tier's rate is at most 100 %")
    }
}

/// The fee policy over the catalog and a clock.
struct VendorFees {
    products: Arc<dyn ProductRepository>,
    clock: Arc<dyn Clock>,
}

impl VendorFees {
    /// The tier and the split of one sale of `product_id` at its list price.
    ///
    /// # Errors
    /// `NotFound` when there is no such product; the repository's own
    /// errors as they are (a store that is down is not a reason to charge
    /// the house rate).
    async fn quote(&self, product_id: ProductId) -> bazaar_core::Result<(FeeTier, Option<FeeSplit>)> {
        let product = self.products.get(product_id).await?.ok_or_else(|| Error::not_found("product"))?;
        let Some(price) = product.pricing.price() else {
            return Ok((FeeTier::Free, None));
        };
        let tier = if self.clock.now() - product.created_at < LAUNCH_WINDOW {
            FeeTier::Launch
        } else if is_top_rated(&product) {
            FeeTier::TopRated
        } else {
            FeeTier::House
        };
        Ok((tier, Some(tier.rate().split(price)?)))
    }
}

/// At least 10 reviews averaging 4.5 stars or more, in integers:
/// `sum / count >= 4.5` is `2·sum >= 9·count`.
fn is_top_rated(product: &Product) -> bool {
    let stats = &product.stats;
    stats.rating_count >= 10 && 2 * stats.rating_sum >= 9 * stats.rating_count
}

// ---- the scenarios -------------------------------------------------------

type Checked = Result<(), String>;

fn check(ok: bool, message: impl Into<String>) -> Checked {
    if ok { Ok(()) } else { Err(message.into()) }
}

/// Noon, 1 March 2026: "now" in every scenario.
fn now() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().expect("a valid date")
}

/// A 100.00 EUR product created `age` before [`now`], with `reviews` of
/// `stars` each.
fn product(age: Duration, pricing: Pricing, reviews: u64, stars: u64) -> Product {
    let input = NewProduct {
        title: "Meeting notes agent".into(),
        description: "Joins calls and writes the minutes.".into(),
        short_description: "Minutes, written for you.".into(),
        kind: ProductKind::AiAgent,
        categories: vec!["productivity".into()],
        tags: vec![],
        pricing,
        media: vec![],
    };
    let mut product =
        Product::create(ProductId::new(), UserId::new(), input, now() - age).expect("the test product is valid");
    product.stats.rating_count = reviews;
    product.stats.rating_sum = reviews * stars;
    product
}

fn paid() -> Pricing {
    Pricing::OneTime { price: Money::new(10_000, Currency::EUR) }
}

/// A repository that expects exactly one lookup of `product` and answers it.
fn serving(product: &Product) -> MockProductRepository {
    let mut products = MockProductRepository::new();
    let answer = product.clone();
    products.expect_get().with(eq(product.id)).times(1).returning(move |_| Ok(Some(answer.clone())));
    products
}

/// A clock read exactly `reads` times, always at [`now`].
fn clock_read(reads: usize) -> MockClock {
    let mut clock = MockClock::new();
    clock.expect_now().times(reads).returning(now);
    clock
}

fn fees(products: MockProductRepository, clock: MockClock) -> VendorFees {
    VendorFees { products: Arc::new(products), clock: Arc::new(clock) }
}

/// Expects `tier` with `fee` minor units of the 100.00 EUR price.
async fn quotes(rule: &VendorFees, id: ProductId, tier: FeeTier, fee: i64) -> Checked {
    let (got, split) = rule.quote(id).await.map_err(|e| e.to_string())?;
    check(got == tier, format!("expected {tier:?}, got {got:?}"))?;
    let split = split.ok_or("a paid product has a split")?;
    check(split.platform_fee == Money::new(fee, Currency::EUR), format!("fee {}", split.platform_fee))?;
    check(split.vendor_net == Money::new(10_000 - fee, Currency::EUR), format!("net {}", split.vendor_net))
}

async fn a_new_product_pays_the_launch_fee() -> Checked {
    let p = product(Duration::days(29), paid(), 0, 0);
    quotes(&fees(serving(&p), clock_read(1)), p.id, FeeTier::Launch, 500).await
}

async fn the_launch_fee_ends_after_thirty_days() -> Checked {
    let p = product(LAUNCH_WINDOW, paid(), 0, 0);
    quotes(&fees(serving(&p), clock_read(1)), p.id, FeeTier::House, 2_000).await
}

async fn a_top_rated_product_pays_less() -> Checked {
    // Nine reviews of 5 stars and one of 4: an average of 4.9.
    let mut p = product(Duration::days(90), paid(), 10, 5);
    p.stats.rating_sum -= 1;
    quotes(&fees(serving(&p), clock_read(1)), p.id, FeeTier::TopRated, 1_500).await
}

async fn nine_reviews_are_not_enough() -> Checked {
    let p = product(Duration::days(90), paid(), 9, 5);
    quotes(&fees(serving(&p), clock_read(1)), p.id, FeeTier::House, 2_000).await
}

async fn an_average_just_below_the_bar_is_not_top_rated() -> Checked {
    // 20 reviews summing 89: an average of 4.45.
    let mut p = product(Duration::days(90), paid(), 20, 4);
    p.stats.rating_sum = 89;
    quotes(&fees(serving(&p), clock_read(1)), p.id, FeeTier::House, 2_000).await
}

async fn a_free_product_pays_nothing_and_the_clock_is_not_read() -> Checked {
    let p = product(Duration::days(1), Pricing::Free, 0, 0);
    let (tier, split) = fees(serving(&p), clock_read(0)).quote(p.id).await.map_err(|e| e.to_string())?;
    check(tier == FeeTier::Free && split.is_none(), format!("free product quoted {tier:?} {split:?}"))
}

async fn an_unknown_product_is_not_found() -> Checked {
    let id = ProductId::new();
    let mut products = MockProductRepository::new();
    products.expect_get().with(eq(id)).times(1).returning(|_| Ok(None));
    let err = fees(products, clock_read(0)).quote(id).await.err().ok_or("an unknown product has no quote")?;
    check(err.kind() == ErrorKind::NotFound, format!("expected not found, got {err}"))
}

async fn a_store_outage_is_reported_not_priced() -> Checked {
    let mut products = MockProductRepository::new();
    products.expect_get().times(1).returning(|_| Err(Error::unavailable("database", "connection refused")));
    let err = fees(products, clock_read(0)).quote(ProductId::new()).await.err().ok_or("an outage has no quote")?;
    check(err.kind() == ErrorKind::Unavailable, format!("expected unavailable, got {err}"))
}

/// Every scenario, by name, for `main` (the tests run them one by one).
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        async fn run_all() -> Vec<(&'static str, Checked)> {
            vec![$((stringify!($name), $name().await)),*]
        }

        #[cfg(test)]
        mod tests {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name().await.unwrap();
                }
            )*
        }
    };
}

scenarios!(
    a_new_product_pays_the_launch_fee,
    the_launch_fee_ends_after_thirty_days,
    a_top_rated_product_pays_less,
    nine_reviews_are_not_enough,
    an_average_just_below_the_bar_is_not_top_rated,
    a_free_product_pays_nothing_and_the_clock_is_not_read,
    an_unknown_product_is_not_found,
    a_store_outage_is_reported_not_priced,
);

#[tokio::main]
async fn main() -> Result<(), String> {
    let mut failed = 0;
    for (name, outcome) in run_all().await {
        match outcome {
            Ok(()) => println!("ok    {name}"),
            Err(why) => {
                failed += 1;
                println!("FAIL  {name}: {why}");
            }
        }
    }
    if failed > 0 {
        return Err(format!("{failed} scenario(s) failed"));
    }
    println!("every fee scenario holds");
    Ok(())
}
