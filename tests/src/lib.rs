//! The end-to-end harness: start the real `bazaar` binary on a temporary
//! data dir and free ports, talk to it over HTTP, stop it with SIGTERM.
//!
//! # Finding the binary
//! Cargo hands `CARGO_BIN_EXE_<name>` only to the integration tests of the
//! package that owns the binary, and a (dev-)dependency on that package
//! builds its library, not its binaries. So the harness builds the binary
//! itself, once per test process: `cargo build -p bazaar --bin bazaar` in
//! the profile the tests were built with, reading the executable's path from
//! Cargo's JSON messages (what `escargot` does). `BAZAAR_BIN=/path/to/bazaar`
//! skips the build (CI that built a release binary already).
//!
//! # Processes
//! A [`Server`] owns its child: stdout is read for the `http listening on
//! <url>` line, stderr (the logs) goes to `server.log` in the data dir, and
//! dropping the [`Server`] (a failed assertion) kills the child and prints
//! the end of that log, so a failure shows what the server was doing.
//!
//! # Example
//! A scenario starts a server, talks to it and stops it (`no_run`: it
//! builds and starts the real binary):
//! ```no_run
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use bazaar_e2e::{Options, Server};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let server = Server::start(dir.path(), Options { demo: true, ..Options::default() }).await;
//! let products = server.client().get("/v1/products?limit=1", None).await.expect(200, "search");
//! assert_eq!(products["items"].as_array().map(Vec::len), Some(1));
//! assert!(server.stop().await.success(), "SIGTERM exits 0");
//! # });
//! ```
//! The helpers that need no server run anywhere:
//! ```
//! assert_eq!(
//!     bazaar_e2e::sha256_hex(b"abc"),
//!     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
//! );
//! ```

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// How long a start (including a first-run demo seed) or a graceful stop
/// may take before the test gives up. Generous: debug builds on a loaded
/// two-core machine are slow, and this guards against hangs only.
pub const PATIENCE: Duration = Duration::from_secs(180);

/// The admin the harness creates through `BAZAAR_ADMIN_EMAIL` / `_PASSWORD`.
pub const ADMIN_EMAIL: &str = "root@e2e.test";
/// That admin's password.
pub const ADMIN_PASSWORD: &str = "e2e-admin-password";

/// The `bazaar` binary under test (built on first use; see the crate docs).
///
/// # Panics
/// When the build fails or Cargo reports no executable.
pub fn bazaar_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| match std::env::var_os("BAZAAR_BIN") {
        Some(path) => PathBuf::from(path),
        None => build_bazaar(),
    })
    .clone()
}

fn build_bazaar() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is inside the workspace");
    let output = std::process::Command::new(cargo)
        .args(["build", "-p", "bazaar", "--bin", "bazaar", "--message-format=json-render-diagnostics"])
        .args(["--profile", &test_profile()])
        .current_dir(workspace)
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run cargo to build the bazaar binary");
    assert!(output.status.success(), "cargo build -p bazaar failed ({})", output.status);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "bazaar")
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported no executable for the bazaar binary")
}

/// The Cargo profile this test executable was built with, read from its
/// path (`target/<dir>/deps/<test>`): `debug` is the `dev` profile.
fn test_profile() -> String {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe.parent().and_then(Path::parent).and_then(Path::file_name).and_then(|d| d.to_str());
    match dir {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    }
}

/// Prepares `command` with the environment every harness process starts
/// from: the harness admin, JSON logs, and none of the developer's own
/// settings (a `DATABASE_URL` from the shell must not leak in). Payments
/// are the sandbox, chosen explicitly: the scenarios run on PostgreSQL and
/// brokers, where there is no default; a test's own `env` may override it.
/// So are the demo logins: the scenarios seed PostgreSQL with `bazaar
/// seed` and sign in as the demo vendor from `bazaar http` replicas.
fn harness_env(command: &mut Command) -> &mut Command {
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "NATS_URL",
        "BAZAAR_HTTP_ADDR",
        "BAZAAR_GRPC_ADDR",
        "BAZAAR_DEMO",
        "BAZAAR_DEMO_LOGINS",
        "BAZAAR_TRUSTED_PROXIES",
        "BAZAAR_FORWARDED_HEADER",
        "BAZAAR_ADVERTISE_ADDR",
        "BAZAAR_GATEWAY_CONFIG",
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
    ] {
        command.env_remove(var);
    }
    command
        .env("BAZAAR_PAYMENTS", "sandbox")
        .env("BAZAAR_DEMO_LOGINS", "true")
        .env("BAZAAR_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("BAZAAR_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("BAZAAR_LOG", "info")
        .env("BAZAAR_LOG_FORMAT", "json")
}

