//! `GET /gateway/status` (JSON: every pool, instance health, breaker state
//! and counters, balancer stats, open WebSockets) and the small human page
//! at `/gateway` built from the same document.

use std::sync::atomic::Ordering;

use bazaar_core::resilience::circuit_breaker::State;
use http::{HeaderValue, Response, header};
use serde_json::{Value, json};

use crate::body::{ProxyBody, full};
use crate::gateway::Shared;
use crate::pool::Source;

fn state(s: State) -> &'static str {
    s.as_str()
}

/// The status document.
pub(crate) fn snapshot(shared: &Shared) -> Value {
    let pools: Vec<Value> = shared
        .pools
        .values()
        .map(|pool| {
            let balancer: std::collections::HashMap<_, _> =
                pool.balancer().status().into_iter().map(|s| (s.id.clone(), s)).collect();
            let instances: Vec<Value> = pool
                .instances()
                .values()
                .map(|i| {
                    let b = i.breaker.metrics();
                    let lb = balancer.get(&i.id);
                    let (requests, errors) = i.counters();
                    json!({
                        "id": i.id.as_str(),
                        "address": i.base.to_string(),
                        "source": match &i.source { Source::Static => "static", Source::Discovered(_) => "discovered" },
                        "instance_id": match &i.source { Source::Static => None, Source::Discovered(id) => Some(id.as_str()) },
                        "weight": i.weight,
                        "healthy": i.health_ok(),
                        "available": lb.is_some_and(|s| s.healthy && s.ejected_for.is_none()),
                        "health_error": i.last_health_error(),
                        "breaker": {
                            "state": state(b.state),
                            "consecutive_failures": b.consecutive_failures,
                            "successes": b.successes,
                            "failures": b.failures,
                            "not_permitted": b.not_permitted,
                            "times_opened": b.times_opened,
                            "open_remaining_ms": b.open_remaining.map(|d| d.as_millis() as u64),
                        },
                        "balancer": lb.map(|s| json!({
                            "in_flight": s.pending,
                            "ejected_for_ms": s.ejected_for.map(|d| d.as_millis() as u64),
                            "times_ejected": s.times_ejected,
                            "consecutive_failures": s.consecutive_failures,
                        })),
                        "requests": requests,
                        "errors": errors,
                    })
                })
                .collect();
            let bulkhead = pool.bulkhead.metrics();
            json!({
                "name": pool.name,
                "strategy": pool.config.strategy.as_str(),
                "protocol": match pool.config.protocol { crate::config::Protocol::Http1 => "http1", crate::config::Protocol::H2c => "h2c" },
                "service": pool.config.service,
                "bulkhead": { "max": bulkhead.max, "in_flight": bulkhead.in_flight() },
                "retry_budget_available": pool.retry_budget_available(),
                "instances": instances,
            })
        })
        .collect();
    let routes: Vec<Value> = shared
        .routes
        .iter()
        .map(|r| json!({ "name": r.name, "host": r.config.host, "prefix": r.config.prefix, "pool": r.config.pool }))
        .collect();
    json!({
        "status": if shared.draining.load(Ordering::Acquire) { "draining" } else { "serving" },
        "pools": pools,
        "routes": routes,
        "websockets": {
            "open": *shared.websockets.borrow(),
            "total": shared.websockets_total.load(Ordering::Relaxed),
        },
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The human status page.
pub(crate) fn page(shared: &Shared) -> Response<ProxyBody> {
    let doc = snapshot(shared);
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"2\">\
         <title>Bazaar gateway</title><style>body{font:14px system-ui,sans-serif;margin:2em}\
         table{border-collapse:collapse;margin-bottom:2em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}\
         .closed{color:#070}.open{color:#b00;font-weight:bold}.half_open{color:#b60}</style></head><body>",
    );
    html.push_str(&format!(
        "<h1>Bazaar gateway</h1><p>Status: {} &middot; open WebSockets: {}</p>",
        escape(doc["status"].as_str().unwrap_or("")),
        doc["websockets"]["open"]
    ));
    for pool in doc["pools"].as_array().into_iter().flatten() {
        html.push_str(&format!(
            "<h2>Pool {} <small>({}, {}, in flight {}/{})</small></h2><table><tr><th>instance</th><th>source</th>\
             <th>healthy</th><th>available</th><th>breaker</th><th>requests</th><th>errors</th><th>in flight</th><th>ejected</th></tr>",
            escape(pool["name"].as_str().unwrap_or("")),
            escape(pool["strategy"].as_str().unwrap_or("")),
            escape(pool["protocol"].as_str().unwrap_or("")),
            pool["bulkhead"]["in_flight"],
            pool["bulkhead"]["max"],
        ));
        for i in pool["instances"].as_array().into_iter().flatten() {
            let breaker = i["breaker"]["state"].as_str().unwrap_or("");
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{b}\">{b}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(i["address"].as_str().unwrap_or("")),
                escape(i["source"].as_str().unwrap_or("")),
                i["healthy"],
                i["available"],
                i["requests"],
                i["errors"],
                i["balancer"]["in_flight"],
                i["balancer"]["times_ejected"],
                b = escape(breaker),
            ));
        }
        html.push_str("</table>");
    }
    html.push_str(
        "<p><a href=\"/gateway/status\">JSON</a> &middot; <a href=\"/metrics\">metrics</a></p></body></html>",
    );
    let mut response = Response::new(full(html.into()));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}
