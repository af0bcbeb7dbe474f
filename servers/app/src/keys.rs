//! The process's secrets: JWT signing, license signing, download-URL signing
//! and the sandbox provider's webhook secret.
//!
//! Each comes from its environment variable (hex, 32 bytes) when set — how
//! scaled-out replicas share them — and otherwise from `<data dir>/keys.json`,
//! generated once with OS randomness and written with mode 0600. Losing the
//! file invalidates issued tokens, license keys' online validation and
//! outstanding download URLs, so it is kept beside the database.

use std::fmt;
use std::path::{Path, PathBuf};

use bazaar_core::entropy::{Entropy, OsEntropy};
use serde::{Deserialize, Serialize};

/// The file, inside the data dir, that holds generated keys.
pub const KEYS_FILE: &str = "keys.json";

/// Environment variables that override the generated keys (64 hex digits each).
pub const KEY_VARS: [&str; 4] =
    ["BAZAAR_JWT_SECRET", "BAZAAR_LICENSE_SIGNING_KEY", "BAZAAR_URL_SIGNING_KEY", "BAZAAR_WEBHOOK_SECRET"];

/// Why keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// A variable or the file holds something that is not 32 hex-encoded bytes.
    #[error("{source_name}: {what} must be 64 hex digits (32 bytes)")]
    Malformed {
        /// The variable or file.
        source_name: String,
        /// Which key.
        what: &'static str,
    },
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not the JSON this module writes.
    #[error("{path}: not a keys file: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// 32 secret bytes that never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; 32]);

impl Secret {
    /// Wraps raw bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The bytes.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    fn from_hex(s: &str) -> Option<Self> {
        let bytes = hex::decode(s.trim()).ok()?;
        bytes.try_into().ok().map(Self)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Every secret the marketplace needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// HMAC key of access tokens (HS256).
    pub jwt: Secret,
    /// Ed25519 seed that signs license keys.
    pub license_signing: Secret,
    /// HMAC key of download URLs.
    pub url_signing: Secret,
    /// The sandbox payment provider's webhook signing secret.
    pub webhook: Secret,
}

#[derive(Serialize, Deserialize)]
struct KeysFile {
    jwt: String,
    license_signing: String,
    url_signing: String,
    webhook: String,
}

impl Keys {
    /// Fresh random keys.
    pub fn generate(entropy: &dyn Entropy) -> Self {
        Self {
            jwt: Secret(entropy.bytes32()),
            license_signing: Secret(entropy.bytes32()),
            url_signing: Secret(entropy.bytes32()),
            webhook: Secret(entropy.bytes32()),
        }
    }

    /// Loads `<data_dir>/keys.json`, generating and writing it (0600) when
    /// absent, then applies the environment overrides ([`KEY_VARS`]).
    ///
    /// # Errors
    /// When the file or a variable is malformed, or the file cannot be
    /// read or written.
    pub fn load_or_generate(data_dir: &Path) -> Result<Self, KeysError> {
        Self::load_with(data_dir, |name| std::env::var(name).ok())
    }