/// Runs a one-shot `bazaar <args>` (`migrate`, `seed`) on `data_dir` to
/// completion; returns `(exit code, stdout, stderr)`.
///
/// # Panics
/// When the binary cannot be run.
pub async fn run_bazaar(data_dir: &Path, args: &[&str], env: Vec<(String, String)>) -> (Option<i32>, String, String) {
    let bin = tokio::task::spawn_blocking(bazaar_bin).await.expect("building the binary panicked");
    let mut command = Command::new(bin);
    let output = harness_env(&mut command)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run bazaar");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

/// How to start a server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Pass `--demo`.
    pub demo: bool,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

/// A running `bazaar serve`.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The data dir it runs on.
    pub data_dir: PathBuf,
    stdout: Arc<Mutex<Vec<String>>>,
    log: PathBuf,
}

impl Server {
    /// Starts `bazaar serve` on `data_dir` with free ports and the harness
    /// admin, and waits for its `http listening on` line.
    ///
    /// # Panics
    /// When it cannot start, exits early or does not listen within [`PATIENCE`].
    pub async fn start(data_dir: &Path, options: Options) -> Self {
        let mut args = vec!["serve", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"];
        if options.demo {
            args.push("--demo");
        }
        Self::start_with(data_dir, &args, options.env, "http listening on ").await
    }

    /// Starts `bazaar <args>` on `data_dir` with the harness admin and
    /// `env`, and waits for the stdout line starting with `ready` (`http
    /// listening on `, `worker listening on `), whose rest is the base URL.
    ///
    /// # Panics
    /// When it cannot start, exits early or is not ready within [`PATIENCE`].
    pub async fn start_with(data_dir: &Path, args: &[&str], env: Vec<(String, String)>, ready: &str) -> Self {
        let bin = tokio::task::spawn_blocking(bazaar_bin).await.expect("building the binary panicked");
        std::fs::create_dir_all(data_dir).expect("create the data dir");
        let log = data_dir.join(format!("{}.log", args.first().copied().unwrap_or("bazaar")));
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("open the log file");
        let mut command = Command::new(bin);
        harness_env(&mut command)
            .args(args)
            .arg("--data-dir")
            .arg(data_dir)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        let mut child = command.spawn().expect("cannot start bazaar");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let collected = lines.clone();
        // Keep reading until the process ends so the pipe never fills up.
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                collected.lock().expect("stdout lines").push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut server =
            Self { child: Some(child), base: String::new(), data_dir: data_dir.to_owned(), stdout: lines, log };
        let found = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = rx.recv().await {
                if let Some(url) = line.strip_prefix(ready) {
                    return Some(url.trim().to_owned());
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(base)) => server.base = base,
            Ok(None) => panic!("bazaar {args:?} exited before printing {ready:?}\n{}", server.log_tail()),
            Err(_) => panic!("bazaar {args:?} did not print {ready:?} within {PATIENCE:?}\n{}", server.log_tail()),
        }
        server
    }

    /// Everything the server printed on stdout so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().expect("stdout lines").clone()
    }

    /// Sends SIGTERM and waits for the process to exit; returns its status.
    ///
    /// # Panics
    /// When it does not exit within [`PATIENCE`].
    pub async fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("a running child");
        let pid = child.id().expect("the child has not been reaped");
        let pid = rustix::process::Pid::from_raw(i32::try_from(pid).expect("pid fits i32")).expect("non-zero pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("send SIGTERM");
        match tokio::time::timeout(PATIENCE, child.wait()).await {
            Ok(status) => status.expect("wait for bazaar serve"),
            Err(_) => {
                let _ = child.start_kill();
                panic!("bazaar serve ignored SIGTERM for {PATIENCE:?}\n{}", self.log_tail());
            }
        }
    }

