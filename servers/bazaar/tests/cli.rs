//! The `bazaar` binary's command-line contract: help and version, exit code
//! 2 with a named setting on bad configuration, the one-shot commands
//! (`migrate`, `seed`, `worker dlq`), and a standalone worker that serves
//! its health route and stops on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_bazaar");

/// The binary with a clean environment (no settings leaking in from the
/// developer's shell) and quiet logs.
fn bazaar(data_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "NATS_URL",
        "AMQP_URL",
        "BAZAAR_AMQP_EXCHANGE",
        "BAZAAR_AMQP_QUEUE_PREFIX",
        "BAZAAR_ADMIN_EMAIL",
        "BAZAAR_ADMIN_PASSWORD",
        "BAZAAR_HTTP_ADDR",
        "BAZAAR_GRPC_ADDR",
        "BAZAAR_DEMO",
        "BAZAAR_DEMO_LOGINS",
        "BAZAAR_TRUSTED_PROXIES",
        "BAZAAR_FORWARDED_HEADER",
        "BAZAAR_PAYMENTS",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "STRIPE_API_BASE",
        "SMTP_URL",
        "SMTP_FROM",
        "S3_BUCKET",
        "S3_REGION",
        "S3_ENDPOINT",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
        "S3_SESSION_TOKEN",
        "S3_PREFIX",
        "BAZAAR_ADVERTISE_ADDR",
        "BAZAAR_GATEWAY_CONFIG",
        "BAZAAR_JWT_SECRET",
    ] {
        command.env_remove(var);
    }
    command.env("BAZAAR_LOG", "warn").env("BAZAAR_DATA_DIR", data_dir).stdin(Stdio::null());
    command
}

fn run(command: &mut Command) -> (Option<i32>, String, String) {
    let Output { status, stdout, stderr } = command.output().expect("run bazaar");
    (status.code(), String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).into_owned())
}

#[test]
fn version_and_help_describe_the_commands_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(bazaar(dir.path()).arg("--version"));
    assert_eq!((code, out.trim()), (Some(0), concat!("bazaar ", env!("CARGO_PKG_VERSION"))));
    let (code, out, _) = run(bazaar(dir.path()).arg("--help"));
    assert_eq!(code, Some(0));
    for word in [
        "serve",
        "http",
        "grpc",
        "gateway",
        "worker",
        "migrate",
        "seed",
        "DATABASE_URL",
        "REDIS_URL",
        "NATS_URL",
        "BAZAAR_PAYMENTS",
        "STRIPE_SECRET_KEY",
        "SMTP_URL",
        "S3_BUCKET",
    ] {
        assert!(out.contains(word), "--help does not mention {word}:\n{out}");
    }
    let (code, out, _) = run(bazaar(dir.path()).args(["serve", "--help"]));
    assert_eq!(code, Some(0));
    assert!(out.contains("--demo") && out.contains("--http-addr") && out.contains("BAZAAR_ADMIN_PASSWORD"), "{out}");
}

/// Arguments, environment, and the start of the expected stderr.
type Case = (&'static [&'static str], &'static [(&'static str, &'static str)], &'static str);

#[test]
fn a_bad_setting_exits_with_code_2_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [Case; 4] = [
        (&["serve"], &[("DATABASE_URL", "mysql://db/bazaar")], "error: invalid DATABASE_URL: "),
        (&["serve", "--http-addr", "localhost"], &[], "error: invalid --http-addr: "),
        (&["http"], &[("BAZAAR_ADMIN_EMAIL", "root@example.com")], "error: invalid BAZAAR_ADMIN_PASSWORD: "),
        (&["migrate"], &[("BAZAAR_LOG_FORMAT", "xml")], "error: invalid BAZAAR_LOG_FORMAT: "),
    ];
    for (args, env, expected) in cases {
        let (code, out, err) = run(bazaar(dir.path()).args(args).envs(env.iter().copied()));
        assert_eq!(code, Some(2), "{args:?} {env:?}: {err}");
        assert!(err.starts_with(expected), "{args:?} {env:?}: stderr was {err:?}");
        assert!(out.is_empty(), "nothing on stdout: {out}");
    }
    assert!(!dir.path().join("bazaar.db").exists(), "nothing is opened before the settings are valid");
}

const STRIPE_KEYS: [(&str, &str); 2] =
    [("STRIPE_SECRET_KEY", "sk_test_cli51SecretValue"), ("STRIPE_WEBHOOK_SECRET", "whsec_cliSigningValue")];

