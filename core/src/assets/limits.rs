//! Upload limits: maximum size and the MIME allow-list.
//!
//! A too-large upload is [`Error::TooLarge`] (HTTP 413); every other
//! refusal is [`Error::Validation`] naming its fields.

use crate::error::{Error, FieldError, Result};

/// 50 MiB.
pub const DEFAULT_MAX_SIZE: u64 = 50 * 1024 * 1024;

/// The MIME types accepted by default.
pub const DEFAULT_MIMES: &[&str] = &[
    "application/zip",
    "application/json",
    "application/x-tar",
    "application/gzip",
    "application/pdf",
    "application/yaml",
    "application/x-yaml",
    "text/plain",
    "text/markdown",
    "text/csv",
    "image/png",
    "image/jpeg",
    "image/webp",
];

/// What uploads are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetLimits {
    /// Largest accepted size in bytes.
    pub max_size: u64,
    /// Accepted MIME types (compared case-insensitively, parameters such as
    /// `; charset=utf-8` ignored).
    pub allowed_mimes: Vec<String>,
}

impl Default for AssetLimits {
    /// 50 MiB and [`DEFAULT_MIMES`].
    fn default() -> Self {
        Self { max_size: DEFAULT_MAX_SIZE, allowed_mimes: DEFAULT_MIMES.iter().map(|m| (*m).to_owned()).collect() }
    }
}

impl AssetLimits {
    /// Checks an upload; returns its normalised MIME type (lower-case, no
    /// parameters).
    ///
    /// # Errors
    /// [`Error::TooLarge`] above `max_size`, whatever else is wrong;
    /// otherwise [`Error::Validation`] naming every failing field: `size`
    /// (empty) and `mime` (not allowed).
    pub fn check(&self, mime: &str, size: u64) -> Result<String> {
        if size > self.max_size {
            return Err(Error::TooLarge { size, limit: self.max_size });
        }
        let mut errors = Vec::new();
        if size == 0 {
            errors.push(FieldError::new("size", "must not be empty"));
        }
        let normalised = mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if !self.allowed_mimes.iter().any(|m| m.eq_ignore_ascii_case(&normalised)) {
            errors.push(FieldError::new("mime", format!("type {normalised:?} is not allowed")));
        }
        if errors.is_empty() { Ok(normalised) } else { Err(Error::Validation(errors)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_type_limits() {
        let limits = AssetLimits::default();
        assert_eq!(limits.check("Application/ZIP; charset=binary", 10).unwrap(), "application/zip");
        assert!(limits.check("application/zip", DEFAULT_MAX_SIZE).is_ok());
        let err = limits.check("application/zip", DEFAULT_MAX_SIZE + 1).unwrap_err();
        assert!(matches!(err, Error::TooLarge { size, limit } if size == limit + 1));
        let err = limits.check("application/x-msdownload", 10).unwrap_err();
        assert!(matches!(&err, Error::Validation(_)));
        assert!(err.to_string().contains("mime"));
        let err = limits.check("text/html", 0).unwrap_err();
        assert!(matches!(&err, Error::Validation(f) if f.len() == 2));
    }
}
