//! An `Idempotency-Key` outlives the process holding it: `bazaar http` on
//! PostgreSQL with a 2 s idempotency lease (`BAZAAR_IDEMPOTENCY_LEASE_SECS`).
//!
//! 1. A claim left as a request killed between claiming its key and
//!    committing its order leaves it (written straight into the table): the
//!    retry is `409 conflict` while the lease runs, then places the order.
//! 2. 16 buyers place keyed orders as fast as they can; the process is
//!    `kill -9`ed mid-stream and started again. Every key is then retried
//!    until it answers `201`: keys answered before the kill replay the same
//!    order, and each key ends with exactly one order; no claim is left
//!    unfinished.
//!
//! The order and its key's answer commit in one statement, so a kill can
//! leave a key claimed without an order (taken over after the lease) or an
//! order with its answer, never an order without one. The waits are hang
//! guards ([`PATIENCE`]), never timing assertions.
//!
//! Needs PostgreSQL (`BAZAAR_TEST_DATABASE_URL`); each run has its own schema.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bazaar_e2e::flow::one_time_product;
use bazaar_e2e::services::Schema;
use bazaar_e2e::{PATIENCE, Server, run_bazaar, str_of};
use serde_json::{Value, json};

const LEASE_SECS: u64 = 2;
const BUYERS: usize = 16;
const KEYS_PER_BUYER: usize = 12;
/// Orders answered before the kill.
const KILL_AFTER: usize = 60;

/// What one keyed `POST /v1/orders` came to.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Placed(String),
    InFlight,
    /// The connection failed: the process died under the request.
    Lost,
}

