//! A purchase paid through Stripe in the scaled-out shape: `bazaar http`
//! and `bazaar worker` on PostgreSQL and NATS JetStream with
//! `BAZAAR_PAYMENTS=stripe`, `STRIPE_API_BASE` pointing at a local server
//! that speaks Stripe's wire format (`bazaar_stripe::fake`). A 3-D Secure
//! payment is finished by Stripe's signed `payment_intent.succeeded`
//! webhook at `/v1/webhooks/stripe`; the worker process issues the license
//! once however often the event is delivered, and nothing is charged twice.
//!
//! Needs PostgreSQL and NATS as `scale_out.rs` does.

use bazaar_e2e::flow::{licenses, one_time_product, order, pay};
use bazaar_e2e::services::{RunBus, Schema};
use bazaar_e2e::{Server, eventually, run_bazaar, str_of};
use bazaar_stripe::fake::{FakeStripe, PM_3DS, PM_VISA, SECRET_KEY, WEBHOOK_SECRET};
use serde_json::{Value, json};

async fn deliver(http: &Server, signature: &str, body: &[u8]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/webhooks/stripe", http.base))
        .header("Content-Type", "application/json")
        .header("Stripe-Signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .expect("webhook delivery");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_payment_over_postgres_and_nats_is_fulfilled_once_by_its_webhook() {
    let bus = RunBus::nats().await;
    let schema = Schema::create().await;
    let stripe = FakeStripe::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = vec![("DATABASE_URL".to_owned(), schema.url())];
    env.extend(bus.env());
    for (k, v) in [
        ("BAZAAR_PAYMENTS", "stripe"),
        ("STRIPE_SECRET_KEY", SECRET_KEY),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("STRIPE_API_BASE", stripe.uri().as_str()),
    ] {
        env.push((k.to_owned(), v.to_owned()));
    }
    let (code, out, err) = run_bazaar(dir.path(), &["migrate"], env.clone()).await;
    assert_eq!(code, Some(0), "migrate: {out}{err}");
    let (code, out, err) = run_bazaar(dir.path(), &["seed", "--products", "12"], env.clone()).await;
    assert_eq!(code, Some(0), "seed: {out}{err}");

    let http =
        Server::start_with(dir.path(), &["http", "--http-addr", "127.0.0.1:0"], env.clone(), "http listening on ")
            .await;
    let worker =
        Server::start_with(dir.path(), &["worker", "--http-addr", "127.0.0.1:0"], env, "worker listening on ").await;
    for server in [&http, &worker] {
        let log = server.log();
        assert!(log.contains(r#""payments":"stripe""#), "the live provider is logged: {log}");
        assert!(!log.contains(SECRET_KEY) && !log.contains(WEBHOOK_SECRET), "a secret was logged: {log}");
    }

    let client = http.client();
    let (_, token) = client.register("ada@e2e.test", "correct-horse-battery").await;
    let product = str_of(&one_time_product(&client, "customer-support").await["id"]);

    // A card that needs no action: captured by Stripe, fulfilled by the worker.
    let (status, placed) = order(&client, &token, &product, "stripe-visa").await;
    assert_eq!(status, 201, "{placed}");
    let paid = pay(&client, &token, &str_of(&placed["id"]), PM_VISA).await.expect(200, "pay");
    assert_eq!((paid["provider"].as_str(), paid["status"].as_str()), (Some("stripe"), Some("succeeded")));
    eventually("the worker to license the visa order", || async {
        (licenses(&client, &token).await.len() == 1).then_some(())
    })
    .await;

    // 3-D Secure: the order waits for Stripe's webhook.
    let other = str_of(&one_time_product(&client, "developer-tools").await["id"]);
    let (status, placed) = order(&client, &token, &other, "stripe-3ds").await;
    assert_eq!(status, 201, "{placed}");
    let order_id = str_of(&placed["id"]);
    let pending = pay(&client, &token, &order_id, PM_3DS).await.expect(200, "pay");
    assert_eq!(pending["status"], "requires_action");
    let intent = str_of(&pending["provider_ref"]);
    stripe.complete_action(&intent, true);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let (signature, body) = stripe.signed_event("payment_intent.succeeded", &intent, i64::try_from(t).unwrap());

    let forged = bazaar_core::payments::webhook::sign(b"whsec_someone_else", i64::try_from(t).unwrap(), &body);
    let (status, refused) = deliver(&http, &forged, &body).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("invalid_signature")), "{refused}");

    let (status, ack) = deliver(&http, &signature, &body).await;
    assert_eq!((status, ack), (200, json!({ "received": true, "duplicate": false })));
    eventually("the worker to license the 3-D Secure order", || async {
        (licenses(&client, &token).await.len() == 2).then_some(())
    })
    .await;
    for _ in 0..3 {
        let (status, ack) = deliver(&http, &signature, &body).await;
        assert_eq!((status, ack), (200, json!({ "received": true, "duplicate": true })));
    }
    // Give a wrongly re-applied event time to reach the worker before counting.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(licenses(&client, &token).await.len(), 2, "one license per order");
    assert_eq!(stripe.captures(), 2, "each order charged once");
    assert_eq!(schema.count("SELECT count(*) FROM payment_intents WHERE provider = 'stripe'").await, 2);
    let received = schema.count("SELECT count(*) FROM webhook_inbox WHERE provider = 'stripe'").await;
    assert_eq!(received, 1, "four deliveries, one event recorded");

    assert_eq!(http.stop().await.code(), Some(0), "http stops gracefully");
    assert_eq!(worker.stop().await.code(), Some(0), "worker stops gracefully");
    assert!(bus.clean_up().await.contains("success"), "the run used its own stream");
    schema.drop().await;
}
