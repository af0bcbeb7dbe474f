//! Users ([`UserRepository`]); the e-mail is unique by constraint.

use async_trait::async_trait;
use bazaar_core::Result;
use bazaar_core::auth::{Email, User, UserRepository};
use bazaar_core::events::Event;
use bazaar_core::ids::UserId;
use sqlx::Row;

use crate::codec::{db_err, from_json, to_json};
use crate::outbox::append;
use crate::store::PgStore;

pub(crate) const INSERT: &str = "INSERT INTO users (id, email, doc) VALUES ($1, $2, $3)";
pub(crate) const GET: &str = "SELECT doc FROM users WHERE id = $1";
pub(crate) const BY_EMAIL: &str = "SELECT doc FROM users WHERE email = $1";

/// Users in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgUsers {
    store: PgStore,
}

impl PgUsers {
    pub(crate) fn new(store: PgStore) -> Self {
        Self { store }
    }

    async fn one(&self, sql: &'static str, key: String) -> Result<Option<User>> {
        let row = sqlx::query(sql).bind(key).fetch_optional(self.store.pool()).await.map_err(db_err)?;
        row.map(|r| from_json(r.get::<&str, _>(0))).transpose()
    }
}

#[async_trait]
impl UserRepository for PgUsers {
    async fn insert(&self, user: &User, events: &[Event]) -> Result<()> {
        self.store
            .run(async {
                let mut tx = self.store.write().await?;
                // The e-mail is already normalised by `Email::parse`, so the unique
                // index compares what the domain compares.
                sqlx::query(INSERT)
                    .bind(user.id.to_string())
                    .bind(user.email.as_str())
                    .bind(to_json(user)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                append(&mut tx, events).await?;
                self.store.commit(tx).await
            })
            .await
    }

    async fn get(&self, id: UserId) -> Result<Option<User>> {
        self.store.run(async { self.one(GET, id.to_string()).await }).await
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>> {
        self.store.run(async { self.one(BY_EMAIL, email.as_str().to_owned()).await }).await
    }
}
