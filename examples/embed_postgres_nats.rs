//! Embed the marketplace over PostgreSQL and NATS JetStream: the production
//! backends, wired by hand the way `bazaar-app` wires them.
//!
//! Shows: connecting [`PgStore`] with a `search_path` (so the example's
//! tables sit in a schema of their own), migrating it, opening the
//! [`JetStreamBus`] on a stream and subject prefix of its own, putting it
//! into the ports with [`Ports::with_bus`], and running one sale (see
//! `walkthrough/mod.rs`). Events go outbox → JetStream → the dispatcher's
//! durable consumer; [`Marketplace::pump`] plays the worker here, where a
//! deployment runs `bazaar worker` processes on the same stream.
//!
//! Needs PostgreSQL (`DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`) and NATS with JetStream
//! (`NATS_URL`, default `nats://127.0.0.1:4222`). When either is down it
//! prints the command that starts it and exits non-zero. It creates the
//! schema `bazaar_example_<tag>` and the stream `BAZAAR_EXAMPLE_<tag>` and
//! removes both at the end. Run with
//! `cargo run -p bazaar-examples --example embed_postgres_nats`.

mod services;
mod walkthrough;

use std::str::FromStr;
use std::sync::Arc;

use bazaar_auth::{Argon2Passwords, JwtTokens};
use bazaar_core::entropy::{Entropy, OsEntropy};
use bazaar_core::health::Probe;
use bazaar_core::marketplace::{Bus, Marketplace};
use bazaar_memory::MemoryBlobStore;
use bazaar_nats::{JetStreamBus, JetStreamOptions};
use bazaar_postgres::PgStore;
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

use services::{START_NATS, START_POSTGRES, database_url, nats_url, run_tag, unreachable};
use walkthrough::{Outcome, ensure, sell_one_license};

#[tokio::main]
async fn main() -> Outcome {
    let tag = run_tag();
    let (db_url, bus_url) = (database_url(), nats_url());

    // PostgreSQL: a schema of our own, then a store whose connections put
    // it first on the search path, so the migrations create every table there.
    let admin = PgConnectOptions::from_str(&db_url)?;
    let mut conn = admin.connect().await.map_err(|e| unreachable("PostgreSQL", &db_url, e, START_POSTGRES))?;
    let schema = format!("bazaar_example_{tag}");
    // The search index uses trigram operators; the extension is database-wide.
    sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public").execute(&mut conn).await?;
    // `schema` is built from hex digits only, so it is safe to splice.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut conn).await?;
    let db = PgStore::connect_with(admin.clone().options([("search_path", format!("{schema},public"))])).await?;

    let outcome = run(&db, &bus_url, &tag).await;

    db.close().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&mut conn).await?;
    println!("dropped schema {schema}");
    outcome
}

async fn run(db: &PgStore, bus_url: &str, tag: &str) -> Outcome {
    db.migrate().await?;
    println!("PostgreSQL schema bazaar_example_{tag} migrated");

    // NATS: our own stream and subjects. Two streams on one server may not
    // capture overlapping subjects, so both names differ from the defaults
    // (`BAZAAR_EVENTS`, `bazaar.>`) that a running `bazaar` uses.
    let options = JetStreamOptions {
        stream: format!("BAZAAR_EXAMPLE_{tag}"),
        subject_prefix: format!("bazaar-example.{tag}"),
        ..JetStreamOptions::default()
    };
    let bus = JetStreamBus::connect(bus_url, options.clone())
        .await
        .map_err(|e| unreachable("NATS with JetStream", bus_url, e, START_NATS))?;
    let bus = Arc::new(bus);
    println!("JetStream stream {} on subjects {}.>", options.stream, options.subject_prefix);
    let jetstream = async_nats::jetstream::new(bus.client().clone());

    // The bus's readiness probe joins the database's (`Marketplace::readiness`).
    let ping = bus.clone();
    let probe = Probe::new("bus", move || {
        let bus = ping.clone();
        Box::pin(async move { bus.ping().await })
    });
    let ports = db.ports(Bus::new(bus.clone()).with_probe(probe), Arc::new(MemoryBlobStore::new()));
    let market = Marketplace::builder(ports)
        .passwords(Arc::new(Argon2Passwords::default()))
        .tokens(Arc::new(JwtTokens::new(OsEntropy.bytes32())))
        .build()?;
    for probe in market.readiness().await {
        println!("ready: {} {:?}", probe.name, probe.outcome);
        ensure(probe.outcome.is_ok(), "every backend answers")?;
    }

    let sold = sell_one_license(&market, tag, || async {
        let handled = market.pump().await?;
        println!("  {handled} event deliveries went through JetStream");
        Ok(())
    })
    .await;

    let stream = jetstream.get_stream(&options.stream).await?.info().await?.state.messages;
    println!("the stream holds {stream} events");
    jetstream.delete_stream(&options.stream).await?;
    println!("deleted stream {}", options.stream);
    let license = sold?;
    ensure(stream >= 3, "payment, fulfilment and license events went through the stream")?;
    println!("done: license {} issued over PostgreSQL + NATS", license.id);
    Ok(())
}
