//! Conversions between core values and SQLite columns, and the mapping of
//! driver errors to core errors.

use bazaar_core::ConflictReason;
use bazaar_core::Error;

/// What failed, for [`Error::Unavailable`] and [`Error::Internal`].
pub(crate) const WHAT: &str = "sqlite";

// The encodings are shared with every storage adapter; the short names
// keep the queries in this crate readable.
pub(crate) use bazaar_core::storage::{
    counter_from_i64 as uint, counter_to_i64 as int, from_json_doc as from_json, timestamp_from_nanos as from_ts,
    timestamp_to_nanos as ts, to_json_doc as to_json,
};

/// SQLite's primary result codes for "someone else holds the lock".
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;

/// Whether `e` is a busy/locked database (worth retrying).
pub(crate) fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            // Extended result codes keep the primary code in the low byte.
            .is_some_and(|c| matches!(c & 0xff, SQLITE_BUSY | SQLITE_LOCKED)),
        _ => false,
    }
}

/// Maps a driver error to a core error (see the crate docs).
pub(crate) fn db_err(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &e
        && matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation)
    {
        return Error::conflict(ConflictReason::Duplicate, unique_message(db.message()));
    }
    Error::unavailable(WHAT, e)
}

/// Turns "UNIQUE constraint failed: users.email" into a message for the
/// caller (a 409 body) that says what was duplicated without exposing the
/// schema.
fn unique_message(driver: &str) -> String {
    let columns = driver.rsplit_once(": ").map_or("", |(_, c)| c);
    let known = match columns {
        "users.email" => Some("e-mail is already registered"),
        "reviews.buyer_id, reviews.product_id" => Some("this buyer already reviewed this product"),
        "licenses.order_id, licenses.product_id" => Some("a license already exists for this order line"),
        "payment_intents.order_id" => Some("this order already has a payment intent"),
        "assets.product_id, assets.file_name, assets.version" => Some("this asset version already exists"),
        _ => None,
    };
    if let Some(message) = known {
        return message.to_owned();
    }
    let entity = match columns.split('.').next().unwrap_or_default() {
        "users" => "user",
        "products" => "product",
        "reviews" => "review",
        "orders" => "order",
        "payment_intents" => "payment intent",
        "licenses" => "license",
        "assets" => "asset",
        "notifications" => "notification",
        "dead_letters" => "dead letter",
        _ => "record",
    };
    format!("{entity} already exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_exactly() {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(from_ts(ts(t).unwrap()), t);
        assert!(ts(chrono::DateTime::<chrono::Utc>::MAX_UTC).is_err());
    }

    #[test]
    fn unique_messages_say_what_was_duplicated_not_the_schema() {
        assert_eq!(unique_message("UNIQUE constraint failed: users.email"), "e-mail is already registered");
        assert_eq!(unique_message("UNIQUE constraint failed: licenses.id"), "license already exists");
        assert_eq!(unique_message("something else"), "record already exists");
    }
}