    /// The server's whole log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- stdout ---\n{}\n--- last lines of {} ---\n{tail}", self.stdout().join("\n"), self.log.display())
    }

    /// A client for this server.
    pub fn client(&self) -> Client {
        Client { http: reqwest::Client::new(), base: self.base.clone() }
    }

    /// A client whose connections leave from `local` (any `127.x.y.z`
    /// reaches a loopback server on Linux). The server's per-IP quota on
    /// the auth routes (5 at once, 10 a minute) would otherwise stop a test
    /// that registers dozens of buyers; each buyer gets its own address.
    ///
    /// # Panics
    /// When the HTTP client cannot be built.
    pub fn client_from(&self, local: std::net::IpAddr) -> Client {
        let http = reqwest::Client::builder().local_address(local).build().expect("build the HTTP client");
        Client { http, base: self.base.clone() }
    }

    /// Kills the process with SIGKILL (`kill -9`: no shutdown, no flush,
    /// leases and unacked deliveries left behind) and reaps it.
    ///
    /// # Panics
    /// When the process cannot be signalled or reaped.
    pub async fn kill(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("a running child");
        child.start_kill().expect("send SIGKILL");
        child.wait().await.expect("reap the killed process")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // Still running: the test failed before stopping it.
            let _ = child.start_kill();
            if std::thread::panicking() {
                eprintln!("{}", self.log_tail());
            }
        }
    }
}

/// A JSON client for one server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

/// A response: status, headers that matter, and the JSON body (`Null` when empty).
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The body as JSON.
    pub body: Value,
}

impl Reply {
    /// The body, after asserting the status.
    ///
    /// # Panics
    /// When the status differs.
    #[track_caller]
    pub fn expect(self, status: u16, what: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "{what}: unexpected status; body: {}", self.body);
        self.body
    }

    /// The error code of an error body (`{"error":{"code":…}}`).
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<no error code>")
    }
}

impl Client {
    /// Sends a request with an optional bearer token, JSON body and extra headers.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_else(|e| panic!("{method} {path}: reading the body: {e}"));
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply { status, body }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::GET, path, token, None, &[]).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.send(Method::POST, path, token, Some(body), &[]).await
    }

    /// The raw bytes of `GET path` (a download), after asserting 200.
    ///
    /// # Panics
    /// When the request fails or the status is not 200.
    pub async fn get_bytes(&self, path: &str) -> Vec<u8> {
        let response = self.http.get(format!("{}{path}", self.base)).send().await.expect("download request");
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.bytes().await.expect("download body").to_vec()
    }

    /// Registers a customer; returns `(user id, access token)`.
    pub async fn register(&self, email: &str, password: &str) -> (String, String) {
        let body = serde_json::json!({ "email": email, "password": password, "name": "E2E Buyer" });
        let reply = self.post("/v1/auth/register", None, &body).await.expect(201, "register");
        (str_of(&reply["user"]["id"]), str_of(&reply["access_token"]))
    }

    /// Logs in; returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let body = serde_json::json!({ "email": email, "password": password });
        let reply = self.post("/v1/auth/login", None, &body).await.expect(200, "login");
        str_of(&reply["access_token"])
    }
}

/// The string at `value` (panics with the JSON when it is not one).
#[track_caller]
pub fn str_of(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("expected a string, got {value}")).to_owned()
}

