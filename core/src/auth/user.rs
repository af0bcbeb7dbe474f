//! Users and their repository port.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::Role;
use crate::clock::Timestamp;
use crate::error::{Error, FieldError, Result};
use crate::events::Event;
use crate::ids::UserId;

/// A syntactically valid, lower-cased e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Validates and normalises (trims, lower-cases) an address.
    ///
    /// # Errors
    /// [`Error::Validation`] on `email` when it isn't `local@domain.tld`-shaped
    /// or is longer than 254 bytes.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        let valid = s.len() <= 254
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
                    && !s.chars().any(char::is_whitespace)
            });
        if valid { Ok(Self(s)) } else { Err(Error::invalid("email", "is not a valid e-mail address")) }
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

/// Shortest password an account may have, in characters.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password an account may have, in characters: hashing cost grows
/// with length, so an unbounded one would let a client buy CPU time.
pub const MAX_PASSWORD_LEN: usize = 256;
/// Longest display name, in characters.
pub const MAX_NAME_LEN: usize = 100;

/// Checks a password's length ([`MIN_PASSWORD_LEN`] to [`MAX_PASSWORD_LEN`]).
///
/// # Errors
/// [`Error::Validation`] on `password`.
pub fn check_password(password: &str) -> Result<()> {
    let len = password.chars().count();
    if (MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len) {
        Ok(())
    } else {
        Err(Error::invalid("password", format!("must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters")))
    }
}

/// Checks what a new account needs besides its [`Email`]: a display name of
/// 1 to [`MAX_NAME_LEN`] characters once trimmed, and a password that passes
/// [`check_password`]. Returns the trimmed name.
///
/// # Errors
/// [`Error::Validation`] naming `name` and/or `password` (every problem at once).
///
/// # Example
/// ```
/// use bazaar_core::auth::check_registration;
///
/// assert_eq!(check_registration("  Ada ", "correct horse").unwrap(), "Ada");
/// let err = check_registration(" ", "short").unwrap_err();
/// assert_eq!(err.to_string(), "validation failed: name: must be 1 to 100 characters; password: must be 8 to 256 characters");
/// ```
pub fn check_registration<'a>(name: &'a str, password: &str) -> Result<&'a str> {
    let name = name.trim();
    let mut problems = Vec::new();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        problems.push(FieldError::new("name", format!("must be 1 to {MAX_NAME_LEN} characters")));
    }
    if let Err(Error::Validation(fields)) = check_password(password) {
        problems.extend(fields);
    }
    if problems.is_empty() { Ok(name) } else { Err(Error::Validation(problems)) }
}

/// A marketplace user.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Unique, normalised e-mail.
    pub email: Email,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// PHC-format password hash (argon2id); never logged.
    pub password_hash: String,
    /// When the account was created.
    pub created_at: Timestamp,
}

impl std::fmt::Debug for User {
    // Hand-written so the password hash can never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Where users live.
///
/// # Example
/// ```
/// use bazaar_core::auth::{Email, Role, User, UserRepository};
/// use bazaar_core::ids::UserId;
/// use bazaar_memory::{MemoryOutbox, MemoryUsers};
/// # futures::executor::block_on(async {
/// let repo = MemoryUsers::new(MemoryOutbox::new());
/// let ada = User {
///     id: UserId::new(), email: Email::parse("Ada@Example.com").unwrap(), name: "Ada".into(),
///     role: Role::Vendor, password_hash: "$argon2id$...".into(), created_at: chrono::Utc::now(),
/// };
/// repo.insert(&ada, &[]).await.unwrap();
/// assert_eq!(repo.find_by_email(&Email::parse("ada@example.com").unwrap()).await.unwrap(), Some(ada.clone()));
/// // E-mails are unique.
/// let twin = User { id: UserId::new(), ..ada.clone() };
/// assert_eq!(repo.insert(&twin, &[]).await.unwrap_err().code(), "conflict");
/// # });
/// ```
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new user with its events (one unit of work).
    ///
    /// MUST return [`Error::Conflict`] when the e-mail is taken, changing nothing.
    async fn insert(&self, user: &User, events: &[Event]) -> Result<()>;

    /// The user with `id`, if any.
    async fn get(&self, id: UserId) -> Result<Option<User>>;

    /// The user with this (normalised) e-mail, if any.
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_validated() {
        assert_eq!(Email::parse("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        for bad in ["", "a", "a@b", "@b.io", "a@.io", "a@b.", "a b@c.io", "a@b@c.io"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn registration_bounds_names_and_passwords_in_characters() {
        let fields = |r: Result<&str>| match r {
            Err(Error::Validation(f)) => f.into_iter().map(|f| f.field).collect::<Vec<_>>(),
            other => panic!("expected a validation error, got {other:?}"),
        };
        assert_eq!(check_registration(&"é".repeat(MAX_NAME_LEN), &"ü".repeat(MIN_PASSWORD_LEN)).unwrap().len(), 200);
        assert!(check_password(&"x".repeat(MAX_PASSWORD_LEN)).is_ok());
        assert_eq!(fields(check_registration(&"n".repeat(MAX_NAME_LEN + 1), "long enough")), ["name"]);
        assert_eq!(fields(check_registration("Ada", &"x".repeat(MAX_PASSWORD_LEN + 1))), ["password"]);
        assert_eq!(fields(check_registration(" \t ", "1234567")), ["name", "password"]);
    }

    #[test]
    fn debug_never_shows_the_password_hash() {
        let u = User {
            id: UserId::new(),
            email: Email::parse("a@b.io").unwrap(),
            name: "A".into(),
            role: Role::Customer,
            password_hash: "$argon2id$secret".into(),
            created_at: chrono::Utc::now(),
        };
        assert!(!format!("{u:?}").contains("argon2"));
    }
}
