//! Real money and real delivery in the scaled-out shape: `bazaar http` and
//! `bazaar worker` on PostgreSQL and NATS JetStream with every connector
//! pointed at a real local server: Stripe (`bazaar_stripe::fake`, Stripe's
//! wire format), SMTP (aiosmtpd), S3 (moto's server mode) and a vendor's
//! webhook receiver.
//!
//! A purchase ends with the buyer's license e-mail in the SMTP server, the
//! asset downloaded from S3, and the vendor's endpoint holding the signed
//! `order.paid` and `license.issued`. Then Stripe fails for 30 s: payments
//! answer 503, and once the breaker is open without calling Stripe at all;
//! when Stripe is back every order is paid, licensed, mailed and reported
//! once, and charged once.
//!
//! Needs PostgreSQL and NATS as `scale_out.rs` does, and python3 with
//! venv and pip (PyPI) for aiosmtpd and moto, as the SMTP and S3 adapters'
//! tests do.

#[path = "../support/python.rs"]
mod python;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bazaar_core::payments::webhook::{DEFAULT_TOLERANCE, verify};
use bazaar_e2e::flow::{licenses, order, pay};
use bazaar_e2e::services::{RunBus, Schema};
use bazaar_e2e::{Client, PATIENCE, Server, eventually, run_bazaar, sha256_hex, str_of};
use bazaar_stripe::fake::{FakeStripe, PM_VISA, SECRET_KEY, WEBHOOK_SECRET};
use serde_json::{Value, json};

/// Orders paid during the outage: more than the 20 calls Stripe's breaker
/// needs before it may open.
const OUTAGE_ORDERS: usize = 24;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// aiosmtpd writing every accepted message to a directory.
struct Smtp {
    port: u16,
    maildir: tempfile::TempDir,
    _child: Child,
}

impl Smtp {
    fn start() -> Self {
        let python = python::venv("aiosmtpd-1.4.6", &["aiosmtpd==1.4.6"]);
        let port = python::free_port();
        let maildir = tempfile::tempdir().expect("maildir");
        let script = repo("adapters/smtp/tests/smtp_server.py");
        let child = python::spawn(&python, &script, &[port.to_string(), maildir.path().display().to_string()]);
        Self { port, maildir, _child: child }
    }

    /// The messages accepted for `address`, quoted-printable soft line
    /// breaks undone (the texts here are ASCII).
    fn mails_to(&self, address: &str) -> Vec<String> {
        python::accepted_mail(self.maildir.path())
            .into_iter()
            .filter(|raw| raw.lines().any(|l| l.to_ascii_lowercase().starts_with("to:") && l.contains(address)))
            .map(|raw| raw.replace("=\r\n", "").replace("=\n", ""))
            .collect()
    }
}

/// moto's S3 API with one bucket.
struct S3 {
    endpoint: String,
    bucket: String,
    _child: Child,
}

impl S3 {
    async fn start() -> Self {
        let (endpoint, child) = tokio::task::spawn_blocking(|| {
            let python = python::venv("moto-5.2.6", &["moto[server]==5.2.6"]);
            let port = python::free_port();
            let child = python::spawn(&python, &repo("adapters/s3/tests/moto_server.py"), &[port.to_string()]);
            (format!("http://127.0.0.1:{port}"), child)
        })
        .await
        .expect("moto");
        let bucket = format!("bazaar-e2e-{}", std::process::id());
        let created = reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await.expect("create bucket");
        assert!(created.status().is_success(), "creating the bucket: HTTP {}", created.status());
        Self { endpoint, bucket, _child: child }
    }
}

/// A vendor's webhook receiver on a loopback port: records every POST, answers 204.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>,
}

