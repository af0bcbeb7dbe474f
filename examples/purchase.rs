//! A whole purchase on the in-memory marketplace, step by step: a vendor
//! lists a product, an admin approves it, a buyer orders and pays with the
//! sandbox provider, the payment event issues a license through the outbox
//! relay and the event dispatcher, the buyer validates the key offline and
//! online, and downloads the product's file through a signed URL.
//!
//! Run with `cargo run --example purchase`. Exits non-zero unless the
//! license validates and the download round-trips.

use std::error::Error;
use std::sync::Arc;

use bazaar_auth::{Argon2Passwords, JwtTokens};
use bazaar_core::auth::{Actor, Role};
use bazaar_core::catalog::{NewProduct, Pricing, ProductKind};
use bazaar_core::clock::{Clock, SystemClock};
use bazaar_core::events::EventType;
use bazaar_core::ids::UserId;
use bazaar_core::licensing::{ValidationCode, verify_offline};
use bazaar_core::marketplace::Marketplace;
use bazaar_core::money::{Currency, Money};
use bazaar_core::orders::PlaceOrder;
use bazaar_core::payments::PM_CARD_VISA;
use bazaar_memory::MemoryBackend;

type Outcome = Result<(), Box<dyn Error>>;

/// Fails the run with `message` unless `ok`.
fn ensure(ok: bool, message: &str) -> Outcome {
    if ok { Ok(()) } else { Err(message.into()) }
}

#[tokio::main]
async fn main() -> Outcome {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let backend = MemoryBackend::new(clock.clone());
    let market = Marketplace::builder(backend.ports())
        .clock(clock.clone())
        .passwords(Arc::new(Argon2Passwords::default()))
        .tokens(Arc::new(JwtTokens::new([7; 32])))
        .build()?;
    let vendor = Actor::new(UserId::new(), Role::Vendor);
    let admin = Actor::new(UserId::new(), Role::Admin);
    let buyer = Actor::new(UserId::new(), Role::Customer);

    println!("1. vendor {} lists a product", vendor.user_id);
    let product = market
        .catalog
        .create(
            &vendor,
            NewProduct {
                title: "Inbox triage agent".into(),
                description: "Sorts, labels and drafts replies to your support inbox.".into(),
                short_description: "Support inbox on autopilot.".into(),
                kind: ProductKind::AiAgent,
                categories: vec!["support".into()],
                tags: vec!["email".into(), "triage".into()],
                pricing: Pricing::OneTime { price: Money::new(4_900, Currency::USD) },
                media: vec![],
            },
        )
        .await?;
    println!("   product {} is {:?}", product.id, product.status);
    let bundle = b"{\"agent\":\"inbox-triage\",\"version\":1}".to_vec();
    let asset = market
        .downloads
        .upload(&vendor, product.id, "inbox-triage.json", "application/json", bundle.clone(), false)
        .await?;
    println!("   uploaded asset {} ({} bytes, scan {:?})", asset.file_name.as_str(), asset.size, asset.scan);
    let product = market.catalog.submit(&vendor, product.id).await?;
    println!("   submitted for review: {:?}", product.status);

    println!("2. admin approves it");
    let product = market.catalog.approve(&admin, product.id).await?;
    println!("   product is {:?}, purchasable: {}", product.status, product.is_purchasable());

    println!("3. buyer {} orders and pays with {PM_CARD_VISA}", buyer.user_id);
    let order = market.orders.place(&buyer, PlaceOrder::new([product.id]), Some("checkout-1")).await?;
    println!("   order {} for {} is {:?}", order.id, order.total, order.status);
    let intent = market.orders.pay(&buyer, order.id, PM_CARD_VISA).await?;
    println!("   payment intent {} is {:?}", intent.id, intent.status);

    println!("4. the relay publishes the outbox and the dispatcher runs the handlers");
    let delivered = market.pump().await?;
    let outbox = backend.outbox.events();
    let count = |t: EventType| outbox.iter().filter(|e| e.event_type == t).count();
    println!(
        "   {delivered} deliveries; outbox has {} payment.succeeded, {} license.issued, {} order.fulfilled",
        count(EventType::PaymentSucceeded),
        count(EventType::LicenseIssued),
        count(EventType::OrderFulfilled)
    );
    let order = market.orders.get(&buyer, order.id).await?;
    println!("   order is now {:?}", order.status);
    let licenses = market.licenses.list_mine(&buyer, Default::default()).await?.items;
    ensure(licenses.len() == 1, "expected exactly one license")?;
    let license = &licenses[0];
    println!("   license {} issued, key {}…", license.id, &license.key[..license.key.len().min(24)]);
    let notes = market.notifications.list_for_order(&buyer, order.id).await?;
    for n in &notes {
        println!("   notification [{} / {}] {}", n.channel, n.template, n.body);
    }

    println!("5. buyer validates the key offline with the public key");
    let claims = verify_offline(&license.key, &market.licenses.public_key(), clock.now())
        .map_err(|e| format!("offline verification failed: {e:?}"))?;
    println!("   signature ok: license {} for product {} (kind {})", claims.lid, claims.pid, claims.kind);
    ensure(claims.lid == license.id, "the key names another license")?;

    println!("6. buyer activates a machine and validates online");
    let fingerprint = "laptop-7f3a9c";
    let (activation, _) = market.licenses.activate(&buyer, license.id, fingerprint).await?;
    println!("   activation: {activation:?}");
    let result = market.licenses.validate(&license.key, Some(fingerprint)).await?;
    println!("   online validation: valid={} code={:?}", result.valid, result.code);
    ensure(result.valid && result.code == ValidationCode::Valid, "the license does not validate online")?;

    println!("7. buyer downloads the file through a signed URL");
    let signed = market.downloads.create_download(&buyer, license.id, asset.id).await?;
    println!("   {} (expires {})", signed.path, signed.expires_at);
    let (fetched, bytes) = market.downloads.fetch(&signed.token).await?;
    println!("   got {} ({} bytes)", fetched.file_name.as_str(), bytes.len());
    ensure(bytes == bundle, "the downloaded bytes differ from the upload")?;

    println!("done: the license validates and the download matches");
    Ok(())
}