#[test]
fn a_start_outside_the_embedded_setup_must_choose_its_payment_provider() {
    let dir = tempfile::tempdir().unwrap();
    const STRIPE_WITHOUT_WEBHOOK: &[(&str, &str)] =
        &[("BAZAAR_PAYMENTS", "stripe"), ("STRIPE_SECRET_KEY", "sk_test_cli51SecretValue")];
    let cases: [Case; 12] = [
        (&["serve", "--http-addr", "0.0.0.0:0"], &[], "error: invalid BAZAAR_PAYMENTS: must be set"),
        (&["http"], &[("DATABASE_URL", "postgres://u@db:5432/bazaar")], "error: invalid BAZAAR_PAYMENTS: must be set"),
        (&["worker"], &[("NATS_URL", "nats://127.0.0.1:4222")], "error: invalid BAZAAR_PAYMENTS: must be set"),
        (&["grpc", "--grpc-addr", "[::]:0"], &[], "error: invalid BAZAAR_PAYMENTS: must be set"),
        (&["serve"], &[("BAZAAR_PAYMENTS", "paypal")], "error: invalid BAZAAR_PAYMENTS: "),
        (&["serve"], &STRIPE_KEYS, "error: invalid BAZAAR_PAYMENTS: Stripe keys are set"),
        (&["serve"], &[("BAZAAR_PAYMENTS", "stripe")], "error: invalid STRIPE_SECRET_KEY: "),
        (&["serve"], STRIPE_WITHOUT_WEBHOOK, "error: invalid STRIPE_WEBHOOK_SECRET: "),
        (&["serve"], &[("SMTP_URL", "smtp://127.0.0.1:2525")], "error: invalid SMTP_FROM: "),
        (
            &["serve"],
            &[("SMTP_URL", "smtp://mail:99999"), ("SMTP_FROM", "no@example.com")],
            "error: invalid SMTP_URL: ",
        ),
        (&["serve"], &[("S3_BUCKET", "assets")], "error: invalid S3_ACCESS_KEY_ID: "),
        (&["serve"], &[("S3_BUCKET", "assets"), ("S3_ENDPOINT", "minio:9000")], "error: invalid S3_ENDPOINT: "),
    ];
    for (args, env, expected) in cases {
        let (code, out, err) = run(bazaar(dir.path()).args(args).envs(env.iter().copied()));
        assert_eq!(code, Some(2), "{args:?} {env:?}: {err}");
        assert!(err.starts_with(expected), "{args:?} {env:?}: stderr was {err:?}");
        assert!(out.is_empty(), "nothing on stdout: {out}");
        assert!(!err.contains("sk_test_cli51") && !err.contains("whsec_cli"), "a secret in {err}");
    }
    assert!(!dir.path().join("bazaar.db").exists(), "nothing is opened before the settings are valid");
    // Migrating takes no payments: no choice needed there.
    let (code, out, err) = run(bazaar(dir.path()).args(["migrate", "--http-addr", "0.0.0.0:0"]));
    assert_eq!((code, out.trim()), (Some(0), "database migrated (sqlite)"), "{err}");
}

#[test]
fn every_start_logs_the_live_connectors_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let logged = |env: &[(&str, &str)]| {
        let (code, out, err) = run(bazaar(dir.path())
            .args(["worker", "dlq", "list"])
            .env("BAZAAR_LOG", "info")
            .env("BAZAAR_LOG_FORMAT", "json")
            .envs(env.iter().copied()));
        assert_eq!((code, out.trim()), (Some(0), "0 dead letter(s)"), "{err}");
        err
    };
    let err = logged(&[]);
    for field in [r#""payments":"sandbox""#, r#""email":"log""#, r#""blobs":"local""#] {
        assert!(err.contains(field), "{field} not logged: {err}");
    }
    let connectors = [
        ("BAZAAR_PAYMENTS", "stripe"),
        STRIPE_KEYS[0],
        STRIPE_KEYS[1],
        ("STRIPE_API_BASE", "http://127.0.0.1:9"),
        ("SMTP_URL", "smtp://mailer:hunter2@127.0.0.1:9"),
        ("SMTP_FROM", "Bazaar <noreply@example.com>"),
        ("S3_BUCKET", "bazaar-assets"),
        ("S3_ENDPOINT", "http://127.0.0.1:9"),
        ("S3_ACCESS_KEY_ID", "AKIACLITEST"),
        ("S3_SECRET_ACCESS_KEY", "s3cr3tCliValue"),
    ];
    // Nothing is contacted to start: every connector connects on first use.
    let err = logged(&connectors);
    for field in [
        r#""payments":"stripe""#,
        r#""mode":"test""#,
        r#""email":"smtp""#,
        r#""blobs":"s3""#,
        r#""bucket":"bazaar-assets""#,
    ] {
        assert!(err.contains(field), "{field} not logged: {err}");
    }
    for secret in ["sk_test_cli51", "whsec_cli", "hunter2", "s3cr3tCli"] {
        assert!(!err.contains(secret), "{secret} logged: {err}");
    }
    // An explicit sandbox may serve a network address and a shared database.
    let (code, out, err) = run(bazaar(dir.path())
        .args(["worker", "dlq", "list", "--http-addr", "0.0.0.0:0"])
        .env("BAZAAR_PAYMENTS", "sandbox"));
    assert_eq!((code, out.trim()), (Some(0), "0 dead letter(s)"), "{err}");
}

