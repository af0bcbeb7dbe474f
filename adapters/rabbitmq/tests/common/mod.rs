//! Shared wiring for the RabbitMQ integration tests: the broker URL, a loud
//! failure when it is unreachable, and a fresh topology (exchange and queue
//! prefix) per test, deleted at the end.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use bazaar_core::clock::{Clock, SystemClock};
use bazaar_core::events::{Event, UserRegistered};
use bazaar_core::ids::UserId;
use bazaar_rabbitmq::{RabbitBus, RabbitOptions};

/// `BAZAAR_TEST_AMQP_URL`, or the local default (guest/guest, vhost `/`).
pub fn amqp_url() -> String {
    std::env::var("BAZAAR_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A bus on `options`, or a panic that says why and how to fix it. Never a
/// silent skip: a suite that did not run must not look green, locally or
/// when `CI=true`.
pub async fn connect(options: RabbitOptions) -> RabbitBus {
    let url = amqp_url();
    let outcome = tokio::time::timeout(Duration::from_secs(10), RabbitBus::connect(&url, options)).await;
    let reason = match outcome {
        Ok(Ok(bus)) => return bus,
        Ok(Err(e)) => format!("{e}: {}", source_chain(&e)),
        Err(_) => "no answer within 10 s".to_owned(),
    };
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    eprintln!("\n==================== RABBITMQ UNREACHABLE ====================");
    eprintln!("The bazaar-rabbitmq tests need RabbitMQ (3.10+, guest/guest) at {url}: {reason}");
    eprintln!("Start one with:");
    eprintln!("  rabbitmq-server -detached");
    eprintln!("or set BAZAAR_TEST_AMQP_URL.{}", if ci { " (CI=true: this is a CI failure.)" } else { "" });
    eprintln!("==============================================================\n");
    panic!("RabbitMQ unreachable at {url}: {reason}");
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

/// Fresh options (a topology no other test uses) with the given ack wait.
pub fn fresh(ack_wait: Duration) -> RabbitOptions {
    RabbitOptions { ack_wait, reconnect_timeout: Duration::from_secs(20), ..RabbitOptions::fresh() }
}

/// A bus on a fresh topology; [`TestBus::cleanup`] deletes it, and dropping
/// it un-cleaned (a failed assertion) deletes it from a helper thread.
pub struct TestBus {
    pub bus: Arc<RabbitBus>,
    pub options: RabbitOptions,
    cleaned: bool,
}

impl TestBus {
    pub async fn new(ack_wait: Duration) -> Self {
        Self::with_options(fresh(ack_wait)).await
    }

    pub async fn with_options(options: RabbitOptions) -> Self {
        let bus = connect(options.clone()).await;
        Self { bus: Arc::new(bus), options, cleaned: false }
    }

    /// Another bus (another connection, as another process would have) on
    /// the same topology.
    pub async fn another(&self) -> RabbitBus {
        connect(self.options.clone()).await
    }

    /// Deletes the test topology, including the groups this bus used.
    pub async fn cleanup(mut self) {
        self.bus.delete_topology(&[]).await.expect("delete the test topology");
        self.cleaned = true;
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        // Drop can't await; a helper thread with its own runtime can (with
        // a bus of its own: this one's tasks live on the test's runtime).
        let options = self.options.clone();
        let groups = self.bus.groups();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let bus = RabbitBus::connect(&amqp_url(), options).await.ok()?;
                bus.delete_topology(&groups).await.ok()
            })
        })
        .join();
    }
}

pub fn event() -> Event {
    Event::new(&UserRegistered { user_id: UserId::new(), role: "customer".into() }, SystemClock.now())
}

/// A blocking sleep of the test's own thread (the `advance` of the
/// contract suites): the bus's tasks keep running on the runtime's workers.
pub fn sleep(d: Duration) {
    std::thread::sleep(d);
}
