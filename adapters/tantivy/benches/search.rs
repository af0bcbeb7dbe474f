//! The search read model on the load mix, next to the reference it must
//! equal, at 10,000 and 100,000 products.
//!
//! For each catalog size (`BAZAAR_BENCH_SIZES`, default `10000,100000`) it
//! prints a report, then runs criterion groups:
//! - **build**: `rebuild` of the whole catalog into an on-disk index (the
//!   data-dir default) and into RAM: wall time, RSS growth, size on disk,
//!   segments;
//! - **latency**: every query of a 4,000-query mix
//!   ([`query_mix`](bazaar_core::testkit::search_load::query_mix)), each timed
//!   alone, three passes: p50 / p90 / p99 / p99.9 / max, per shape too; the
//!   same for the reference `search::apply` over the first
//!   `BAZAAR_BENCH_ORACLE` queries (default 4,000 at 10k, 200 at 100k), whose
//!   answers are also compared with the index's;
//! - **throughput**: the mix on every core for three seconds;
//! - **freshness**: the time from an upsert to its visibility through
//!   `commit` (what a committer tick adds to its interval), on disk and in
//!   RAM;
//! - criterion `search/{n}/index` and `search/{n}/reference`: one query per
//!   iteration, cycling through the mix.
//!
//! Run: `cargo bench -p bazaar-tantivy --bench search`.

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bazaar_core::catalog::search::{self, SearchQuery};
use bazaar_core::catalog::{Product, ProductStatus};
use bazaar_core::testkit::search_load::{peer_catalog, query_mix, query_string};
use bazaar_tantivy::{CatalogIndex, Checkpoint};
use criterion::Criterion;

const MIX: usize = 4_000;

fn main() {
    let sizes: Vec<u64> = std::env::var("BAZAAR_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("BAZAAR_BENCH_SIZES: comma-separated numbers"))
        .collect();
    let mut criterion = Criterion::default().configure_from_args();
    for n in sizes {
        run(&mut criterion, n);
    }
    criterion.final_summary();
}

fn run(criterion: &mut Criterion, n: u64) {
    println!("\n=== {n} products, {MIX} distinct queries ===");
    let catalog = peer_catalog(n);
    let mix: Vec<(String, SearchQuery)> =
        query_mix(MIX, n, 1).into_iter().map(|p| (shape(&p), SearchQuery::new(p).expect("the mix is valid"))).collect();

    let dir = tempfile::tempdir().expect("temp dir");
    let index = build(&catalog, Some(dir.path()));
    let in_ram = build(&catalog, None);

    latency(&index, &catalog, &mix, n);
    throughput(&index, &mix);
    // Last: these leave products at higher versions than `catalog`.
    freshness("disk", &index, &catalog);
    freshness("RAM", &in_ram, &catalog);
    drop(in_ram);

    let mut group = criterion.benchmark_group(format!("search/{n}"));
    group.sample_size(if n > 20_000 { 20 } else { 50 });
    let mut i = 0;
    group.bench_function("index", |b| {
        b.iter(|| {
            i = (i + 1) % mix.len();
            black_box(index.search(&mix[i].1).expect("search"))
        })
    });
    let mut j = 0;
    group.sample_size(10);
    group.bench_function("reference", |b| {
        b.iter(|| {
            j = (j + 1) % mix.len();
            black_box(search::apply(&catalog, &mix[j].1))
        })
    });
    group.finish();
}

/// The mix's shape of a query, for per-shape percentiles.
fn shape(p: &bazaar_core::catalog::SearchParams) -> String {
    match (&p.q, p.price_min) {
        (Some(_), _) => "text".into(),
        (None, Some(_)) => "price band".into(),
        (None, None) => "browse".into(),
    }
}

/// Resident set size of this process, in bytes (Linux).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn mib(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let m = bytes as f64 / (1024.0 * 1024.0);
    format!("{m:.1} MiB")
}

fn build(catalog: &[Product], dir: Option<&Path>) -> CatalogIndex {
    let before = rss();
    let start = Instant::now();
    let index = match dir {
        Some(d) => CatalogIndex::open(d).expect("open"),
        None => CatalogIndex::in_memory().expect("in memory"),
    };
    index.rebuild(catalog, Checkpoint::new(1)).expect("rebuild");
    let took = start.elapsed();
    let stats = index.stats();
    let grown = rss().saturating_sub(before);
    let place = dir.map_or("RAM".to_owned(), |d| format!("disk ({} on disk)", mib(dir_size(d))));
    println!(
        "build into {place}: {:.2} s, RSS +{}, {} products, {} searchable, {} segment(s)",
        took.as_secs_f64(),
        mib(grown),
        stats.products,
        stats.searchable,
        stats.segments
    );
    index
}