#[test]
fn a_taken_port_fails_the_start_with_the_flag_named() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, err) = run(bazaar(dir.path()).args(["http", "--http-addr", &addr]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!("cannot listen on {addr} (--http-addr)")), "{err}");
}

#[test]
fn migrate_creates_the_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(bazaar(dir.path()).arg("migrate"));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "database migrated (sqlite)");
    assert!(dir.path().join("bazaar.db").exists());
    // Migrating again is a no-op, not an error.
    assert_eq!(run(bazaar(dir.path()).arg("migrate")).0, Some(0));
}

#[test]
fn seeding_tops_the_catalog_up_and_never_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(bazaar(dir.path()).args(["seed", "--products", "3"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("demo catalog: 3 products (3 new)"), "{out}");
    for email in ["admin@demo.bazaar", "vendor@demo.bazaar", "buyer@demo.bazaar", "demo-password"] {
        assert!(out.contains(email), "logins not printed: {out}");
    }
    let (code, out, _) = run(bazaar(dir.path()).args(["seed", "--products", "3"]));
    assert_eq!(code, Some(0));
    assert!(out.contains("demo catalog: 3 products, already seeded"), "{out}");
    let (code, out, _) = run(bazaar(dir.path()).args(["seed", "--products", "5"]));
    assert_eq!(code, Some(0));
    assert!(out.contains("demo catalog: 5 products (2 new)"), "{out}");
}

#[test]
fn demo_logins_are_refused_off_the_embedded_setup_on_loopback_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let exposed = ["seed", "--products", "1", "--http-addr", "0.0.0.0:0"];
    let (code, _, err) = run(bazaar(dir.path()).args(exposed).env("BAZAAR_PAYMENTS", "sandbox"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("BAZAAR_DEMO_LOGINS") && err.contains("public password"), "{err}");
    assert!(!dir.path().join("bazaar.db").exists(), "nothing was created");
    let (code, _, err) =
        run(bazaar(dir.path()).args(["serve", "--demo", "--grpc-addr", "0.0.0.0:0"]).env("BAZAAR_PAYMENTS", "sandbox"));
    assert_eq!(code, Some(2), "{err}");
    let (code, out, err) =
        run(bazaar(dir.path()).args(exposed).env("BAZAAR_PAYMENTS", "sandbox").env("BAZAAR_DEMO_LOGINS", "true"));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("demo catalog: 1 products (1 new)"), "{out}");
}

#[test]
fn dead_letter_commands_work_without_a_running_worker() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(bazaar(dir.path()).args(["worker", "dlq", "list"]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "0 dead letter(s)");
    let (code, out, _) = run(bazaar(dir.path()).args(["worker", "dlq", "replay", "--all"]));
    assert_eq!((code, out.trim()), (Some(0), "0 of 0 replayed successfully"));
    let (code, _, err) = run(bazaar(dir.path()).args(["worker", "dlq", "replay", "not-an-id"]));
    assert_eq!(code, Some(1));
    assert!(err.contains("\"not-an-id\" is not a dead letter id"), "{err}");
    let (code, _, err) =
        run(bazaar(dir.path()).args(["worker", "dlq", "replay", "01a22bc8-528a-75a9-b6b8-ead41cac74b1"]));
    assert_eq!(code, Some(1));
    assert!(err.contains("not found"), "{err}");
}

