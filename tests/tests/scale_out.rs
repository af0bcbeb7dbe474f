//! The scaled-out shape: `bazaar migrate` and `bazaar seed` against
//! PostgreSQL, then `bazaar http` and `bazaar worker` as two processes that
//! share only the database, the data dir's keys and blobs, and NATS
//! JetStream. A purchase over the HTTP process gets its license from the
//! worker process, and a refund revokes it the same way.
//!
//! Needs PostgreSQL (`BAZAAR_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, reached with `psql`) and NATS
//! with JetStream (`BAZAAR_TEST_NATS_URL`, default `nats://127.0.0.1:4222`);
//! each run gets its own PostgreSQL schema. The binaries use the default
//! JetStream stream, so a `bazaar` worker left running against the same NATS
//! would compete for these events.

use std::time::Duration;

use bazaar_e2e::flow::{license_for, one_time_product, order, pay, validate};
use bazaar_e2e::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, eventually, run_bazaar, str_of};
use serde_json::json;
use tokio::process::Command;

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

fn unreachable(service: &str, url: &str, why: &str, start: &str) -> ! {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    eprintln!("\n==================== {service} UNREACHABLE ====================");
    eprintln!("The scale-out end-to-end test needs {service} at {url}: {why}");
    eprintln!("Start it with:\n  {start}");
    if ci {
        eprintln!("CI=true: this is a CI failure (the service must be up before the tests).");
    }
    eprintln!("==============================================================\n");
    panic!("{service} unreachable at {url}: {why}");
}

/// A schema of its own on the test database, dropped by [`Schema::drop`].
struct Schema {
    admin_url: String,
    name: String,
}

impl Schema {
    async fn create() -> Self {
        let admin_url = std::env::var("BAZAAR_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_nanos();
        let name = format!("bazaar_e2e_{:x}_{}", nanos, std::process::id());
        // The extension is database-wide; created in `public` first so the
        // migration's `CREATE EXTENSION IF NOT EXISTS` finds it on the path.
        let sql = format!("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public; CREATE SCHEMA {name};");
        let schema = Self { admin_url, name };
        schema.psql(&sql).await;
        schema
    }

    /// The `DATABASE_URL` that puts every table in this schema.
    fn url(&self) -> String {
        let sep = if self.admin_url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options[search_path]={},public", self.admin_url, self.name)
    }

    async fn psql(&self, sql: &str) {
        let output = Command::new("psql")
            .args([self.admin_url.as_str(), "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
            .output()
            .await
            .unwrap_or_else(|e| unreachable("PostgreSQL", &self.admin_url, &format!("cannot run psql: {e}"), START_PG));
        if !output.status.success() {
            let why = String::from_utf8_lossy(&output.stderr).into_owned();
            unreachable("PostgreSQL", &self.admin_url, why.trim(), START_PG);
        }
    }

    async fn drop(self) {
        self.psql(&format!("DROP SCHEMA {} CASCADE", self.name)).await;
    }
}

const START_PG: &str = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";

async fn nats_url() -> String {
    let url = std::env::var("BAZAAR_TEST_NATS_URL").unwrap_or_else(|_| DEFAULT_NATS_URL.to_owned());
    let host = url.trim_start_matches("nats://").trim_start_matches("tls://").to_owned();
    match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(&host)).await {
        Ok(Ok(_)) => url,
        Ok(Err(e)) => unreachable("NATS", &url, &e.to_string(), START_NATS),
        Err(_) => unreachable("NATS", &url, "no answer within 5 s", START_NATS),
    }
}

const START_NATS: &str = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_process_and_a_worker_process_complete_a_purchase_over_postgres_and_nats() {
    let nats = nats_url().await;
    let schema = Schema::create().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let env = vec![("DATABASE_URL".to_owned(), schema.url()), ("NATS_URL".to_owned(), nats)];

    let (code, out, err) = run_bazaar(dir.path(), &["migrate"], env.clone()).await;
    assert_eq!(code, Some(0), "migrate: {out}{err}");
    assert_eq!(out.trim(), "database migrated (postgres)");
    let (code, out, err) = run_bazaar(dir.path(), &["seed", "--products", "12"], env.clone()).await;
    assert_eq!(code, Some(0), "seed: {out}{err}");
    assert!(out.contains("demo catalog: 12 products (12 new)"), "{out}");

    let http =
        Server::start_with(dir.path(), &["http", "--http-addr", "127.0.0.1:0"], env.clone(), "http listening on ")
            .await;
    let worker =
        Server::start_with(dir.path(), &["worker", "--http-addr", "127.0.0.1:0"], env, "worker listening on ").await;
    let ready = worker.client().get("/health/ready", None).await;
    assert_eq!(ready.status.as_u16(), 200, "worker readiness: {}", ready.body);

    let client = http.client();
    let (_, token) = client.register("lin@e2e.test", "correct-horse-battery").await;
    let product = str_of(&one_time_product(&client, "customer-support").await["id"]);
    let (status, placed) = order(&client, &token, &product, "scale-1").await;
    assert_eq!(status, 201, "{placed}");
    let order_id = str_of(&placed["id"]);
    assert_eq!(pay(&client, &token, &order_id, "pm_card_visa").await.expect(200, "pay")["status"], "succeeded");

    // Only the worker process runs handlers: the license proves the event
    // went outbox → NATS → worker → PostgreSQL.
    let license = license_for(&client, &token, &order_id).await;
    let (license_id, key) = (str_of(&license["id"]), str_of(&license["key"]));
    client
        .post(&format!("/v1/licenses/{license_id}/activations"), Some(&token), &json!({ "fingerprint": "desk-1" }))
        .await
        .expect(201, "activate");
    assert_eq!(validate(&client, &key, "desk-1").await["code"], "valid");

    let admin = client.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    client.post(&format!("/v1/orders/{order_id}/refund"), Some(&admin), &json!({})).await.expect(200, "refund");
    eventually("the worker process to revoke the license", || async {
        (validate(&client, &key, "desk-1").await["code"] == "revoked").then_some(())
    })
    .await;

    assert_eq!(http.stop().await.code(), Some(0), "http stops gracefully");
    assert_eq!(worker.stop().await.code(), Some(0), "worker stops gracefully");
    schema.drop().await;
}
