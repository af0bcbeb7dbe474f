//! What each subcommand does, on validated settings.
//!
//! Output contract (scripts and the end-to-end tests read it): stdout gets
//! the few lines a person needs (demo logins, one `<name> listening on
//! <url>` line per listener, results of one-shot commands); logs go to
//! stderr.

use std::sync::Arc;

use anyhow::Context as _;
use bazaar_app::demo::{self, DEMO_LOGINS, DEMO_PASSWORD};
use bazaar_app::edge::{self, Advertisement, GatewaySettings};
use bazaar_app::server::{self, Listeners, Parts};
use bazaar_app::shutdown::Shutdown;
use bazaar_app::{App, Config, SearchIndexKind};
use bazaar_core::clock::{Clock, SystemClock};
use bazaar_core::marketplace::Marketplace;
use bazaar_rabbitmq::RabbitBus;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{
    Command, DlqAction, GatewayArgs, GlobalArgs, ReplicaArgs, SeedArgs, ServeArgs, WorkerArgs, WorkerCommand,
};

/// Runs `command` with `config` until it is done or, for servers, until
/// SIGINT/SIGTERM.
///
/// # Errors
/// What stopped the command, with context.
pub async fn execute(command: Command, global: &GlobalArgs, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(args, config).await,
        Command::Http(args) => http(args, config).await,
        Command::Grpc(args) => grpc(args, config).await,
        Command::Gateway(args) => gateway(args, global, config).await,
        Command::Worker(args) => worker(args, global, config).await,
        Command::Migrate => migrate(config).await,
        Command::Seed(args) => seed(args, config).await,
    }
}

/// Commands that answer no catalog searches (the worker, `seed`, `worker
/// dlq`) keep no search read model: it would only cost a rebuild.
fn without_search_index(mut config: Config) -> Config {
    config.search_index = SearchIndexKind::Store;
    config
}

async fn build(config: Config) -> anyhow::Result<App> {
    tracing::info!(?config, "starting");
    App::build(config).await.context("cannot open the marketplace")
}

fn say(line: &str) {
    // stdout is line-buffered, so each line reaches a pipe reader at once.
    println!("{line}");
}

async fn serve(args: ServeArgs, config: Config) -> anyhow::Result<()> {
    let listeners = Listeners {
        http: Some(Listeners::bind("--http-addr", config.http_addr).await?),
        grpc: Some(Listeners::bind("--grpc-addr", config.grpc_addr).await?),
    };
    let app = build(config).await?;
    if args.demo {
        seed_with_progress(&app.market, demo::DEFAULT_DEMO_PRODUCTS).await?;
        // Listening starts only once the seeded catalog is searchable.
        app.refresh_search().context("cannot refresh the search index")?;
        print_logins();
    }
    let parts = Parts {
        http: true,
        worker: true,
        consumers: args.consumers.into(),
        worker_http: false,
        trusted_proxies: app.config.trusted_proxies.clone(),
    };
    start(app, listeners, parts, "http").await
}

async fn http(args: ReplicaArgs, config: Config) -> anyhow::Result<()> {
    let listener = Listeners::bind("--http-addr", config.http_addr).await?;
    let advertised = advertisement(&args, &config, edge::HTTP_SERVICE, &listener).await?;
    let listeners = Listeners { http: Some(listener), grpc: None };
    let app = build(config).await?;
    let parts = Parts {
        http: true,
        worker: false,
        consumers: 0,
        worker_http: false,
        trusted_proxies: app.config.trusted_proxies.clone(),
    };
    start_advertised(app, listeners, parts, "http", advertised).await
}

async fn grpc(args: ReplicaArgs, config: Config) -> anyhow::Result<()> {
    let listener = Listeners::bind("--grpc-addr", config.grpc_addr).await?;
    let advertised = advertisement(&args, &config, edge::GRPC_SERVICE, &listener).await?;
    let listeners = Listeners { http: None, grpc: Some(listener) };
    let app = build(config).await?;
    let parts = Parts {
        http: false,
        worker: false,
        consumers: 0,
        worker_http: false,
        trusted_proxies: app.config.trusted_proxies.clone(),
    };
    start_advertised(app, listeners, parts, "http", advertised).await
}

/// The replica's directory entry, when `--advertise-addr` asks for one.
async fn advertisement(
    args: &ReplicaArgs,
    config: &Config,
    service: &str,
    listener: &tokio::net::TcpListener,
) -> anyhow::Result<Option<Advertisement>> {
    let Some(url) = &args.advertise_addr else { return Ok(None) };
    let bound = listener.local_addr().context("the listener has no address")?;
    Ok(Some(Advertisement::connect(config, service, url, bound).await?))
}

