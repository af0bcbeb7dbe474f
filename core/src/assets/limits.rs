//! Upload limits: maximum size and the MIME allow-list.
//!
//! A too-large upload is [`Error::Validation`] on the field `size` whose
//! message starts with [`TOO_LARGE`]; transports map it to HTTP 413 with
//! [`is_too_large`] rather than by parsing messages themselves.

use crate::error::{Error, FieldError, Result};

/// The message prefix of a too-large upload.
pub const TOO_LARGE: &str = "too large";

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

/// Whether `err` is the "upload too large" validation error (HTTP 413).
pub fn is_too_large(err: &Error) -> bool {
    matches!(err, Error::Validation(fields) if fields.iter().any(|f| f.field == "size" && f.message.starts_with(TOO_LARGE)))
}

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
    /// [`Error::Validation`] naming every failing field: `size` (empty, or
    /// [`TOO_LARGE`]) and `mime` (not allowed).
    pub fn check(&self, mime: &str, size: u64) -> Result<String> {
        let mut errors = Vec::new();
        if size == 0 {
            errors.push(FieldError::new("size", "must not be empty"));
        } else if size > self.max_size {
            errors.push(FieldError::new(
                "size",
                format!("{TOO_LARGE}: {size} bytes exceeds the maximum of {} bytes", self.max_size),
            ));
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
        assert!(is_too_large(&err));
        let err = limits.check("application/x-msdownload", 10).unwrap_err();
        assert!(!is_too_large(&err));
        assert!(err.to_string().contains("mime"));
        let err = limits.check("text/html", 0).unwrap_err();
        assert!(matches!(&err, Error::Validation(f) if f.len() == 2));
    }
}
