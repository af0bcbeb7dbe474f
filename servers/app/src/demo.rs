//! The demo marketplace: fixed demo logins and a realistic, approved catalog
//! (`bazaar seed`, `bazaar serve --demo`).
//!
//! The catalog is generated, not random: product `i` is the same on every
//! machine, so a walk-through can name a category and find the same
//! listings. Every product carries one small downloadable asset (an agent
//! manifest, an n8n workflow export or a Markdown playbook) so a demo
//! purchase can be downloaded end to end.
//!
//! Seeding is idempotent and resumable: the demo users are created only
//! when missing, the catalog is topped up to the requested size (never
//! duplicated), and a product left half-done by an interrupted run (a draft
//! without its asset, a pending one) is finished on the next run.

use std::fmt;

use bazaar_core::Result;
use bazaar_core::auth::{Actor, Email, Role, User};
use bazaar_core::catalog::ProductKind::{AiAgent, AutomationAsset, N8nWorkflow};
use bazaar_core::catalog::{
    BillingInterval, MAX_LIMIT, NewProduct, PageRequest, Pricing, Product, ProductKind, ProductStatus,
};
use bazaar_core::money::{Currency, Money};
use futures::{StreamExt as _, TryStreamExt as _};

use bazaar_core::marketplace::Marketplace;

/// The demo vendor's e-mail; its existence marks a seeded data dir.
pub const DEMO_VENDOR_EMAIL: &str = "vendor@demo.bazaar";
/// The demo admin's e-mail.
pub const DEMO_ADMIN_EMAIL: &str = "admin@demo.bazaar";
/// The demo customer's e-mail.
pub const DEMO_BUYER_EMAIL: &str = "buyer@demo.bazaar";
/// The password of every demo account. It is public on purpose: demo data
/// dirs are for trying Bazaar out, never for production.
pub const DEMO_PASSWORD: &str = "demo-password";
/// How many products `bazaar serve --demo` lists.
pub const DEFAULT_DEMO_PRODUCTS: usize = 50;

/// One demo account, as printed at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoLogin {
    /// Its role.
    pub role: Role,
    /// Its e-mail.
    pub email: &'static str,
    /// Its password.
    pub password: &'static str,
}

/// The demo accounts: admin, vendor, customer.
pub const DEMO_LOGINS: [DemoLogin; 3] = [
    DemoLogin { role: Role::Admin, email: DEMO_ADMIN_EMAIL, password: DEMO_PASSWORD },
    DemoLogin { role: Role::Vendor, email: DEMO_VENDOR_EMAIL, password: DEMO_PASSWORD },
    DemoLogin { role: Role::Customer, email: DEMO_BUYER_EMAIL, password: DEMO_PASSWORD },
];

/// What a [`seed_demo`] run did.
#[derive(Clone, PartialEq, Eq)]
pub struct SeedReport {
    /// Whether the demo vendor already existed (a previously seeded data dir).
    pub already_seeded: bool,
    /// Products created by this run.
    pub created: usize,
    /// Products left half-done by an earlier run and finished by this one.
    pub finished: usize,
    /// The demo vendor's products after the run (approved).
    pub total: usize,
}

impl fmt::Debug for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeedReport")
            .field("already_seeded", &self.already_seeded)
            .field("created", &self.created)
            .field("finished", &self.finished)
            .field("total", &self.total)
            .finish()
    }
}

/// Products listed per store transaction while seeding.
pub const SEED_BATCH: usize = 500;
/// Asset uploads in flight at once while seeding: each writes and syncs a
/// file, so they overlap their waits on the disk.
const UPLOADS_IN_FLIGHT: usize = 16;

