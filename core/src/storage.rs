//! Encodings every storage adapter shares: exact timestamps as integer
//! nanoseconds, `u64` counters in signed integer columns, and aggregates as
//! JSON documents, with failures reported as core errors.
//!
//! Pure conversions, kept here so the SQL adapters cannot drift apart on how
//! a value is stored.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::Timestamp;
use crate::error::{Error, Result};

/// A timestamp as nanoseconds since the epoch: exact (SQL timestamp types
/// keep microseconds at best), and it sorts.
///
/// # Errors
/// [`Error::Validation`] outside the years 1677–2262, a storage limit
/// reported rather than silently clamped.
pub fn timestamp_to_nanos(t: Timestamp) -> Result<i64> {
    t.timestamp_nanos_opt().ok_or_else(|| Error::invalid("timestamp", "must be between the years 1677 and 2262"))
}

/// The inverse of [`timestamp_to_nanos`].
pub fn timestamp_from_nanos(nanos: i64) -> Timestamp {
    chrono::DateTime::from_timestamp_nanos(nanos)
}

/// A `u64` counter for a signed 64-bit column.
///
/// # Errors
/// [`Error::Validation`] above `i64::MAX`.
pub fn counter_to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::invalid("counter", "exceeds the storable range"))
}

/// The inverse of [`counter_to_i64`].
///
/// # Errors
/// [`Error::Internal`] for a negative column: a corrupted row.
pub fn counter_from_i64(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|e| Error::internal("reading a counter column", e))
}

/// JSON text for a document column.
///
/// # Errors
/// [`Error::Internal`] if the value does not serialize.
pub fn to_json_doc<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::internal("encoding a row as JSON", e))
}

/// Parses a document column back into a core value.
///
/// # Errors
/// [`Error::Internal`] for text that is not the expected document.
pub fn from_json_doc<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::internal("decoding a JSON row", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    #[test]
    fn timestamps_round_trip_exactly() {
        let t = ManualClock::at_epoch_secs(1_700_000_000).now() + chrono::Duration::nanoseconds(123);
        assert_eq!(timestamp_from_nanos(timestamp_to_nanos(t).unwrap()), t);
    }

    #[test]
    fn out_of_range_values_are_errors_not_wraps() {
        assert!(counter_to_i64(u64::MAX).is_err());
        assert!(counter_from_i64(-1).is_err());
        assert!(from_json_doc::<u32>("\"x\"").is_err());
    }
}
