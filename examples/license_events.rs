//! Consume the marketplace's events in a service of your own: a NATS
//! JetStream subscriber that reacts to `license.issued` (say, to send the
//! buyer an onboarding e-mail or provision their account).
//!
//! Shows: the marketplace publishes every event from its outbox to the
//! JetStream stream, on `<prefix>.<event type>` (`bazaar.license.issued`
//! with the defaults), as a CloudEvents JSON envelope. Your service needs
//! no Bazaar process of its own: it opens its own `async-nats` connection,
//! creates a durable pull consumer filtered to `<prefix>.license.issued` on
//! the marketplace's stream, decodes each message with
//! [`Event::from_json`] and [`Event::decode`] into a [`LicenseIssued`], and
//! acks it once handled. A durable consumer picks up where it left off
//! after a restart and gets each event again until it acks it; a plain
//! `client.subscribe(subject)` would also see the events, but only while it
//! is connected. Delivery is at least once, so the handler deduplicates on
//! the event id.
//!
//! To have events to consume, the example also runs a marketplace (SQLite
//! in a temporary directory, events on NATS) and sells one license through
//! it (see `walkthrough/mod.rs`).
//!
//! Needs NATS with JetStream (`NATS_URL`, default `nats://127.0.0.1:4222`);
//! when it is down the example prints the command that starts it and exits
//! non-zero. It creates the stream `BAZAAR_EXAMPLE_<tag>` and deletes it at
//! the end. Run with `cargo run -p bazaar-examples --example license_events`.

mod services;
mod walkthrough;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use bazaar_auth::{Argon2Passwords, JwtTokens};
use bazaar_core::entropy::{Entropy, OsEntropy};
use bazaar_core::events::{Event, LicenseIssued};
use bazaar_core::ids::EventId;
use bazaar_core::marketplace::{Bus, Marketplace};
use bazaar_memory::MemoryBlobStore;
use bazaar_nats::{JetStreamBus, JetStreamOptions};
use bazaar_sqlite::SqliteStore;
use futures::StreamExt;
use tokio::sync::mpsc;

use services::{START_NATS, nats_url, run_tag, unreachable};
use walkthrough::{Outcome, ensure, sell_one_license};

/// Your service: follows `license.issued` on `stream` and reports each new
/// license on `handled` (where a real one would send the e-mail).
async fn license_subscriber(
    url: String,
    stream: String,
    subject: String,
    handled: mpsc::Sender<LicenseIssued>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let client = async_nats::connect(&url).await?;
    let jetstream = async_nats::jetstream::new(client);
    let consumer: PullConsumer = jetstream
        .get_stream(&stream)
        .await?
        .get_or_create_consumer(
            "onboarding-mailer",
            pull::Config {
                durable_name: Some("onboarding-mailer".into()),
                filter_subject: subject,
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await?;
    let mut messages = consumer.messages().await?;
    // Redeliveries after a crash between handling and acking land here.
    let mut seen: HashSet<EventId> = HashSet::new();
    while let Some(message) = messages.next().await {
        let message = message?;
        let event = Event::from_json(&message.payload)?;
        if seen.insert(event.id) {
            let issued: LicenseIssued = event.decode()?;
            println!(
                "  [onboarding-mailer] {} on {}: license {} for buyer {}",
                event.event_type, message.subject, issued.license_id, issued.buyer_id
            );
            if handled.send(issued).await.is_err() {
                break;
            }
        }
        message.ack().await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Outcome {
    let tag = run_tag();
    let url = nats_url();
    let options = JetStreamOptions {
        stream: format!("BAZAAR_EXAMPLE_{tag}"),
        subject_prefix: format!("bazaar-example.{tag}"),
        ..JetStreamOptions::default()
    };
    let bus = JetStreamBus::connect(&url, options.clone())
        .await
        .map_err(|e| unreachable("NATS with JetStream", &url, e, START_NATS))?;
    let bus = Arc::new(bus);
    let jetstream = async_nats::jetstream::new(bus.client().clone());
    println!("marketplace events go to stream {} on {}.>", options.stream, options.subject_prefix);

    let outcome = run(&url, bus, &options, &tag).await;
    jetstream.delete_stream(&options.stream).await?;
    println!("deleted stream {}", options.stream);
    outcome
}

async fn run(url: &str, bus: Arc<JetStreamBus>, options: &JetStreamOptions, tag: &str) -> Outcome {
    let subject = format!("{}.license.issued", options.subject_prefix);
    let (handled, mut licenses) = mpsc::channel(8);
    println!("your service follows {subject}");
    let subscriber = tokio::spawn(license_subscriber(url.to_owned(), options.stream.clone(), subject, handled));

    let dir = tempfile::tempdir()?;
    let db = SqliteStore::open(&dir.path().join("market.db")).await?;
    db.migrate().await?;
    let market = Marketplace::builder(db.ports(Bus::new(bus), Arc::new(MemoryBlobStore::new())))
        .passwords(Arc::new(Argon2Passwords::default()))
        .tokens(Arc::new(JwtTokens::new(OsEntropy.bytes32())))
        .build()?;
    let license = sell_one_license(&market, tag, || async {
        market.pump().await?;
        Ok(())
    })
    .await?;

    let received = tokio::time::timeout(Duration::from_secs(10), licenses.recv()).await;
    let issued = match received {
        Ok(Some(issued)) => issued,
        // The service ended on its own: say why.
        Ok(None) => return Err(format!("the subscriber stopped: {:?}", subscriber.await).into()),
        Err(_) => {
            subscriber.abort();
            return Err("no license.issued event within 10 s".into());
        }
    };
    subscriber.abort();
    ensure(issued.license_id == license.id, "the event names the license the marketplace issued")?;
    ensure(issued.buyer_id == license.buyer_id, "and its buyer")?;
    println!("done: your service received license.issued for license {}", license.id);
    Ok(())
}
