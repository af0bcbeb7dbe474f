//! Your own payment provider, plugged in through the builder: a manual
//! bank-transfer provider on the embedded SQLite store, with a 10 % platform
//! fee.
//!
//! A buyer who pays "by bank transfer" gets an intent that waits in
//! `processing` with a payment reference; when the money shows up on the
//! statement, the back office marks the reference received and the provider
//! reports the intent succeeded (here through `sync_with_provider`, as a
//! reconciliation job would). The marketplace then fulfils the order and
//! issues the license like for any card payment.
//!
//! Needs nothing but a temporary directory. Run with
//! `cargo run -p bazaar-examples --example bank_transfer`; it exits non-zero
//! unless the order ends fulfilled with a license and the fee split is 10 %.

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;

use async_trait::async_trait;
use bazaar_auth::{Argon2Passwords, JwtTokens};
use bazaar_core::auth::{Actor, Role};
use bazaar_core::catalog::{NewProduct, Pricing, ProductKind};
use bazaar_core::clock::{SystemClock, Timestamp};
use bazaar_core::ids::{OrderId, UserId};
use bazaar_core::marketplace::{Bus, Marketplace};
use bazaar_core::money::{Currency, FeeRate, Money};
use bazaar_core::orders::{OrderStatus, PlaceOrder};
use bazaar_core::payments::{IntentStatus, PaymentProvider, ProviderIntent, ProviderRefund, WebhookEvent};
use bazaar_memory::{InProcessBus, MemoryBlobStore};
use bazaar_sqlite::SqliteStore;
use parking_lot::Mutex;

/// The only payment method this provider knows.
const BANK_TRANSFER: &str = "bank_transfer";

/// A transfer the buyer was asked to make.
#[derive(Debug, Clone)]
struct Transfer {
    amount: Money,
    status: IntentStatus,
}

/// Payments by bank transfer, reconciled by hand: intents wait in
/// `processing` until [`BankTransfers::mark_received`] is called for their
/// reference. Keyed calls are idempotent because every answer is a function
/// of the stored transfer.
#[derive(Debug, Default)]
struct BankTransfers {
    transfers: Mutex<HashMap<String, Transfer>>,
}

impl BankTransfers {
    /// The back office saw `reference` on the bank statement.
    fn mark_received(&self, reference: &str) {
        if let Some(t) = self.transfers.lock().get_mut(reference) {
            t.status = IntentStatus::Succeeded;
        }
    }

    fn report(reference: &str, t: &Transfer) -> ProviderIntent {
        ProviderIntent {
            provider_ref: reference.to_owned(),
            status: t.status,
            amount: t.amount.minor(),
            currency: t.amount.currency().code().to_owned(),
            decline_code: None,
        }
    }

    fn find(&self, reference: &str) -> bazaar_core::Result<Transfer> {
        self.transfers.lock().get(reference).cloned().ok_or_else(|| bazaar_core::Error::not_found("transfer"))
    }
}

#[async_trait]
impl PaymentProvider for BankTransfers {
    fn name(&self) -> String {
        "bank".into()
    }

    async fn create_intent(&self, amount: Money, order_id: OrderId, _key: &str) -> bazaar_core::Result<ProviderIntent> {
        // The reference the buyer writes on the transfer: one per order, so
        // a retried create answers the same intent.
        let reference = format!("BZR-{}", &order_id.to_string()[..8]);
        let mut transfers = self.transfers.lock();
        let t = transfers
            .entry(reference.clone())
            .or_insert(Transfer { amount, status: IntentStatus::RequiresPaymentMethod });
        Ok(Self::report(&reference, t))
    }

    async fn confirm(&self, reference: &str, method: &str, _key: &str) -> bazaar_core::Result<ProviderIntent> {
        if method != BANK_TRANSFER {
            return Err(bazaar_core::Error::invalid("payment_method", "only bank_transfer is accepted"));
        }
        let mut transfers = self.transfers.lock();
        let t = transfers.get_mut(reference).ok_or_else(|| bazaar_core::Error::not_found("transfer"))?;
        if t.status == IntentStatus::RequiresPaymentMethod {
            t.status = IntentStatus::Processing;
        }
        Ok(Self::report(reference, t))
    }