    /// [`load_or_generate`](Self::load_or_generate) with the environment
    /// read through `var` (tests pass a map).
    ///
    /// # Errors
    /// As [`load_or_generate`](Self::load_or_generate).
    pub fn load_with(data_dir: &Path, var: impl Fn(&str) -> Option<String>) -> Result<Self, KeysError> {
        let path = data_dir.join(KEYS_FILE);
        let from_env = KEY_VARS.iter().all(|name| var(name).is_some_and(|v| !v.trim().is_empty()));
        // Replicas given every key by the environment never touch the data dir.
        let mut keys = match std::fs::read(&path) {
            _ if from_env => Self::generate(&OsEntropy),
            Ok(bytes) => Self::parse_file(&path, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keys = Self::generate(&OsEntropy);
                keys.write(&path)?;
                tracing::info!(path = %path.display(), "generated signing keys");
                keys
            }
            Err(source) => return Err(KeysError::Io { path, source }),
        };
        let slots: [(&str, &'static str, &mut Secret); 4] = [
            (KEY_VARS[0], "the JWT secret", &mut keys.jwt),
            (KEY_VARS[1], "the license signing key", &mut keys.license_signing),
            (KEY_VARS[2], "the URL signing key", &mut keys.url_signing),
            (KEY_VARS[3], "the webhook secret", &mut keys.webhook),
        ];
        for (name, what, slot) in slots {
            if let Some(value) = var(name).filter(|v| !v.trim().is_empty()) {
                *slot = Secret::from_hex(&value)
                    .ok_or_else(|| KeysError::Malformed { source_name: name.to_owned(), what })?;
            }
        }
        Ok(keys)
    }

    /// The JWT secret alone, for a process that only verifies tokens (the
    /// API gateway): `BAZAAR_JWT_SECRET` (read through `var`) when set,
    /// else the one in `<data_dir>/keys.json` when that file exists. Never
    /// generates one: a secret of its own would verify no token the API
    /// issued.
    ///
    /// # Errors
    /// When the variable or the file is malformed, or the file unreadable.
    pub fn jwt_secret_with(data_dir: &Path, var: impl Fn(&str) -> Option<String>) -> Result<Option<Secret>, KeysError> {
        let name = KEY_VARS[0];
        if let Some(value) = var(name).filter(|v| !v.trim().is_empty()) {
            let secret = Secret::from_hex(&value)
                .ok_or_else(|| KeysError::Malformed { source_name: name.to_owned(), what: "the JWT secret" })?;
            return Ok(Some(secret));
        }
        let path = data_dir.join(KEYS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(Self::parse_file(&path, &bytes)?.jwt)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(KeysError::Io { path, source }),
        }
    }

    fn parse_file(path: &Path, bytes: &[u8]) -> Result<Self, KeysError> {
        let file: KeysFile =
            serde_json::from_slice(bytes).map_err(|source| KeysError::Format { path: path.to_owned(), source })?;
        let field = |hex: &str, what| {
            Secret::from_hex(hex).ok_or_else(|| KeysError::Malformed { source_name: path.display().to_string(), what })
        };
        Ok(Self {
            jwt: field(&file.jwt, "jwt")?,
            license_signing: field(&file.license_signing, "license_signing")?,
            url_signing: field(&file.url_signing, "url_signing")?,
            webhook: field(&file.webhook, "webhook")?,
        })
    }

    fn write(&self, path: &Path) -> Result<(), KeysError> {
        let io = |source| KeysError::Io { path: path.to_owned(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = KeysFile {
            jwt: hex::encode(self.jwt.0),
            license_signing: hex::encode(self.license_signing.0),
            url_signing: hex::encode(self.url_signing.0),
            webhook: hex::encode(self.webhook.0),
        };
        let json = serde_json::to_vec_pretty(&file).expect("plain strings serialize");
        // Written to a temporary name with 0600 from the start, then renamed,
        // so the keys are never readable by others nor half-written.
        let tmp = path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut f = options.open(&tmp).map_err(io)?;
            f.write_all(&json).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let first = Keys::load_with(dir.path(), |_| None).unwrap();
        let again = Keys::load_with(dir.path(), |_| None).unwrap();
        assert_eq!(first, again, "the second start reads the same keys");
        assert_ne!(first.jwt, first.url_signing, "each key is drawn separately");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEYS_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "only the owner may read the keys");
        }
    }

    #[test]
    fn the_environment_overrides_and_is_validated() {
        let dir = tempfile::tempdir().unwrap();
        let hex = "ab".repeat(32);
        let keys = Keys::load_with(dir.path(), |n| (n == "BAZAAR_JWT_SECRET").then(|| hex.clone())).unwrap();
        assert_eq!(keys.jwt.expose(), &[0xab; 32]);
        let err = Keys::load_with(dir.path(), |n| (n == "BAZAAR_URL_SIGNING_KEY").then(|| "abc".into())).unwrap_err();
        assert!(err.to_string().contains("BAZAAR_URL_SIGNING_KEY"), "{err}");
    }

    #[test]
    fn a_verifier_reads_the_jwt_secret_but_never_makes_one() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Keys::jwt_secret_with(dir.path(), |_| None).unwrap(), None);
        assert!(!dir.path().join(KEYS_FILE).exists(), "nothing generated");
        let keys = Keys::load_with(dir.path(), |_| None).unwrap();
        assert_eq!(Keys::jwt_secret_with(dir.path(), |_| None).unwrap(), Some(keys.jwt));
        let hex = "ef".repeat(32);
        let from_env = Keys::jwt_secret_with(dir.path(), |n| (n == "BAZAAR_JWT_SECRET").then(|| hex.clone())).unwrap();
        assert_eq!(from_env.unwrap().expose(), &[0xef; 32], "the variable wins over the file");
        let err = Keys::jwt_secret_with(dir.path(), |_| Some("zz".into())).unwrap_err();
        assert!(err.to_string().contains("BAZAAR_JWT_SECRET"), "{err}");
    }

    #[test]
    fn keys_given_in_full_by_the_environment_write_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::load_with(dir.path(), |_| Some("cd".repeat(32))).unwrap();
        assert_eq!(keys.webhook.expose(), &[0xcd; 32]);
        assert!(!dir.path().join(KEYS_FILE).exists());
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_silent_regeneration() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEYS_FILE), b"{not json").unwrap();
        assert!(matches!(Keys::load_with(dir.path(), |_| None), Err(KeysError::Format { .. })));
    }

    #[test]
    fn debug_output_hides_every_key() {
        let keys = Keys::generate(&OsEntropy);
        let shown = format!("{keys:?}");
        assert!(!shown.contains(&hex::encode(keys.jwt.expose())), "{shown}");
        assert!(shown.contains("Secret(..)"));
    }
}
