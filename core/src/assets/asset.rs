//! The asset entity: one immutable version of one file of a product.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{AssetId, ProductId};

/// A safe file name: 1 to 255 bytes, no path separators, no `..`, no
/// control characters, not `.`, no leading or trailing whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileName(String);

impl FileName {
    /// Validates a file name.
    ///
    /// # Errors
    /// [`Error::Validation`] on `file_name` saying which rule failed.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |msg: &str| Err(Error::invalid("file_name", msg));
        if s.is_empty() || s.len() > 255 {
            return bad("must be 1 to 255 bytes");
        }
        if s.contains(['/', '\\']) {
            return bad("must not contain path separators");
        }
        if s.contains("..") || s == "." {
            return bad("must not contain `..` or be `.`");
        }
        if s.chars().any(char::is_control) {
            return bad("must not contain control characters");
        }
        if s.trim() != s {
            return bad("must not start or end with whitespace");
        }
        Ok(Self(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for FileName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<FileName> for String {
    fn from(f: FileName) -> String {
        f.0
    }
}

/// The malware-scan verdict of an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanStatus {
    /// Not scanned yet; not downloadable.
    Pending,
    /// Scanned, nothing found; downloadable.
    Clean,
    /// Malware found; never downloadable.
    Infected,
}

impl ScanStatus {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Clean => "clean",
            Self::Infected => "infected",
        }
    }
}

impl fmt::Display for ScanStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One immutable uploaded version of a product file. Uploading the same
/// `file_name` again creates a new asset with `version + 1`; nothing is
/// overwritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// Id.
    pub id: AssetId,
    /// The product it belongs to.
    pub product_id: ProductId,
    /// The file name; (product_id, file_name, version) is unique.
    pub file_name: FileName,
    /// Its MIME type, from the allow-list of [`AssetLimits`](super::AssetLimits).
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    /// Version of this file name within the product, from 1.
    pub version: u32,
    /// A public preview (screenshot, demo) rather than the product itself.
    pub is_preview: bool,
    /// The scan verdict.
    pub scan: ScanStatus,
    /// When it was uploaded.
    pub created_at: Timestamp,
}

impl Asset {
    /// Where its bytes live in the [`BlobStore`](super::BlobStore).
    pub fn blob_key(&self) -> String {
        blob_key(self.product_id, self.id)
    }
}

/// The blob key of an asset: `assets/{product_id}/{asset_id}`.
pub fn blob_key(product_id: ProductId, asset_id: AssetId) -> String {
    format!("assets/{product_id}/{asset_id}")
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_validated() {
        for ok in ["agent.zip", "My Workflow (v2).json", "a", "ü.txt", &"a".repeat(255)] {
            assert!(FileName::parse(ok).is_ok(), "{ok:?} refused");
        }
        for bad in ["", "a/b", "a\\b", "..", "x..y", ".", "a\nb", "nul\0", " lead", "trail ", &"a".repeat(256)] {
            let err = FileName::parse(bad).unwrap_err();
            assert!(err.to_string().contains("file_name"), "{bad:?}: {err}");
        }
        assert!(serde_json::from_str::<FileName>("\"../etc/passwd\"").is_err());
    }

    #[test]
    fn sha256_is_lower_hex() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn scan_status_wire_names() {
        assert_eq!(serde_json::to_value(ScanStatus::Infected).unwrap(), "infected");
        assert_eq!(ScanStatus::Clean.to_string(), "clean");
    }
}
