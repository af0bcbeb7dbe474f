//! Conversions between core values and PostgreSQL columns, and the mapping
//! of driver errors to core errors.

use bazaar_core::Error;
use bazaar_core::clock::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What failed, for [`Error::Unavailable`] and [`Error::Internal`].
pub(crate) const WHAT: &str = "postgres";

/// A timestamp as BIGINT nanoseconds since the epoch: exact (`timestamptz`
/// keeps microseconds only), and it sorts.
///
/// The range (years 1677–2262) is a storage limit, reported as a validation
/// error rather than silently clamped.
pub(crate) fn ts(t: Timestamp) -> bazaar_core::Result<i64> {
    t.timestamp_nanos_opt().ok_or_else(|| Error::invalid("timestamp", "must be between the years 1677 and 2262"))
}

/// The inverse of [`ts`].
pub(crate) fn from_ts(nanos: i64) -> Timestamp {
    chrono::DateTime::from_timestamp_nanos(nanos)
}

/// Counters are `u64` in the core and BIGINT (i64) in PostgreSQL.
pub(crate) fn int(v: u64) -> bazaar_core::Result<i64> {
    i64::try_from(v).map_err(|_| Error::invalid("counter", "exceeds the storable range"))
}

/// The inverse of [`int`]; a negative column is a corrupted row.
pub(crate) fn uint(v: i64) -> bazaar_core::Result<u64> {
    u64::try_from(v).map_err(|e| Error::internal("reading a counter column", e))
}

/// JSON text for a `doc` (or other JSON) column.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> bazaar_core::Result<String> {
    serde_json::to_string(value).map_err(|e| Error::internal("encoding a row as JSON", e))
}

/// Parses a JSON column back into a core value.
pub(crate) fn from_json<T: DeserializeOwned>(text: &str) -> bazaar_core::Result<T> {
    serde_json::from_str(text).map_err(|e| Error::internal("decoding a JSON row", e))
}

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
            Some(UNIQUE_VIOLATION) => return Error::Conflict(unique_message(db.constraint().unwrap_or_default())),
            // Reached only where the caller did not (or could no longer)
            // retry: report the lost race, not an outage.
            Some(SERIALIZATION_FAILURE | DEADLOCK_DETECTED) => {
                return Error::Conflict("a concurrent change won; retry".into());
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
