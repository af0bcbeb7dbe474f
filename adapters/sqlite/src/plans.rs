//! Checks that every query the adapters make is served by an index: the
//! query planner must never report a full scan of one of our tables.

use sqlx::Row;

use crate::store::SqliteStore;
use crate::{
    assets, catalog, events, idempotency, licensing, notifications, orders, outbox, payments, users, webhooks,
};

/// Every statement the adapters run (search included: its scans must be of
/// the matched set through an index, never of a whole table).
const QUERIES: &[&str] = &[
    users::INSERT,
    users::GET,
    users::BY_EMAIL,
    catalog::INSERT_PRODUCT,
    catalog::PRODUCT_VERSION,
    catalog::UPDATE_PRODUCT,
    catalog::DELETE_CATEGORIES,
    catalog::INSERT_CATEGORY,
    catalog::INSERT_FTS,
    catalog::UPDATE_FTS,
    catalog::GET_PRODUCT,
    catalog::COUNT_BY_VENDOR,
    catalog::LIST_BY_VENDOR,
    catalog::RECORD_DOWNLOAD,
    catalog::ADD_RATING,
    catalog::INSERT_REVIEW,
    catalog::COUNT_REVIEWS,
    catalog::LIST_REVIEWS,
    catalog::TEXT_PAGE,
    catalog::TEXT_COUNTS,
    catalog::BROWSE_NEWEST,
    catalog::BROWSE_PRICE_ASC,
    catalog::BROWSE_PRICE_DESC,
    catalog::BROWSE_RATING,
    catalog::BROWSE_DOWNLOADS,
    catalog::BROWSE_COUNTS,
    catalog::BROWSE_COUNTS_IN_CATEGORY,
    orders::INSERT,
    orders::GET,
    orders::COUNT_FOR_BUYER,
    orders::LIST_FOR_BUYER,
    orders::SET_STATUS,
    payments::INSERT,
    payments::GET,
    payments::BY_ORDER,
    payments::BY_PROVIDER_REF,
    payments::VERSION,
    payments::UPDATE,
    payments::RECORD_WEBHOOK,
    idempotency::GET,
    idempotency::START,
    idempotency::COMPLETE,
    idempotency::ABANDON,
    licensing::INSERT,
    licensing::GET,
    licensing::BY_KEY,
    licensing::FOR_BUYER,
    licensing::FOR_ORDER,
    licensing::SAVE,
    assets::INSERT,
    assets::GET,
    assets::FOR_PRODUCT,
    assets::SET_DOC,
    assets::MAX_VERSION,
    outbox::APPEND,
    outbox::CLAIM,
    outbox::MARK_PUBLISHED,
    outbox::RELEASE,
    events::MARK,
    events::IS_PROCESSED,
    events::FIND_LETTER,
    events::INSERT_LETTER,
    events::UPDATE_LETTER,
    events::LIST_LETTERS,
    events::GET_LETTER,
    events::REMOVE_LETTER,
    notifications::BY_DEDUP_KEY,
    notifications::INSERT,
    notifications::GET,
    notifications::COUNT_FOR_USER,
    notifications::LIST_FOR_USER,
    notifications::LIST_FOR_ORDER,
    notifications::SET_DOC,
    notifications::GET_PREFERENCES,
    notifications::SET_PREFERENCES,
    webhooks::INSERT_ENDPOINT,
    webhooks::GET_ENDPOINT,
    webhooks::LIST_ENDPOINTS,
    webhooks::UPDATE_ENDPOINT,
    webhooks::DELETE_ENDPOINT,
    webhooks::ENQUEUE,
    webhooks::CLAIM,
    webhooks::RECORD,
    webhooks::GET_DELIVERY,
    webhooks::COUNT_DELIVERIES,
    webhooks::LIST_DELIVERIES,
    webhooks::COUNT_DELIVERIES_WITH_STATUS,
    webhooks::LIST_DELIVERIES_WITH_STATUS,
    webhooks::REPLAY,
];

// Left out on purpose: `outbox::ALL_EVENTS` (the operator/test view of the
// whole outbox) and `events::COUNT_LETTERS` (a count of every dead letter)
// read every row by definition.

const TABLES: &[&str] = &[
    "outbox",
    "users",
    "products",
    "product_categories",
    "reviews",
    "orders",
    "payment_intents",
    "webhook_inbox",
    "idempotency_keys",
    "licenses",
    "assets",
    "event_inbox",
    "dead_letters",
    "notifications",
    "notification_preferences",
    "webhook_endpoints",
    "webhook_deliveries",
    // The aliases the search queries give `products` and `product_categories`
    // (the planner reports a table under its alias).
    "p",
    "c",
    // The aliases the webhook claim gives `webhook_deliveries`.
    "d",
    "e",
];

/// The highest `?N` placeholder in `sql`.
fn params(sql: &str) -> usize {
    sql.split('?')
        .skip(1)
        .filter_map(|s| s.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// A plan line that scans a whole table of ours: `SCAN t` or `SCAN t AS x`
/// without an index. `SCAN … USING [COVERING] INDEX` walks an index.
fn full_scan(detail: &str) -> Option<&str> {
    let rest = detail.strip_prefix("SCAN ")?;
    let table = rest.split_whitespace().next()?;
    (TABLES.contains(&table) && !rest.contains("USING")).then_some(table)
}

#[tokio::test]
async fn every_query_uses_an_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("plans.db")).await.expect("open");
    store.migrate().await.expect("migrate");
    let mut offenders = Vec::new();
    for sql in QUERIES {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(explain));
        for _ in 0..params(sql) {
            query = query.bind(Option::<String>::None);
        }
        let rows = query.fetch_all(store.pool()).await.unwrap_or_else(|e| panic!("cannot plan {sql}: {e}"));
        for row in rows {
            let detail: String = row.get(3);
            if let Some(table) = full_scan(&detail) {
                offenders.push(format!("{table}: {detail}\n    in {sql}"));
            }
        }
    }
    assert!(offenders.is_empty(), "queries without an index:\n{}", offenders.join("\n"));
}

#[test]
fn plan_lines_are_classified() {
    assert_eq!(full_scan("SCAN orders"), Some("orders"));
    assert_eq!(full_scan("SCAN p"), Some("p"));
    assert_eq!(full_scan("SCAN t VIRTUAL TABLE INDEX 0:"), None);
    assert_eq!(full_scan("SCAN orders USING INDEX orders_by_buyer"), None);
    assert_eq!(full_scan("SEARCH users USING INDEX sqlite_autoindex_users_2 (email=?)"), None);
    assert_eq!(params("a = ?1 AND b = ?12"), 12);
}