/// Seeds the demo accounts and tops the demo vendor's catalog up to
/// `products` approved listings, calling `progress` with the number of
/// listings ready so far (including those from earlier runs) after each one.
///
/// New listings are imported approved in batches of [`SEED_BATCH`] (one
/// transaction each, [`CatalogService::import_approved`](bazaar_core::catalog::CatalogService::import_approved)),
/// then their assets uploaded `UPLOADS_IN_FLIGHT` at a time; a listing
/// is ready once its asset is stored. An approved demo listing without an
/// asset (a run interrupted between the two) gets it on the next run.
///
/// # Errors
/// [`bazaar_core::Error::Conflict`] when a demo e-mail belongs to an account of another
/// role; the services' and stores' errors.
pub async fn seed_demo(market: &Marketplace, products: usize, progress: impl Fn(usize)) -> Result<SeedReport> {
    let (vendor, created) = ensure_user(market, DEMO_VENDOR_EMAIL, "Demo Vendor", Role::Vendor).await?;
    let already_seeded = !created;
    let admin = market.auth.ensure_admin(&email(DEMO_ADMIN_EMAIL)?, DEMO_PASSWORD).await?;
    ensure_user(market, DEMO_BUYER_EMAIL, "Demo Buyer", Role::Customer).await?;

    let vendor = Actor::new(vendor.id, Role::Vendor);
    let admin = Actor::new(admin.id, Role::Admin);
    let mine = all_products(market, &vendor).await?;
    let mut ready = mine.iter().filter(|p| p.status == ProductStatus::Approved).count();
    progress(ready.min(products));

    let mut finished = 0;
    for product in mine.iter().filter(|p| p.status != ProductStatus::Approved) {
        if publish(market, &vendor, &admin, product).await? {
            finished += 1;
            ready += 1;
            progress(ready.min(products));
        }
    }
    let approved: Vec<&Product> = mine.iter().filter(|p| p.status == ProductStatus::Approved).collect();
    let owner = &vendor;
    let missing = futures::stream::iter(approved)
        .map(|p| async move {
            let assets = market.downloads.list_assets(Some(owner), p.id, PageRequest::default()).await?;
            Ok::<_, bazaar_core::Error>((assets.total == 0).then_some(p.clone()))
        })
        .buffer_unordered(UPLOADS_IN_FLIGHT)
        .try_filter_map(|p| async move { Ok(p) })
        .try_collect::<Vec<Product>>()
        .await?;
    upload_assets(market, &vendor, &missing, |_| {}).await?;

    let mut created = 0;
    let mut next = mine.len();
    while next < products {
        let end = (next + SEED_BATCH).min(products);
        let listed =
            market.catalog.import_approved(&admin, vendor.user_id, (next..end).map(demo_product).collect()).await?;
        upload_assets(market, &vendor, &listed, |_| {
            ready += 1;
            progress(ready.min(products));
        })
        .await?;
        created += listed.len();
        next = end;
    }
    Ok(SeedReport { already_seeded, created, finished, total: ready })
}

/// Uploads each product's demo asset, [`UPLOADS_IN_FLIGHT`] at a time,
/// calling `done` after each.
async fn upload_assets(
    market: &Marketplace,
    vendor: &Actor,
    products: &[Product],
    mut done: impl FnMut(&Product),
) -> Result<()> {
    let mut uploads = futures::stream::iter(products)
        .map(|product| async move {
            let asset = demo_asset(product);
            market.downloads.upload(vendor, product.id, &asset.file_name, asset.mime, asset.bytes, false).await?;
            Ok::<_, bazaar_core::Error>(product)
        })
        .buffer_unordered(UPLOADS_IN_FLIGHT);
    while let Some(product) = uploads.try_next().await? {
        done(product);
    }
    Ok(())
}

fn email(s: &str) -> Result<Email> {
    Email::parse(s)
}

async fn ensure_user(market: &Marketplace, address: &str, name: &str, role: Role) -> Result<(User, bool)> {
    market.auth.ensure_account(&email(address)?, DEMO_PASSWORD, name, role).await
}

async fn all_products(market: &Marketplace, vendor: &Actor) -> Result<Vec<Product>> {
    let mut all = Vec::new();
    for page in 1.. {
        let batch = market.catalog.list_mine(vendor, PageRequest::new(page, MAX_LIMIT)?).await?;
        let done = batch.items.is_empty() || all.len() + batch.items.len() >= usize::try_from(batch.total).unwrap_or(0);
        all.extend(batch.items);
        if done {
            break;
        }
    }
    Ok(all)
}

