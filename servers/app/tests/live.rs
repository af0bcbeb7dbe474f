//! Live notification streams across processes, as production runs them:
//! the notification is created by one marketplace instance (the worker's
//! part: relay + handlers) and pushed, over NATS JetStream or Redis
//! Streams, to an SSE stream held open on another instance serving the
//! REST API through `server::run` (as `bazaar http` does).

use std::sync::Arc;
use std::time::Duration;

use bazaar_app::server::{Listeners, Parts, run};
use bazaar_app::shutdown::Shutdown;
use bazaar_app::{App, AppOptions, Config, SearchIndexKind};
use bazaar_core::auth::{Actor, Email, Role, Signup};
use bazaar_core::catalog::{NewProduct, Pricing, ProductKind};
use bazaar_core::clock::{Clock, SystemClock};
use bazaar_core::orders::{PlaceOrder, PlaceOrderItem};

/// Only guards against a hang; nothing here depends on how fast it is.
const HANG: Duration = Duration::from_secs(30);

/// Reads an SSE response until a `data:` line whose JSON `matches`.
async fn until_event(
    response: &mut reqwest::Response,
    seen: &mut String,
    matches: impl Fn(&serde_json::Value) -> bool,
) {
    loop {
        for line in seen.lines().filter_map(|l| l.strip_prefix("data:")) {
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(line.trim())
                && matches(&json)
            {
                return;
            }
        }
        let chunk = tokio::time::timeout(HANG, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no matching event; the stream said: {seen}"))
            .expect("the stream reads")
            .expect("the stream is still open");
        seen.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_created_by_one_instance_reaches_a_stream_on_another_over_nats() {
    let url = std::env::var("BAZAAR_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let dir = tempfile::tempdir().unwrap();
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let config = Config {
        nats_url: Some(url.clone()),
        nats_stream: Some(format!("LIVE_{}", run_id.to_uppercase())),
        nats_subject_prefix: Some(format!("live{run_id}")),
        ..Config::embedded(dir.path())
    };
    across_two_instances(config, &run_id, "NATS with JetStream", &url, "BAZAAR_TEST_NATS_URL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_created_by_one_instance_reaches_a_stream_on_another_over_redis_streams() {
    let url = std::env::var("BAZAAR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let dir = tempfile::tempdir().unwrap();
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let config = Config {
        redis_url: Some(url.clone()),
        redis_bus_prefix: Some(format!("bazaar-live-test:{run_id}:")),
        ..Config::embedded(dir.path())
    };
    across_two_instances(config, &run_id, "Redis", &url, "BAZAAR_TEST_REDIS_URL").await;
}

/// Two instances over `config`'s broker; see the module docs.
async fn across_two_instances(config: Config, run_id: &str, broker: &str, url: &str, variable: &str) {
    let config = Config { search_index: SearchIndexKind::Store, ..config };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // One database and one key file (the data dir), two instances. A
    // missing broker fails the test loudly, in CI and out of it.
    let worker = App::build_with(config.clone(), AppOptions::new(clock.clone()).fast_passwords())
        .await
        .unwrap_or_else(|e| panic!("{broker} is needed at {url} ({variable}): {e}"));
    let api = App::build_with(config, AppOptions::new(clock).fast_passwords()).await.unwrap();

    let listener = Listeners::bind("--http-addr", "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let parts =
        Parts { http: true, worker: false, consumers: 0, worker_http: false, trusted_proxies: Default::default() };
    let serving =
        tokio::spawn(run(api.market.clone(), Listeners { http: Some(listener), grpc: None }, parts, shutdown.clone()));

    let market = &worker.market;
    let email = |s: &str| Email::parse(s).unwrap();
    let (vendor, _) =
        market.auth.ensure_account(&email("vendor@live.test"), "password-1", "Vendor", Role::Vendor).await.unwrap();
    let admin = market.auth.ensure_admin(&email("admin@live.test"), "password-1").await.unwrap();
    let (vendor, admin) = (Actor::new(vendor.id, Role::Vendor), Actor::new(admin.id, Role::Admin));
    let input = NewProduct {
        title: "Heron workflow".into(),
        description: "Moves leads along.".into(),
        short_description: String::new(),
        kind: ProductKind::N8nWorkflow,
        categories: vec!["crm".into()],
        tags: vec![],
        pricing: Pricing::Free,
        media: vec![],
    };
    let product = market.catalog.create(&vendor, input).await.unwrap();
    market.catalog.submit(&vendor, product.id).await.unwrap();
    market.catalog.approve(&admin, product.id).await.unwrap();
    let signup = |name: &str| Signup {
        email: format!("{name}-{run_id}@live.test"),
        password: "password-123".into(),
        name: name.into(),
        role: Role::Customer,
    };
    let buyer = market.auth.register(signup("buyer")).await.unwrap();
    let stranger = market.auth.register(signup("stranger")).await.unwrap();

    // Both connect to the API instance, whose token check uses the same keys.
    let client = reqwest::Client::new();
    let open = |token: String| {
        client
            .get(format!("http://{addr}/v1/notifications/stream"))
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "text/event-stream")
            .send()
    };
    let mut stream = open(buyer.access.token.clone()).await.expect("the API instance answers");
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut other = open(stranger.access.token.clone()).await.unwrap();
    assert_eq!(other.status(), 200);

    let buyer_actor = Actor::new(buyer.user.id, Role::Customer);
    let order = PlaceOrder { items: vec![PlaceOrderItem { product_id: product.id }] };
    let order = market.orders.place(&buyer_actor, order, None).await.unwrap();
    // What `bazaar worker` does: relay the outbox, run the handlers, which
    // fulfil the free order and notify the buyer.
    market.pump().await.unwrap();

    let mut seen = String::new();
    let order_id = order.id.to_string();
    until_event(&mut stream, &mut seen, |n| n["template"] == "license_issued" && n["order_id"] == order_id.as_str())
        .await;
    for line in seen.lines().filter_map(|l| l.strip_prefix("data:")) {
        let n: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(n["order_id"], order_id.as_str(), "only the buyer's own: {n}");
        assert_eq!(n["channel"], "in_app");
    }

    // A clean stop ends both streams with the reason; the stranger's held
    // nothing before it.
    shutdown.trigger();
    let mut rest = String::new();
    until_event(&mut other, &mut rest, |n| n.get("reason").is_some()).await;
    let data: Vec<&str> = rest.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim).collect();
    assert_eq!(data, [r#"{"reason":"shutdown"}"#], "the stranger received nothing: {rest}");
    tokio::time::timeout(HANG, serving).await.expect("streams do not hold up the stop").unwrap().unwrap();
    assert_eq!(api.market.live.open_streams(), 0);
}