async fn place(http: &reqwest::Client, base: &str, token: &str, product: &str, key: &str) -> Outcome {
    let sent = http
        .post(format!("{base}/v1/orders"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({ "items": [{ "product_id": product }] }))
        .send()
        .await;
    let Ok(response) = sent else { return Outcome::Lost };
    let status = response.status().as_u16();
    let Ok(body) = response.json::<Value>().await else { return Outcome::Lost };
    match status {
        201 => Outcome::Placed(str_of(&body["id"])),
        409 if body["error"]["code"] == "conflict" => Outcome::InFlight,
        other => panic!("POST /v1/orders with key {key}: {other} {body}"),
    }
}

/// Retries `key` until it is placed, allowing `409 conflict` while a dead
/// request's lease runs out.
async fn settle(http: &reqwest::Client, base: &str, token: &str, product: &str, key: &str) -> (String, usize) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut refusals = 0;
    loop {
        match place(http, base, token, product, key).await {
            Outcome::Placed(id) => return (id, refusals),
            Outcome::InFlight => refusals += 1,
            Outcome::Lost => panic!("the restarted server dropped a request for key {key}"),
        }
        assert!(tokio::time::Instant::now() < deadline, "key {key} still in flight after {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_held_by_a_killed_process_are_taken_over_after_their_lease() {
    let schema = Schema::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let env = vec![
        ("DATABASE_URL".to_owned(), schema.url()),
        ("BAZAAR_IDEMPOTENCY_LEASE_SECS".to_owned(), LEASE_SECS.to_string()),
    ];
    let (code, out, err) = run_bazaar(dir.path(), &["seed", "--products", "12"], env.clone()).await;
    assert_eq!(code, Some(0), "seed: {out}{err}");
    let args = ["http", "--http-addr", "127.0.0.1:0"];
    let first = Server::start_with(dir.path(), &args, env.clone(), "http listening on ").await;
    let client = first.client();
    let product = str_of(&one_time_product(&client, "customer-support").await["id"]);
    let mut buyers = Vec::new();
    // Each buyer registers from an address of its own (127.0.2.x): the auth
    // routes allow 5 registrations at once per client IP.
    for i in 0..BUYERS {
        let local = IpAddr::V4(Ipv4Addr::new(127, 0, 2, u8::try_from(i + 1).expect("few buyers")));
        let email = format!("crash-{i}@e2e.test");
        let (id, token) = first.client_from(local).register(&email, "correct-horse-battery").await;
        buyers.push((id, token));
    }
    let http = reqwest::Client::new();

    // 1. A claim whose request died before its commit. Its request hash is
    //    the one a real request with the same body stores.
    let (probe_buyer, probe_token) = &buyers[0];
    let probe = place(&http, &first.base, probe_token, &product, "probe").await;
    assert!(matches!(probe, Outcome::Placed(_)), "{probe:?}");
    let hash = schema.query("SELECT request_hash FROM idempotency_keys WHERE key = 'probe'").await;
    schema
        .query(&format!(
            "INSERT INTO idempotency_keys (scope, key, request_hash, response, expires_at, token, locked_until)
             VALUES ('{probe_buyer}', 'dead', '{hash}', NULL,
                     (extract(epoch from now() + interval '1 day') * 1e9)::bigint, 'killed-request',
                     (extract(epoch from now() + interval '{LEASE_SECS} seconds') * 1e9)::bigint)"
        ))
        .await;
    let held = place(&http, &first.base, probe_token, &product, "dead").await;
    assert_eq!(held, Outcome::InFlight, "the dead request holds its key until the lease ends");
    let (dead_order, _) = settle(&http, &first.base, probe_token, &product, "dead").await;
    let replay = place(&http, &first.base, probe_token, &product, "dead").await;
    assert_eq!(replay, Outcome::Placed(dead_order.clone()), "the retry's order is the key's answer");

    // 2. kill -9 while buyers place keyed orders.
    let placed = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (b, (_, token)) in buyers.iter().enumerate() {
        let (http, base, token, product) = (http.clone(), first.base.clone(), token.clone(), product.clone());
        let (placed, killed) = (placed.clone(), killed.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = HashMap::new();
            for k in 0..KEYS_PER_BUYER {
                let key = format!("crash-{b}-{k}");
                let outcome = place(&http, &base, &token, &product, &key).await;
                let lost = outcome == Outcome::Lost;
                if let Outcome::Placed(_) = outcome {
                    placed.fetch_add(1, Ordering::SeqCst);
                }
                seen.insert(key, outcome);
                if lost || killed.load(Ordering::SeqCst) {
                    break;
                }
            }
            seen
        }));
    }
    tokio::time::timeout(PATIENCE, async {
        while placed.load(Ordering::SeqCst) < KILL_AFTER {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("orders flowed before the kill");
    first.kill().await;
    killed.store(true, Ordering::SeqCst);
    let mut before_kill: HashMap<String, Outcome> = HashMap::new();
    for task in tasks {
        before_kill.extend(task.await.expect("buyer task"));
    }
    let lost = before_kill.values().filter(|o| **o == Outcome::Lost).count();
    assert!(lost > 0, "the kill fell while requests were in flight: {before_kill:?}");

    let second = Server::start_with(dir.path(), &args, env, "http listening on ").await;
    let mut taken_over = 0;
    for (b, (_, token)) in buyers.iter().enumerate() {
        for k in 0..KEYS_PER_BUYER {
            let key = format!("crash-{b}-{k}");
            let (order, refusals) = settle(&http, &second.base, token, &product, &key).await;
            if refusals > 0 {
                taken_over += 1;
            }
            if let Some(Outcome::Placed(first_answer)) = before_kill.get(&key) {
                assert_eq!(&order, first_answer, "key {key} replays the order answered before the kill");
            }
        }
    }
    eprintln!("{lost} requests lost to the kill; {taken_over} keys waited out a dead request's lease");

    // Every key ends with exactly one order, and nothing is left half done.
    let keys = BUYERS * KEYS_PER_BUYER;
    let keyed =
        schema.count("SELECT count(*) FROM idempotency_keys WHERE key LIKE 'crash-%' AND response IS NOT NULL").await;
    assert_eq!(keyed, i64::try_from(keys).unwrap(), "every key answered");
    let orders = schema.count("SELECT count(*) FROM orders").await;
    assert_eq!(orders, i64::try_from(keys + 2).unwrap(), "one order per key (and the probe's two)");
    let answered = schema
        .count(
            "SELECT count(DISTINCT o.id) FROM idempotency_keys k JOIN orders o ON o.id = (k.response::json->'body'->>'id')",
        )
        .await;
    assert_eq!(answered, orders, "every order is some key's answer");
    let unfinished = schema.count("SELECT count(*) FROM idempotency_keys WHERE response IS NULL").await;
    assert_eq!(unfinished, 0, "no claim is left unfinished");

    assert_eq!(second.stop().await.code(), Some(0), "http stops gracefully");
    schema.drop().await;
}