/// Takes a demo product from wherever it stopped to approved; returns
/// whether it is approved now (a rejected or suspended one is left alone:
/// someone moderated it on purpose).
async fn publish(market: &Marketplace, vendor: &Actor, admin: &Actor, product: &Product) -> Result<bool> {
    let mut status = product.status;
    if status == ProductStatus::Draft {
        if market.downloads.list_assets(Some(vendor), product.id, PageRequest::default()).await?.total == 0 {
            let asset = demo_asset(product);
            market.downloads.upload(vendor, product.id, &asset.file_name, asset.mime, asset.bytes, false).await?;
        }
        status = market.catalog.submit(vendor, product.id).await?.status;
    }
    if status == ProductStatus::Pending {
        status = market.catalog.approve(admin, product.id).await?.status;
    }
    Ok(status == ProductStatus::Approved)
}

/// A listing template: the editions below multiply it into distinct titles.
struct Template {
    title: &'static str,
    short: &'static str,
    kind: ProductKind,
    categories: &'static [&'static str],
    tags: &'static [&'static str],
    /// US cents of the one-time price.
    cents: i64,
}

const fn t(
    title: &'static str,
    short: &'static str,
    kind: ProductKind,
    categories: &'static [&'static str],
    tags: &'static [&'static str],
    cents: i64,
) -> Template {
    Template { title, short, kind, categories, tags, cents }
}

// Interleaved by kind so that any prefix of the catalog mixes all three.
// One listing per line reads as a table; rustfmt would spread each over eight.
#[rustfmt::skip]
const TEMPLATES: &[Template] = &[
    t("Inbox Triage Agent", "Sorts, labels and drafts replies to your support inbox.", AiAgent, &["customer-support"], &["email", "triage", "gpt"], 4900),
    t("Shopify Order Sync", "Mirrors new Shopify orders into Google Sheets and Slack.", N8nWorkflow, &["ecommerce", "sales"], &["shopify", "sheets", "slack"], 1900),
    t("Cold Email Playbook", "Forty tested outreach sequences with merge fields.", AutomationAsset, &["sales", "marketing"], &["outreach", "templates"], 2900),
    t("Sales Research Agent", "Builds a one-page brief on any prospect before the call.", AiAgent, &["sales"], &["crm", "research", "prospecting"], 7900),
    t("Lead Enrichment Pipeline", "Enriches new CRM leads with company data and scores them.", N8nWorkflow, &["sales", "data"], &["hubspot", "clearbit", "scoring"], 2900),
    t("Prompt Library for Support", "120 prompts for tone, escalation and refund replies.", AutomationAsset, &["customer-support"], &["prompts", "support"], 1500),
    t("Code Review Agent", "Reviews pull requests for bugs, style and missing tests.", AiAgent, &["developer-tools"], &["github", "review", "ci"], 9900),
    t("GitHub Issue Router", "Labels and assigns new GitHub issues by component.", N8nWorkflow, &["developer-tools"], &["github", "triage"], 1200),
    t("Terraform Starter Kit", "Opinionated modules for a small production VPC.", AutomationAsset, &["devops"], &["terraform", "aws", "iac"], 3900),
    t("Meeting Notes Agent", "Turns call transcripts into decisions and action items.", AiAgent, &["productivity"], &["meetings", "summaries"], 2900),
    t("Invoice Chaser", "Reminds customers about overdue invoices on a schedule.", N8nWorkflow, &["finance"], &["stripe", "invoices", "email"], 2400),
    t("Monthly Close Checklist", "A spreadsheet checklist for a five-day month-end close.", AutomationAsset, &["finance"], &["accounting", "checklist"], 1900),
    t("Recruiting Screener Agent", "Screens applications against the role's must-haves.", AiAgent, &["hr"], &["hiring", "screening"], 5900),
    t("Employee Onboarding Flow", "Creates accounts, sends welcome packs and books intros.", N8nWorkflow, &["hr", "productivity"], &["onboarding", "google-workspace"], 2900),
    t("Social Media Calendar", "A year of post ideas with hooks and hashtags.", AutomationAsset, &["marketing"], &["social", "content"], 900),
    t("SEO Content Agent", "Drafts briefs and outlines from a keyword list.", AiAgent, &["marketing"], &["seo", "content", "writing"], 4900),
    t("RSS to Newsletter", "Collects RSS items weekly and drafts a newsletter.", N8nWorkflow, &["marketing"], &["rss", "newsletter", "mailchimp"], 900),
    t("Incident Runbook Pack", "Runbooks for the twelve most common production incidents.", AutomationAsset, &["devops"], &["sre", "runbooks", "on-call"], 4900),
    t("Security Alert Triage Agent", "Enriches SIEM alerts and proposes a severity.", AiAgent, &["security"], &["siem", "soc", "alerts"], 14900),
    t("Uptime Alert Relay", "Forwards monitor alerts to the on-call channel with context.", N8nWorkflow, &["devops"], &["monitoring", "pagerduty", "slack"], 1500),
    t("Data Cleaning Scripts", "Python scripts to dedupe, normalise and validate CSVs.", AutomationAsset, &["data"], &["python", "csv", "etl"], 2900),
    t("SQL Analyst Agent", "Answers questions about your warehouse in plain SQL.", AiAgent, &["data"], &["sql", "analytics", "bi"], 7900),
    t("Stripe Revenue Digest", "Posts a daily MRR and churn digest to Slack.", N8nWorkflow, &["finance", "data"], &["stripe", "mrr", "slack"], 1900),
    t("Customer Feedback Tagger", "Tags feedback exports by theme and sentiment.", AutomationAsset, &["customer-support", "data"], &["feedback", "nlp"], 1900),
];