    async fn refund(&self, reference: &str, amount: Money, _key: &str) -> bazaar_core::Result<ProviderRefund> {
        self.find(reference)?;
        Ok(ProviderRefund {
            refund_ref: format!("{reference}-refund"),
            provider_ref: reference.to_owned(),
            amount: amount.minor(),
            currency: amount.currency().code().to_owned(),
        })
    }

    async fn retrieve(&self, reference: &str) -> bazaar_core::Result<ProviderIntent> {
        Ok(Self::report(reference, &self.find(reference)?))
    }

    fn verify_and_parse_webhook(&self, _: &str, _: &[u8], _: Timestamp) -> bazaar_core::Result<WebhookEvent> {
        // A bank sends no webhooks: reconciliation polls `retrieve`.
        Err(bazaar_core::Error::Unauthenticated("the bank-transfer provider accepts no webhooks".into()))
    }
}

type Outcome = Result<(), Box<dyn Error>>;

fn ensure(ok: bool, message: &str) -> Outcome {
    if ok { Ok(()) } else { Err(message.into()) }
}

#[tokio::main]
async fn main() -> Outcome {
    let dir = tempfile::tempdir()?;
    let db = SqliteStore::open(&dir.path().join("market.db")).await?;
    db.migrate().await?;
    let clock = Arc::new(SystemClock);
    let bank = Arc::new(BankTransfers::default());

    // The whole marketplace over SQLite with our provider and a 10 % fee.
    let market = Marketplace::builder(
        db.ports(Bus::new(Arc::new(InProcessBus::new(clock.clone()))), Arc::new(MemoryBlobStore::new())),
    )
    .payment_provider(bank.clone())
    .fee_rate(FeeRate::from_bps(1_000)?)
    .passwords(Arc::new(Argon2Passwords::default()))
    .tokens(Arc::new(JwtTokens::new(rand_secret())))
    .build()?;

    let vendor = Actor::new(UserId::new(), Role::Vendor);
    let admin = Actor::new(UserId::new(), Role::Admin);
    let buyer = Actor::new(UserId::new(), Role::Customer);
    let product = market
        .catalog
        .create(
            &vendor,
            NewProduct {
                title: "Invoice chaser workflow".into(),
                description: "An n8n workflow that reminds customers of unpaid invoices.".into(),
                short_description: "Chases unpaid invoices.".into(),
                kind: ProductKind::N8nWorkflow,
                categories: vec!["finance".into()],
                tags: vec!["invoices".into()],
                pricing: Pricing::OneTime { price: Money::new(10_000, Currency::EUR) },
                media: vec![],
            },
        )
        .await?;
    market.catalog.submit(&vendor, product.id).await?;
    market.catalog.approve(&admin, product.id).await?;

    let order = market.orders.place(&buyer, PlaceOrder::new([product.id]), None).await?;
    let line = &order.lines[0];
    println!("order {} for {}: fee {}, vendor gets {}", order.id, order.total, line.platform_fee, line.vendor_net);
    ensure(line.platform_fee == Money::new(1_000, Currency::EUR), "the fee is 10 %")?;

    let intent = market.orders.pay(&buyer, order.id, BANK_TRANSFER).await?;
    let reference = intent.provider_ref.clone().ok_or("the intent has a transfer reference")?;
    println!("pay {} by bank transfer, reference {reference}: {}", intent.amount, intent.status);
    ensure(intent.status == IntentStatus::Processing, "a transfer waits in processing")?;

    // Days later the money arrives; the reconciliation job asks the provider.
    bank.mark_received(&reference);
    let settled = market.payments.sync_with_provider(order.id).await?;
    println!("reconciled: {}", settled.status);
    market.pump().await?;

    let order = market.orders.get(&buyer, order.id).await?;
    let licenses = market.licenses.list_mine(&buyer, Default::default()).await?;
    println!("order {}; {} license(s)", order.status, licenses.total);
    ensure(order.status == OrderStatus::Fulfilled && licenses.total == 1, "the transfer fulfilled the order")
}

/// A JWT secret for this run only.
fn rand_secret() -> [u8; 32] {
    use bazaar_core::entropy::{Entropy, OsEntropy};
    OsEntropy.bytes32()
}
