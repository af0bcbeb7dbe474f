//! One sale from sign-up to a validated license, on whatever marketplace it
//! is given: the embedding examples (`embed_sqlite`, `embed_postgres_nats`,
//! `license_events`) share it so each can show only its own wiring.
//!
//! Every step goes through the public services of
//! [`Marketplace`]; nothing here knows which store or bus is underneath.

use std::error::Error;

use bazaar_core::auth::{Actor, Email, Role, Signup};
use bazaar_core::catalog::{NewProduct, Pricing, ProductKind};
use bazaar_core::licensing::{License, ValidationCode};
use bazaar_core::marketplace::Marketplace;
use bazaar_core::money::{Currency, Money};
use bazaar_core::orders::{OrderStatus, PlaceOrder};
use bazaar_core::payments::PM_CARD_VISA;

/// The fingerprint of the buyer's machine, which the license is activated on.
pub(crate) const MACHINE: &str = "laptop-7f3a9c";

/// What an example's `main` returns: any failure ends the run non-zero.
pub(crate) type Outcome<T = ()> = Result<T, Box<dyn Error>>;

/// Fails the run with `message` unless `ok`.
pub(crate) fn ensure(ok: bool, message: &str) -> Outcome {
    if ok { Ok(()) } else { Err(message.into()) }
}

/// Signs up a vendor and a customer, takes a product through moderation,
/// orders and pays it with the sandbox card, lets the event handlers issue
/// the license, activates it on [`MACHINE`] and validates its key there.
/// `tag` keeps the e-mails apart when several runs share one database.
///
/// The caller decides how events travel: `deliver` is awaited after the
/// payment and must get the outbox's events to the handlers (on the
/// in-process bus that is [`Marketplace::pump`]).
pub(crate) async fn sell_one_license<F, Fut>(market: &Marketplace, tag: &str, deliver: F) -> Outcome<License>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Outcome>,
{
    println!("- sign up a vendor and a customer");
    let vendor = sign_up(market, &format!("vendor-{tag}@example.com"), Role::Vendor).await?;
    let buyer = sign_up(market, &format!("buyer-{tag}@example.com"), Role::Customer).await?;
    let admin_email = Email::parse(&format!("admin-{tag}@example.com"))?;
    let admin = market.auth.ensure_admin(&admin_email, "correct horse battery staple").await?;
    let admin = Actor::new(admin.id, Role::Admin);

    println!("- the vendor lists a product; an admin approves it");
    let product = market
        .catalog
        .create(
            &vendor,
            NewProduct {
                title: "Lead enrichment agent".into(),
                description: "Looks up new CRM leads and fills in company size and industry.".into(),
                short_description: "Enriches CRM leads.".into(),
                kind: ProductKind::AiAgent,
                categories: vec!["sales".into()],
                tags: vec!["crm".into()],
                pricing: Pricing::OneTime { price: Money::new(2_900, Currency::EUR) },
                media: vec![],
            },
        )
        .await?;
    market.catalog.submit(&vendor, product.id).await?;
    let product = market.catalog.approve(&admin, product.id).await?;
    println!("  product {} is {:?}", product.id, product.status);

    println!("- the customer orders and pays with the sandbox card");
    let order = market.orders.place(&buyer, PlaceOrder::new([product.id]), Some(&format!("checkout-{tag}"))).await?;
    let intent = market.orders.pay(&buyer, order.id, PM_CARD_VISA).await?;
    println!("  order {} for {}: payment {:?}", order.id, order.total, intent.status);

    println!("- events reach the handlers, which fulfil the order and issue the license");
    deliver().await?;
    let order = market.orders.get(&buyer, order.id).await?;
    ensure(order.status == OrderStatus::Fulfilled, "the paid order is fulfilled")?;
    let licenses = market.licenses.list_mine(&buyer, Default::default()).await?.items;
    ensure(licenses.len() == 1, "the buyer holds exactly one license")?;
    let license = licenses.into_iter().next().ok_or("one license")?;

    println!("- the customer's app activates this machine and validates the key");
    market.licenses.activate(&buyer, license.id, MACHINE).await?;
    let check = market.licenses.validate(&license.key, Some(MACHINE)).await?;
    println!("  license {}: valid={} ({:?})", license.id, check.valid, check.code);
    ensure(check.valid && check.code == ValidationCode::Valid, "the issued key validates")?;
    Ok(license)
}

/// Registers an account with a password and turns its access token into
/// the [`Actor`] the services take, as an HTTP handler would.
async fn sign_up(market: &Marketplace, email: &str, role: Role) -> Outcome<Actor> {
    let session = market
        .auth
        .register(Signup {
            email: email.into(),
            password: "correct horse battery staple".into(),
            name: "Example".into(),
            role,
        })
        .await?;
    Ok(market.auth.verify(&session.access.token)?)
}