const EDITIONS: &[&str] = &["", "Pro", "for Teams", "Lite", "Enterprise", "Starter", "Plus", "Studio"];

/// The `i`-th demo product: deterministic, valid, and distinct from every
/// other index (the title carries an edition and, past the editions, a
/// series number).
pub fn demo_product(i: usize) -> NewProduct {
    let template = &TEMPLATES[i % TEMPLATES.len()];
    let round = i / TEMPLATES.len();
    let edition = EDITIONS[round % EDITIONS.len()];
    let series = round / EDITIONS.len();
    let mut title = template.title.to_owned();
    if !edition.is_empty() {
        title = format!("{title} {edition}");
    }
    if series > 0 {
        title = format!("{title} {}", series + 1);
    }
    // Editions are priced around the template: Lite and Starter cheaper,
    // Pro, Teams and Enterprise dearer (whole dollars minus a cent).
    let factor = match edition {
        "Lite" | "Starter" => 1,
        "" | "Plus" | "Studio" => 2,
        "Pro" | "for Teams" => 3,
        _ => 6,
    };
    let cents = (template.cents * factor / 2).max(100) / 100 * 100 - 1;
    let usd = |minor: i64| Money::new(minor, Currency::USD);
    // About one in seven free, one in five a subscription; the rest one-time.
    let pricing = if i % 7 == 3 {
        Pricing::Free
    } else if i % 5 == 1 {
        let interval = if i.is_multiple_of(2) { BillingInterval::Yearly } else { BillingInterval::Monthly };
        let per = if interval == BillingInterval::Yearly { cents } else { (cents / 5).max(499) / 100 * 100 + 99 };
        Pricing::Subscription { price: usd(per), interval }
    } else {
        Pricing::OneTime { price: usd(cents) }
    };
    let kind_line = match template.kind {
        AiAgent => "An AI agent you run with your own model key; the download is its manifest.",
        N8nWorkflow => "An n8n workflow: import the JSON export in n8n and fill in the credentials.",
        AutomationAsset => "A ready-to-use automation asset, delivered as a Markdown file.",
    };
    NewProduct {
        description: format!("{}\n\n{kind_line}\n\nIncludes free updates for this major version.", template.short),
        short_description: template.short.to_owned(),
        title,
        kind: template.kind,
        categories: template.categories.iter().map(|c| (*c).to_owned()).collect(),
        tags: template.tags.iter().map(|t| (*t).to_owned()).chain(kind_tag(template.kind)).collect(),
        pricing,
        media: Vec::new(),
    }
}

fn kind_tag(kind: ProductKind) -> Option<String> {
    match kind {
        AiAgent => Some("agent".to_owned()),
        N8nWorkflow => Some("n8n".to_owned()),
        AutomationAsset => None,
    }
}

/// The file a demo product ships with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoAsset {
    /// Its name.
    pub file_name: String,
    /// Its MIME type (one of the default allow-list).
    pub mime: &'static str,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// The asset of `product`, derived from the listing so an interrupted seed
