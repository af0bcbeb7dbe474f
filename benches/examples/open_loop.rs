//! An open-loop HTTP load generator with coordinated-omission-corrected
//! latency (the wrk2 method): request `i` is due at `start + i / rate`
//! whether or not earlier ones have answered, and its latency is counted
//! from that due time, so a stall shows up in every request it delayed
//! instead of hiding as one slow sample. Uncorrected latency (from the
//! actual send) is reported beside it.
//!
//! `cargo run --release -p bazaar-benches --example open_loop -- http://127.0.0.1:18000/json 5000 20 64`
//! (URL, requests per second, seconds, connections). Keep-alive HTTP/1.1,
//! GET only. Requests are bounded: `rate × seconds` in all, and the run
//! stops by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

struct Sample {
    corrected: Duration,
    uncorrected: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url: hyper::Uri = args.first().map_or("http://127.0.0.1:18000/json", String::as_str).parse()?;
    let rate: f64 = args.get(1).map_or(Ok(1000.0), |s| s.parse())?;
    let seconds: f64 = args.get(2).map_or(Ok(10.0), |s| s.parse())?;
    let connections: usize = args.get(3).map_or(Ok(64), |s| s.parse())?;
    let authority = url.authority().ok_or("the URL needs host:port")?.clone();
    let host = authority.host().to_owned();
    if !(host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())) {
        return Err("load runs target loopback addresses only".into());
    }
    let total = (rate * seconds) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (next, errors, url, authority) = (next.clone(), errors.clone(), url.clone(), authority.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let stream = tokio::net::TcpStream::connect(authority.as_str()).await.ok()?;
            stream.set_nodelay(true).ok()?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.ok()?;
            tokio::spawn(conn);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let due = start + interval.mul_f64(i as f64);
                tokio::time::sleep_until(due.into()).await;
                let sent = Instant::now();
                let request = hyper::Request::get(url.clone())
                    .header("host", authority.as_str())
                    .body(Empty::<Bytes>::new())
                    .ok()?;
                let ok = match sender.send_request(request).await {
                    Ok(response) => {
                        let good = response.status().is_success();
                        good && response.into_body().collect().await.is_ok()
                    }
                    Err(_) => false,
                };
                let done = Instant::now();
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                    if sender.ready().await.is_err() {
                        break;
                    }
                }
                samples.push(Sample { corrected: done - due, uncorrected: done - sent });
            }
            Some(samples)
        }));
    }
    let mut corrected = Vec::new();
    let mut uncorrected = Vec::new();
    for task in tasks {
        for s in task.await?.unwrap_or_default() {
            corrected.push(s.corrected);
            uncorrected.push(s.uncorrected);
        }
    }
    let elapsed = start.elapsed();
    corrected.sort_unstable();
    uncorrected.sort_unstable();
    let done = corrected.len() as f64;
    println!("target {url}: offered {rate:.0} req/s for {seconds:.0} s over {connections} connections");
    println!(
        "completed {} requests in {:.2} s = {:.0} req/s, {} errors",
        corrected.len(),
        elapsed.as_secs_f64(),
        done / elapsed.as_secs_f64(),
        errors.load(Ordering::Relaxed)
    );
    println!("{:>8} {:>12} {:>12}", "pct", "corrected", "uncorrected");
    for p in [50.0, 90.0, 99.0, 99.9, 100.0] {
        println!("{p:>8} {:>12} {:>12}", ms(percentile(&corrected, p)), ms(percentile(&uncorrected, p)));
    }
    Ok(())
}
