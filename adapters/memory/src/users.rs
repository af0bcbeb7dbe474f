//! In-memory [`UserRepository`]: users keyed by id with a unique e-mail index.

use bazaar_core::ConflictReason;
use std::collections::HashMap;

use async_trait::async_trait;
use bazaar_core::auth::{Email, User, UserRepository};
use bazaar_core::events::Event;
use bazaar_core::ids::UserId;
use bazaar_core::{Error, Result};
use parking_lot::Mutex;

use crate::outbox::MemoryOutbox;

#[derive(Debug, Default)]
struct Table {
    by_id: HashMap<UserId, User>,
    by_email: HashMap<Email, UserId>,
}

/// In-memory users; thread-safe, e-mail unique.
#[derive(Debug)]
pub struct MemoryUsers {
    table: Mutex<Table>,
    outbox: MemoryOutbox,
}

impl MemoryUsers {
    /// An empty store committing events to `outbox`.
    pub fn new(outbox: MemoryOutbox) -> Self {
        Self { table: Mutex::default(), outbox }
    }
}

#[async_trait]
impl UserRepository for MemoryUsers {
    async fn insert(&self, user: &User, events: &[Event]) -> Result<()> {
        let mut t = self.table.lock();
        if t.by_email.contains_key(&user.email) {
            return Err(Error::conflict(ConflictReason::Duplicate, "e-mail is already registered"));
        }
        if t.by_id.contains_key(&user.id) {
            return Err(Error::conflict(ConflictReason::Duplicate, format!("user {} already exists", user.id)));
        }
        t.by_email.insert(user.email.clone(), user.id);
        t.by_id.insert(user.id, user.clone());
        self.outbox.append(events);
        Ok(())
    }

    async fn get(&self, id: UserId) -> Result<Option<User>> {
        Ok(self.table.lock().by_id.get(&id).cloned())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>> {
        let t = self.table.lock();
        Ok(t.by_email.get(email).and_then(|id| t.by_id.get(id)).cloned())
    }
}
