//! Vendor webhooks on the in-memory marketplace: sales queue signed
//! deliveries; the deliverer retries in order, goes dead, replays, and
//! respects each endpoint's breaker, rate limit, deadline and lease.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bazaar_core::auth::{Actor, Role};
use bazaar_core::catalog::{NewProduct, Pricing, ProductKind};
use bazaar_core::clock::{Clock, ManualClock};
use bazaar_core::ids::{EventId, UserId};
use bazaar_core::marketplace::Marketplace;
use bazaar_core::money::{Currency, Money};
use bazaar_core::orders::PlaceOrder;
use bazaar_core::payments::PM_CARD_VISA;
use bazaar_core::payments::webhook::{DEFAULT_TOLERANCE, verify};
use bazaar_core::resilience::circuit_breaker::{ConsecutiveConfig, State};
use bazaar_core::resilience::clock::ManualClock as Monotonic;
use bazaar_core::resilience::rate_limit::Quota;
use bazaar_core::resilience::retry::Backoff;
use bazaar_core::webhooks::{
    ATTEMPT_HEADER, DeliveryStatus, DeliveryTerms, EVENT_ID_HEADER, EndpointPolicy, NewEndpoint, OutboundWebhook,
    Round, SIGNATURE_HEADER, Sale, VendorEvent, WebhookDeliverer, WebhookEndpoint, WebhookTransport,
};
use bazaar_core::{Error, ErrorKind, Result};
use bazaar_memory::MemoryBackend;
use parking_lot::Mutex;

#[derive(Debug, Clone, Copy)]
enum Reply {
    Status(u16),
    Down,
    Hang,
}

/// A receiver that records every POST and answers as scripted per URL
/// (then 200 once the script runs out).
#[derive(Default)]
struct Receiver {
    log: Mutex<Vec<OutboundWebhook>>,
    script: Mutex<HashMap<String, VecDeque<Reply>>>,
    always: Mutex<HashMap<String, Reply>>,
}

impl Receiver {
    fn answer(&self, url: &str, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().entry(url.to_string()).or_default().extend(replies);
    }

    fn always(&self, url: &str, reply: Reply) {
        self.always.lock().insert(url.to_string(), reply);
    }

    fn got(&self) -> Vec<OutboundWebhook> {
        self.log.lock().clone()
    }

    fn header(request: &OutboundWebhook, name: &str) -> String {
        request.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl WebhookTransport for Receiver {
    async fn post(&self, request: &OutboundWebhook) -> Result<u16> {
        self.log.lock().push(request.clone());
        let scripted = self.script.lock().get_mut(&request.url).and_then(VecDeque::pop_front);
        let reply = scripted.or_else(|| self.always.lock().get(&request.url).copied()).unwrap_or(Reply::Status(200));
        match reply {
            Reply::Status(code) => Ok(code),
            Reply::Down => Err(Error::unavailable("webhook endpoint", "could not connect: connection refused")),
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(200)
            }
        }
    }
}

struct World {
    market: Marketplace,
    backend: MemoryBackend,
    clock: ManualClock,
    receiver: Arc<Receiver>,
    vendor: Actor,
    admin: Actor,
    buyer: Actor,
}

fn world() -> World {
    let clock = ManualClock::at_epoch_secs(1_700_000_000);
    let backend = MemoryBackend::new(Arc::new(clock.clone()));
    let receiver = Arc::new(Receiver::default());
    let market = Marketplace::builder(backend.ports())
        .clock(Arc::new(clock.clone()))
        .passwords(Arc::new(bazaar_auth::Argon2Passwords::fast_for_tests()))
        .tokens(Arc::new(bazaar_auth::JwtTokens::new([7; 32])))
        .webhook_transport(receiver.clone())
        .build()
        .expect("every port is set");
    World {
        market,
        backend,
        clock,
        receiver,
        vendor: Actor::new(UserId::new(), Role::Vendor),
        admin: Actor::new(UserId::new(), Role::Admin),
        buyer: Actor::new(UserId::new(), Role::Customer),
    }
}

const HOOK: &str = "https://hooks.example.com/bazaar";

impl World {
    async fn endpoint(&self, vendor: &Actor, url: &str, events: &[&str]) -> WebhookEndpoint {
        let new = NewEndpoint { url: url.into(), events: events.iter().map(|e| e.to_string()).collect() };
        self.market.webhooks.register(vendor, new).await.expect("register")
    }

