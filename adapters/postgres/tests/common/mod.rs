//! Shared set-up for the PostgreSQL integration tests: a fresh schema per
//! test, a synchronous probe of committed events, and a task spawner.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::str::FromStr;

use bazaar_core::events::Event;
use bazaar_postgres::PgStore;
use futures::future::BoxFuture;
use rand::Rng;
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A migrated store in its own schema, dropped with [`Fresh::drop_schema`]
/// (called by the test at the end; a panicking test leaves its schema for
/// inspection, named after the test's random suffix).
pub(crate) struct Fresh {
    pub(crate) store: PgStore,
    schema: String,
    admin: PgConnectOptions,
}

impl Fresh {
    /// Drops the test's schema and everything in it.
    pub(crate) async fn drop_schema(self) {
        self.store.close().await;
        let mut conn = self.admin.connect().await.expect("connect to drop the schema");
        // The schema name is generated here from hex digits only.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {} CASCADE", self.schema)))
            .execute(&mut conn)
            .await
            .expect("drop the test schema");
    }
}

fn unreachable(url: &str, e: impl std::fmt::Display) -> ! {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    eprintln!();
    eprintln!("==================================================================");
    eprintln!(" bazaar-postgres tests need PostgreSQL at {url}");
    eprintln!(" and could not reach it: {e}");
    eprintln!(" Start it:  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start");
    eprintln!(" or point BAZAAR_TEST_DATABASE_URL at a server (trust auth, a database you may use).");
    if ci {
        eprintln!(" CI=true: this is a CI failure (the database must be up before the tests).");
    }
    eprintln!("==================================================================");
    panic!("PostgreSQL unreachable at {url}: {e}");
}

/// A fresh, migrated, empty schema on the test database.
pub(crate) async fn fresh() -> Fresh {
    let url = std::env::var("BAZAAR_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let admin = PgConnectOptions::from_str(&url).unwrap_or_else(|e| unreachable(&url, e));
    let schema = format!("bazaar_test_{:016x}", rand::rng().random::<u64>());
    let mut conn = admin.connect().await.unwrap_or_else(|e| unreachable(&url, e));
    // The extension is database-wide; creating it in `public` up front keeps
    // its operator classes on every test schema's search path. Concurrent
    // test binaries may race to create it, so a failure here is retried by
    // checking that it exists.
    if sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public").execute(&mut conn).await.is_err() {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
            .execute(&mut conn)
            .await
            .expect("create pg_trgm");
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .expect("create the test schema");
    let options = admin.clone().options([("search_path", format!("{schema},public"))]);
    let store = PgStore::connect_with(options).await.unwrap_or_else(|e| unreachable(&url, e));
    store.migrate().await.expect("migrate");
    Fresh { store, schema, admin }
}

/// Every event committed to the outbox so far. The contract suites take a
/// synchronous probe; the query is async, so this blocks the current worker
/// (tests using it run on the multi-threaded runtime).
pub(crate) fn committed(store: &PgStore) -> impl Fn() -> Vec<Event> + '_ {
    move || {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(store.outbox().events()).expect("read the outbox")
        })
    }
}

/// Runs a suite's racing attempt as a task on the multi-threaded runtime.
pub(crate) fn spawn(f: BoxFuture<'static, ()>) {
    tokio::spawn(f);
}