/// can upload it later without knowing the product's index.
pub fn demo_asset(product: &Product) -> DemoAsset {
    let slug = slugify(&product.title);
    match product.kind {
        AiAgent => DemoAsset {
            file_name: format!("{slug}.agent.json"),
            mime: "application/json",
            bytes: pretty(&serde_json::json!({
                "name": product.title,
                "version": "1.0.0",
                "description": product.short_description,
                "model": { "provider": "openai", "name": "gpt-4o-mini", "temperature": 0.2 },
                "system_prompt": format!("You are {}. {}", product.title, product.short_description),
                "tools": product.tags,
            })),
        },
        N8nWorkflow => DemoAsset {
            file_name: format!("{slug}.n8n.json"),
            mime: "application/json",
            bytes: pretty(&serde_json::json!({
                "name": product.title,
                "nodes": [
                    { "name": "Schedule", "type": "n8n-nodes-base.scheduleTrigger", "typeVersion": 1, "position": [0, 0], "parameters": {} },
                    { "name": "Fetch", "type": "n8n-nodes-base.httpRequest", "typeVersion": 4, "position": [220, 0], "parameters": { "url": "https://example.com/api" } },
                    { "name": "Notify", "type": "n8n-nodes-base.slack", "typeVersion": 2, "position": [440, 0], "parameters": { "text": product.short_description } }
                ],
                "connections": {
                    "Schedule": { "main": [[{ "node": "Fetch", "type": "main", "index": 0 }]] },
                    "Fetch": { "main": [[{ "node": "Notify", "type": "main", "index": 0 }]] }
                },
                "tags": product.tags,
            })),
        },
        AutomationAsset => DemoAsset {
            file_name: format!("{slug}.md"),
            mime: "text/markdown",
            bytes: format!(
                "# {}\n\n{}\n\n## Contents\n\n{}\n\n## License\n\nSingle-seat commercial use. See your Bazaar license for limits.\n",
                product.title,
                product.description,
                product.tags.iter().map(|t| format!("- {t}")).collect::<Vec<_>>().join("\n"),
            )
            .into_bytes(),
        },
    }
}

fn pretty(value: &serde_json::Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("a JSON value serializes");
    bytes.push(b'\n');
    bytes
}

