//! The worker's ops routes: liveness, readiness over the backend probes,
//! and the Prometheus metrics the loops record.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bazaar_app::Keys;
use bazaar_core::entropy::OsEntropy;
use bazaar_core::events::{EventHandler, EventType, Outcome};
use bazaar_core::health::Probe;
use bazaar_worker::{prometheus, worker_router};
use common::{Counting, approved_product, clock, market, memory_market, place_and_pay, worker_config};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn get(router: axum::Router, path: &str) -> (StatusCode, String) {
    let response = router.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// The value of the sample whose line starts with `series` (name and labels).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The sum of every series of `name`, labelled or not.
fn total(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && (l[name.len()..].starts_with(' ') || l[name.len()..].starts_with('{')))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_count_what_the_steps_did() {
    let handle = prometheus();
    let poison = Counting::new("poison", EventType::OrderPlaced, true);
    let market = memory_market(vec![poison.clone() as Arc<dyn EventHandler>]);
    let max_attempts = market.dispatcher.config().max_attempts;
    let worker = market.worker(worker_config(0));
    let product = approved_product(&market, 900).await;
    place_and_pay(&market, &product).await;

    // order.placed and payment.succeeded are in the outbox.
    assert_eq!(worker.relay_once().await.unwrap(), 2);
    let mut outcomes = Vec::new();
    loop {
        match worker.process_one().await.unwrap() {
            Outcome::Empty if market.stores.dead_letters.count().await.unwrap() == 1 => break,
            Outcome::Empty => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            other => outcomes.push(other),
        }
        worker.relay_once().await.unwrap();
    }
    let retried = outcomes.iter().filter(|o| matches!(o, Outcome::Retrying { .. })).count();
    let handled = outcomes.iter().filter(|o| **o == Outcome::Processed).count();
    assert_eq!(retried, max_attempts as usize - 1, "order.placed failed until its last attempt");

    let (status, body) = get(worker_router(market.market.clone(), handle), "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    // This test binary runs no other worker, so the counters are this test's.
    assert!(sample(&body, "bazaar_events_published_total").is_some_and(|v| v >= 2.0), "{body}");
    assert_eq!(sample(&body, "bazaar_events_retried_total"), Some(retried as f64), "{body}");
    assert_eq!(sample(&body, "bazaar_events_dead_lettered_total"), Some(1.0), "{body}");
    assert_eq!(total(&body, "bazaar_events_handled_total"), handled as f64, "{body}");
    assert_eq!(
        sample(&body, "bazaar_events_handled_total{type=\"payment.succeeded\"}"),
        Some(1.0),
        "handled deliveries are labelled with their event type: {body}"
    );
    assert!(sample(&body, "bazaar_relay_lag_seconds").is_some(), "{body}");
}

#[tokio::test]
async fn liveness_and_readiness() {
    let plain = memory_market(vec![]);
    let (status, body) = get(worker_router(plain.market.clone(), prometheus()), "/health/live").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = get(worker_router(plain.market.clone(), prometheus()), "/health/ready").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["status"], "ok");

    let mut stores = bazaar_app::ports::memory(clock());
    stores.probes.push(Probe::new("database", || Box::pin(async { Ok(()) })));
    stores.probes.push(Probe::new("bus", || {
        Box::pin(async {
            Err(bazaar_core::Error::unavailable("bus", std::io::Error::other("connection refused by broker.internal")))
        })
    }));
    let market = market(stores, &Keys::generate(&OsEntropy), vec![]);
    let (status, body) = get(worker_router(market.market.clone(), prometheus()), "/health/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "unavailable");
    assert_eq!(json["checks"]["database"], "ok");
    assert_eq!(json["checks"]["bus"], "failing");
    assert!(!body.contains("broker.internal"), "causes stay in the logs: {body}");
}