async fn gateway(args: GatewayArgs, global: &GlobalArgs, config: Config) -> anyhow::Result<()> {
    let settings = GatewaySettings {
        config_file: args.config,
        upstreams: args.upstream,
        // Only an address the user gave overrides the file's.
        http_addr: global.http_addr.as_ref().map(|_| config.http_addr.to_string()),
        data_dir: config.data_dir.clone(),
        nats_url: config.nats_url.clone(),
        redis_url: config.redis_url.clone(),
    };
    let gateway = settings.build().await?;
    let listener = Listeners::bind("--http-addr", gateway.config().server.http_addr).await?;
    tracing::info!(
        pools = ?gateway.config().pools.keys().collect::<Vec<_>>(),
        routes = gateway.config().routes.len(),
        // The directory is opened only for pools that name a service.
        discovery = gateway
            .config()
            .discovered_services()
            .next()
            .and_then(|_| edge::directory_kind(config.nats_url.as_deref(), config.redis_url.as_deref()))
            .unwrap_or("none"),
        "gateway configured"
    );
    // Listening for stop signals before announcing: a stop sent right after
    // the announcement must not be missed.
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    say(&format!("gateway listening on http://{}", listener.local_addr().context("the listener has no address")?));
    bazaar_gateway::serve(listener, gateway, shutdown.wait()).await.context("the gateway failed")?;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn worker(args: WorkerArgs, global: &GlobalArgs, config: Config) -> anyhow::Result<()> {
    if let Some(WorkerCommand::Dlq { action }) = args.command {
        let app = build(without_search_index(config)).await?;
        return dlq(&app.market, app.broker_dead_letters.as_deref(), action).await;
    }
    // The worker serves health and metrics only when asked: by default it
    // must not take the HTTP API's port on the same machine.
    let http = match global.http_addr {
        Some(_) => Some(Listeners::bind("--http-addr", config.http_addr).await?),
        None => None,
    };
    let app = build(without_search_index(config)).await?;
    if http.is_none() {
        say("worker running");
    }
    let parts = Parts {
        http: false,
        worker: true,
        consumers: args.consumers.into(),
        worker_http: true,
        trusted_proxies: app.config.trusted_proxies.clone(),
    };
    start(app, Listeners { http, grpc: None }, parts, "worker").await
}

/// Serves `app` (kept alive until the servers stop: it owns the search
/// read model's consumer).
async fn start(app: App, listeners: Listeners, parts: Parts, http_name: &str) -> anyhow::Result<()> {
    start_advertised(app, listeners, parts, http_name, None).await
}

/// [`start`], keeping `advertised` in the service directory while serving:
/// registered before the first request can arrive, removed as soon as the
/// stop begins (so gateways stop routing here while in-flight requests
/// drain).
async fn start_advertised(
    app: App,
    listeners: Listeners,
    parts: Parts,
    http_name: &str,
    advertised: Option<Advertisement>,
) -> anyhow::Result<()> {
    // Listening for stop signals before announcing (see `gateway`).
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    for line in listeners.announce(http_name) {
        say(&line);
    }
    let advertising = match advertised {
        Some(advertised) => {
            Some(advertised.start(shutdown.wait()).await.context("cannot register in the service directory")?)
        }
        None => None,
    };
    let served = server::run(app.market.clone(), listeners, parts, shutdown.clone()).await;
    // Whatever stopped the servers, the entry goes too.
    shutdown.trigger();
    if let Some(advertising) = advertising {
        match advertising.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not deregister from the service directory (its TTL will)"),
            Err(e) => tracing::warn!(error = %e, "the service directory task failed"),
        }
    }
    served?;
    app.close().await;
    drop(app);
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    bazaar_app::ports::open(&config.database, &config.data_dir, clock).await.context("cannot migrate the database")?;
    say(&format!("database migrated ({})", config.database.engine()));
    Ok(())
}

async fn seed(args: SeedArgs, config: Config) -> anyhow::Result<()> {
    let app = build(without_search_index(config)).await?;
    let market = &app.market;
    seed_with_progress(market, args.products).await?;
    // Deliver what seeding caused (product.approved notifications) now
    // rather than whenever a worker next runs.
    let delivered = deliver(market).await.context("cannot deliver the seeding events")?;
    tracing::info!(delivered, "seeding events delivered");
    print_logins();
    Ok(())
}

/// Deliveries settled per dispatcher call while delivering a seed's events:
/// one inbox read, one inbox write, one notification batch and one ack each.
const SEED_DISPATCH_BATCH: usize = 256;

/// Relays the outbox and dispatches the bus until nothing is due, like
/// [`Marketplace::pump`] but in batches: a seed leaves one event per product.
async fn deliver(market: &Marketplace) -> bazaar_core::Result<usize> {
    let mut delivered = 0;
    loop {
        let relayed = market.relay.drain(Marketplace::RELAY_BATCH).await?;
        let settled = market.dispatcher.process_batch(Marketplace::CONSUMER, SEED_DISPATCH_BATCH).await?.len();
        delivered += settled;
        if relayed == 0 && settled == 0 {
            return Ok(delivered);
        }
    }
}

