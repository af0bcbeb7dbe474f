//! Load figure for `LicensingService/ValidateLicense`: requests per second
//! and latency percentiles with N concurrent callers for D seconds.
//!
//! By default it builds the embedded marketplace (SQLite in a temporary
//! directory, as `bazaar serve` runs), buys one license, serves gRPC on
//! `127.0.0.1:0` in the same process and validates that license's key (no
//! fingerprint, like `benches/load/validate.lua` does over HTTP). With
//! `--target` it loads a server that is already running instead.
//!
//! ```sh
//! cargo run --release -p bazaar-grpc --example validate_load -- \
//!     [--concurrency 64] [--connections 4] [--duration 10] [--warmup 2] [--store sqlite|memory] \
//!     [--target http://127.0.0.1:50051 --key key/…]
//! ```
//! Callers are spread over `--connections` HTTP/2 connections; each caller
//! sends its next request when the previous one answers (closed loop).
//! Every request is bounded by the duration, so the run always ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bazaar_auth::{Argon2Passwords, JwtTokens};
use bazaar_core::auth::{Role, Signup};
use bazaar_core::catalog::{NewProduct, Pricing, ProductKind};
use bazaar_core::clock::{Clock, SystemClock};
use bazaar_core::marketplace::{Bus, Marketplace, Ports};
use bazaar_core::money::{Currency, Money};
use bazaar_core::orders::PlaceOrder;
use bazaar_grpc::pb;
use bazaar_grpc::pb::licensing_service_client::LicensingServiceClient;
use bazaar_memory::{InProcessBus, MemoryBackend, MemoryBlobStore};
use bazaar_sqlite::SqliteStore;
use tonic::transport::{Channel, Endpoint};

struct Args {
    concurrency: usize,
    connections: usize,
    duration: Duration,
    warmup: Duration,
    store: String,
    target: Option<String>,
    key: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        concurrency: 64,
        connections: 4,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        store: "sqlite".into(),
        target: None,
        key: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--concurrency" => args.concurrency = usize::try_from(number(value()?)?).map_err(|e| e.to_string())?,
            "--connections" => args.connections = usize::try_from(number(value()?)?).map_err(|e| e.to_string())?,
            "--duration" => args.duration = Duration::from_secs(number(value()?)?),
            "--warmup" => args.warmup = Duration::from_secs(number(value()?)?),
            "--store" => args.store = value()?,
            "--target" => args.target = Some(value()?),
            "--key" => args.key = Some(value()?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.concurrency == 0 || args.connections == 0 || args.duration.is_zero() {
        return Err("--concurrency, --connections and --duration must be positive".into());
    }
    if args.target.is_some() != args.key.is_some() {
        return Err("--target and --key go together".into());
    }
    Ok(args)
}

/// A marketplace with one paid, licensed order; returns it and the key.
async fn seeded(store: &str, dir: &std::path::Path) -> Result<(Arc<Marketplace>, String), Box<dyn std::error::Error>> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ports: Ports = match store {
        "sqlite" => {
            std::fs::create_dir_all(dir)?;
            let db = SqliteStore::open(&dir.join("bazaar.db")).await?;
            db.migrate().await?;
            let bus = Bus::new(Arc::new(InProcessBus::new(clock.clone())));
            db.ports(bus, Arc::new(MemoryBlobStore::new())).with_search_cache(clock.clone())
        }
        "memory" => MemoryBackend::new(clock.clone()).ports(),
        other => return Err(format!("--store must be sqlite or memory, not {other}").into()),
    };
    let market = Arc::new(
        Marketplace::builder(ports)
            .clock(clock)
            // Seeding only: the load is validation, which hashes nothing.
            .passwords(Arc::new(Argon2Passwords::fast_for_tests()))
            .tokens(Arc::new(JwtTokens::new([7; 32])))
            .build()?,
    );
    let admin = market.auth.ensure_admin(&bazaar_core::auth::Email::parse("admin@example.com")?, "password123").await?;
    let signup = |email: &str, role: Role| Signup {
        email: email.into(),
        password: "password123".into(),
        name: role.as_str().into(),
        role,
    };
    let vendor = market.auth.register(signup("vendor@example.com", Role::Vendor)).await?.user;
    let buyer = market.auth.register(signup("buyer@example.com", Role::Customer)).await?.user;
    let (admin, vendor, buyer) = (
        bazaar_core::auth::Actor::new(admin.id, Role::Admin),
        bazaar_core::auth::Actor::new(vendor.id, Role::Vendor),
        bazaar_core::auth::Actor::new(buyer.id, Role::Customer),
    );
    let product = market
        .catalog
        .create(
            &vendor,
            NewProduct {
                title: "Load agent".into(),
                description: "For the load test.".into(),
                short_description: String::new(),
                kind: ProductKind::AiAgent,
                categories: vec!["sales".into()],
                tags: Vec::new(),
                pricing: Pricing::OneTime { price: Money::new(1999, Currency::USD) },
                media: Vec::new(),
            },
        )
        .await?;
    market.catalog.submit(&vendor, product.id).await?;
    market.catalog.approve(&admin, product.id).await?;
    let order = market.orders.place(&buyer, PlaceOrder::new([product.id]), None).await?;
    market.orders.pay(&buyer, order.id, "pm_card_visa").await?;
    market.pump().await?;
    let license = market
        .licenses
        .list_mine(&buyer, Default::default())
        .await?
        .items
        .into_iter()
        .next()
        .ok_or("no license was issued")?;
    Ok((market, license.key))
}

