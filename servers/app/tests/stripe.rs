//! Payments through Stripe, as `BAZAAR_PAYMENTS=stripe` wires them: the
//! marketplace built by the composition root over the Stripe connector,
//! talking to a local server that speaks Stripe's wire format, and Stripe's
//! webhooks delivered to `POST /v1/webhooks/stripe` with a
//! `Stripe-Signature` header. What a webhook does to an order is the core's
//! rule; these tests check that the wiring reaches it, that the signature
//! is verified, and that a redelivery is applied once.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bazaar_app::demo::{self, DEMO_BUYER_EMAIL, DEMO_PASSWORD};
use bazaar_app::{App, AppOptions, Config, Payments};
use bazaar_core::clock::{Clock, SystemClock};
use bazaar_stripe::fake::{FakeStripe, PM_3DS, PM_VISA, SECRET_KEY};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

struct Shop {
    app: App,
    buyer: String,
    product: String,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    json: Value,
}

impl Shop {
    /// The embedded setup with Stripe chosen, one approved demo product and the demo buyer.
    async fn open(stripe: &FakeStripe) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // A demo process: it seeds the demo logins and signs in with them.
        let mut config = Config { demo: true, ..Config::embedded(dir.path()) };
        config.payments = Payments::Stripe(Box::new(stripe.config()));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let app = App::build_with(config, AppOptions::new(clock).fast_passwords()).await.unwrap();
        demo::seed_demo(&app.market, 1, |_| {}).await.unwrap();
        app.refresh_search().unwrap();
        let buyer = app.market.auth.login(DEMO_BUYER_EMAIL, DEMO_PASSWORD).await.unwrap().access.token;
        let mut shop = Self { app, buyer, product: String::new(), _dir: dir };
        let products = shop.send("GET", "/v1/products", None, None, &[]).await;
        assert_eq!(products.status, StatusCode::OK, "{}", products.json);
        shop.product = products.json["items"][0]["id"].as_str().expect("the seeded product is searchable").to_owned();
        shop
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri).header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(body.map_or_else(Body::empty, Body::from)).unwrap();
        let router = bazaar_http::router(bazaar_http::AppState::new(self.app.market.clone()));
        let response = router.oneshot(req).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Reply { status, json: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    /// A fresh order of the demo product; its id.
    async fn order(&self) -> String {
        let body = json!({ "items": [{ "product_id": self.product }] }).to_string().into_bytes();
        let key = uuid::Uuid::now_v7().to_string();
        let r = self.send("POST", "/v1/orders", Some(&self.buyer), Some(body), &[("Idempotency-Key", &key)]).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
        r.json["id"].as_str().unwrap().to_owned()
    }

    async fn pay(&self, order: &str, method: &str) -> Reply {
        let body = json!({ "payment_method": method }).to_string().into_bytes();
        self.send("POST", &format!("/v1/orders/{order}/pay"), Some(&self.buyer), Some(body), &[]).await
    }

    async fn get_order(&self, order: &str) -> Value {
        let r = self.send("GET", &format!("/v1/orders/{order}"), Some(&self.buyer), None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        r.json
    }

    async fn licenses(&self) -> usize {
        let r = self.send("GET", "/v1/licenses", Some(&self.buyer), None, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        r.json["items"].as_array().map_or(0, Vec::len)
    }

    async fn webhook(&self, signature: &str, body: &[u8]) -> Reply {
        let headers = [("Stripe-Signature", signature)];
        self.send("POST", "/v1/webhooks/stripe", None, Some(body.to_vec()), &headers).await
    }

    async fn pump(&self) {
        self.app.market.pump().await.unwrap();
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn a_card_payment_goes_through_stripe_and_fulfils_the_order() {
    let stripe = FakeStripe::start().await;
    let shop = Shop::open(&stripe).await;
    let order = shop.order().await;
    let paid = shop.pay(&order, PM_VISA).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.json);
    assert_eq!((paid.json["provider"].as_str(), paid.json["status"].as_str()), (Some("stripe"), Some("succeeded")));
    assert!(paid.json["provider_ref"].as_str().is_some_and(|r| r.starts_with("pi_")), "{}", paid.json);
    assert_eq!(stripe.captures(), 1);
    shop.pump().await;
    assert_eq!(shop.get_order(&order).await["status"], "fulfilled");
    assert_eq!(shop.licenses().await, 1);
}

#[tokio::test]
async fn a_succeeded_webhook_finishes_3d_secure_once_however_often_it_is_delivered() {
    let stripe = FakeStripe::start().await;
    let shop = Shop::open(&stripe).await;
    let order = shop.order().await;
    let pending = shop.pay(&order, PM_3DS).await;
    assert_eq!(pending.status, StatusCode::OK, "{}", pending.json);
    assert_eq!(pending.json["status"], "requires_action");
    let intent = pending.json["provider_ref"].as_str().unwrap().to_owned();
    shop.pump().await;
    assert_eq!(shop.get_order(&order).await["status"], "pending_payment");

    // The buyer passes 3-D Secure at Stripe; Stripe reports it.
    stripe.complete_action(&intent, true);
    let (signature, body) = stripe.signed_event("payment_intent.succeeded", &intent, now());

    // Forged, tampered, unsigned and stale deliveries change nothing.
    let forged = bazaar_core::payments::webhook::sign(b"whsec_not_ours", now(), &body);
    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'1').unwrap();
    tampered[at] = b'2';
    let stale = stripe.signed_event("payment_intent.succeeded", &intent, now() - 3600);
    for (sig, bytes) in [
        (forged.as_str(), body.as_slice()),
        (signature.as_str(), tampered.as_slice()),
        ("", body.as_slice()),
        (stale.0.as_str(), stale.1.as_slice()),
    ] {
        let r = shop.webhook(sig, bytes).await;
        assert_eq!(
            (r.status, r.json["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_signature")),
            "{}",
            r.json
        );
    }
    // The sandbox is not the live provider: its webhook path is unknown.
    let headers = [("Bazaar-Signature", signature.as_str())];
    let sandbox = shop.send("POST", "/v1/webhooks/sandbox", None, Some(body.clone()), &headers).await;
    assert_eq!(sandbox.status, StatusCode::NOT_FOUND);
    shop.pump().await;
    assert_eq!(shop.get_order(&order).await["status"], "pending_payment");

    let first = shop.webhook(&signature, &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.json);
    assert_eq!(first.json, json!({ "received": true, "duplicate": false }));
    shop.pump().await;
    let fulfilled = shop.get_order(&order).await;
    assert_eq!(
        (fulfilled["status"].as_str(), fulfilled["payment"]["status"].as_str()),
        (Some("fulfilled"), Some("succeeded"))
    );
    assert_eq!(shop.licenses().await, 1);

    // Stripe redelivers until it sees a 2xx, and may send the same event again later.
    for _ in 0..3 {
        let again = shop.webhook(&signature, &body).await;
        assert_eq!(again.json, json!({ "received": true, "duplicate": true }), "{}", again.json);
    }
    shop.pump().await;
    assert_eq!(shop.licenses().await, 1, "one license however often the event arrives");
    assert_eq!(stripe.captures(), 1);
}

#[tokio::test]
async fn a_failed_webhook_leaves_the_order_payable_and_a_refund_webhook_is_recorded() {
    let stripe = FakeStripe::start().await;
    let shop = Shop::open(&stripe).await;

    // 3-D Secure failed: Stripe reports payment_intent.payment_failed.
    let order = shop.order().await;
    let intent = shop.pay(&order, PM_3DS).await.json["provider_ref"].as_str().unwrap().to_owned();
    stripe.complete_action(&intent, false);
    let (signature, body) = stripe.signed_event("payment_intent.payment_failed", &intent, now());
    let r = shop.webhook(&signature, &body).await;
    assert_eq!(r.json, json!({ "received": true, "duplicate": false }), "{}", r.json);
    shop.pump().await;
    let failed = shop.get_order(&order).await;
    assert_eq!(
        (failed["status"].as_str(), failed["payment"]["status"].as_str()),
        (Some("pending_payment"), Some("requires_payment_method"))
    );
    assert_eq!(shop.licenses().await, 0);
    // The buyer pays again with another card.
    assert_eq!(shop.pay(&order, PM_VISA).await.json["status"], "succeeded");
    shop.pump().await;
    assert_eq!(shop.get_order(&order).await["status"], "fulfilled");
    assert_eq!(stripe.captures(), 1);

    // A refund made in Stripe's dashboard reaches us as charge.refunded.
    let price = failed["total"]["minor"].as_i64().expect("the order's total");
    let half = (price / 2).to_string();
    let refund = reqwest::Client::new()
        .post(format!("{}/v1/refunds", stripe.uri()))
        .bearer_auth(SECRET_KEY)
        .header("Stripe-Version", bazaar_stripe::API_VERSION)
        .header("Idempotency-Key", "dashboard-refund-1")
        .form(&[("payment_intent", intent.as_str()), ("amount", half.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refund.status(), 200);
    let (signature, body) = stripe.signed_event("charge.refunded", &intent, now());
    for duplicate in [false, true] {
        let r = shop.webhook(&signature, &body).await;
        assert_eq!(r.json, json!({ "received": true, "duplicate": duplicate }), "{}", r.json);
    }
    let order_id: uuid::Uuid = order.parse().unwrap();
    let recorded = shop.app.market.payments.find_for_order(order_id.into()).await.unwrap().unwrap();
    assert_eq!(recorded.amount_refunded.minor(), price / 2);
}
