//! The whole purchase pipeline under load: `bazaar http` and `bazaar
//! worker` processes on PostgreSQL + NATS JetStream (or, with `--bus`,
//! RabbitMQ or Redis Streams), and concurrent buyers
//! placing and paying one-line orders over HTTP until every license is
//! issued.
//!
//! Reports
//! - purchases per second through the whole pipeline: purchases divided by
//!   the time from the first order request to the last `license.issued`
//!   event (order → pay → outbox → relay → bus → worker → license);
//! - the HTTP side alone (order + pay round trips per second, and their
//!   p50/p99);
//! - p50/p99/max of the time from payment succeeded to license issued, per
//!   order: the `occurred_at` of its `payment.succeeded` and of its last
//!   `license.issued` event, both read from the outbox table. Both are
//!   stamped by the server inside the transaction that makes the change,
//!   so no polling of the API is mixed into the figure; the license is
//!   readable once that transaction commits, a few hundred µs later.
//!
//! ```text
//! cargo build --release -p bazaar --bin bazaar
//! cargo run --release -p bazaar-e2e --example pipeline_load -- \
//!     --purchases 5000 --concurrency 32 --workers 1 --products 150
//! # latency below saturation: an open-loop offered rate
//! cargo run --release -p bazaar-e2e --example pipeline_load -- \
//!     --purchases 2000 --concurrency 32 --rate 50
//! # the same on RabbitMQ
//! cargo run --release -p bazaar-e2e --example pipeline_load -- --bus rabbitmq
//! ```
//! Needs PostgreSQL (`BAZAAR_TEST_DATABASE_URL`) and the bus: NATS
//! (`BAZAAR_TEST_NATS_URL`), RabbitMQ (`BAZAAR_TEST_AMQP_URL`) or Redis
//! (`BAZAAR_TEST_REDIS_URL`); the run gets its own schema and stream (or
//! exchange and queues, or key), both removed at the end. `BAZAAR_BIN` picks a prebuilt binary (else the
//! harness builds it in this example's profile).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bazaar_e2e::services::{RunBus, Schema};
use bazaar_e2e::{Server, run_bazaar, str_of};
use hdrhistogram::Histogram;
use reqwest::Method;
use serde_json::json;

#[derive(Debug, Clone, Copy)]
struct Args {
    purchases: usize,
    concurrency: usize,
    workers: usize,
    products: usize,
    /// Offered purchases per second (open loop); 0 = as fast as the buyers go.
    rate: usize,
    /// The event bus.
    bus: Bus,
}

#[derive(Debug, Clone, Copy)]
enum Bus {
    Nats,
    Rabbit,
    Redis,
}

impl Args {
    fn parse() -> Self {
        let mut args = Self { purchases: 5000, concurrency: 32, workers: 1, products: 150, rate: 0, bus: Bus::Nats };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
            if flag == "--bus" {
                args.bus = match value.as_str() {
                    "nats" => Bus::Nats,
                    "rabbitmq" => Bus::Rabbit,
                    "redis" => Bus::Redis,
                    other => panic!("--bus {other}: expected nats, rabbitmq or redis"),
                };
                continue;
            }
            let n: usize = value.parse().unwrap_or_else(|_| panic!("{flag} {value}: expected a number"));
            match flag.as_str() {
                "--purchases" => args.purchases = n,
                "--concurrency" => args.concurrency = n,
                "--workers" => args.workers = n,
                "--products" => args.products = n,
                "--rate" => args.rate = n,
                other => {
                    panic!("unknown flag {other} (--purchases, --concurrency, --workers, --products, --rate, --bus)")
                }
            }
        }
        assert!(args.purchases > 0 && args.concurrency > 0 && args.workers > 0, "counts must be positive");
        args
    }
}