impl Receiver {
    async fn start() -> Self {
        let got: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
        let log = got.clone();
        let app = axum::Router::new().route(
            "/bazaar",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let log = log.clone();
                async move {
                    log.lock().expect("log").push((headers, body));
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/bazaar", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
        Self { url, got }
    }

    /// `(type, body)` of every delivery received, oldest first, each checked
    /// against `secret` and its own headers.
    fn verified(&self, secret: &[u8]) -> Vec<(String, Value)> {
        let now = chrono::Utc::now();
        self.got
            .lock()
            .expect("log")
            .iter()
            .map(|(headers, body)| {
                let header = |name: &str| headers[name].to_str().expect("ascii").to_owned();
                verify(&header("bazaar-signature"), body.as_bytes(), &[secret.to_vec()], now, DEFAULT_TOLERANCE)
                    .expect("signed with the endpoint's secret");
                let parsed: Value = serde_json::from_str(body).expect("JSON body");
                assert_eq!(parsed["id"], header("bazaar-event-id").as_str());
                assert_eq!(parsed["type"], header("bazaar-event-type").as_str());
                (header("bazaar-event-type"), parsed)
            })
            .collect()
    }
}

/// Matches every request while Stripe is down.
struct Outage(Arc<AtomicBool>);

impl wiremock::Match for Outage {
    fn matches(&self, _: &wiremock::Request) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Paid one-time products of the catalog, cheapest first.
async fn paid_products(client: &Client, n: usize) -> Vec<Value> {
    let page = client.get("/v1/products?price_min=1&sort=price_asc&limit=100", None).await.expect(200, "browse");
    let items: Vec<Value> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| p["pricing"]["type"] == "one_time")
        .cloned()
        .collect();
    assert!(items.len() >= n, "the catalog has {} paid one-time products, the scenario needs {n}", items.len());
    items.into_iter().take(n).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_reaches_stripe_smtp_s3_and_the_vendor_and_survives_a_stripe_outage() {
    let bus = RunBus::nats().await;
    let schema = Schema::create().await;
    let stripe = FakeStripe::start().await;
    let smtp = tokio::task::spawn_blocking(Smtp::start).await.expect("aiosmtpd");
    let s3 = S3::start().await;
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("temp dir");

    let mut env = vec![("DATABASE_URL".to_owned(), schema.url())];
    env.extend(bus.env());
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    for (k, v) in [
        ("BAZAAR_PAYMENTS", "stripe"),
        ("STRIPE_SECRET_KEY", SECRET_KEY),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("STRIPE_API_BASE", stripe.uri().as_str()),
        ("SMTP_URL", smtp_url.as_str()),
        ("SMTP_FROM", "Bazaar <noreply@e2e.test>"),
        ("S3_BUCKET", s3.bucket.as_str()),
        ("S3_ENDPOINT", s3.endpoint.as_str()),
        ("S3_REGION", "us-east-1"),
        ("S3_ACCESS_KEY_ID", "testing"),
        ("S3_SECRET_ACCESS_KEY", "testing"),
        // The receiver runs on this machine.
        ("BAZAAR_WEBHOOKS_ALLOW_LOCAL", "true"),
    ] {
        env.push((k.to_owned(), v.to_owned()));
    }
    let (code, out, err) = run_bazaar(dir.path(), &["migrate"], env.clone()).await;
    assert_eq!(code, Some(0), "migrate: {out}{err}");
    // About two in three seeded products are paid one-time ones.
    let products = 2 * (1 + OUTAGE_ORDERS);
    let (code, out, err) = run_bazaar(dir.path(), &["seed", "--products", &products.to_string()], env.clone()).await;
    assert_eq!(code, Some(0), "seed: {out}{err}");

    let http =
        Server::start_with(dir.path(), &["http", "--http-addr", "127.0.0.1:0"], env.clone(), "http listening on ")
            .await;
    let worker =
        Server::start_with(dir.path(), &["worker", "--http-addr", "127.0.0.1:0"], env, "worker listening on ").await;
    for server in [&http, &worker] {
        let log = server.log();
        for wanted in [r#""payments":"stripe""#, r#""email":"smtp""#, r#""blobs":"s3""#] {
            assert!(log.contains(wanted), "{wanted} is logged: {log}");
        }
        assert!(!log.contains(SECRET_KEY) && !log.contains(WEBHOOK_SECRET), "a secret was logged: {log}");
    }

    let client = http.client();
    let vendor = client.login("vendor@demo.bazaar", "demo-password").await;
    let endpoint = client
        .post(
            "/v1/webhook-endpoints",
            Some(&vendor),
            &json!({"url": receiver.url, "events": ["order.paid", "license.issued"]}),
        )
        .await
        .expect(201, "register the vendor's endpoint");
    let secret = str_of(&endpoint["secret"]).into_bytes();
    let buyer_email = "grace@e2e.test";
    let (_, buyer) = client.register(buyer_email, "correct-horse-battery").await;
    let catalog = paid_products(&client, 1 + OUTAGE_ORDERS).await;

    // One purchase, end to end.
    let product = str_of(&catalog[0]["id"]);
    let (status, placed) = order(&client, &buyer, &product, "first").await;
    assert_eq!(status, 201, "{placed}");
    let order_id = str_of(&placed["id"]);
    let paid = pay(&client, &buyer, &order_id, PM_VISA).await.expect(200, "pay");
    assert_eq!((paid["provider"].as_str(), paid["status"].as_str()), (Some("stripe"), Some("succeeded")));
    let license = eventually("the worker to license the order", || async {
        licenses(&client, &buyer).await.into_iter().find(|l| l["order_id"] == order_id.as_str())
    })
    .await;
    let license_id = str_of(&license["id"]);
    let mail = eventually("the license e-mail", || async {
        smtp.mails_to(buyer_email).into_iter().find(|m| m.contains(&license_id))
    })
    .await;
    assert!(mail.contains("noreply@e2e.test"), "{mail}");
    let reported = eventually("order.paid and license.issued at the vendor's endpoint", || async {
        let got = receiver.verified(&secret);
        (got.len() >= 2).then_some(got)
    })
    .await;
    let types: Vec<_> = reported.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["order.paid", "license.issued"]);
    assert!(reported.iter().all(|(_, body)| body["data"]["order_id"] == order_id.as_str()));
    assert_eq!(reported[1].1["data"]["license_id"], license_id.as_str());

    // The asset comes from S3, byte for byte what was uploaded.
    let assets = client.get(&format!("/v1/products/{product}/assets"), None).await.expect(200, "assets");
    let asset = &assets["items"][0];
    let download = client
        .post(&format!("/v1/licenses/{license_id}/downloads"), Some(&buyer), &json!({"asset_id": asset["id"]}))
        .await
        .expect(201, "download URL");
    let path = str_of(&download["url"]);
    // The API checks the license, then sends the client to the bucket.
    let direct = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let checked = direct.get(format!("{}{path}", http.base)).send().await.expect("download");
    assert_eq!(checked.status().as_u16(), 302);
    let location = checked.headers()["location"].to_str().expect("ascii").to_owned();
    assert!(location.starts_with(&s3.endpoint), "the bucket serves the bytes: {location}");
    assert_eq!(checked.headers()["x-content-sha256"].to_str().expect("ascii"), str_of(&asset["sha256"]));
    let bytes = reqwest::get(&location).await.expect("S3 download").bytes().await.expect("bytes");
    assert_eq!(sha256_hex(&bytes), str_of(&asset["sha256"]));

    // Orders waiting for payment when Stripe goes down.
    let mut pending = Vec::new();
    for (n, product) in catalog[1..].iter().enumerate() {
        let (status, placed) = order(&client, &buyer, &str_of(&product["id"]), &format!("outage-{n}")).await;
        assert_eq!(status, 201, "{placed}");
        pending.push(str_of(&placed["id"]));
    }
    let outage = tokio::time::Instant::now();
    // A switch rather than a scoped mock: wiremock 0.6 sorts its mocks by
    // priority as it matches, after which dropping a scoped mock's guard
    // takes out the wrong one.
    let down = Arc::new(AtomicBool::new(true));
    wiremock::Mock::given(Outage(down.clone()))
        .respond_with(wiremock::ResponseTemplate::new(500).set_body_json(json!({
            "error": {"type": "api_error", "message": "An unknown error occurred"}
        })))
        .with_priority(1)
        .mount(&stripe.server)
        .await;
    // Payments fail (Stripe answers 500, retried, then 503 here) until the
    // breaker has seen enough failures to open; then a payment is refused
    // without a request reaching Stripe. Eight at a time, cycling through
    // the pending orders.
    let mut failed = 0;
    'open: loop {
        assert!(outage.elapsed() < Duration::from_secs(25), "the breaker did not open after {failed} failed payments");
        let seen = stripe.requests().await.len();
        let round = pending.iter().cycle().skip(failed).take(8);
        let replies = futures::future::join_all(round.map(|id| pay(&client, &buyer, id, PM_VISA))).await;
        for reply in &replies {
            assert_eq!((reply.status.as_u16(), reply.error_code()), (503, "unavailable"), "{}", reply.body);
        }
        failed += replies.len();
        if stripe.requests().await.len() == seen {
            break 'open;
        }
    }
    let seen = stripe.requests().await.len();
    let refused = pay(&client, &buyer, &pending[0], PM_VISA).await;
    assert_eq!((refused.status.as_u16(), refused.error_code()), (503, "unavailable"), "{}", refused.body);
    assert_eq!(stripe.requests().await.len(), seen, "the open breaker keeps payments from Stripe");
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(outage.elapsed())).await;
    down.store(false, Ordering::SeqCst);

