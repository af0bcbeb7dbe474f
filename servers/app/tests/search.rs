//! The catalog search read model as `bazaar http` / `bazaar serve` run it:
//! approvals, suspensions and edits visible within a second; a restart
//! that finds the index behind the store; two processes sharing one
//! database and NATS seeing each other's approvals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bazaar_app::{App, AppOptions, Config, SearchIndexKind};
use bazaar_core::auth::{Actor, Email, Role};
use bazaar_core::catalog::{
    NewProduct, Pricing, Product, ProductKind, ProductPatch, SearchParams, SearchQuery, SearchResult, SortOrder,
};
use bazaar_core::clock::{Clock, SystemClock};
use bazaar_core::events::{Event, OrderPlaced};
use bazaar_core::licensing::{Purchase, PurchaseState};
use bazaar_core::marketplace::Marketplace;
use bazaar_core::orders::PlaceOrder;

const FRESHNESS: Duration = Duration::from_secs(1);

async fn app(config: Config) -> App {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    App::build_with(config, AppOptions::new(clock).fast_passwords()).await.unwrap()
}

async fn actors(market: &Marketplace) -> (Actor, Actor) {
    let email = |s: &str| Email::parse(s).unwrap();
    let (vendor, _) =
        market.auth.ensure_account(&email("vendor@search.test"), "password-1", "Vendor", Role::Vendor).await.unwrap();
    let admin = market.auth.ensure_admin(&email("admin@search.test"), "password-1").await.unwrap();
    (Actor::new(vendor.id, Role::Vendor), Actor::new(admin.id, Role::Admin))
}

async fn approved(market: &Marketplace, vendor: &Actor, admin: &Actor, title: &str) -> Product {
    let input = NewProduct {
        title: title.into(),
        description: "Triage for a busy inbox.".into(),
        short_description: String::new(),
        kind: ProductKind::AiAgent,
        categories: vec!["email".into()],
        tags: vec!["gmail".into()],
        pricing: Pricing::Free,
        media: vec![],
    };
    let p = market.catalog.create(vendor, input).await.unwrap();
    market.catalog.submit(vendor, p.id).await.unwrap();
    market.catalog.approve(admin, p.id).await.unwrap()
}

fn text(q: &str) -> SearchQuery {
    SearchQuery::new(SearchParams { q: Some(q.into()), ..SearchParams::default() }).unwrap()
}