/// One caller: validates `key` until `until`, recording latencies (µs) after `record_from`.
async fn caller(
    mut client: LicensingServiceClient<Channel>,
    key: String,
    record_from: Instant,
    until: Instant,
) -> (Vec<u32>, u64) {
    let mut latencies = Vec::with_capacity(64 * 1024);
    let mut errors = 0;
    loop {
        let start = Instant::now();
        if start >= until {
            break;
        }
        let request = pb::ValidateLicenseRequest { key: key.clone(), fingerprint: None };
        let outcome = tokio::time::timeout(until.saturating_duration_since(start) + Duration::from_secs(1), async {
            client.validate_license(request).await
        })
        .await;
        let elapsed = start.elapsed();
        if start < record_from {
            continue;
        }
        match outcome {
            Ok(Ok(response)) if response.get_ref().code() != pb::ValidationCode::Unspecified => {
                latencies.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
            }
            _ => errors += 1,
        }
    }
    (latencies, errors)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest-rank percentile.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    f64::from(sorted[rank.min(sorted.len()) - 1]) / 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args().map_err(|e| format!("{e}\nsee the example's docs for the flags"))?;
    let dir = std::env::temp_dir().join(format!("bazaar-validate-load-{}", std::process::id()));
    let (target, key, server) = match (&args.target, &args.key) {
        (Some(target), Some(key)) => (target.clone(), key.clone(), None),
        _ => {
            let (market, key) = seeded(&args.store, &dir).await?;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(bazaar_grpc::serve(listener, market, async move {
                let _ = stopped.await;
            }));
            (format!("http://{addr}"), key, Some((stop, server)))
        }
    };

    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        channels.push(Endpoint::from_shared(target.clone())?.tcp_nodelay(true).connect().await?);
    }
    let started = Instant::now();
    let record_from = started + args.warmup;
    let until = record_from + args.duration;
    let callers: Vec<_> = (0..args.concurrency)
        .map(|i| {
            let client = LicensingServiceClient::new(channels[i % channels.len()].clone());
            tokio::spawn(caller(client, key.clone(), record_from, until))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for c in callers {
        let (l, e) = c.await?;
        latencies.extend(l);
        errors += e;
    }
    latencies.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let rate = latencies.len() as f64 / args.duration.as_secs_f64();
    println!(
        "ValidateLicense via gRPC ({}): {} callers over {} connections, {:?} measured after {:?} warm-up",
        match &args.target {
            Some(t) => format!("target {t}"),
            None => format!("in-process server, {} store", args.store),
        },
        args.concurrency,
        args.connections,
        args.duration,
        args.warmup
    );
    println!("requests: {}  errors: {}  req/s: {:.0}", latencies.len(), errors, rate);
    println!(
        "latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 99.9),
        percentile(&latencies, 100.0)
    );

    if let Some((stop, server)) = server {
        let _ = stop.send(());
        server.await??;
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
