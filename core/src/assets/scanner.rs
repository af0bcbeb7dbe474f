//! The malware scanner port and the default EICAR-signature scanner.

use async_trait::async_trait;

use super::asset::ScanStatus;
use crate::error::Result;

/// The EICAR anti-malware test string: every scanner flags it, so tests and
/// smoke checks can exercise the "infected" path without real malware.
pub const EICAR_SIGNATURE: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// Scans upload bytes for malware.
///
/// # Example
/// ```
/// use bazaar_core::assets::{EicarScanner, ScanStatus, Scanner, EICAR_SIGNATURE};
/// # futures::executor::block_on(async {
/// let scanner = EicarScanner;
/// assert_eq!(scanner.scan(b"just a zip").await.unwrap(), ScanStatus::Clean);
/// assert_eq!(scanner.scan(EICAR_SIGNATURE).await.unwrap(), ScanStatus::Infected);
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Scanner: Send + Sync {
    /// The verdict for `bytes`: `Clean` or `Infected`, or `Pending` when the
    /// scan continues out of band (the result is recorded later with
    /// `AssetRepository::set_scan`). Errors mean the scanner is unavailable.
    async fn scan(&self, bytes: &[u8]) -> Result<ScanStatus>;
}

/// The default scanner: flags bytes containing the EICAR test signature
/// anywhere (not only at the start, so it also catches it inside archives
/// stored without compression).
#[derive(Debug, Clone, Copy, Default)]
pub struct EicarScanner;

impl EicarScanner {
    /// The verdict, synchronously.
    pub fn verdict(bytes: &[u8]) -> ScanStatus {
        if bytes.windows(EICAR_SIGNATURE.len()).any(|w| w == EICAR_SIGNATURE) {
            ScanStatus::Infected
        } else {
            ScanStatus::Clean
        }
    }
}

#[async_trait]
impl Scanner for EicarScanner {
    async fn scan(&self, bytes: &[u8]) -> Result<ScanStatus> {
        Ok(Self::verdict(bytes))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn finds_the_signature_anywhere(prefix: Vec<u8>, suffix: Vec<u8>) {
            let mut bytes = prefix.clone();
            bytes.extend_from_slice(EICAR_SIGNATURE);
            bytes.extend_from_slice(&suffix);
            prop_assert_eq!(EicarScanner::verdict(&bytes), ScanStatus::Infected);
        }

        #[test]
        fn random_bytes_are_clean(bytes: Vec<u8>) {
            prop_assert_eq!(EicarScanner::verdict(&bytes), ScanStatus::Clean);
        }
    }

    #[test]
    fn a_truncated_signature_is_clean() {
        let cut = &EICAR_SIGNATURE[..EICAR_SIGNATURE.len() - 1];
        assert_eq!(EicarScanner::verdict(cut), ScanStatus::Clean);
        assert_eq!(EicarScanner::verdict(b""), ScanStatus::Clean);
    }
}
