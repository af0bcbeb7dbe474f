//! `bazaar gateway` in front of real `bazaar http` replicas (PostgreSQL +
//! NATS), every one a separate process:
//!
//! - replicas that register through NATS JetStream KV (`--advertise-addr`)
//!   get traffic; `kill -9` of one under load fails no GET (each is retried
//!   on the other), its breaker opens and `/gateway/status` shows it; once
//!   it stops heartbeating it leaves the pool, and restarted it is
//!   re-admitted;
//! - a `POST` without `Idempotency-Key` gets one attempt, one with a key is
//!   retried;
//! - an expired or forged token is refused at the edge with the API's
//!   error shape and never reaches a replica, while the API's own tokens
//!   pass;
//! - a WebSocket opened through the gateway (token in the query) carries
//!   the buyer's license notification when the order is fulfilled.
//!
//! Needs PostgreSQL and NATS with JetStream (see `bazaar_e2e::services`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bazaar_auth::JwtTokens;
use bazaar_core::auth::{Actor, Role, TokenIssuer as _};
use bazaar_core::ids::UserId;
use bazaar_e2e::services::{RunBus, Schema};
use bazaar_e2e::{Server, eventually, run_bazaar};
use serde_json::{Value, json};

/// The four keys every process shares (no keys.json anywhere).
fn keys() -> Vec<(String, String)> {
    [
        ("BAZAAR_JWT_SECRET", "11"),
        ("BAZAAR_LICENSE_SIGNING_KEY", "22"),
        ("BAZAAR_URL_SIGNING_KEY", "33"),
        ("BAZAAR_WEBHOOK_SECRET", "44"),
    ]
    .into_iter()
    .map(|(name, byte)| (name.to_owned(), byte.repeat(32)))
    .collect()
}