fn percentiles(label: &str, mut micros: Vec<f64>) {
    if micros.is_empty() {
        return;
    }
    micros.sort_by(f64::total_cmp);
    let at = |p: f64| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
        let i = ((micros.len() as f64 - 1.0) * p).round() as usize;
        micros[i]
    };
    #[allow(clippy::cast_precision_loss)]
    let mean = micros.iter().sum::<f64>() / micros.len() as f64;
    println!(
        "{label:<28} n={:<6} mean {mean:>8.1} µs  p50 {:>8.1}  p90 {:>8.1}  p99 {:>8.1}  p99.9 {:>8.1}  max {:>8.1}",
        micros.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        micros[micros.len() - 1]
    );
}

fn latency(index: &CatalogIndex, catalog: &[Product], mix: &[(String, SearchQuery)], n: u64) {
    let mut all = Vec::new();
    let mut by_shape: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    // Pass 1 warms the page cache and the reader; passes 2 and 3 are timed.
    for pass in 0..3 {
        for (shape, q) in mix {
            let start = Instant::now();
            black_box(index.search(q).expect("search"));
            let us = start.elapsed().as_secs_f64() * 1e6;
            if pass > 0 {
                all.push(us);
                by_shape.entry(shape).or_default().push(us);
            }
        }
    }
    percentiles("index, whole mix", all);
    for (shape, v) in by_shape {
        percentiles(&format!("index, {shape}"), v);
    }

    let default_oracle = if n > 20_000 { 200 } else { MIX };
    let oracle: usize =
        std::env::var("BAZAAR_BENCH_ORACLE").ok().and_then(|v| v.parse().ok()).unwrap_or(default_oracle).min(MIX);
    let mut reference = Vec::new();
    for (_, q) in &mix[..oracle] {
        let start = Instant::now();
        let want = black_box(search::apply(catalog, q));
        reference.push(start.elapsed().as_secs_f64() * 1e6);
        let got = index.search(q).expect("search");
        assert_eq!(got, want, "the index differs from the reference for {q:?}");
    }
    percentiles("reference search::apply", reference);
    println!("(the index equalled the reference on all {oracle} compared queries)");
    let example = &mix[0].1;
    println!("e.g. GET /v1/products?{}", query_string(&to_params(example)));
}

/// Back from a validated query to its parameters (for the example line).
fn to_params(q: &SearchQuery) -> bazaar_core::catalog::SearchParams {
    bazaar_core::catalog::SearchParams {
        q: q.q().map(str::to_owned),
        category: q.category().map(str::to_owned),
        kind: q.kind(),
        price_min: q.price_min(),
        price_max: q.price_max(),
        sort: Some(q.sort()),
        page: Some(q.page().page()),
        limit: Some(q.page().limit()),
    }
}

fn throughput(index: &CatalogIndex, mix: &[(String, SearchQuery)]) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let run_for = Duration::from_secs(3);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (done, stop) = (&done, &stop);
            s.spawn(move || {
                let mut i = t * mix.len() / threads;
                while !stop.load(Ordering::Relaxed) {
                    black_box(index.search(&mix[i % mix.len()].1).expect("search"));
                    i += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(run_for);
        stop.store(true, Ordering::Relaxed);
    });
    #[allow(clippy::cast_precision_loss)]
    let qps = done.load(Ordering::Relaxed) as f64 / run_for.as_secs_f64();
    println!("throughput on {threads} threads: {qps:.0} searches/s (in process, no HTTP)");
}

fn freshness(place: &str, index: &CatalogIndex, catalog: &[Product]) {
    let mut micros = Vec::new();
    for (k, p) in catalog.iter().step_by(catalog.len() / 50).take(50).enumerate() {
        let mut p = p.clone();
        p.status = ProductStatus::Suspended;
        p.version += 1;
        let start = Instant::now();
        index.upsert(&p).expect("upsert");
        index.advance(Checkpoint::new(2 + k as u64));
        index.commit().expect("commit");
        micros.push(start.elapsed().as_secs_f64() * 1e6);
        // Put it back for the next passes.
        p.status = ProductStatus::Approved;
        p.version += 1;
        index.upsert(&p).expect("upsert");
    }
    index.commit().expect("commit");
    percentiles(&format!("upsert → visible, {place}"), micros);
    println!("segments after 100 single-product commits: {}", index.stats().segments);
}