/// On RabbitMQ, `dlq` also covers the broker's own dead-letter queue: a
/// message a consumer group rejected (it is not an event) is listed after
/// the dispatcher's letters, `replay <message id>` moves it back to the
/// group's queue, and an id that is neither kind is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_commands_cover_the_rabbitmq_dead_letter_queue() {
    use bazaar_core::events::EventSubscriber as _;
    use bazaar_rabbitmq::lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
    use bazaar_rabbitmq::lapin::types::ShortString;
    use bazaar_rabbitmq::lapin::{BasicProperties, Connection, ConnectionProperties};
    use bazaar_rabbitmq::{RabbitBus, RabbitOptions};

    let url = std::env::var("BAZAAR_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    // A topology of the test's own, with the queue arguments the binary
    // declares (RabbitMQ refuses a redeclaration with other arguments).
    let fresh = RabbitOptions::fresh();
    let options =
        RabbitOptions { exchange: fresh.exchange, queue_prefix: fresh.queue_prefix, ..RabbitOptions::default() };
    let bus = RabbitBus::connect(&url, options.clone()).await.unwrap_or_else(|e| {
        panic!("RabbitMQ unreachable at {url} (start it with `rabbitmq-server -detached`, or set BAZAAR_TEST_AMQP_URL): {e}")
    });
    // The worker's group exists, then takes a message that is no event.
    assert!(bus.next("worker", std::time::Duration::ZERO).await.unwrap().is_none());
    let properties = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio::current());
    let connection = Connection::connect(&url, properties).await.expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    channel.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm mode");
    let junk = BasicProperties::default().with_message_id(ShortString::from("junk-1"));
    let publish = channel.basic_publish(&options.exchange, "junk.type", BasicPublishOptions::default(), b"{", junk);
    assert!(publish.await.expect("publish").await.expect("confirm").is_ack());
    let _ = connection.close(200, "done").await;
    assert!(bus.next("worker", std::time::Duration::from_secs(2)).await.unwrap().is_none(), "rejected, not handed out");

    let dir = tempfile::tempdir().unwrap();
    let dlq = |args: &[&str]| {
        let mut command = bazaar(dir.path());
        command
            .args(["worker", "dlq"])
            .args(args)
            .env("AMQP_URL", &url)
            .env("BAZAAR_AMQP_EXCHANGE", &options.exchange)
            .env("BAZAAR_AMQP_QUEUE_PREFIX", &options.queue_prefix)
            .env("BAZAAR_PAYMENTS", "sandbox");
        run(&mut command)
    };
    let queue = bus.group_queue("worker");
    let mut listed = String::new();
    // The broker dead-letters the rejected copy asynchronously.
    for _ in 0..50 {
        let (code, out, err) = dlq(&["list"]);
        assert_eq!(code, Some(0), "{err}");
        listed = out;
        if listed.contains("1 message(s) in the broker's dead-letter queue") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(listed.contains("0 dead letter(s)"), "{listed}");
    assert!(listed.contains(&format!("junk-1  junk.type  queue={queue}  reason=rejected  deaths=1")), "{listed}");

    let (code, _, err) = dlq(&["replay", "nothing-like-it"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("no dead letter and no message of the broker's dead-letter queue is \"nothing-like-it\""),
        "{err}"
    );
    let (code, out, err) = dlq(&["replay", "junk-1"]);
    assert_eq!((code, out.trim()), (Some(0), "junk-1  moved back to its queue"), "{err}");
    let (code, out, _) = dlq(&["list"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("0 message(s) in the broker's dead-letter queue"), "moved out: {out}");
    bus.delete_topology(&["worker".to_owned()]).await.unwrap();
}

/// Environment variables of one case.
type Env<'a> = &'a [(&'a str, &'a str)];

#[test]
fn gateway_and_advertising_mistakes_exit_with_code_2_and_name_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, "[pools.api]\nstrategy = \"fastest\"\n").unwrap();
    let file = file.to_str().unwrap().to_owned();
    let discovering = dir.path().join("discovering.toml");
    std::fs::write(&discovering, "[pools.api]\nservice = \"http\"\n[[routes]]\nprefix = \"/\"\npool = \"api\"\n")
        .unwrap();
    let discovering = discovering.to_str().unwrap().to_owned();
    let secret = "ab".repeat(32);
    let with_secret: &[(&str, &str)] = &[("BAZAAR_JWT_SECRET", &secret)];
    let cases: [(Vec<&str>, Env<'_>, &str); 7] = [
        (vec!["gateway"], &[], "error: invalid --config: the gateway needs a config file"),
        (vec!["gateway", "--config", &file], with_secret, "error: invalid gateway configuration: pools.api.strategy: "),
        (
            vec!["gateway", "--config", &discovering],
            with_secret,
            "error: invalid gateway configuration: pools.api.service: discovery needs a service directory",
        ),
        (vec!["gateway", "--upstream", "api"], with_secret, "error: invalid gateway configuration: upstream: "),
        // No secret: it would verify no token the API issued.
        (
            vec!["gateway", "--upstream", "api=http://127.0.0.1:1"],
            &[],
            "error: invalid BAZAAR_JWT_SECRET: the gateway verifies bearer tokens",
        ),
        (
            vec!["http", "--http-addr", "127.0.0.1:0", "--advertise-addr", "http://127.0.0.1:0"],
            &[],
            "error: invalid --advertise-addr: a replica registers in a shared service directory",
        ),
        (
            vec!["grpc", "--grpc-addr", "127.0.0.1:0", "--advertise-addr", "grpc.local"],
            &[],
            "error: invalid --advertise-addr: ",
        ),
    ];
    for (args, env, expected) in cases {
        let (code, out, err) = run(bazaar(dir.path()).args(&args).envs(env.iter().copied()));
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.starts_with(expected), "{args:?}: stderr was {err:?}");
        assert!(out.is_empty(), "{args:?}: nothing on stdout: {out}");
    }
}

