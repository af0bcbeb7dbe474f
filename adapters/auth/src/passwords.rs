//! argon2id password hashing on the blocking pool, at most N at a time.

use std::fmt;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use bazaar_core::auth::PasswordHasher;
use bazaar_core::entropy::{Entropy, OsEntropy};
use bazaar_core::{Error, Result};
use tokio::sync::Semaphore;

/// How many hashes run at once by default: half the cores, at least one.
/// A hash holds a core for ~40 ms, so one per core would let a storm of
/// sign-ins starve every other request of the process (measured in
/// `benches/README.md`, "Sign-in storms"); each also takes ~19 MiB.
pub fn default_concurrent_hashes() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

// An argon2id hash of a random string, checked against for an unknown
// account so that a sign-in takes as long either way.
const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2WTmcW1BoS8Gr1Rm+VfnZ4Au5WZRIxS6jw8kQbOlbzs";

/// argon2id hashing (19 MiB, 2 iterations, 1 lane by default: OWASP's
/// minimum). Hashes run on Tokio's blocking pool behind a semaphore of
/// `concurrency` permits; callers beyond it wait their turn.
#[derive(Clone)]
pub struct Argon2Passwords {
    argon: Argon2<'static>,
    entropy: Arc<dyn Entropy>,
    permits: Arc<Semaphore>,
}

impl fmt::Debug for Argon2Passwords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Argon2Passwords").field("params", self.argon.params()).finish_non_exhaustive()
    }
}

impl Default for Argon2Passwords {
    fn default() -> Self {
        Self::with_params(Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters"))
    }
}

impl Argon2Passwords {
    /// Cheap parameters (8 KiB, 1 iteration) so tests sign in quickly:
    /// never in production.
    pub fn fast_for_tests() -> Self {
        Self::with_params(Params::new(8, 1, 1, None).expect("valid argon2 parameters"))
    }

    /// argon2id with `params`, OS randomness for salts and
    /// [`default_concurrent_hashes`] at once.
    pub fn with_params(params: Params) -> Self {
        Self {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            entropy: Arc::new(OsEntropy),
            permits: Arc::new(Semaphore::new(default_concurrent_hashes())),
        }
    }

    /// At most `n` hashes at once (at least 1).
    #[must_use]
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.permits = Arc::new(Semaphore::new(n.max(1)));
        self
    }

    /// Salts from `entropy` (seeded in tests).
    #[must_use]
    pub fn with_entropy(mut self, entropy: Arc<dyn Entropy>) -> Self {
        self.entropy = entropy;
        self
    }

    /// Runs `work` on the blocking pool once a permit is free.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce(&Argon2<'static>) -> T + Send + 'static) -> Result<T> {
        let _permit =
            self.permits.acquire().await.map_err(|e| Error::unavailable("password hashing", e.to_string()))?;
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || work(&argon))
            .await
            .map_err(|e| Error::internal("password hashing task", e.to_string()))
    }
}

#[async_trait]
impl PasswordHasher for Argon2Passwords {
    async fn hash(&self, password: &str) -> Result<String> {
        let mut salt = [0u8; 16];
        self.entropy.fill(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| Error::internal("password salt", e.to_string()))?;
        let password = password.to_owned();
        self.run(move |argon| argon.hash_password(password.as_bytes(), &salt).map(|h| h.to_string()))
            .await?
            .map_err(|e| Error::internal("password hash", e.to_string()))
    }

    async fn verify(&self, password: &str, phc: &str) -> Result<bool> {
        let (password, phc) = (password.to_owned(), phc.to_owned());
        self.run(move |argon| {
            PasswordHash::new(&phc).is_ok_and(|h| argon.verify_password(password.as_bytes(), &h).is_ok())
        })
        .await
    }

    async fn verify_nothing(&self, password: &str) -> Result<()> {
        self.verify(password, DECOY_HASH).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use bazaar_core::entropy::SeededEntropy;

    use super::*;

    #[tokio::test]
    async fn passwords_verify_only_themselves() {
        let p = Argon2Passwords::fast_for_tests().with_entropy(Arc::new(SeededEntropy::new(1)));
        let h = p.hash("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(p.verify("correct horse", &h).await.unwrap());
        assert!(!p.verify("correct hors", &h).await.unwrap());
        assert!(!p.verify("correct horse", "not a phc string").await.unwrap());
        assert_ne!(h, p.hash("correct horse").await.unwrap(), "a fresh salt each time");
        p.verify_nothing("anything").await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_beyond_the_cap_wait_for_a_permit() {
        let p = Argon2Passwords::fast_for_tests().with_concurrency(1);
        let held = p.permits.clone().acquire_owned().await.unwrap();
        let waiting = tokio::spawn({
            let p = p.clone();
            async move { p.hash("correct horse").await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the only permit is held, so the hash waits");
        drop(held);
        assert!(waiting.await.unwrap().unwrap().starts_with("$argon2id$"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_leaves_the_async_threads_free() {
        // Production parameters with one permit: while eight hashes queue on
        // the blocking pool, a plain task on the runtime still runs at once.
        let p = Argon2Passwords::default().with_concurrency(1);
        let hashes: Vec<_> = (0..8)
            .map(|_| {
                let p = p.clone();
                tokio::spawn(async move { p.hash("correct horse").await })
            })
            .collect();
        let ticked = tokio::spawn(async { 42 }).await.unwrap();
        assert_eq!(ticked, 42);
        for h in hashes {
            assert!(h.await.unwrap().is_ok());
        }
    }
}