    // Stripe is back; the breaker lets payments through once it has rested.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let reply = pay(&client, &buyer, &pending[0], PM_VISA).await;
        if reply.status.as_u16() == 200 {
            assert_eq!(reply.body["status"], "succeeded");
            break;
        }
        assert_eq!(reply.status.as_u16(), 503, "{}", reply.body);
        if tokio::time::Instant::now() >= deadline {
            std::fs::write("/tmp/e2e-http.log", http.log()).ok();
            panic!("payments never recovered: {}", reply.body);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for id in &pending[1..] {
        let paid = pay(&client, &buyer, id, PM_VISA).await.expect(200, "pay after the outage");
        assert_eq!(paid["status"], "succeeded");
    }

    // Nothing lost, nothing twice.
    let all = 1 + OUTAGE_ORDERS;
    let licensed = || async {
        let page = client.get("/v1/licenses?limit=100", Some(&buyer)).await.expect(200, "licenses");
        page["total"].as_u64()
    };
    eventually("every order licensed", || async { (licensed().await == Some(all as u64)).then_some(()) }).await;
    eventually("every license e-mail", || async {
        let mails = smtp.mails_to(buyer_email);
        (mails.iter().filter(|m| m.contains("Subject: Your license is ready")).count() >= all).then_some(())
    })
    .await;
    eventually("every sale at the vendor's endpoint", || async {
        (receiver.verified(&secret).len() >= 2 * all).then_some(())
    })
    .await;
    // Give a wrongly repeated delivery time to arrive before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stripe.captures(), all as u64, "each order charged once");
    assert_eq!(licensed().await, Some(all as u64), "one license per order");
    let license_mails =
        smtp.mails_to(buyer_email).iter().filter(|m| m.contains("Subject: Your license is ready")).count();
    assert_eq!(license_mails, all, "one license e-mail per order");
    let reported = receiver.verified(&secret);
    let mut paid_orders: Vec<_> =
        reported.iter().filter(|(t, _)| t == "order.paid").map(|(_, b)| str_of(&b["data"]["order_id"])).collect();
    assert_eq!(paid_orders.len(), all, "one order.paid per order");
    paid_orders.sort();
    paid_orders.dedup();
    assert_eq!(paid_orders.len(), all, "no order reported twice");
    assert_eq!(reported.iter().filter(|(t, _)| t == "license.issued").count(), all);

    assert_eq!(http.stop().await.code(), Some(0), "http stops gracefully");
    assert_eq!(worker.stop().await.code(), Some(0), "worker stops gracefully");
    assert!(bus.clean_up().await.contains("success"), "the run used its own stream");
    schema.drop().await;
}
