//! Names on the wire: checking the configured stream name and subject
//! prefix, and turning consumer-group names into JetStream durable names.

use bazaar_core::{Error, Result};

/// Longest group name used verbatim as a durable name; longer ones are
/// shortened and suffixed with a hash.
const MAX_VERBATIM: usize = 48;
/// How much of a sanitized group name is kept before the hash suffix.
const KEPT_PREFIX: usize = 32;

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Checks a stream name: 1–64 of `A-Z a-z 0-9 _ -` (JetStream forbids
/// `.`, `*`, `>`, whitespace and path separators in stream names; the
/// narrower set keeps names safe as file names and subject tokens).
pub(crate) fn check_stream_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(is_name_char) {
        return Err(Error::invalid(
            "stream",
            format!("stream name {name:?} must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'"),
        ));
    }
    Ok(())
}

/// Checks a subject prefix: dot-separated, non-empty tokens of
/// `A-Z a-z 0-9 _ -`, at most 128 bytes (no wildcards, no spaces).
pub(crate) fn check_subject_prefix(prefix: &str) -> Result<()> {
    let valid = !prefix.is_empty()
        && prefix.len() <= 128
        && prefix.split('.').all(|token| !token.is_empty() && token.chars().all(is_name_char));
    if !valid {
        return Err(Error::invalid(
            "subject_prefix",
            format!(
                "subject prefix {prefix:?} must be dot-separated tokens of A-Z, a-z, 0-9, '_' or '-' (at most 128 bytes)"
            ),
        ));
    }
    Ok(())
}

/// The durable consumer name for consumer group `group`.
///
/// A group name made of `A-Z a-z 0-9 _ -` and at most 48 bytes long is used
/// as is, so `nats consumer ls` shows the names the code uses. Any other name
/// (e.g. `worker/mailer`, `a.b`) has its other characters replaced by `_`,
/// is cut to 32 characters and gets a `-` plus the 16-hex-digit FNV-1a hash
/// of the original name, so distinct groups never share a durable (`a.b`
/// and `a_b` differ) and the mapping is stable across builds and releases
/// (unlike `std`'s `DefaultHasher`).
///
/// # Errors
/// [`Error::Validation`] for an empty group name.
pub(crate) fn durable_name(group: &str) -> Result<String> {
    if group.is_empty() {
        return Err(Error::invalid("consumer", "the consumer group name must not be empty"));
    }
    if group.len() <= MAX_VERBATIM && group.chars().all(is_name_char) {
        return Ok(group.to_owned());
    }
    let sanitized: String = group.chars().take(KEPT_PREFIX).map(|c| if is_name_char(c) { c } else { '_' }).collect();
    Ok(format!("{sanitized}-{:016x}", fnv1a(group.as_bytes())))
}

/// 64-bit FNV-1a: tiny, dependency-free and fixed forever.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_group_names_are_kept() {
        assert_eq!(durable_name("group-a").unwrap(), "group-a");
        assert_eq!(durable_name("Mailer_2").unwrap(), "Mailer_2");
    }

    #[test]
    fn other_names_are_sanitized_and_hashed() {
        let slash = durable_name("worker/mailer").unwrap();
        assert!(slash.starts_with("worker_mailer-"), "{slash}");
        assert!(slash.chars().all(is_name_char), "{slash}");
        assert_ne!(durable_name("a.b").unwrap(), durable_name("a_b").unwrap(), "no collision with a plain name");
        assert_ne!(durable_name("a.b").unwrap(), durable_name("a*b").unwrap(), "no collision between sanitized names");
        assert_eq!(durable_name("a.b").unwrap(), durable_name("a.b").unwrap(), "stable");
    }

    #[test]
    fn long_names_are_shortened() {
        let long = "x".repeat(200);
        let name = durable_name(&long).unwrap();
        assert_eq!(name.len(), KEPT_PREFIX + 1 + 16);
        assert_ne!(name, durable_name(&"x".repeat(201)).unwrap());
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn empty_group_is_rejected() {
        assert!(durable_name("").is_err());
    }

    #[test]
    fn stream_names_and_prefixes_are_checked() {
        assert!(check_stream_name("BAZAAR_EVENTS").is_ok());
        for bad in ["", "a.b", "a b", "a>", "a/b", &"x".repeat(65)] {
            assert!(check_stream_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_subject_prefix("bazaar").is_ok());
        assert!(check_subject_prefix("bazaar.test-1").is_ok());
        for bad in ["", ".", "a.", ".a", "a..b", "a.*", "a.>", "a b"] {
            assert!(check_subject_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