/// Starts `bazaar <args>` and returns it with the address its first stdout
/// line announces after `prefix` (`worker listening on http://`).
fn spawn_listening(dir: &Path, args: &[&str], prefix: &str) -> (std::process::Child, String) {
    let mut child = bazaar(dir).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let Some(line) = BufReader::new(child.stdout.take().unwrap()).lines().next() else {
        panic!("`bazaar {}` printed nothing and ended: {:?}", args.join(" "), child.wait());
    };
    let line = line.unwrap();
    let addr = line.strip_prefix(prefix).unwrap_or_else(|| panic!("{line}")).to_owned();
    (child, addr)
}

/// `GET path` over a fresh connection to `addr`; the raw response.
fn get(addr: &str, path: &str, token: Option<&str>) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// SIGTERM, then the exit code must be 0.
fn stop_gracefully(child: &mut std::process::Child) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0), "graceful stop");
}

#[test]
fn a_gateway_proxies_to_its_upstream_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut api, api_addr) =
        spawn_listening(dir.path(), &["http", "--http-addr", "127.0.0.1:0"], "http listening on http://");
    let api_url = format!("http://{api_addr}");
    // The same data dir: the gateway verifies tokens with the API's keys.json.
    let upstream = format!("api={api_url}");
    let (mut gateway, addr) = spawn_listening(
        dir.path(),
        &["gateway", "--upstream", &upstream, "--http-addr", "127.0.0.1:0"],
        "gateway listening on http://",
    );

    let proxied = get(&addr, "/v1/products?limit=1", None);
    assert!(proxied.starts_with("HTTP/1.1 200"), "{proxied}");
    assert!(proxied.contains("\"items\""), "the API's answer came back: {proxied}");
    let refused = get(&addr, "/v1/orders", Some("not.a.token"));
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(refused.contains("\"code\":\"unauthenticated\""), "{refused}");
    let status = get(&addr, "/gateway/status", None);
    assert!(status.contains(&format!("\"address\":\"{api_url}\"")), "{status}");

    stop_gracefully(&mut gateway);
    stop_gracefully(&mut api);
}

/// A stop sent the moment a server announces itself is not missed: the
/// signal listeners exist before the announcement (a gateway once kept
/// serving after such a SIGTERM, and the test waiting for it hung).
#[test]
fn a_sigterm_right_after_the_announcement_stops_the_process() {
    // The API first: the gateway reads the keys it leaves in the data dir.
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["http", "--http-addr", "127.0.0.1:0"][..],
        &["gateway", "--upstream", "api=http://127.0.0.1:9", "--http-addr", "127.0.0.1:0"][..],
    ] {
        let ready = format!("{} listening on http://", args[0]);
        let (mut child, _) = spawn_listening(dir.path(), args, &ready);
        let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                panic!("`bazaar {}` did not stop on a SIGTERM sent right after it announced itself", args[0]);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(0), "`bazaar {}` stops gracefully", args[0]);
    }
}

#[test]
fn a_standalone_worker_serves_its_health_route_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) =
        spawn_listening(dir.path(), &["worker", "--http-addr", "127.0.0.1:0"], "worker listening on http://");
    let response = get(&addr, "/health/live", None);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    stop_gracefully(&mut child);
}