/// Polls `check` every 50 ms until it returns `Some`, for up to [`PATIENCE`]
/// (what the in-process worker does happens asynchronously).
///
/// # Panics
/// When the condition never holds.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A webhook the sandbox provider would send, signed with the secret from
/// `<data dir>/keys.json`: `(Bazaar-Signature header, raw body)`.
///
/// # Panics
/// When the keys file is missing or malformed.
pub fn signed_webhook(data_dir: &Path, event: &Value) -> (String, Vec<u8>) {
    let keys: Value = serde_json::from_slice(&std::fs::read(data_dir.join("keys.json")).expect("read keys.json"))
        .expect("keys.json is JSON");
    let secret = hex::decode(str_of(&keys["webhook"])).expect("the webhook secret is hex");
    let body = serde_json::to_vec(event).expect("serialize the event");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let header = bazaar_core::payments::webhook::sign(&secret, i64::try_from(now).expect("fits i64"), &body);
    (header, body)
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The purchase steps the scenarios share, over a [`Client`].
pub mod flow {
    use reqwest::Method;
    use serde_json::{Value, json};

    use super::{Client, Reply, eventually};

    /// The first paid, one-time product of `category`, cheapest first.
    pub async fn one_time_product(client: &Client, category: &str) -> Value {
        // No wait: a server lists only once its search index shows what was
        // seeded before it started (`bazaar seed`) or by it (`serve --demo`).
        let path = format!("/v1/products?category={category}&price_min=1&sort=price_asc&limit=100");
        let page = client.get(&path, None).await.expect(200, "browse");
        let items = page["items"].as_array().expect("items");
        assert!(!items.is_empty(), "no paid {category} products in the catalog: {page}");
        for item in items {
            let categories = item["categories"].as_array().expect("categories");
            assert!(categories.iter().any(|c| c == category), "{category} filter returned {item}");
        }
        items.iter().find(|p| p["pricing"]["type"] == "one_time").expect("a one-time product").clone()
    }

    /// `POST /v1/orders` for one product under `Idempotency-Key: key`; returns `(status, body)`.
    pub async fn order(client: &Client, token: &str, product_id: &str, key: &str) -> (u16, Value) {
        let body = json!({ "items": [{ "product_id": product_id }] });
        let reply =
            client.send(Method::POST, "/v1/orders", Some(token), Some(&body), &[("Idempotency-Key", key)]).await;
        (reply.status.as_u16(), reply.body)
    }

    /// `POST /v1/orders/{id}/pay` with a sandbox test card.
    pub async fn pay(client: &Client, token: &str, order_id: &str, method: &str) -> Reply {
        client.post(&format!("/v1/orders/{order_id}/pay"), Some(token), &json!({ "payment_method": method })).await
    }

    /// The caller's licenses.
    pub async fn licenses(client: &Client, token: &str) -> Vec<Value> {
        let page = client.get("/v1/licenses", Some(token)).await.expect(200, "list licenses");
        page["items"].as_array().expect("items").clone()
    }

    /// The license of `order_id`, once the worker has issued it.
    pub async fn license_for(client: &Client, token: &str, order_id: &str) -> Value {
        eventually("the worker to issue the license", || async {
            licenses(client, token).await.into_iter().find(|l| l["order_id"] == order_id)
        })
        .await
    }

    /// `POST /v1/licenses/validate` for `key` on machine `fingerprint`.
    pub async fn validate(client: &Client, key: &str, fingerprint: &str) -> Value {
        client
            .post("/v1/licenses/validate", None, &json!({ "key": key, "fingerprint": fingerprint }))
            .await
            .expect(200, "validate")
    }

    /// `GET /v1/orders/{id}`.
    pub async fn order_status(client: &Client, token: &str, order_id: &str) -> Value {
        client.get(&format!("/v1/orders/{order_id}"), Some(token)).await.expect(200, "get order")
    }

    /// Delivers a sandbox webhook with its `Bazaar-Signature` header.
    pub async fn post_webhook(client: &Client, signature: &str, body: Vec<u8>) -> Reply {
        let body: Value = serde_json::from_slice(&body).expect("webhook body");
        client.send(Method::POST, "/v1/webhooks/sandbox", None, Some(&body), &[("Bazaar-Signature", signature)]).await
    }
}

/// The shared services the scaled-out scenarios run on (PostgreSQL, NATS,
/// Redis), each run isolated: its own PostgreSQL schema, JetStream stream
/// and subject prefix, and Redis key prefix, handed to the `bazaar`
/// processes through `DATABASE_URL`, `BAZAAR_NATS_STREAM`,
/// `BAZAAR_NATS_SUBJECT_PREFIX` and `BAZAAR_REDIS_BUS_PREFIX`.
///
/// A service that cannot be reached fails the test loudly with how to
/// start it, never a silent skip.
pub mod services {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::process::Command;

    /// `BAZAAR_TEST_DATABASE_URL`'s default.
    pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
    /// `BAZAAR_TEST_NATS_URL`'s default.
    pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
    /// `BAZAAR_TEST_REDIS_URL`'s default.
    pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
    /// `BAZAAR_TEST_AMQP_URL`'s default.
    pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

    const START_PG: &str = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";
    const START_NATS: &str = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server";
    const START_REDIS: &str = "redis-server --daemonize yes";
    const START_RABBITMQ: &str = "rabbitmq-server -detached";

    /// Prints how to start `service` and panics.
    pub fn unreachable(service: &str, url: &str, why: &str, start: &str) -> ! {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        eprintln!("\n==================== {service} UNREACHABLE ====================");
        eprintln!("This end-to-end test needs {service} at {url}: {why}");
        eprintln!("Start it with:\n  {start}");
        if ci {
            eprintln!("CI=true: this is a CI failure (the service must be up before the tests).");
        }
        eprintln!("==============================================================\n");
        panic!("{service} unreachable at {url}: {why}");
    }

    /// A name no other run uses: `<prefix>_<nanos hex>_<pid>`.
    pub fn unique(prefix: &str) -> String {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_nanos();
        format!("{prefix}_{nanos:x}_{}", std::process::id())
    }

    /// A schema of its own on the test database (`BAZAAR_TEST_DATABASE_URL`),
    /// queried with `psql`; [`Schema::drop`] removes it.
    #[derive(Debug)]
    pub struct Schema {
        admin_url: String,
        /// The schema's name.
        pub name: String,
    }

    impl Schema {
        /// Creates the schema.
        ///
        /// # Panics
        /// When PostgreSQL cannot be reached.
        pub async fn create() -> Self {
            let admin_url =
                std::env::var("BAZAAR_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
            let name = unique("bazaar_e2e");
            // The extension is database-wide; created in `public` first so the
            // migration's `CREATE EXTENSION IF NOT EXISTS` finds it on the path.
            let schema = Self { admin_url, name };
            // Two runs creating it at once on a fresh database race on the
            // catalog's unique index; the loser finds it there on retry.
            if let Err(why) = schema.try_query("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public").await {
                assert!(why.contains("pg_extension_name_index"), "{why}");
                schema.query("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public").await;
            }
            schema.query(&format!("CREATE SCHEMA {}", schema.name)).await;
            schema
        }

        /// The `DATABASE_URL` that puts every table in this schema.
        pub fn url(&self) -> String {
            let sep = if self.admin_url.contains('?') { '&' } else { '?' };
            format!("{}{sep}options[search_path]={},public", self.admin_url, self.name)
        }

        /// Runs `sql` with this schema first on the search path; returns
        /// psql's unaligned, tuples-only output (`|` between columns).
        ///
        /// # Panics
        /// When psql cannot run or the statement fails.
        pub async fn query(&self, sql: &str) -> String {
            self.try_query(sql).await.unwrap_or_else(|why| unreachable("PostgreSQL", &self.admin_url, &why, START_PG))
        }

        /// [`query`](Self::query), returning psql's complaint instead of
        /// panicking when the statement fails.
        ///
        /// # Panics
        /// When psql cannot run at all.
        pub async fn try_query(&self, sql: &str) -> Result<String, String> {
            let sql = format!("SET search_path TO {}, public; {sql}", self.name);
            let output = Command::new("psql")
                .args([self.admin_url.as_str(), "-v", "ON_ERROR_STOP=1", "-q", "-A", "-t", "-c", &sql])
                .output()
                .await
                .unwrap_or_else(|e| {
                    unreachable("PostgreSQL", &self.admin_url, &format!("cannot run psql: {e}"), START_PG)
                });
            if !output.status.success() {
                return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
            }
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        }

        /// The single number `sql` selects.
        ///
        /// # Panics
        /// When the query fails or returns something else.
        pub async fn count(&self, sql: &str) -> i64 {
            let out = self.query(sql).await;
            out.parse().unwrap_or_else(|_| panic!("{sql}: expected one number, got {out:?}"))
        }

        /// Drops the schema and everything in it.
        pub async fn drop(self) {
            self.query(&format!("DROP SCHEMA {} CASCADE", self.name)).await;
        }
    }

    fn host_of(url: &str, schemes: &[&str]) -> String {
        let rest = schemes.iter().fold(url, |u, s| u.trim_start_matches(s));
        rest.rsplit('@').next().unwrap_or(rest).trim_end_matches('/').to_owned()
    }

    async fn reach(service: &str, url: &str, host: &str, start: &str) -> TcpStream {
        match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(host)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => unreachable(service, url, &e.to_string(), start),
            Err(_) => unreachable(service, url, "no answer within 5 s", start),
        }
    }

    /// NATS (`BAZAAR_TEST_NATS_URL`), checked reachable.
    pub async fn nats_url() -> String {
        let url = std::env::var("BAZAAR_TEST_NATS_URL").unwrap_or_else(|_| DEFAULT_NATS_URL.to_owned());
        reach("NATS", &url, &host_of(&url, &["nats://", "tls://"]), START_NATS).await;
        url
    }

    /// Redis (`BAZAAR_TEST_REDIS_URL`), checked reachable.
    pub async fn redis_url() -> String {
        let url = std::env::var("BAZAAR_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
        reach("Redis", &url, &host_of(&url, &["redis://"]), START_REDIS).await;
        url
    }

    /// RabbitMQ (`BAZAAR_TEST_AMQP_URL`), checked reachable.
    pub async fn amqp_url() -> String {
        let url = std::env::var("BAZAAR_TEST_AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP_URL.to_owned());
        let host = host_of(&url, &["amqp://", "amqps://"]);
        let host = host.split('/').next().unwrap_or(&host).to_owned();
        reach("RabbitMQ", &url, &host, START_RABBITMQ).await;
        url
    }

    /// Runs `rabbitmqctl` with `args`; its output, or why it failed.
    async fn rabbitmqctl(args: &[&str]) -> Result<String, String> {
        let output = Command::new("rabbitmqctl")
            .args(args)
            .output()
            .await
            .map_err(|e| format!("cannot run rabbitmqctl: {e}"))?;
        if !output.status.success() {
            return Err(format!("rabbitmqctl {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Restarts the RabbitMQ broker's application (`rabbitmqctl stop_app`,
    /// a pause of `down`, `start_app`, then `await_startup`): every client
    /// loses its connection and the broker comes back with its durable
    /// queues and their messages.
    ///
    /// # Panics
    /// When rabbitmqctl fails.
    pub async fn restart_rabbitmq(down: Duration) {
        rabbitmqctl(&["stop_app"]).await.unwrap_or_else(|e| panic!("{e}"));
        tokio::time::sleep(down).await;
        rabbitmqctl(&["start_app"]).await.unwrap_or_else(|e| panic!("{e}"));
        rabbitmqctl(&["await_startup"]).await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// The bus a run uses, with its per-run names.
    #[derive(Debug, Clone)]
    pub enum RunBus {
        /// JetStream: a stream and subject prefix of the run's own.
        Nats {
            /// `NATS_URL`.
            url: String,
            /// `BAZAAR_NATS_STREAM`.
            stream: String,
            /// `BAZAAR_NATS_SUBJECT_PREFIX`.
            subject_prefix: String,
        },
        /// Redis Streams under a key prefix of the run's own.
        Redis {
            /// `REDIS_URL`.
            url: String,
            /// `BAZAAR_REDIS_BUS_PREFIX`.
            prefix: String,
        },
        /// RabbitMQ: an exchange and queue prefix of the run's own.
        Rabbit {
            /// `AMQP_URL`.
            url: String,
            /// `BAZAAR_AMQP_EXCHANGE` and `BAZAAR_AMQP_QUEUE_PREFIX`.
            name: String,
        },
    }

    impl RunBus {
        /// JetStream on fresh names.
        pub async fn nats() -> Self {
            let id = unique("E2E");
            Self::Nats { url: nats_url().await, subject_prefix: id.to_lowercase(), stream: id }
        }

        /// Redis Streams under a fresh prefix.
        pub async fn redis() -> Self {
            Self::Redis { url: redis_url().await, prefix: format!("{}:", unique("bazaar-e2e")) }
        }

        /// RabbitMQ under a fresh exchange and queue prefix.
        pub async fn rabbit() -> Self {
            Self::Rabbit { url: amqp_url().await, name: unique("bazaar.e2e") }
        }

        /// The variables that point a `bazaar` process at this bus (and no other).
        pub fn env(&self) -> Vec<(String, String)> {
            let pairs: Vec<(&str, &str)> = match self {
                Self::Nats { url, stream, subject_prefix } => vec![
                    ("NATS_URL", url),
                    ("BAZAAR_NATS_STREAM", stream),
                    ("BAZAAR_NATS_SUBJECT_PREFIX", subject_prefix),
                ],
                Self::Redis { url, prefix } => vec![("REDIS_URL", url), ("BAZAAR_REDIS_BUS_PREFIX", prefix)],
                Self::Rabbit { url, name } => {
                    vec![("AMQP_URL", url), ("BAZAAR_AMQP_EXCHANGE", name), ("BAZAAR_AMQP_QUEUE_PREFIX", name)]
                }
            };
            pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
        }

        /// Deletes the run's JetStream stream, Redis stream key or RabbitMQ
        /// topology, and returns the broker's answer: the JetStream API's
        /// JSON (`"success":true` when the stream existed), Redis's `DEL`
        /// count (`:1` when the key existed) or the RabbitMQ queues deleted
        /// (`<name>.group.…` when groups had been created), or why there is
        /// none. A test can assert on it to prove the processes used the
        /// run's own names.
        pub async fn clean_up(&self) -> String {
            match tokio::time::timeout(Duration::from_secs(5), self.try_clean_up()).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(e)) => format!("clean-up failed: {e}"),
                Err(_) => "clean-up: no answer within 5 s".to_owned(),
            }
        }

        async fn try_clean_up(&self) -> std::io::Result<String> {
            // The brokers' text protocols are one line each; no client crate needed.
            let (host, request) = match self {
                Self::Nats { url, stream, .. } => (
                    host_of(url, &["nats://", "tls://"]),
                    format!(
                        "CONNECT {{\"verbose\":false}}\r\nSUB _INBOX.e2e_clean 1\r\n\
                         PUB $JS.API.STREAM.DELETE.{stream} _INBOX.e2e_clean 0\r\n\r\n"
                    ),
                ),
                Self::Redis { url, prefix } => {
                    let key = format!("{prefix}events");
                    (host_of(url, &["redis://"]), format!("*2\r\n$3\r\nDEL\r\n${}\r\n{key}\r\n", key.len()))
                }
                Self::Rabbit { url, name } => {
                    return Ok(Self::clean_up_rabbit(url, name)
                        .await
                        .unwrap_or_else(|why| format!("clean-up failed: {why}")));
                }
            };
            let mut stream = TcpStream::connect(host).await?;
            stream.write_all(request.as_bytes()).await?;
            // Wait for the answer (the JetStream API's reply, or DEL's count)
            // so the request is processed before the connection closes.
            let mut buf = [0u8; 1024];
            let mut seen = String::new();
            let answered = |seen: &str| {
                let reply = seen.find("MSG _INBOX.e2e_clean").map(|at| &seen[at..]);
                // The reply's JSON payload ends its line, possibly in a later read.
                reply.is_some_and(|r| r.contains("}\r\n")) || seen.contains("-ERR") || seen.starts_with(':')
            };
            while !answered(&seen) {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            Ok(seen)
        }

        /// AMQP cannot list queues, so `rabbitmqctl` names the run's group
        /// queues and the bus deletes them with the rest of its topology.
        async fn clean_up_rabbit(url: &str, name: &str) -> Result<String, String> {
            let listed = rabbitmqctl(&["list_queues", "name", "--quiet", "--no-table-headers"]).await?;
            let group_prefix = format!("{name}.group.");
            let queues: Vec<&str> = listed.lines().map(str::trim).filter(|q| q.starts_with(&group_prefix)).collect();
            let groups: Vec<String> = queues
                .iter()
                .filter_map(|q| q.strip_prefix(&group_prefix))
                .filter(|g| !g.ends_with(".redelivery"))
                .map(str::to_owned)
                .collect();
            let options = bazaar_rabbitmq::RabbitOptions {
                exchange: name.to_owned(),
                queue_prefix: name.to_owned(),
                ..bazaar_rabbitmq::RabbitOptions::default()
            };
            let bus = bazaar_rabbitmq::RabbitBus::connect(url, options).await.map_err(|e| e.to_string())?;
            bus.delete_topology(&groups).await.map_err(|e| e.to_string())?;
            bus.close().await;
            Ok(queues.join("\n"))
        }
    }
}