/// Polls `market`'s search for `q` until `found` says it is done, failing
/// after [`FRESHNESS`]; returns how long it took.
async fn within_a_second(market: &Marketplace, q: &str, what: &str, found: impl Fn(u64) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        let total = market.catalog.search(&text(q)).await.unwrap().total;
        if found(total) {
            return start.elapsed();
        }
        assert!(start.elapsed() < FRESHNESS, "{what}: not within {FRESHNESS:?} (total {total})");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_answers_from_the_index_and_follows_moderation() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::embedded(dir.path());
    assert_eq!(config.search_index, SearchIndexKind::Ram, "the read model is the default");
    let app = app(config).await;
    assert!(app.search.is_some());
    let market = &app.market;
    let (vendor, admin) = actors(market).await;

    let p = approved(market, &vendor, &admin, "Quokka inbox agent").await;
    within_a_second(market, "quokka", "an approved product searchable", |n| n == 1).await;
    market.catalog.suspend(&admin, p.id).await.unwrap();
    within_a_second(market, "quokka", "a suspended product gone", |n| n == 0).await;
    market.catalog.reinstate(&admin, p.id).await.unwrap();
    within_a_second(market, "quokka", "a reinstated product back", |n| n == 1).await;
    // An edit returns an approved product to draft: it leaves the catalog.
    let live = market.catalog.get(Some(&vendor), p.id).await.unwrap();
    let patch = ProductPatch { title: Some("Wombat inbox agent".into()), ..Default::default() };
    market.catalog.edit(&vendor, p.id, live.version, patch).await.unwrap();
    within_a_second(market, "quokka", "an edited product gone", |n| n == 0).await;
    assert_eq!(market.catalog.search(&text("wombat")).await.unwrap().total, 0, "drafts are not searchable");
    let stats = app.search.as_ref().unwrap().catalog_index().stats();
    assert_eq!(stats.searchable, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counted_download_reaches_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(Config::embedded(dir.path())).await;
    let market = &app.market;
    let (vendor, admin) = actors(market).await;
    let email = Email::parse("buyer@search.test").unwrap();
    let (buyer, _) = market.auth.ensure_account(&email, "password-1", "Buyer", Role::Customer).await.unwrap();
    let buyer = Actor::new(buyer.id, Role::Customer);
    let older = approved(market, &vendor, &admin, "Wallaby exporter").await;
    approved(market, &vendor, &admin, "Wallaby importer").await;
    let by_downloads = SearchQuery::new(SearchParams {
        q: Some("wallaby".into()),
        sort: Some(SortOrder::Downloads),
        ..SearchParams::default()
    })
    .unwrap();
    let first = |found: SearchResult| found.items[0].title.clone();
    within_a_second(market, "wallaby", "both approvals", |n| n == 2).await;
    // What the worker of `bazaar serve` does: relay the outbox to the bus.
    // The approvals' events go first: each makes the index read its product
    // again, which would carry the new count by itself.
    market.relay.drain(100).await.unwrap();
    // No downloads yet: the tie goes to the newer.
    assert_eq!(first(market.catalog.search(&by_downloads).await.unwrap()), "Wallaby importer");

    let asset = market.downloads.upload(&vendor, older.id, "exporter.zip", "application/zip", b"PK".to_vec(), false);
    let asset = asset.await.unwrap();
    // A paid order's license, as fulfilment issues it.
    let order = market.orders.place(&buyer, PlaceOrder::new([older.id]), None).await.unwrap();
    let placed = OrderPlaced { order_id: order.id, buyer_id: buyer.user_id, total: order.total };
    let purchase = Purchase { state: PurchaseState::Paid, ..Purchase::from(&order) };
    let license = market.licenses.issue_for_order(&purchase, &Event::new(&placed, order.created_at)).await.unwrap();
    // The order and license events are not the index's.
    market.relay.drain(100).await.unwrap();
    tokio::time::sleep(FRESHNESS).await;
    assert_eq!(first(market.catalog.search(&by_downloads).await.unwrap()), "Wallaby importer");

    market.downloads.create_download(&buyer, license[0].id, asset.id).await.unwrap();
    market.relay.drain(100).await.unwrap();
    // The index orders by the count it holds, so only the download's event
    // can move the older product first.
    let start = Instant::now();
    while first(market.catalog.search(&by_downloads).await.unwrap()) != "Wallaby exporter" {
        assert!(start.elapsed() < FRESHNESS, "the download count is not in the index within {FRESHNESS:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_rebuilds_an_index_left_behind_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Config { search_index: SearchIndexKind::Disk, ..Config::embedded(dir.path()) };
    let (kept, suspended_meanwhile) = {
        let app = app(disk.clone()).await;
        let (vendor, admin) = actors(&app.market).await;
        let kept = approved(&app.market, &vendor, &admin, "Platypus digest").await;
        let doomed = approved(&app.market, &vendor, &admin, "Echidna digest").await;
        within_a_second(&app.market, "digest", "both approvals", |n| n == 2).await;
        (kept, doomed)
    };
    // The dropped app's consumer task is aborted asynchronously and holds an
    // index handle until the runtime drops it; the directory's lock goes with it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(dir.path().join("search").is_dir(), "the index lives in the data dir");
    // Changes the index never hears of: another process without the read model.
    {
        let app = app(Config { search_index: SearchIndexKind::Store, ..disk.clone() }).await;
        let (vendor, admin) = actors(&app.market).await;
        app.market.catalog.suspend(&admin, suspended_meanwhile.id).await.unwrap();
        approved(&app.market, &vendor, &admin, "Numbat digest").await;
    }
    let app = app(disk).await;
    let found = app.market.catalog.search(&text("digest")).await.unwrap();
    let mut titles: Vec<&str> = found.items.iter().map(|p| p.title.as_str()).collect();
    titles.sort_unstable();
    assert_eq!(titles, ["Numbat digest", "Platypus digest"], "rebuilt at start, before serving");
    assert!(found.items.iter().any(|p| p.id == kept.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_over_one_database_and_nats_see_each_others_approvals() {
    let url = std::env::var("BAZAAR_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let dir = tempfile::tempdir().unwrap();
    let run = uuid::Uuid::now_v7().simple().to_string();
    let config = Config {
        nats_url: Some(url.clone()),
        nats_stream: Some(format!("SEARCH_{}", run.to_uppercase())),
        nats_subject_prefix: Some(format!("search{run}")),
        ..Config::embedded(dir.path())
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // A missing NATS fails the test loudly, in CI and out of it.
    let writer = App::build_with(config.clone(), AppOptions::new(clock).fast_passwords())
        .await
        .unwrap_or_else(|e| panic!("NATS with JetStream is needed at {url} (BAZAAR_TEST_NATS_URL): {e}"));
    let reader = app(config).await;
    let (vendor, admin) = actors(&writer.market).await;
    let p = approved(&writer.market, &vendor, &admin, "Axolotl ledger").await;
    // What a worker does: relay the outbox to the bus.
    writer.market.relay.drain(100).await.unwrap();
    let took = within_a_second(&reader.market, "axolotl", "another process's approval", |n| n == 1).await;
    eprintln!("approval seen by the other process after {took:?}");
    writer.market.catalog.suspend(&admin, p.id).await.unwrap();
    writer.market.relay.drain(100).await.unwrap();
    within_a_second(&reader.market, "axolotl", "another process's suspension", |n| n == 0).await;
}