async fn seed_with_progress(market: &Marketplace, products: usize) -> anyhow::Result<()> {
    let bar = ProgressBar::new(products as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
            .context("progress bar template")?
            .progress_chars("=> "),
    );
    bar.set_message("seeding demo catalog");
    let report = demo::seed_demo(market, products, |ready| bar.set_position(ready as u64))
        .await
        .context("cannot seed the demo catalog")?;
    bar.finish_and_clear();
    let line = if report.created + report.finished == 0 {
        format!("demo catalog: {} products, already seeded", report.total)
    } else {
        format!(
            "demo catalog: {} products ({} new{})",
            report.total,
            report.created,
            if report.finished > 0 { format!(", {} finished", report.finished) } else { String::new() }
        )
    };
    say(&line);
    Ok(())
}

fn print_logins() {
    say(&format!("demo logins (password for each: {DEMO_PASSWORD}):"));
    for login in DEMO_LOGINS {
        say(&format!("  {:<9} {}", login.role.as_str(), login.email));
    }
}

/// `bazaar worker dlq`: the dispatcher's dead letters (handlers that failed
/// every retry), and on RabbitMQ also the broker's dead-letter queue
/// (messages the broker gave up on), which `replay` sends back to the queue
/// they died in.
async fn dlq(market: &Arc<Marketplace>, broker: Option<&RabbitBus>, action: DlqAction) -> anyhow::Result<()> {
    match action {
        DlqAction::List { limit } => {
            let page = bazaar_worker::dlq_list(market, 0, limit).await.context("cannot list dead letters")?;
            say(&format!(
                "{} dead letter(s){}",
                page.total,
                if page.total > page.items.len() as u64 {
                    format!(", the oldest {} shown", page.items.len())
                } else {
                    String::new()
                }
            ));
            for letter in page.items {
                say(&format!(
                    "{}  {}  event={}  consumer={}  attempts={}  failed_at={}  error={}",
                    letter.id,
                    letter.event.event_type,
                    letter.event.id,
                    letter.consumer,
                    letter.attempts,
                    letter.failed_at.to_rfc3339(),
                    letter.error
                ));
            }
            if let Some(broker) = broker {
                let dead = broker.list_dead(limit).await.context("cannot list the broker's dead-letter queue")?;
                say(&format!(
                    "{} message(s) in the broker's dead-letter queue (oldest first, at most {limit})",
                    dead.len()
                ));
                for message in dead {
                    say(&format!(
                        "{}  {}  queue={}  reason={}  deaths={}",
                        message.id,
                        message.routing_key,
                        message.queue.as_deref().unwrap_or("-"),
                        message.reason.as_deref().unwrap_or("-"),
                        message.deaths
                    ));
                }
            }
        }
        DlqAction::Replay { id: Some(id), all: false } => match (id.parse(), broker) {
            (Ok(letter), _) => {
                let replay =
                    bazaar_worker::dlq_replay(market, letter).await.context("cannot replay the dead letter")?;
                say(&describe(&replay));
            }
            (Err(_), Some(broker)) => {
                let moved = broker.replay_dead(Some(&id)).await.context("cannot replay the broker's message")?;
                if moved == 0 {
                    anyhow::bail!(
                        "no dead letter and no message of the broker's dead-letter queue is {id:?} (see `dlq list`)"
                    );
                }
                say(&format!("{id}  moved back to its queue"));
            }
            (Err(_), None) => anyhow::bail!("{id:?} is not a dead letter id (see `dlq list`)"),
        },
        DlqAction::Replay { .. } => {
            let replays = bazaar_worker::dlq_replay_all(market).await.context("cannot replay dead letters")?;
            let completed = replays.iter().filter(|r| r.result == bazaar_worker::ReplayResult::Completed).count();
            for replay in &replays {
                say(&describe(replay));
            }
            say(&format!("{completed} of {} replayed successfully", replays.len()));
            if let Some(broker) = broker {
                let moved = broker.replay_dead(None).await.context("cannot replay the broker's dead-letter queue")?;
                say(&format!("{moved} message(s) of the broker's dead-letter queue moved back to their queues"));
            }
        }
    }
    Ok(())
}

fn describe(replay: &bazaar_worker::Replay) -> String {
    let result = match &replay.result {
        bazaar_worker::ReplayResult::Completed => "completed".to_owned(),
        bazaar_worker::ReplayResult::StillFailing { attempts, error } => {
            format!("still failing (attempts={attempts}): {error}")
        }
        bazaar_worker::ReplayResult::Gone => "gone (replayed elsewhere)".to_owned(),
    };
    format!("{}  {}  event={}  {result}", replay.id, replay.event_type, replay.event_id)
}