fn slugify(title: &str) -> String {
    let mut slug = String::with_capacity(title.len());
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bazaar_core::auth::Signup;
    use bazaar_core::catalog::{SearchParams, SearchQuery};
    use bazaar_core::clock::SystemClock;

    use super::*;
    use crate::keys::Keys;
    use crate::market::{AppOptions, marketplace};

    #[test]
    fn every_generated_product_is_valid_and_titles_are_distinct() {
        let n = TEMPLATES.len() * EDITIONS.len() * 3;
        let mut titles = HashSet::new();
        let mut kinds = HashSet::new();
        let (mut free, mut subscriptions) = (0, 0);
        for i in 0..n {
            let p = demo_product(i);
            p.validate().unwrap_or_else(|e| panic!("product {i} ({}) is invalid: {e:?}", p.title));
            assert!(titles.insert(p.title.clone()), "duplicate title {}", p.title);
            kinds.insert(p.kind);
            match p.pricing {
                Pricing::Free => free += 1,
                Pricing::Subscription { price, .. } => {
                    subscriptions += 1;
                    assert_eq!(price.currency(), Currency::USD);
                }
                Pricing::OneTime { price } => assert_eq!(price.currency(), Currency::USD),
            }
        }
        assert_eq!(kinds.len(), 3);
        assert!(free > 0 && subscriptions > 0 && free + subscriptions < n);
    }

    #[test]
    fn the_first_fifty_mix_every_kind_and_pricing() {
        let first: Vec<_> = (0..DEFAULT_DEMO_PRODUCTS).map(demo_product).collect();
        for kind in ProductKind::ALL {
            assert!(first.iter().any(|p| p.kind == kind), "{kind} missing");
        }
        assert!(first.iter().any(|p| p.pricing.is_free()));
        assert!(first.iter().any(|p| matches!(p.pricing, Pricing::Subscription { .. })));
        assert!(first.iter().any(|p| matches!(p.pricing, Pricing::OneTime { .. })));
    }

    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(slugify("Shopify Order Sync for Teams 2"), "shopify-order-sync-for-teams-2");
        assert_eq!(slugify("  A -- B  "), "a-b");
    }

    fn market() -> Marketplace {
        let clock: Arc<dyn bazaar_core::clock::Clock> = Arc::new(SystemClock);
        let keys = Keys::generate(&bazaar_core::entropy::OsEntropy);
        marketplace(crate::ports::memory(clock.clone()), &keys, AppOptions::new(clock).fast_passwords()).unwrap()
    }

    #[tokio::test]
    async fn seeding_creates_logins_and_an_approved_searchable_catalog_once() {
        let market = market();
        let calls = AtomicUsize::new(0);
        let last = AtomicUsize::new(0);
        let report = seed_demo(&market, 30, |n| {
            calls.fetch_add(1, Ordering::Relaxed);
            last.store(n, Ordering::Relaxed);
        })
        .await
        .unwrap();
        assert_eq!(report, SeedReport { already_seeded: false, created: 30, finished: 0, total: 30 });
        assert_eq!(last.load(Ordering::Relaxed), 30);
        assert_eq!(calls.load(Ordering::Relaxed), 31, "once at the start, once per product");

        for login in DEMO_LOGINS {
            let user = market.auth.authenticate(&Email::parse(login.email).unwrap(), login.password).await.unwrap();
            assert_eq!(user.map(|u| u.role), Some(login.role), "{}", login.email);
        }
        let all = market.catalog.search(&SearchQuery::new(SearchParams::default()).unwrap()).await.unwrap();
        assert_eq!(all.total, 30);
        let support =
            SearchQuery::new(SearchParams { category: Some("customer-support".into()), ..Default::default() }).unwrap();
        assert!(market.catalog.search(&support).await.unwrap().total > 0);
        for product in &all.items {
            let assets = market.downloads.list_assets(None, product.id, PageRequest::default()).await.unwrap().items;
            assert_eq!(assets.len(), 1, "{} has no asset", product.title);
        }

        let again = seed_demo(&market, 30, |_| {}).await.unwrap();
        assert_eq!(again, SeedReport { already_seeded: true, created: 0, finished: 0, total: 30 });
        let more = seed_demo(&market, 35, |_| {}).await.unwrap();
        assert_eq!(more, SeedReport { already_seeded: true, created: 5, finished: 0, total: 35 });
        let all = market.catalog.search(&SearchQuery::new(SearchParams::default()).unwrap()).await.unwrap();
        assert_eq!(all.total, 35);
    }

    #[tokio::test]
    async fn an_interrupted_seed_is_finished_not_duplicated() {
        let market = market();
        seed_demo(&market, 2, |_| {}).await.unwrap();
        // Simulate a crash right after creating the third product's draft.
        let vendor = market.auth.authenticate(&Email::parse(DEMO_VENDOR_EMAIL).unwrap(), DEMO_PASSWORD).await.unwrap();
        let vendor = Actor::new(vendor.unwrap().id, Role::Vendor);
        let draft = market.catalog.create(&vendor, demo_product(2)).await.unwrap();

        let report = seed_demo(&market, 3, |_| {}).await.unwrap();
        assert_eq!(report, SeedReport { already_seeded: true, created: 0, finished: 1, total: 3 });
        let product = market.catalog.get(None, draft.id).await.unwrap();
        assert_eq!(product.status, ProductStatus::Approved);
        assert_eq!(
            market.downloads.list_assets(Some(&vendor), draft.id, PageRequest::default()).await.unwrap().total,
            1
        );
    }

    #[tokio::test]
    async fn a_demo_email_taken_by_another_role_is_a_conflict() {
        let market = market();
        let signup = Signup {
            email: DEMO_VENDOR_EMAIL.into(),
            password: "somebody-else".into(),
            name: "Not a vendor".into(),
            role: Role::Customer,
        };
        market.auth.register(signup).await.unwrap();
        let err = seed_demo(&market, 1, |_| {}).await.unwrap_err();
        assert_eq!(err.code(), "conflict");
    }
}