    async fn product(&self, vendor: &Actor, price: i64) -> bazaar_core::ids::ProductId {
        let m = &self.market;
        let input = NewProduct {
            title: "Lead scorer".into(),
            description: "Scores inbound leads from your CRM.".into(),
            short_description: "Scores leads.".into(),
            kind: ProductKind::N8nWorkflow,
            categories: vec!["sales".into()],
            tags: vec![],
            pricing: Pricing::OneTime { price: Money::new(price, Currency::USD) },
            media: vec![],
        };
        let product = m.catalog.create(vendor, input).await.expect("create");
        m.catalog.submit(vendor, product.id).await.expect("submit");
        m.catalog.approve(&self.admin, product.id).await.expect("approve");
        product.id
    }

    /// Queues one `order.paid` sale for `vendor` without an order behind it.
    async fn sale(&self, vendor: &Actor, n: u32) {
        let sale = Sale {
            vendor_id: vendor.user_id,
            event_type: VendorEvent::OrderPaid,
            event_id: EventId::new(),
            occurred_at: self.clock.now(),
            data: serde_json::json!({ "n": n }),
            traceparent: None,
        };
        assert_eq!(self.market.webhooks.queue(&[sale]).await.expect("queue"), 1);
    }

    fn deliverer(&self, terms: DeliveryTerms, monotonic: &Monotonic) -> WebhookDeliverer {
        WebhookDeliverer::with_clocks(
            self.backend.webhooks.clone(),
            self.receiver.clone(),
            Arc::new(self.clock.clone()),
            Arc::new(monotonic.clone()),
            terms,
        )
    }
}

fn quick_terms() -> DeliveryTerms {
    DeliveryTerms { max_attempts: 3, backoff: Backoff::constant(Duration::from_secs(10)), ..DeliveryTerms::default() }
}

fn body(request: &OutboundWebhook) -> serde_json::Value {
    serde_json::from_str(&request.body).expect("JSON body")
}

#[tokio::test]
async fn a_sale_reaches_each_subscribed_endpoint_of_its_vendor_signed_once_and_in_order() {
    let w = world();
    let other_vendor = Actor::new(UserId::new(), Role::Vendor);
    let endpoint = w.endpoint(&w.vendor, HOOK, &["order.paid", "license.issued", "order.refunded"]).await;
    let refunds_only = w.endpoint(&w.vendor, "https://refunds.example.com/", &["order.refunded"]).await;
    w.endpoint(&other_vendor, "https://other.example.com/", &["order.paid", "license.issued"]).await;
    let mine = w.product(&w.vendor, 4_900).await;
    let theirs = w.product(&other_vendor, 1_000).await;

    let order = w.market.orders.place(&w.buyer, PlaceOrder::new([mine, theirs]), None).await.expect("place");
    w.market.orders.pay(&w.buyer, order.id, PM_CARD_VISA).await.expect("pay");
    w.market.pump().await.expect("pump");
    // The license deliveries were queued during the pump; one more round sends any left.
    w.market.pump().await.expect("pump");

    let got = w.receiver.got();
    let to_mine: Vec<_> = got.iter().filter(|r| r.url == HOOK).collect();
    let types: Vec<_> = to_mine.iter().map(|r| body(r)["type"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(types, ["order.paid", "license.issued"], "order.paid first, each once");
    let paid = body(to_mine[0]);
    assert_eq!(paid["data"]["order_id"], serde_json::json!(order.id));
    assert_eq!(paid["data"]["lines"].as_array().map(Vec::len), Some(1), "only this vendor's line");
    assert_eq!(paid["data"]["lines"][0]["product_id"], serde_json::json!(mine));
    assert_eq!(paid["data"]["gross"], serde_json::json!(Money::new(4_900, Currency::USD)));
    assert_eq!(paid["data"]["vendor_net"], serde_json::json!(order.lines[0].vendor_net));
    let licensed = body(to_mine[1]);
    assert_eq!(licensed["data"]["product_id"], serde_json::json!(mine));
    for request in &to_mine {
        let signature = Receiver::header(request, SIGNATURE_HEADER);
        let secret = endpoint.secrets[0].value.as_bytes().to_vec();
        verify(&signature, request.body.as_bytes(), &[secret], w.clock.now(), DEFAULT_TOLERANCE).expect("signed");
        assert!(
            verify(&signature, request.body.as_bytes(), &[b"whsec_other".to_vec()], w.clock.now(), DEFAULT_TOLERANCE)
                .is_err()
        );
        assert_eq!(Receiver::header(request, EVENT_ID_HEADER), body(request)["id"].as_str().unwrap_or_default());
        assert_eq!(Receiver::header(request, ATTEMPT_HEADER), "1");
    }
    assert!(got.iter().all(|r| r.url != refunds_only.url), "an endpoint gets only what it subscribed to");
    let theirs_got: Vec<_> = got.iter().filter(|r| r.url == "https://other.example.com/").collect();
    assert_eq!(theirs_got.len(), 2, "the other vendor hears of its own line");
    assert_eq!(body(theirs_got[0])["data"]["lines"][0]["product_id"], serde_json::json!(theirs));

    // Nothing is sent twice, however often the pump runs.
    w.market.pump().await.expect("pump");
    assert_eq!(w.receiver.got().len(), got.len());

    // A refund reaches both of the vendor's endpoints that subscribed to it.
    w.market.orders.refund(&w.admin, order.id).await.expect("refund");
    w.market.pump().await.expect("pump");
    let refunds: Vec<_> = w.receiver.got().into_iter().skip(got.len()).collect();
    let mut urls: Vec<_> =
        refunds.iter().filter(|r| body(r)["type"] == "order.refunded").map(|r| r.url.clone()).collect();
    urls.sort();
    assert_eq!(urls, [HOOK, "https://refunds.example.com/"], "the other vendor did not subscribe to refunds");
}

#[tokio::test]
async fn a_redelivered_event_queues_nothing_new() {
    let w = world();
    w.endpoint(&w.vendor, HOOK, &["order.paid"]).await;
    let sale = Sale {
        vendor_id: w.vendor.user_id,
        event_type: VendorEvent::OrderPaid,
        event_id: EventId::new(),
        occurred_at: w.clock.now(),
        data: serde_json::json!({}),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
    };
    assert_eq!(w.market.webhooks.queue(std::slice::from_ref(&sale)).await.expect("queue"), 1);
    assert_eq!(w.market.webhooks.queue(&[sale]).await.expect("queue"), 0);
    w.market.pump().await.expect("pump");
    let got = w.receiver.got();
    assert_eq!(got.len(), 1);
    assert_eq!(Receiver::header(&got[0], "traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
}

#[tokio::test]
async fn failures_retry_with_backoff_in_order_then_go_dead_and_a_replay_delivers() {
    let w = world();
    let endpoint = w.endpoint(&w.vendor, HOOK, &["order.paid"]).await;
    let monotonic = Monotonic::new();
    let deliverer = w.deliverer(quick_terms(), &monotonic);
    w.receiver.always(HOOK, Reply::Status(500));
    w.sale(&w.vendor, 1).await;
    w.sale(&w.vendor, 2).await;

    let round = deliverer.run_once().await.expect("round");
    assert_eq!(round, Round { claimed: 2, retrying: 1, deferred: 1, ..Round::default() });
    let round = deliverer.run_once().await.expect("round");
    assert_eq!(round, Round::default(), "nothing is due during the backoff, and #2 waits behind #1");
    w.clock.advance(chrono::Duration::seconds(10));
    deliverer.run_once().await.expect("round");
    w.clock.advance(chrono::Duration::seconds(10));
    let round = deliverer.run_once().await.expect("round");
    assert_eq!((round.dead, round.deferred), (1, 1), "the third failure is the last");
    let got = w.receiver.got();
    let sent: Vec<_> =
        got.iter().map(|r| (body(r)["data"]["n"].as_u64(), Receiver::header(r, ATTEMPT_HEADER))).collect();
    assert_eq!(sent, [(Some(1), "1".into()), (Some(1), "2".into()), (Some(1), "3".into())]);

    // #1 is dead, so #2 goes now; the endpoint has recovered.
    w.receiver.always(HOOK, Reply::Status(200));
    let round = deliverer.run_once().await.expect("round");
    assert_eq!(round.delivered, 1);
    let dead = w
        .market
        .webhooks
        .deliveries(&w.vendor, endpoint.id, Some(DeliveryStatus::Dead), Default::default())
        .await
        .expect("list");
    assert_eq!(dead.total, 1);
    assert_eq!(dead.items[0].last_error.as_deref(), Some("the endpoint answered HTTP 500"));

    // Replays are the owner's; then the dead one is delivered.
    let stranger = Actor::new(UserId::new(), Role::Vendor);
    let err = w.market.webhooks.replay(&stranger, endpoint.id, None).await.expect_err("not theirs");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let delivered_one = w
        .market
        .webhooks
        .deliveries(&w.vendor, endpoint.id, Some(DeliveryStatus::Delivered), Default::default())
        .await
        .expect("list");
    let err =
        w.market.webhooks.replay(&w.vendor, endpoint.id, Some(delivered_one.items[0].id)).await.expect_err("not dead");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(w.market.webhooks.replay(&w.vendor, endpoint.id, None).await.expect("replay"), 1);
    let round = deliverer.run_once().await.expect("round");
    assert_eq!(round.delivered, 1);
    let last = w.receiver.got().pop().expect("sent");
    assert_eq!((body(&last)["data"]["n"].as_u64(), Receiver::header(&last, ATTEMPT_HEADER)), (Some(1), "1".into()));
}

#[tokio::test]
async fn an_open_breaker_holds_deliveries_without_calling_then_a_probe_closes_it() {
    let w = world();
    w.endpoint(&w.vendor, HOOK, &["order.paid"]).await;
    let other = Actor::new(UserId::new(), Role::Vendor);
    w.endpoint(&other, "https://healthy.example.com/", &["order.paid"]).await;
    let monotonic = Monotonic::new();
    let terms = DeliveryTerms {
        max_attempts: 10,
        backoff: Backoff::constant(Duration::from_secs(1)),
        breaker: ConsecutiveConfig {
            failure_threshold: 2,
            success_threshold: 1,
            open_for: Duration::from_secs(30),
            minimum_volume: 1,
        },
        ..DeliveryTerms::default()
    };
    let deliverer = w.deliverer(terms, &monotonic);
    w.receiver.answer(HOOK, [Reply::Down, Reply::Status(503)]);
    w.sale(&w.vendor, 1).await;
    w.sale(&w.vendor, 2).await;
    for _ in 0..2 {
        deliverer.run_once().await.expect("round");
        w.clock.advance(chrono::Duration::seconds(1));
    }
    let endpoint = w.market.webhooks.list(&w.vendor).await.expect("list")[0].id;
    assert_eq!(deliverer.breaker_state(endpoint), Some(State::Open));
    let calls = w.receiver.got().len();
    w.sale(&other, 3).await;
    let round = deliverer.run_once().await.expect("round");
    assert_eq!((round.delivered, round.deferred), (1, 2), "the healthy endpoint is served; the open one is held");
    assert_eq!(w.receiver.got().len(), calls + 1, "no call reached the open endpoint");

    monotonic.advance(Duration::from_secs(30));
    w.clock.advance(chrono::Duration::seconds(30));
    let round = deliverer.run_once().await.expect("round");
    assert_eq!(round.delivered, 2, "the probe succeeds and the queue behind it drains");
    assert_eq!(deliverer.breaker_state(endpoint), Some(State::Closed));
}

#[tokio::test]
async fn each_endpoint_gets_at_most_its_rate() {
    let w = world();
    w.endpoint(&w.vendor, HOOK, &["order.paid"]).await;
    let monotonic = Monotonic::new();
    let two = std::num::NonZeroU32::new(2).expect("non-zero");
    let terms = DeliveryTerms { rate: Quota::per_second(two).allow_burst(two), ..DeliveryTerms::default() };
    let deliverer = w.deliverer(terms, &monotonic);
    for n in 0..5 {
        w.sale(&w.vendor, n).await;
    }
    let round = deliverer.run_once().await.expect("round");
    assert_eq!((round.delivered, round.deferred), (2, 3));
    assert_eq!(w.receiver.got().len(), 2);
    monotonic.advance(Duration::from_secs(1));
    w.clock.advance(chrono::Duration::seconds(1));
    let round = deliverer.run_once().await.expect("round");
    assert_eq!(round.delivered, 2, "the rate refills");
    let order: Vec<_> = w.receiver.got().iter().map(|r| body(r)["data"]["n"].as_u64()).collect();
    assert_eq!(order, [Some(0), Some(1), Some(2), Some(3)]);
}

#[tokio::test]
async fn a_hanging_endpoint_fails_at_the_deadline() {
    let w = world();
    w.endpoint(&w.vendor, HOOK, &["order.paid"]).await;
    let terms = DeliveryTerms { timeout: Duration::from_millis(100), ..quick_terms() };
    let deliverer = w.deliverer(terms, &Monotonic::new());
    w.receiver.answer(HOOK, [Reply::Hang]);
    w.sale(&w.vendor, 1).await;
    let round = deliverer.run_once().await.expect("round");
    assert_eq!(round.retrying, 1);
    let endpoint = w.market.webhooks.list(&w.vendor).await.expect("list")[0].id;
    let pending = w.market.webhooks.deliveries(&w.vendor, endpoint, None, Default::default()).await.expect("list");
    assert_eq!(pending.items[0].last_error.as_deref(), Some("no answer within 100 ms"));
}

#[tokio::test]
async fn a_round_that_dies_before_recording_is_retried_after_its_lease() {
    let w = world();
    w.endpoint(&w.vendor, HOOK, &["order.paid"]).await;
    w.sale(&w.vendor, 1).await;
    let terms = quick_terms();
    // A deliverer that claimed and died: the claim stands, nothing recorded.
    let now = w.clock.now();
    let lease = chrono::Duration::from_std(terms.lease).expect("lease");
    assert_eq!(w.backend.webhooks.claim_due(now, 10, now + lease).await.expect("claim").len(), 1);
    let deliverer = w.deliverer(terms, &Monotonic::new());
    assert_eq!(deliverer.run_once().await.expect("round"), Round::default(), "leased to the dead round");
    w.clock.advance(lease);
    assert_eq!(deliverer.run_once().await.expect("round").delivered, 1);
}

#[tokio::test]
async fn a_rotated_secret_signs_next_to_the_new_one_until_its_grace_ends() {
    let w = world();
    let endpoint = w.endpoint(&w.vendor, HOOK, &["order.paid"]).await;
    let old = endpoint.secrets[0].value.clone();
    let rotated = w.market.webhooks.rotate_secret(&w.vendor, endpoint.id).await.expect("rotate");
    let new = rotated.secrets[0].value.clone();
    assert_ne!(old, new);
    assert_eq!(rotated.secrets[1].expires_at, Some(w.clock.now() + EndpointPolicy::default().secret_grace));
    w.sale(&w.vendor, 1).await;
    w.market.pump().await.expect("pump");
    w.clock.advance(chrono::Duration::hours(25));
    w.sale(&w.vendor, 2).await;
    w.market.pump().await.expect("pump");
    let got = w.receiver.got();
    let check = |r: &OutboundWebhook, secret: &str, at| {
        verify(
            &Receiver::header(r, SIGNATURE_HEADER),
            r.body.as_bytes(),
            &[secret.as_bytes().to_vec()],
            at,
            DEFAULT_TOLERANCE,
        )
        .is_ok()
    };
    let first_at = w.clock.now() - chrono::Duration::hours(25);
    assert!(check(&got[0], &old, first_at) && check(&got[0], &new, first_at), "both sign during the grace");
    assert!(check(&got[1], &new, w.clock.now()) && !check(&got[1], &old, w.clock.now()), "only the new one after");
    let again = w.market.webhooks.rotate_secret(&w.vendor, endpoint.id).await.expect("rotate");
    assert_eq!(again.secrets.len(), 2, "expired secrets are dropped at the next rotation");
}

#[tokio::test]
async fn endpoints_are_their_vendors_own_and_checked() {
    let w = world();
    let new = |url: &str| NewEndpoint { url: url.into(), events: vec!["order.paid".into()] };
    let err = w.market.webhooks.register(&w.buyer, new(HOOK)).await.expect_err("customers sell nothing");
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    let err = w
        .market
        .webhooks
        .register(&w.vendor, NewEndpoint { url: "http://10.0.0.5/".into(), events: vec!["order.placed".into()] })
        .await
        .expect_err("bad url and events");
    let Error::Validation(fields) = err else { panic!("validation") };
    assert_eq!(fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), ["url", "events"]);
    assert!(w.market.webhooks.list(&w.vendor).await.expect("list").is_empty(), "nothing was stored");

    let endpoint = w.market.webhooks.register(&w.vendor, new(HOOK)).await.expect("register");
    let stranger = Actor::new(UserId::new(), Role::Vendor);
    assert_eq!(w.market.webhooks.get(&stranger, endpoint.id).await.expect_err("hidden").kind(), ErrorKind::NotFound);
    assert_eq!(w.market.webhooks.delete(&stranger, endpoint.id).await.expect_err("hidden").kind(), ErrorKind::NotFound);
    for n in 1..EndpointPolicy::default().max_endpoints {
        w.market.webhooks.register(&w.vendor, new(&format!("https://h{n}.example.com/"))).await.expect("register");
    }
    let err = w.market.webhooks.register(&w.vendor, new("https://one-more.example.com/")).await.expect_err("cap");
    assert_eq!(err.kind(), ErrorKind::Conflict);

    w.market.webhooks.delete(&w.vendor, endpoint.id).await.expect("delete");
    assert_eq!(w.market.webhooks.get(&w.vendor, endpoint.id).await.expect_err("gone").kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn the_recording_receiver_behaves_as_a_transport() {
    let receiver = Receiver::default();
    receiver.always("https://fake.test/ok", Reply::Status(204));
    receiver.always("https://fake.test/fail", Reply::Status(503));
    receiver.always("https://fake.test/moved", Reply::Status(307));
    receiver.always("https://closed.test/", Reply::Down);
    bazaar_core::testkit::webhooks::transport(&receiver, "https://fake.test", "https://closed.test/").await;
}