/// A migrated PostgreSQL schema and a NATS stream of the run's own, and
/// the environment that points every process at them with shared keys.
struct Deployment {
    schema: Schema,
    bus: RunBus,
    root: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Deployment {
    async fn migrated() -> Self {
        let schema = Schema::create().await;
        let bus = RunBus::nats().await;
        let root = tempfile::tempdir().expect("temp dir");
        let mut env = bus.env();
        env.push(("DATABASE_URL".into(), schema.url()));
        env.extend(keys());
        let (code, out, err) = run_bazaar(&root.path().join("migrate"), &["migrate"], env.clone()).await;
        assert_eq!(code, Some(0), "migrate: {out}{err}");
        Self { schema, bus, root, env }
    }
}

/// `bazaar gateway --config <file holding config>` on a free port.
async fn gateway(root: &tempfile::TempDir, config: &str, env: &[(String, String)]) -> Server {
    let file = root.path().join("gateway.toml");
    std::fs::write(&file, config).expect("write the gateway config");
    let file = file.to_str().expect("a UTF-8 path");
    let args = ["gateway", "--config", file, "--http-addr", "127.0.0.1:0"];
    Server::start_with(&root.path().join("gateway"), &args, env.to_vec(), "gateway listening on ").await
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `bazaar http` on `port`, registered in the directory under that address.
async fn replica(dir: &std::path::Path, port: u16, env: &[(String, String)]) -> Server {
    let addr = format!("127.0.0.1:{port}");
    let advertise = format!("http://{addr}");
    let args = ["http", "--http-addr", addr.as_str(), "--advertise-addr", advertise.as_str()];
    Server::start_with(dir, &args, env.to_vec(), "http listening on ").await
}

async fn status(gateway: &Server) -> Value {
    gateway.client().get("/gateway/status", None).await.expect(200, "gateway status")
}

/// The pool's instances by address.
fn instances(status: &Value) -> BTreeMap<String, Value> {
    status["pools"][0]["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| (i["address"].as_str().unwrap_or_default().to_owned(), i.clone()))
        .collect()
}

/// GETs through `base` from `tasks` loops until `stop`; counts answers
/// other than 200 and transport errors as failures.
fn load(
    base: &str,
    tasks: usize,
    stop: &Arc<AtomicBool>,
) -> (Arc<AtomicU64>, Arc<AtomicU64>, Vec<tokio::task::JoinHandle<Vec<String>>>) {
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let handles = (0..tasks)
        .map(|task| {
            let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
            let client = reqwest::Client::new();
            let base = base.to_owned();
            tokio::spawn(async move {
                let mut failures = Vec::new();
                let paths = ["/v1/products?limit=5", "/v1/products?limit=3&sort=newest", "/v1/products?category=sales"];
                let mut n = task;
                while !stop.load(Ordering::Relaxed) {
                    let path = paths[n % paths.len()];
                    n += 1;
                    let outcome = match client.get(format!("{base}{path}")).send().await {
                        Ok(r) if r.status() == 200 => r.bytes().await.map(|_| ()).map_err(|e| e.to_string()),
                        Ok(r) => Err(r.status().to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    match outcome {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(why) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            failures.push(format!("GET {path}: {why}"));
                        }
                    }
                }
                failures
            })
        })
        .collect();
    (ok, failed, handles)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_behind_the_gateway_survive_a_kill_and_come_back() {
    let Deployment { schema, bus, root, env } = Deployment::migrated().await;

    let (port_a, port_b) = (free_port(), free_port());
    let (url_a, url_b) = (format!("http://127.0.0.1:{port_a}"), format!("http://127.0.0.1:{port_b}"));
    let a = replica(&root.path().join("a"), port_a, &env).await;
    let b = replica(&root.path().join("b"), port_b, &env).await;

    // Discovery through NATS KV; the breaker is the only thing that takes a
    // dead instance out before its TTL, so health checks and outlier
    // ejection are off, and it reopens after 1.5 s so re-admission shows.
    let gateway = gateway(
        &root,
        "[discovery]\nrefresh_ms = 200\n\
         [pools.api]\nservice = \"http\"\nstrategy = \"round_robin\"\nhealth = { enabled = false }\noutlier = { enabled = false }\n\
         breaker = { failure_threshold = 5, success_threshold = 2, open_ms = 1500, minimum_volume = 10 }\n\
         [[routes]]\nprefix = \"/\"\npool = \"api\"\n",
        &env,
    )
    .await;

    // Both replicas registered themselves and are routed to.
    eventually("both replicas in the pool", || async {
        let live = instances(&status(&gateway).await);
        (live.contains_key(&url_a) && live.contains_key(&url_b)).then_some(())
    })
    .await;
    let seen = status(&gateway).await;
    assert_eq!(instances(&seen)[&url_a]["source"], "discovered", "{seen}");

    // Warm-up traffic reaches both, past the breaker's minimum volume.
    let client = gateway.client();
    for _ in 0..40 {
        client.get("/v1/products?limit=2", None).await.expect(200, "search through the gateway");
    }
    let before = instances(&status(&gateway).await);
    for url in [&url_a, &url_b] {
        assert!(before[url]["requests"].as_u64().unwrap_or(0) > 0, "{url} got no traffic: {before:?}");
    }

    // kill -9 of replica A under load: no GET fails.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, loaders) = load(&gateway.base, 4, &stop);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ok_before_kill = ok.load(Ordering::Relaxed);
    assert!(!a.kill().await.success());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for loader in loaders {
        failures.extend(loader.await.unwrap());
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(failed, 0, "GETs failed through the gateway after a replica was killed: {failures:?}");
    assert!(ok > ok_before_kill, "traffic went on after the kill ({ok_before_kill} → {ok})");

    // A's breaker opened, and the status shows it (its entry lives until the TTL).
    let after = instances(&status(&gateway).await);
    let a_status = after.get(&url_a).cloned().unwrap_or(Value::Null);
    assert!(
        a_status["breaker"]["times_opened"].as_u64().unwrap_or(0) >= 1,
        "the killed replica's breaker never opened: {a_status}"
    );
    assert!(a_status["errors"].as_u64().unwrap_or(0) >= 5, "{a_status}");

    // It no longer heartbeats: the directory forgets it, and so does the pool.
    eventually("the killed replica to leave the pool", || async {
        (!instances(&status(&gateway).await).contains_key(&url_a)).then_some(())
    })
    .await;

    // Restarted on the same address, it registers again and gets traffic.
    let a = replica(&root.path().join("a"), port_a, &env).await;
    eventually("the restarted replica to be routed to", || async {
        client.get("/v1/products?limit=2", None).await.expect(200, "search through the gateway");
        let live = instances(&status(&gateway).await);
        live.get(&url_a).is_some_and(|i| i["requests"].as_u64().unwrap_or(0) > 0).then_some(())
    })
    .await;

    // SIGTERM deregisters at once (no TTL wait): B leaves the pool.
    assert!(b.stop().await.success());
    let gone = tokio::time::timeout(Duration::from_secs(5), async {
        while instances(&status(&gateway).await).contains_key(&url_b) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "a replica stopped with SIGTERM stayed in the pool");
    client.get("/v1/products?limit=2", None).await.expect(200, "A serves alone");

    assert!(gateway.stop().await.success(), "the gateway exits 0 on SIGTERM");
    assert!(a.stop().await.success());
    bus.clean_up().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_idempotent_requests_are_retried_and_bad_tokens_stop_at_the_edge() {
    let Deployment { schema, bus, root, env } = Deployment::migrated().await;
    let live = Server::start_with(
        &root.path().join("live"),
        &["http", "--http-addr", "127.0.0.1:0"],
        env.clone(),
        "http listening on ",
    )
    .await;

    // One instance that refuses connections and one that answers, taken in
    // turn, with nothing else to take the dead one out.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let config = format!(
        "[pools.api]\ninstances = [\"{dead}\", \"{}\"]\nstrategy = \"round_robin\"\nhealth = {{ enabled = false }}\n\
         outlier = {{ enabled = false }}\n[[routes]]\nprefix = \"/\"\npool = \"api\"\n",
        live.base
    );
    let gateway = gateway(&root, &config, &env).await;
    let client = gateway.client();

    // Without a key: one attempt, so every turn of the dead instance is a 502.
    let mut answers = BTreeMap::<u16, usize>::new();
    for _ in 0..6 {
        let reply = client.post("/v1/orders", None, &json!({ "product_id": "x" })).await;
        *answers.entry(reply.status.as_u16()).or_default() += 1;
    }
    assert_eq!(answers.get(&502), Some(&3), "half the un-keyed POSTs hit the dead instance: {answers:?}");
    assert_eq!(answers.get(&401), Some(&3), "the others reached the API (no token): {answers:?}");

    // With a key: retried on the live instance every time.
    for n in 0..6 {
        let key = format!("gw-retry-{n}");
        let reply = client
            .send(
                reqwest::Method::POST,
                "/v1/orders",
                None,
                Some(&json!({ "product_id": "x" })),
                &[("idempotency-key", &key)],
            )
            .await;
        assert_eq!(reply.status.as_u16(), 401, "keyed POST {n} was not retried: {}", reply.body);
    }

    // The API's own token passes the edge…
    // (A key, so the registration is retried past the dead instance.)
    let body = json!({ "email": "gw@e2e.test", "password": "correct-horse-battery", "name": "Gateway Buyer" });
    let registered = client
        .send(reqwest::Method::POST, "/v1/auth/register", None, Some(&body), &[("idempotency-key", "gw-register")])
        .await
        .expect(201, "register through the gateway");
    let token = registered["access_token"].as_str().expect("an access token").to_owned();
    client.get("/v1/orders", Some(&token)).await.expect(200, "a token the API issued");

    // …while expired and forged ones stop there, in the API's error shape.
    let secret: [u8; 32] = [0x11; 32];
    let now = chrono_now();
    let expired = JwtTokens::new(secret)
        .issue(
            Actor::new(UserId::new(), Role::Customer),
            now - chrono::TimeDelta::seconds(3_600),
            now - chrono::TimeDelta::seconds(60),
        )
        .map(|t| t.token)
        .unwrap();
    let forged = JwtTokens::new([0x99; 32])
        .issue(Actor::new(UserId::new(), Role::Admin), now, now + chrono::TimeDelta::seconds(600))
        .map(|t| t.token)
        .unwrap();
    let answered_before = orders_answered(&live).await;
    for (what, token) in [("expired", expired), ("forged", forged)] {
        let request_id = format!("gw-edge-{what}-{}", std::process::id());
        let reply =
            client.send(reqwest::Method::GET, "/v1/orders", Some(&token), None, &[("x-request-id", &request_id)]).await;
        assert_eq!(reply.status.as_u16(), 401, "{what}: {}", reply.body);
        assert_eq!(reply.error_code(), "unauthenticated", "{what}: {}", reply.body);
        assert_eq!(reply.body["request_id"], request_id.as_str(), "{what}: {}", reply.body);
        assert!(reply.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(orders_answered(&live).await, answered_before, "a refused token's request reached the replica");

    assert!(gateway.stop().await.success());
    assert!(live.stop().await.success());
    bus.clean_up().await;
    schema.drop().await;
}

/// How many `GET /v1/orders` the replica has answered (its own metrics).
async fn orders_answered(replica: &Server) -> u64 {
    let text = reqwest::get(format!("{}/metrics", replica.base)).await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("http_requests_total{") && l.contains("route=\"/v1/orders\"") && l.contains("method=\"GET\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Now, as the core's timestamp type.
fn chrono_now() -> bazaar_core::clock::Timestamp {
    bazaar_core::clock::Clock::now(&bazaar_core::clock::SystemClock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_through_the_gateway_receives_the_buyers_notification() {
    use futures::StreamExt as _;
    use tokio_tungstenite::tungstenite::Message;

    let root = tempfile::tempdir().expect("temp dir");
    let serve = Server::start(root.path(), bazaar_e2e::Options { demo: true, ..Default::default() }).await;
    let upstream = format!("api={}", serve.base);
    // The same data dir: the gateway verifies tokens with the API's keys.json.
    let gateway = Server::start_with(
        root.path(),
        &["gateway", "--upstream", upstream.as_str(), "--http-addr", "127.0.0.1:0"],
        Vec::new(),
        "gateway listening on ",
    )
    .await;
    let client = gateway.client();
    let (_, token) = client.register("ws@e2e.test", "correct-horse-battery").await;

    // A browser cannot set headers on a WebSocket: the token rides in the query.
    let url = format!("{}/v1/notifications/stream?access_token={token}", gateway.base.replacen("http", "ws", 1));
    let (mut socket, answer) =
        tokio_tungstenite::connect_async(url.as_str()).await.expect("WebSocket through the gateway");
    assert_eq!(answer.status().as_u16(), 101);
    let open = status(&gateway).await;
    assert_eq!(open["websockets"]["open"], 1, "{open}");

    // An expired token never opens one: refused at the edge.
    let expired = JwtTokens::new(jwt_secret(root.path()))
        .issue(
            Actor::new(UserId::new(), Role::Customer),
            chrono_now() - chrono::TimeDelta::seconds(600),
            chrono_now() - chrono::TimeDelta::seconds(1),
        )
        .unwrap()
        .token;
    let refused = format!("{}/v1/notifications/stream?access_token={expired}", gateway.base.replacen("http", "ws", 1));
    match tokio_tungstenite::connect_async(refused.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        other => panic!("an expired token opened a stream: {other:?}"),
    }

    // The purchase, through the gateway too.
    let product = bazaar_e2e::str_of(&bazaar_e2e::flow::one_time_product(&client, "customer-support").await["id"]);
    let (code, placed) = bazaar_e2e::flow::order(&client, &token, &product, "ws-order").await;
    assert_eq!(code, 201, "{placed}");
    let order_id = bazaar_e2e::str_of(&placed["id"]);
    bazaar_e2e::flow::pay(&client, &token, &order_id, "pm_card_visa").await.expect(200, "pay");

    let licensed = tokio::time::timeout(bazaar_e2e::PATIENCE, async {
        while let Some(message) = socket.next().await {
            if let Message::Text(text) = message.expect("a WebSocket message") {
                let notification: Value = serde_json::from_str(text.as_str()).expect("a JSON notification");
                if notification["template"] == "license_issued" {
                    return notification;
                }
            }
        }
        panic!("the stream closed before the license notification");
    })
    .await
    .expect("the license notification within the patience");
    assert_eq!(licensed["order_id"], order_id.as_str(), "{licensed}");

    drop(socket);
    assert!(gateway.stop().await.success());
    assert!(serve.stop().await.success());
}

/// The JWT secret of the marketplace whose data dir is `dir`.
fn jwt_secret(dir: &std::path::Path) -> [u8; 32] {
    let keys: Value = serde_json::from_slice(&std::fs::read(dir.join("keys.json")).expect("keys.json")).expect("JSON");
    hex::decode(keys["jwt"].as_str().expect("the jwt key")).expect("hex").try_into().expect("32 bytes")
}
