//! Conversions between core values and PostgreSQL columns, and the mapping
//! of driver errors to core errors.

use bazaar_core::ConflictReason;
use bazaar_core::Error;

/// What failed, for [`Error::Unavailable`] and [`Error::Internal`].
pub(crate) const WHAT: &str = "postgres";

// The encodings are shared with every storage adapter; the short names
// keep the queries in this crate readable.
pub(crate) use bazaar_core::storage::{
    counter_from_i64 as uint, counter_to_i64 as int, from_json_doc as from_json, timestamp_from_nanos as from_ts,
    timestamp_to_nanos as ts, to_json_doc as to_json,
};

/// SQLSTATE of a unique violation.
const UNIQUE_VIOLATION: &str = "23505";
/// SQLSTATE of a serialization failure.
const SERIALIZATION_FAILURE: &str = "40001";
/// SQLSTATE of a detected deadlock.
const DEADLOCK_DETECTED: &str = "40P01";

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// Whether `e` is a serialization failure or deadlock: the transaction lost
/// a race and re-running it from scratch is safe.
pub(crate) fn is_retryable(e: &sqlx::Error) -> bool {
    sqlstate(e).is_some_and(|c| c == SERIALIZATION_FAILURE || c == DEADLOCK_DETECTED)
}

/// Maps a driver error to a core error (see the crate docs).
pub(crate) fn db_err(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &e {
        match db.code().as_deref() {
            Some(UNIQUE_VIOLATION) => {
                return Error::conflict(ConflictReason::Duplicate, unique_message(db.constraint().unwrap_or_default()));
            }
            // Reached only where the caller did not (or could no longer)
            // retry: report the lost race, not an outage.
            Some(SERIALIZATION_FAILURE | DEADLOCK_DETECTED) => {
                return Error::conflict(ConflictReason::Contended, "a concurrent change won; retry");
            }
            _ => {}
        }
    }
    Error::unavailable(WHAT, e)
}

/// Turns a violated constraint's name into a message for the caller (a 409
/// body) that says what was duplicated without exposing the schema.
fn unique_message(constraint: &str) -> String {
    let known = match constraint {
        "users_email_key" => Some("e-mail is already registered"),
        "reviews_one_per_buyer" => Some("this buyer already reviewed this product"),
        "licenses_one_per_order_line" => Some("a license already exists for this order line"),
        "payment_intents_one_per_order" => Some("this order already has a payment intent"),
        "assets_one_per_version" => Some("this asset version already exists"),
        _ => None,
    };
    if let Some(message) = known {
        return message.to_owned();
    }
    let entity = match constraint.split('_').next().unwrap_or_default() {
        "users" => "user",
        "products" => "product",
        "reviews" => "review",
        "orders" => "order",
        "payment" => "payment intent",
        "licenses" => "license",
        "assets" => "asset",
        "notifications" => "notification",
        "dead" => "dead letter",
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
        assert_eq!(unique_message("users_email_key"), "e-mail is already registered");
        assert_eq!(unique_message("licenses_id_key"), "license already exists");
        assert_eq!(unique_message("something"), "record already exists");
    }
}
