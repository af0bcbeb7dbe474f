//! Credential adapters for `bazaar-core`'s auth ports:
//!
//! - [`Argon2Passwords`] — [`PasswordHasher`](bazaar_core::auth::PasswordHasher)
//!   with argon2id (OWASP's minimum parameters by default), run on the
//!   blocking pool with a cap on concurrent hashes, so a burst of logins
//!   never stalls the async threads or grows memory without bound.
//! - [`JwtTokens`] — [`TokenIssuer`](bazaar_core::auth::TokenIssuer) with
//!   HS256 JWTs carrying the user's id and role (`sub`, `role`, `iat`,
//!   `exp`); every replica sharing the secret accepts every token.
//!
//! # Example
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use bazaar_auth::{Argon2Passwords, JwtTokens};
//! use bazaar_core::auth::{Actor, PasswordHasher, Role, TokenIssuer};
//! use bazaar_core::ids::UserId;
//!
//! let passwords = Argon2Passwords::fast_for_tests();
//! let phc = passwords.hash("correct horse battery").await.unwrap();
//! assert!(passwords.verify("correct horse battery", &phc).await.unwrap());
//!
//! let tokens = JwtTokens::new([7; 32]);
//! let now = chrono::Utc::now();
//! let ada = Actor::new(UserId::new(), Role::Vendor);
//! let token = tokens.issue(ada, now, now + chrono::Duration::minutes(15)).unwrap();
//! assert_eq!(tokens.verify(&token.token, now).unwrap(), ada);
//! # });
//! ```

mod jwt;
mod passwords;

pub use jwt::{Claims, JwtTokens};
pub use passwords::{Argon2Passwords, default_concurrent_hashes};