fn now_nanos() -> i64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_nanos();
    i64::try_from(nanos).expect("fits i64")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let schema = Schema::create().await;
    let bus = match args.bus {
        Bus::Nats => RunBus::nats().await,
        Bus::Rabbit => RunBus::rabbit().await,
        Bus::Redis => RunBus::redis().await,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    // `BAZAAR_LOG=info` keeps the worker's "will retry" lines in worker.log;
    // `PIPELINE_LOAD_KEEP=1` keeps the data dir (and the logs) afterwards.
    let log = std::env::var("BAZAAR_LOG").unwrap_or_else(|_| "warn".to_owned());
    let mut env = vec![("DATABASE_URL".to_owned(), schema.url()), ("BAZAAR_LOG".to_owned(), log)];
    env.extend(bus.env());

    let (code, out, err) = run_bazaar(dir.path(), &["migrate"], env.clone()).await;
    assert_eq!(code, Some(0), "migrate: {out}{err}");
    let products = args.products.to_string();
    let (code, out, err) = run_bazaar(dir.path(), &["seed", "--products", &products], env.clone()).await;
    assert_eq!(code, Some(0), "seed: {out}{err}");

    let http =
        Server::start_with(dir.path(), &["http", "--http-addr", "127.0.0.1:0"], env.clone(), "http listening on ")
            .await;
    let mut workers = Vec::new();
    for _ in 0..args.workers {
        let worker = Server::start_with(
            dir.path(),
            &["worker", "--http-addr", "127.0.0.1:0"],
            env.clone(),
            "worker listening on ",
        )
        .await;
        workers.push(worker);
    }

    // Every approved one-time product; a buyer buys each at most once.
    let client = http.client();
    let mut one_time = Vec::new();
    for page in 1.. {
        let reply =
            client.get(&format!("/v1/products?price_min=1&limit=100&page={page}"), None).await.expect(200, "browse");
        let items = reply["items"].as_array().expect("items").clone();
        one_time.extend(items.iter().filter(|p| p["pricing"]["type"] == "one_time").map(|p| str_of(&p["id"])));
        if items.len() < 100 {
            break;
        }
    }
    assert!(!one_time.is_empty(), "the demo catalog has no one-time products");
    let buyers = args.purchases.div_ceil(one_time.len());

    // Buyers register from addresses of their own: the auth routes allow 5
    // registrations at once per client IP.
    let mut tokens = Vec::new();
    for i in 0..buyers {
        let [hi, lo] = u16::try_from(i + 1).expect("under 65535 buyers").to_be_bytes();
        let local = IpAddr::V4(Ipv4Addr::new(127, 1, hi, lo));
        let (_, token) =
            http.client_from(local).register(&format!("load{i}@bench.test"), "correct-horse-battery").await;
        tokens.push(token);
    }
    // Product-major: concurrent purchases come from different buyers.
    let work: Arc<Vec<(usize, String)>> =
        Arc::new(one_time.iter().flat_map(|p| (0..buyers).map(move |b| (b, p.clone()))).take(args.purchases).collect());
    let tokens = Arc::new(tokens);

    println!(
        "pipeline_load on {:?}: {} purchases, {} concurrent buyers, offered rate {}, {} worker process(es), {} one-time products, {} buyers",
        args.bus,
        work.len(),
        args.concurrency,
        if args.rate > 0 { format!("{}/s", args.rate) } else { "unlimited".to_owned() },
        args.workers,
        one_time.len(),
        buyers
    );
    let next = Arc::new(AtomicUsize::new(0));
    let start_nanos = now_nanos();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (client, work, tokens, next) = (client.clone(), work.clone(), tokens.clone(), next.clone());
        let rate = args.rate;
        tasks.spawn(async move {
            let mut round_trips = Histogram::<u64>::new(3).expect("histogram");
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((buyer, product)) = work.get(i) else { break };
                if rate > 0 {
                    // Open loop: purchase i starts at i / rate seconds, however
                    // slow the ones before it were (as long as a buyer is free).
                    let due = Duration::from_secs_f64(i as f64 / rate as f64);
                    tokio::time::sleep_until((started + due).into()).await;
                }
                let token = tokens[*buyer].as_str();
                let t = Instant::now();
                let body = json!({ "items": [{ "product_id": product }] });
                let key = format!("load-{i}");
                let placed = client
                    .send(Method::POST, "/v1/orders", Some(token), Some(&body), &[("Idempotency-Key", key.as_str())])
                    .await
                    .expect(201, "place an order");
                let order_id = str_of(&placed["id"]);
                let paid = bazaar_e2e::flow::pay(&client, token, &order_id, "pm_card_visa").await.expect(200, "pay");
                assert_eq!(paid["status"], "succeeded", "{paid}");
                round_trips.record(micros(t.elapsed())).expect("in range");
            }
            round_trips
        });
    }
    let mut round_trips = Histogram::<u64>::new(3).expect("histogram");
    while let Some(h) = tasks.join_next().await {
        round_trips.add(h.expect("a buyer task panicked")).expect("same bounds");
    }
    let http_elapsed = started.elapsed();

    let total = i64::try_from(work.len()).expect("fits i64");
    let wait_until = Instant::now() + Duration::from_secs(600);
    loop {
        let issued = schema.count("SELECT count(*) FROM licenses").await;
        if issued >= total {
            break;
        }
        assert!(Instant::now() < wait_until, "only {issued} of {total} licenses after 10 minutes");
        // Each poll is a psql process and a PostgreSQL backend: poll
        // seldom so the measurement does not eat the CPU it measures. The
        // end time comes from the events themselves, not from this poll.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let last_issued = schema.count("SELECT max(occurred_at) FROM outbox WHERE event_type = 'license.issued'").await;
    let pipeline_secs = (last_issued - start_nanos) as f64 / 1e9;

    let rows = schema
        .query(
            "SELECT (max(l.occurred_at) - p.occurred_at) / 1000 \
             FROM (SELECT envelope::jsonb -> 'data' ->> 'order_id' AS order_id, occurred_at FROM outbox \
                   WHERE event_type = 'payment.succeeded') p \
             JOIN (SELECT envelope::jsonb -> 'data' ->> 'order_id' AS order_id, occurred_at FROM outbox \
                   WHERE event_type = 'license.issued') l USING (order_id) \
             GROUP BY p.order_id, p.occurred_at",
        )
        .await;
    let mut to_license = Histogram::<u64>::new(3).expect("histogram");
    for row in rows.lines() {
        let us: i64 = row.trim().parse().unwrap_or_else(|_| panic!("latency row {row:?}"));
        to_license.record(u64::try_from(us.max(0)).expect("non-negative")).expect("in range");
    }
    assert_eq!(to_license.len(), work.len() as u64, "every order has both events");
    let dead = schema.count("SELECT count(*) FROM dead_letters").await;

    println!(
        "pipeline: {:.0} purchases/s ({} in {pipeline_secs:.2} s, first order to last license)",
        total as f64 / pipeline_secs,
        total
    );
    println!(
        "http: {:.0} order+pay/s; order+pay round trip p50 {} p99 {}",
        work.len() as f64 / http_elapsed.as_secs_f64(),
        ms(round_trips.value_at_quantile(0.5)),
        ms(round_trips.value_at_quantile(0.99))
    );
    println!(
        "payment succeeded -> license issued: p50 {} p99 {} max {} ({} orders)",
        ms(to_license.value_at_quantile(0.5)),
        ms(to_license.value_at_quantile(0.99)),
        ms(to_license.max()),
        to_license.len()
    );
    println!("dead letters: {dead}");

    assert_eq!(http.stop().await.code(), Some(0), "http stops gracefully");
    for worker in workers {
        assert_eq!(worker.stop().await.code(), Some(0), "worker stops gracefully");
    }
    bus.clean_up().await;
    schema.drop().await;
    if std::env::var_os("PIPELINE_LOAD_KEEP").is_some() {
        println!("logs kept in {}", dir.keep().display());
    }
}
