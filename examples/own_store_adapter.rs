//! Write your own store adapter for one port and prove it with the core's
//! contract suite.
//!
//! The adapter is `FileUsers`, a [`UserRepository`] kept in one JSON file.
//! Every change rewrites the file whole (to a temporary file, then renamed
//! over the old one), so a crash leaves the old file or the new one, never
//! half of either. The file also holds the events each change commits,
//! which is what the port asks of a store: a user and its `user.registered`
//! event are one unit of work. (To run a whole marketplace on it, the
//! outbox relay must read those events: implement
//! [`OutboxStore`](bazaar_core::events::OutboxStore) over the same file and
//! check it with `testkit::events`.)
//!
//! `bazaar_core::testkit::users::users` is the suite every user store of
//! the project passes (memory, SQLite, PostgreSQL): lookups, normalised
//! e-mails, `Conflict` on a taken e-mail or id with nothing stored and no
//! event appended, and exactly one winner among eight concurrent sign-ups
//! with one address. Add the `testkit` feature of `bazaar-core` to your
//! dev-dependencies to run it on yours.
//!
//! Needs nothing but a temporary directory.
//! `cargo run -p bazaar-examples --example own_store_adapter` runs the
//! suite (a broken contract panics, exiting non-zero) and then reopens the
//! file to show the users persisted;
//! `cargo test -p bazaar-examples --example own_store_adapter` runs the
//! suite as a test.

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bazaar_core::auth::{Email, User, UserRepository};
use bazaar_core::events::Event;
use bazaar_core::ids::UserId;
use bazaar_core::{ConflictReason, Error, Result};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// What the file holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Contents {
    users: Vec<User>,
    /// Every event committed with a change, oldest first.
    events: Vec<Event>,
}

/// Users in a JSON file. One writer at a time (the mutex); readers see the
/// last committed contents.
#[derive(Debug)]
struct FileUsers {
    path: PathBuf,
    contents: Mutex<Contents>,
}

/// The name [`Error::Unavailable`] gives this store.
const WHAT: &str = "user file";

impl FileUsers {
    /// Opens the store at `path`, empty when the file does not exist yet.
    ///
    /// # Errors
    /// `Unavailable` when the file cannot be read or is not a user file.
    async fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let contents = match tokio::fs::read(&path).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::unavailable(WHAT, e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Contents::default(),
            Err(e) => return Err(Error::unavailable(WHAT, e)),
        };
        Ok(Self { path, contents: Mutex::new(contents) })
    }

    /// Every event committed so far, read from the file itself (what a
    /// relay of this store's outbox would see after a restart).
    fn committed(path: &Path) -> Vec<Event> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<Contents>(&bytes).map(|c| c.events).unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Writes `contents` to a sibling temporary file, flushes it to disk,
    /// and renames it over the store's file.
    async fn commit(&self, contents: &Contents) -> Result<()> {
        let bytes = serde_json::to_vec(contents).map_err(|e| Error::internal("encode the user file", e))?;
        let temporary = self.path.with_extension("tmp");
        let write = async {
            let mut file = tokio::fs::File::create(&temporary).await?;
            tokio::io::AsyncWriteExt::write_all(&mut file, &bytes).await?;
            file.sync_all().await?;
            tokio::fs::rename(&temporary, &self.path).await
        };
        write.await.map_err(|e| Error::unavailable(WHAT, e))
    }
}

#[async_trait]
impl UserRepository for FileUsers {
    async fn insert(&self, user: &User, events: &[Event]) -> Result<()> {
        let mut contents = self.contents.lock().await;
        if contents.users.iter().any(|u| u.id == user.id) {
            return Err(Error::conflict(ConflictReason::Duplicate, "a user with this id exists"));
        }
        if contents.users.iter().any(|u| u.email == user.email) {
            return Err(Error::conflict(ConflictReason::Duplicate, "this e-mail is taken"));
        }
        // Change a copy and keep it only once it is on disk: a failed write
        // leaves the store as it was.
        let mut next = contents.clone();
        next.users.push(user.clone());
        next.events.extend_from_slice(events);
        self.commit(&next).await?;
        *contents = next;
        Ok(())
    }

    async fn get(&self, id: UserId) -> Result<Option<User>> {
        Ok(self.contents.lock().await.users.iter().find(|u| u.id == id).cloned())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>> {
        Ok(self.contents.lock().await.users.iter().find(|u| &u.email == email).cloned())
    }
}

/// The project's contract suite on a fresh file at `path`.
async fn prove(path: &Path) -> Result<()> {
    let store = FileUsers::open(path).await?;
    bazaar_core::testkit::users::users(&store, &|| FileUsers::committed(path)).await;
    Ok(())
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("users.json");
    prove(&path).await?;
    println!("FileUsers passes bazaar_core::testkit::users::users");

    // A new process would see the same users and events.
    let reopened = FileUsers::open(&path).await?;
    let contents = reopened.contents.lock().await.clone();
    println!("reopened {}: {} users, {} committed events", path.display(), contents.users.len(), contents.events.len());
    let ada = Email::parse("ada@example.com")?;
    let found = reopened.find_by_email(&ada).await?.ok_or("the suite's first user is in the file")?;
    println!("found {} ({}) after reopening", found.email.as_str(), found.id);
    // The suite stores Ada and one winner of the concurrent sign-up race.
    if contents.users.len() != 2 || contents.events.len() != 1 {
        return Err("the file holds exactly the users and events the suite committed".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn file_users_pass_the_user_repository_contract() {
        let dir = tempfile::tempdir().unwrap();
        super::prove(&dir.path().join("users.json")).await.unwrap();
    }

    #[tokio::test]
    async fn an_unreadable_file_is_unavailable_not_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.json");
        std::fs::write(&path, b"not json").unwrap();
        let err = super::FileUsers::open(&path).await.unwrap_err();
        assert_eq!(err.code(), "unavailable", "{err}");
    }
}
