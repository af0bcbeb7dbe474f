//! Shared wiring for the Redis integration tests: the server URL, a loud
//! failure when it is unreachable, and a fresh key prefix per test.

use std::time::Duration;

use bazaar_redis::{ConnectionManager, ConnectionManagerConfig};

/// `BAZAAR_TEST_REDIS_URL`, or the local default.
pub(crate) fn redis_url() -> String {
    std::env::var("BAZAAR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A connection to the test Redis, or a panic that says why and how to fix
/// it. Never a silent skip: a suite that did not run must not look green,
/// locally or when `CI=true`.
pub(crate) async fn connect() -> ConnectionManager {
    let url = redis_url();
    let outcome = tokio::time::timeout(
        Duration::from_secs(5),
        bazaar_redis::connect_with(&url, ConnectionManagerConfig::new().set_number_of_retries(1)),
    )
    .await;
    let reason = match outcome {
        Ok(Ok(conn)) => return conn,
        Ok(Err(e)) => e.to_string() + &source_chain(&e),
        Err(_) => "no answer within 5 s".to_owned(),
    };
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    eprintln!("\n==================== REDIS UNREACHABLE ====================");
    eprintln!("The bazaar-redis tests need Redis at {url}: {reason}");
    eprintln!("Start one with:");
    eprintln!("  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no");
    eprintln!("or set BAZAAR_TEST_REDIS_URL.{}", if ci { " (CI=true: this is a CI failure.)" } else { "" });
    eprintln!("===========================================================\n");
    panic!("Redis unreachable at {url}: {reason}");
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A key prefix no other test (or run) uses.
pub(crate) fn fresh_prefix(test: &str) -> String {
    format!("bazaar-test:{test}:{}:", uuid::Uuid::now_v7())
}
