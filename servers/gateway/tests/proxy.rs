//! The gateway against real in-process upstreams: routing, strategies,
//! breakers and status, retries (idempotency, budget), deadlines, bulkhead,
//! streaming, headers, metrics, rate limits, edge auth and graceful drain.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bazaar_core::ids::UserId;
use bazaar_gateway::{Gateway, GatewayConfig};
use bytes::Bytes;
use common::*;
use http::StatusCode;
use http_body_util::{BodyExt, Full};

fn pool(name: &str, instances: &[&Upstream], extra: &str) -> String {
    let urls: Vec<String> = instances.iter().map(|u| format!("\"{}\"", u.url())).collect();
    format!("[pools.{name}]\ninstances = [{}]\nhealth = {{ enabled = false }}\n{extra}\n", urls.join(", "))
}

fn route(prefix: &str, pool: &str) -> String {
    format!("[[routes]]\nprefix = \"{prefix}\"\npool = \"{pool}\"\n")
}

async fn servers_of(running: &Running, path: &str, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let a = get(&running.url(path)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        seen.push(a.body);
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_longest_prefix_and_host() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let toml = format!(
        "{}{}{}{}[[routes]]\nprefix = \"/\"\nhost = \"b.example\"\npool = \"b\"\n",
        pool("a", &[&a], ""),
        pool("b", &[&b], ""),
        route("/", "a"),
        route("/b/", "b"),
    );
    let gw = start(&toml).await;
    assert_eq!(get(&gw.url("/anything")).await.body, "a");
    assert_eq!(get(&gw.url("/b/thing")).await.body, "b", "the longer prefix wins");
    let by_host =
        send(request("GET", &gw.url("/anything")).header("host", "b.example:8000").body(Full::default()).unwrap())
            .await;
    assert_eq!(by_host.body, "b", "a route naming the host wins");
    let echoed = get(&gw.url("/b/echo")).await.json();
    assert_eq!(echoed["uri"], "/b/echo", "the path is forwarded unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strip_prefix_and_unmatched_paths() {
    let a = Upstream::start("a").await;
    let toml = format!("{}[[routes]]\nprefix = \"/api/\"\npool = \"a\"\nstrip_prefix = true\n", pool("a", &[&a], ""));
    let gw = start(&toml).await;
    assert_eq!(get(&gw.url("/api/echo?x=1")).await.json()["uri"], "/echo?x=1");
    let missing = get(&gw.url("/elsewhere")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["error"]["code"], "not_found");
    assert_eq!(a.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategies_are_chosen_per_pool() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let weighted = format!(
        "[pools.w]\nstrategy = \"weighted\"\nhealth = {{ enabled = false }}\ninstances = [{{ url = \"{}\", weight = 3 }}, \"{}\"]\n",
        a.url(),
        b.url()
    );
    let toml = format!(
        "{}{weighted}{}{}",
        pool("rr", &[&a, &b], "strategy = \"round_robin\""),
        route("/", "rr"),
        route("/w/", "w"),
    );
    let gw = start(&toml).await;
    let rr = servers_of(&gw, "/", 6).await;
    for pair in rr.windows(2) {
        assert_ne!(pair[0], pair[1], "round robin alternates: {rr:?}");
    }
    let weighted = servers_of(&gw, "/w/x", 8).await;
    let count = |name: &str| weighted.iter().filter(|s| *s == name).count();
    assert_eq!((count("a"), count("b")), (6, 2), "weights 3:1 over two cycles: {weighted:?}");
    let status = status(&gw).await;
    let strategies: HashMap<String, String> = status["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap().to_owned(), p["strategy"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(strategies["rr"], "round_robin");
    assert_eq!(strategies["w"], "weighted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_instance_opens_its_breaker_and_gets_are_retried() {
    let (good, bad) = (Upstream::start("good").await, Upstream::start("bad").await);
    bad.set_mode(FAIL);
    let toml = format!(
        "{}{}",
        pool(
            "api",
            &[&good, &bad],
            "strategy = \"round_robin\"\noutlier = { enabled = false }\nbreaker = { failure_threshold = 3, minimum_volume = 3, open_ms = 600000 }\nretry = { backoff_ms = 1 }"
        ),
        route("/", "api")
    );
    let gw = start(&toml).await;
    for _ in 0..20 {
        let a = get(&gw.url("/x")).await;
        assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "good"), "every GET succeeds on the good instance");
    }
    assert_eq!(bad.hits(), 3, "the breaker opened after three failures and no request went there since");
    let status = status(&gw).await;
    let entry = instance(&status, "api", bad.addr);
    assert_eq!(entry["breaker"]["state"], "open");
    assert_eq!(entry["breaker"]["times_opened"], 1);
    assert_eq!(entry["available"], false);
    assert_eq!(entry["errors"], 3);
    assert_eq!(instance(&status, "api", good.addr)["breaker"]["state"], "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_idempotency_key_is_sent_once_and_one_with_a_key_is_retried() {
    let up = Upstream::start("only").await;
    up.set_mode(FAIL);
    let toml = format!(
        "{}{}",
        pool(
            "api",
            &[&up],
            "outlier = { enabled = false }\nbreaker = { failure_threshold = 1000 }\nretry = { max_attempts = 3, backoff_ms = 1 }"
        ),
        route("/", "api")
    );
    let gw = start(&toml).await;
    let plain = send(request("POST", &gw.url("/orders")).body(Full::new(Bytes::from_static(b"{}"))).unwrap()).await;
    assert_eq!(plain.status, StatusCode::SERVICE_UNAVAILABLE, "the upstream's own answer comes back");
    assert_eq!(up.hits_on("/orders"), 1, "a POST without a key is never retried");
    let keyed = send(
        request("POST", &gw.url("/keyed"))
            .header("idempotency-key", "k-1")
            .body(Full::new(Bytes::from_static(b"{\"items\":[]}")))
            .unwrap(),
    )
    .await;
    assert_eq!(keyed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(up.hits_on("/keyed"), 3, "a POST with a key is retried up to max_attempts");
    up.set_mode(OK);
    let echoed = send(
        request("POST", &gw.url("/echo"))
            .header("idempotency-key", "k-2")
            .body(Full::new(Bytes::from(vec![7u8; 1000])))
            .unwrap(),
    )
    .await;
    assert_eq!(echoed.json()["body_len"], 1000, "a replayed body arrives whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_budget_caps_retries() {
    let up = Upstream::start("only").await;
    up.set_mode(FAIL);
    // No ratio, a floor of 1 retry/s over the 10 s window: 10 retries in all.
    let toml = format!(
        "{}{}",
        pool(
            "api",
            &[&up],
            "outlier = { enabled = false }\nbreaker = { failure_threshold = 1000 }\nretry = { max_attempts = 2, backoff_ms = 1, budget_ratio = 0.0, budget_min_per_sec = 1 }"
        ),
        route("/", "api")
    );
    let gw = start(&toml).await;
    for _ in 0..20 {
        assert_eq!(get(&gw.url("/x")).await.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(up.hits(), 30, "20 first attempts and the budget's 10 retries, no more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_end_hung_attempts_and_retries_go_elsewhere() {
    let (hung, fine) = (Upstream::start("hung").await, Upstream::start("fine").await);
    hung.set_mode(HANG);
    let toml = format!(
        "{}{}{}{}",
        pool(
            "both",
            &[&hung, &fine],
            "strategy = \"round_robin\"\nper_try_timeout_ms = 100\ntimeout_ms = 5000\nretry = { backoff_ms = 1 }"
        ),
        pool("alone", &[&hung], "per_try_timeout_ms = 100\ntimeout_ms = 250\nretry = { backoff_ms = 1 }"),
        route("/", "both"),
        route("/alone/", "alone"),
    );
    let gw = start(&toml).await;
    for _ in 0..4 {
        let a = get(&gw.url("/x")).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (StatusCode::OK, "fine"),
            "a timed-out GET is retried on the other instance"
        );
    }
    let timed_out = get(&gw.url("/alone/x")).await;
    assert_eq!(timed_out.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(timed_out.json()["error"]["code"], "timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_stream_and_the_bulkhead_holds_until_the_body_ends() {
    let up = Upstream::start("s").await;
    let toml = format!("{}{}", pool("api", &[&up], "max_concurrent = 1"), route("/", "api"));
    let gw = start(&toml).await;
    let response = client().request(request("GET", &gw.url("/stream")).body(Full::default()).unwrap()).await.unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"first;", "the first chunk arrives while the upstream is still sending");
    // The slot is held by the open body: a second request is shed.
    let shed = get(&gw.url("/other")).await;
    assert_eq!(shed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.json()["error"]["code"], "unavailable");
    up.state.release.notify_one();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(&rest[..], b"second");
    // Body done, slot back.
    let mut admitted = false;
    for _ in 0..50 {
        if get(&gw.url("/other")).await.status == StatusCode::OK {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(admitted, "the slot is released when the streamed body ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_id_and_traceparent_are_propagated() {
    let up = Upstream::start("e").await;
    let gw = start(&format!("{}{}", pool("api", &[&up], ""), route("/", "api"))).await;
    let answer = send(
        request("GET", &gw.url("/echo"))
            .header("x-request-id", "req-42")
            .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .body(Full::default())
            .unwrap(),
    )
    .await;
    let seen = answer.json();
    assert_eq!(seen["headers"]["x-request-id"], "req-42");
    assert_eq!(answer.headers["x-request-id"], "req-42");
    let tp = seen["headers"]["traceparent"].as_str().unwrap();
    assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{tp}");
    assert!(!tp.contains("00f067aa0ba902b7"), "the gateway's hop is the new parent");
    assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1");
    let fresh = get(&gw.url("/echo")).await;
    let made = fresh.json()["headers"]["x-request-id"].as_str().unwrap().to_owned();
    assert_eq!(fresh.headers["x-request-id"].to_str().unwrap(), made, "a made id goes up and back");
    assert!(fresh.json()["headers"]["traceparent"].as_str().unwrap().starts_with("00-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_exposed_per_route_and_instance() {
    let up = Upstream::start("m").await;
    let gw = start(&format!("{}{}", pool("api", &[&up], ""), route("/", "api"))).await;
    for _ in 0..5 {
        get(&gw.url("/x")).await;
    }
    let text = get(&gw.url("/metrics")).await.body;
    assert!(text.contains("gateway_route_requests_total{route=\"/\"} 5"), "{text}");
    let instance = format!("gateway_upstream_requests_total{{pool=\"api\",instance=\"{}\"}} 5", up.url());
    assert!(text.contains(&instance), "{text}");
    for q in ["0.5", "0.95", "0.99"] {
        assert!(text.contains(&format!("gateway_route_duration_seconds{{route=\"/\",quantile=\"{q}\"}}")), "{text}");
    }
    assert!(text.contains("gateway_responses_total{route=\"/\",status=\"200\"} 5"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_per_client_address_behind_trusted_proxies() {
    let up = Upstream::start("r").await;
    let toml = format!(
        "[server]\ntrusted_proxies = [\"127.0.0.1\"]\n[rate_limit]\nper_ip = {{ per_second = 1, burst = 2 }}\n{}{}",
        pool("api", &[&up], ""),
        route("/", "api")
    );
    let gw = start(&toml).await;
    let from =
        |ip: &'static str| request("GET", &gw.url("/x")).header("x-forwarded-for", ip).body(Full::default()).unwrap();
    assert_eq!(send(from("203.0.113.1")).await.status, StatusCode::OK);
    assert_eq!(send(from("203.0.113.1")).await.status, StatusCode::OK);
    let limited = send(from("203.0.113.1")).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.json()["error"]["code"], "rate_limited");
    assert!(limited.headers.contains_key("retry-after"));
    assert_eq!(send(from("203.0.113.2")).await.status, StatusCode::OK, "another client has its own quota");
    assert_eq!(up.hits(), 3, "a limited request never reaches the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_peers_cannot_spoof_their_address() {
    let up = Upstream::start("r").await;
    let toml = format!(
        "[rate_limit]\nper_ip = {{ per_second = 1, burst = 1 }}\n{}{}",
        pool("api", &[&up], ""),
        route("/", "api")
    );
    let gw = start(&toml).await;
    let from =
        |ip: &'static str| request("GET", &gw.url("/x")).header("x-forwarded-for", ip).body(Full::default()).unwrap();
    assert_eq!(send(from("198.51.100.1")).await.status, StatusCode::OK);
    assert_eq!(
        send(from("198.51.100.2")).await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the peer is 127.0.0.1 whatever it claims"
    );
}

fn auth_gateway(up: &Upstream, extra: &str) -> GatewayConfig {
    GatewayConfig::from_toml(&format!(
        "{extra}\n{}[[routes]]\nprefix = \"/\"\npool = \"api\"\n[[routes]]\nprefix = \"/private/\"\npool = \"api\"\nauth = \"required\"\n[[routes]]\nprefix = \"/hooks/\"\npool = \"api\"\nauth = \"none\"\n",
        pool("api", &[up], "")
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_expired_tokens_are_refused_at_the_edge_with_the_api_error_shape() {
    let up = Upstream::start("a").await;
    let gw =
        run(Gateway::builder(auth_gateway(&up, "")).verifier(std::sync::Arc::new(JwtVerifier)).build().unwrap()).await;
    let with = |path: &str, token: &str| {
        request("GET", &gw.url(path)).header("authorization", format!("Bearer {token}")).body(Full::default()).unwrap()
    };
    let expired = send(with("/x", &token(UserId::new(), -60))).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    let doc = expired.json();
    assert_eq!(doc["error"]["code"], "unauthenticated");
    assert!(doc["error"]["message"].as_str().unwrap().contains("expired"), "{doc}");
    assert_eq!(doc["request_id"], expired.headers["x-request-id"].to_str().unwrap());
    assert_eq!(send(with("/x", "not.a.jwt")).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(up.hits(), 0, "no bad token reached the upstream");
    let good = send(with("/echo", &token(UserId::new(), 600))).await;
    assert_eq!(good.status, StatusCode::OK);
    assert!(good.json()["headers"]["authorization"].as_str().unwrap().starts_with("Bearer "), "the token goes on");
    assert_eq!(get(&gw.url("/x")).await.status, StatusCode::OK, "no token on an optional route passes");
    let missing = get(&gw.url("/private/x")).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(missing.json()["error"]["message"].as_str().unwrap().contains("required"));
    assert_eq!(send(with("/hooks/x", "garbage")).await.status, StatusCode::OK, "auth = none never looks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_per_user() {
    let up = Upstream::start("a").await;
    let config = auth_gateway(&up, "[rate_limit]\nper_user = { per_second = 1, burst = 1 }");
    let gw = run(Gateway::builder(config).verifier(std::sync::Arc::new(JwtVerifier)).build().unwrap()).await;
    let (alice, bob) = (token(UserId::new(), 600), token(UserId::new(), 600));
    let with = |token: &str| {
        request("GET", &gw.url("/x")).header("authorization", format!("Bearer {token}")).body(Full::default()).unwrap()
    };
    assert_eq!(send(with(&alice)).await.status, StatusCode::OK);
    assert_eq!(send(with(&alice)).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(send(with(&bob)).await.status, StatusCode::OK, "users have separate quotas");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_streams() {
    let up = Upstream::start("s").await;
    let mut gw = start(&format!("{}{}", pool("api", &[&up], ""), route("/", "api"))).await;
    let response = client().request(request("GET", &gw.url("/stream")).body(Full::default()).unwrap()).await.unwrap();
    let mut body = response.into_body();
    assert_eq!(&body.frame().await.unwrap().unwrap().into_data().unwrap()[..], b"first;");
    gw.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!gw.served.is_finished(), "serve waits for the open stream");
    assert_eq!(gw.gateway.status()["status"], "draining");
    up.state.release.notify_one();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(&rest[..], b"second", "the in-flight response completed during the drain");
    tokio::time::timeout(Duration::from_secs(5), &mut gw.served).await.expect("drained").unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(gw.addr).await.is_err(), "no new connections after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_health_endpoints_and_status_page() {
    let up = Upstream::start("h").await;
    let gw = start(&format!("{}{}", pool("api", &[&up], ""), route("/", "api"))).await;
    assert_eq!(get(&gw.url("/health/live")).await.status, StatusCode::OK);
    assert_eq!(get(&gw.url("/health/ready")).await.status, StatusCode::OK);
    let page = get(&gw.url("/gateway")).await;
    assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.body.contains(&up.url()), "the page lists the instance");
    assert_eq!(up.hits(), 0, "the gateway's own endpoints are not proxied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_health_checks_take_an_instance_out_and_back() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let toml = format!(
        "[pools.api]\nstrategy = \"round_robin\"\ninstances = [\"{}\", \"{}\"]\nhealth = {{ interval_ms = 50, timeout_ms = 50 }}\n{}",
        a.url(),
        b.url(),
        route("/", "api")
    );
    let gw = start(&toml).await;
    b.kill();
    let wait_for = |healthy: bool| {
        let gw = &gw;
        let addr = b.addr;
        async move {
            for _ in 0..200 {
                if instance(&status(gw).await, "api", addr)["healthy"] == healthy {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("instance never became healthy={healthy}");
        }
    };
    wait_for(false).await;
    let hits = a.hits();
    for _ in 0..10 {
        assert_eq!(get(&gw.url("/x")).await.body, "a");
    }
    assert_eq!(a.hits(), hits + 10, "only the healthy instance serves");
    b.restart().await;
    wait_for(true).await;
    let seen = servers_of(&gw, "/x", 40).await;
    assert!(seen.iter().any(|s| s == "b"), "the instance is back in rotation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_instance_under_load_fails_no_get_and_it_is_readmitted_after_restart() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let toml = format!(
        "[pools.api]\nstrategy = \"round_robin\"\ninstances = [\"{}\", \"{}\"]\nhealth = {{ interval_ms = 100, timeout_ms = 100 }}\nbreaker = {{ open_ms = 300 }}\noutlier = {{ base_ejection_ms = 300 }}\nretry = {{ backoff_ms = 1 }}\n{}",
        a.url(),
        b.url(),
        route("/", "api")
    );
    let gw = std::sync::Arc::new(start(&toml).await);
    let load = |n: usize| {
        let gw = gw.clone();
        tokio::spawn(async move {
            let mut failed = Vec::new();
            for _ in 0..n {
                let a = get(&gw.url("/x")).await;
                if a.status != StatusCode::OK {
                    failed.push(a.body);
                }
            }
            failed
        })
    };
    let workers: Vec<_> = (0..8).map(|_| load(150)).collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    b.kill();
    let mut failed = Vec::new();
    for w in workers {
        failed.extend(w.await.unwrap());
    }
    assert!(failed.is_empty(), "every GET was retried to the live instance: {failed:?}");
    let status = status(&gw).await;
    let entry = instance(&status, "api", b.addr);
    assert!(
        entry["healthy"] == false
            || entry["breaker"]["times_opened"].as_u64().unwrap() > 0
            || entry["balancer"]["times_ejected"].as_u64().unwrap() > 0,
        "{entry}"
    );
    b.restart().await;
    let before = b.hits();
    let mut back = false;
    for _ in 0..100 {
        get(&gw.url("/x")).await;
        if b.hits() > before {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(back, "the restarted instance is re-admitted");
    assert!(a.state.hits.load(Ordering::SeqCst) > 0);
}
