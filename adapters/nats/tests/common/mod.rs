//! Shared wiring for the NATS integration tests: the server URL, a loud
//! failure when it is unreachable, and a fresh stream (and subject prefix)
//! per test, deleted at the end.

use std::sync::Arc;
use std::time::Duration;

use bazaar_nats::async_nats;
use bazaar_nats::{JetStreamBus, JetStreamOptions};

/// `BAZAAR_TEST_NATS_URL`, or the local default.
pub(crate) fn nats_url() -> String {
    std::env::var("BAZAAR_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A client of the test server, or a panic that says why and how to fix
/// it. Never a silent skip: a suite that did not run must not look green,
/// locally or when `CI=true`.
pub(crate) async fn client() -> async_nats::Client {
    let url = nats_url();
    let outcome = tokio::time::timeout(
        Duration::from_secs(5),
        async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(3)).connect(url.as_str()),
    )
    .await;
    let reason = match outcome {
        Ok(Ok(client)) => return client,
        Ok(Err(e)) => e.to_string() + &source_chain(&e),
        Err(_) => "no answer within 5 s".to_owned(),
    };
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    eprintln!("\n==================== NATS UNREACHABLE ====================");
    eprintln!("The bazaar-nats tests need NATS with JetStream at {url}: {reason}");
    eprintln!("Start one with:");
    eprintln!(
        "  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server"
    );
    eprintln!("or set BAZAAR_TEST_NATS_URL.{}", if ci { " (CI=true: this is a CI failure.)" } else { "" });
    eprintln!("==========================================================\n");
    panic!("NATS unreachable at {url}: {reason}");
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

/// Options with a stream name and subject prefix no other test (or run)
/// uses, so tests never see each other's messages, and the given ack wait.
pub(crate) fn fresh_options(ack_wait: Duration) -> JetStreamOptions {
    let id = uuid::Uuid::now_v7().simple().to_string();
    JetStreamOptions {
        stream: format!("BZTEST_{id}"),
        subject_prefix: format!("bztest.{id}"),
        ack_wait,
        // Leftovers of a crashed run expire on their own.
        max_age: Duration::from_secs(3600),
        ..JetStreamOptions::default()
    }
}

/// A bus on a fresh stream; [`TestBus::cleanup`] deletes the stream, and
/// dropping it un-cleaned (a failed assertion) deletes it from a helper
/// thread.
pub(crate) struct TestBus {
    pub(crate) bus: Arc<JetStreamBus>,
    pub(crate) options: JetStreamOptions,
    cleaned: bool,
}

impl TestBus {
    pub(crate) async fn new(ack_wait: Duration) -> Self {
        Self::with_options(fresh_options(ack_wait)).await
    }

    pub(crate) async fn with_options(options: JetStreamOptions) -> Self {
        let bus = JetStreamBus::connect_with(client().await, options.clone()).await.expect("set up the test stream");
        Self { bus: Arc::new(bus), options, cleaned: false }
    }

    /// A JetStream context on the bus's connection, for direct checks.
    pub(crate) fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.bus.client().clone())
    }

    /// Deletes the test stream (asserting it existed).
    pub(crate) async fn cleanup(mut self) {
        let deleted = self.jetstream().delete_stream(&self.options.stream).await.expect("delete the test stream");
        assert!(deleted.success, "the test stream was deleted");
        self.cleaned = true;
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let stream = self.options.stream.clone();
        // Drop can't await; a helper thread with its own runtime can.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let client = async_nats::connect(nats_url()).await.ok()?;
                async_nats::jetstream::new(client).delete_stream(&stream).await.ok()
            })
        })
        .join();
    }
}
