//! The transactional outbox: repositories append events inside their write
//! transaction ([`append`]); relays claim, publish and complete them through
//! [`PgOutbox`] ([`OutboxStore`]).

use async_trait::async_trait;
use bazaar_core::Result;
use bazaar_core::clock::Timestamp;
use bazaar_core::events::{Event, OutboxEntry, OutboxStore};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Postgres, Row};

use crate::codec::{db_err, from_json, to_json, ts};
use crate::store::{PgStore, WriteTx};

// One statement for any number of events, in the order given (the seqs
// follow the array order through `WITH ORDINALITY`).
pub(crate) const APPEND: &str = "INSERT INTO outbox (event_id, event_type, occurred_at, envelope)
    SELECT e.event_id, e.event_type, e.occurred_at, e.envelope
    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
        WITH ORDINALITY AS e(event_id, event_type, occurred_at, envelope, n)
    ORDER BY e.n";

/// Wraps one data-modifying statement so that the same statement also
/// appends a batch of events to the outbox, if and only if the wrapped one
/// changed a row. One statement is atomic on its own, so a write and its
/// events commit together in one round trip, without `BEGIN` / `COMMIT`.
///
/// `$dml` must end in a `RETURNING` clause; the whole statement returns
/// `$select` over its rows (none when it changed nothing). The events are
/// bound as four arrays (see [`EventRows`]) at parameters `$a` to `$d`.
macro_rules! with_events {
    ($dml:literal, $select:literal, $a:literal, $b:literal, $c:literal, $d:literal) => {
        concat!(
            "WITH main AS (",
            $dml,
            "), appended AS (INSERT INTO outbox (event_id, event_type, occurred_at, envelope) ",
            "SELECT e.event_id, e.event_type, e.occurred_at, e.envelope FROM unnest($",
            $a,
            "::text[], $",
            $b,
            "::text[], $",
            $c,
            "::bigint[], $",
            $d,
            "::text[]) WITH ORDINALITY AS e(event_id, event_type, occurred_at, envelope, n) ",
            "WHERE EXISTS (SELECT 1 FROM main) ORDER BY e.n) SELECT ",
            $select,
            " FROM main"
        )
    };
}
pub(crate) use with_events;

// `with_events!` for a batch statement over many rows: each event carries
// its owner's id ($o), and only the events of rows the statement changed
// (the ids `main` returns) are appended.
macro_rules! with_owned_events {
    ($dml:literal, $select:literal, $o:literal, $a:literal, $b:literal, $c:literal, $d:literal) => {
        concat!(
            "WITH main AS (",
            $dml,
            "), appended AS (INSERT INTO outbox (event_id, event_type, occurred_at, envelope) ",
            "SELECT e.event_id, e.event_type, e.occurred_at, e.envelope FROM unnest($",
            $o,
            "::text[], $",
            $a,
            "::text[], $",
            $b,
            "::text[], $",
            $c,
            "::bigint[], $",
            $d,
            "::text[]) WITH ORDINALITY AS e(owner, event_id, event_type, occurred_at, envelope, n) ",
            "WHERE e.owner IN (SELECT id FROM main) ORDER BY e.n) SELECT ",
            $select,
            " FROM main"
        )
    };
}
pub(crate) use with_owned_events;

// Picks and leases the oldest claimable rows in one statement. `SKIP
// LOCKED` lets concurrent relays each take different rows instead of
// queueing behind each other; the lease (`claimed_until`) keeps a row away
// from other relays after this statement commits, until the claimer marks
// it published, releases it, or the lease runs out (a crashed relay).
//
// The picked seqs go to the outer UPDATE as an array (`= ANY(ARRAY(…))`, an
// init plan), not as a join: a join's plan, cached by the connection while
// the outbox was still empty, hash-joins against a sequential scan of the
// whole outbox, published rows included, on every claim ever after; the
// array can only be looked up in the primary key.
pub(crate) const CLAIM: &str = "UPDATE outbox SET claimed_until = $1
    WHERE seq = ANY(ARRAY(
        SELECT seq FROM outbox
        WHERE NOT published AND (claimed_until IS NULL OR claimed_until <= $2)
        ORDER BY seq LIMIT $3
        FOR UPDATE SKIP LOCKED))
    RETURNING seq, envelope";

pub(crate) const MARK_PUBLISHED: &str = "UPDATE outbox SET published = TRUE, claimed_until = NULL WHERE seq = ANY($1)";

pub(crate) const RELEASE: &str = "UPDATE outbox SET claimed_until = NULL WHERE NOT published AND seq = ANY($1)";

pub(crate) const ALL_EVENTS: &str = "SELECT envelope FROM outbox ORDER BY seq";

/// Events as the four column arrays [`APPEND`] and [`with_events!`] bind.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventRows {
    ids: Vec<String>,
    types: Vec<&'static str>,
    occurred_at: Vec<i64>,
    envelopes: Vec<String>,
}

impl EventRows {
    pub(crate) fn new(events: &[Event]) -> Result<Self> {
        let mut rows = Self::default();
        for event in events {
            rows.push(event)?;
        }
        Ok(rows)
    }

    fn push(&mut self, event: &Event) -> Result<()> {
        self.ids.push(event.id.to_string());
        self.types.push(event.event_type.as_str());
        self.occurred_at.push(ts(event.occurred_at)?);
        self.envelopes.push(to_json(event)?);
        Ok(())
    }

    /// The events of many rows, each with its row's id, as the five arrays
    /// [`with_owned_events!`] binds.
    pub(crate) fn owned<'e>(rows: impl IntoIterator<Item = (String, &'e [Event])>) -> Result<OwnedEventRows> {
        let mut owned = OwnedEventRows::default();
        for (owner, events) in rows {
            for event in events {
                owned.owners.push(owner.clone());
                owned.rows.push(event)?;
            }
        }
        Ok(owned)
    }

    /// Binds the four arrays as the query's next parameters.
    pub(crate) fn bind<'q>(&'q self, query: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        query
            .bind(self.ids.as_slice())
            .bind(self.types.as_slice())
            .bind(self.occurred_at.as_slice())
            .bind(self.envelopes.as_slice())
    }
}

/// Events tagged with the ids of the rows they belong to.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnedEventRows {
    owners: Vec<String>,
    rows: EventRows,
}

impl OwnedEventRows {
    /// Binds the five arrays as the query's next parameters.
    pub(crate) fn bind<'q>(&'q self, query: Query<'q, Postgres, PgArguments>) -> Query<'q, Postgres, PgArguments> {
        self.rows.bind(query.bind(self.owners.as_slice()))
    }
}

/// Appends the events of a unit of work to the outbox, inside its
/// transaction, in one statement.
pub(crate) async fn append(tx: &mut WriteTx, events: &[Event]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let rows = EventRows::new(events)?;
    rows.bind(sqlx::query(APPEND)).execute(&mut **tx).await.map_err(db_err)?;
    Ok(())
}

/// The relay side of the outbox.
#[derive(Debug, Clone)]
pub struct PgOutbox {
    store: PgStore,
}

impl PgOutbox {
    pub(crate) fn new(store: PgStore) -> Self {
        Self { store }
    }

    /// Commits `events` on their own, for events that accompany no state
    /// change of this store.
    ///
    /// # Errors
    /// `Unavailable` when the database is; nothing is appended then.
    pub async fn append(&self, events: &[Event]) -> Result<()> {
        let mut tx = self.store.write().await?;
        append(&mut tx, events).await?;
        self.store.commit(tx).await
    }

    /// Every event ever committed, in commit order, published or not (for
    /// tests and operators; the relay uses [`OutboxStore::claim`]).
    ///
    /// # Errors
    /// `Unavailable` when the database is.
    pub async fn events(&self) -> Result<Vec<Event>> {
        let rows = sqlx::query(ALL_EVENTS).fetch_all(self.store.pool()).await.map_err(db_err)?;
        rows.iter().map(|r| from_json(r.get::<&str, _>(0))).collect()
    }
}

/// The seqs as BIGINTs; one beyond BIGINT's range names no row and is
/// skipped, as unknown seqs are.
fn seq_array(seqs: &[u64]) -> Vec<i64> {
    seqs.iter().filter_map(|&s| i64::try_from(s).ok()).collect()
}

#[async_trait]
impl OutboxStore for PgOutbox {
    async fn claim(&self, limit: usize, now: Timestamp, lease_until: Timestamp) -> Result<Vec<OutboxEntry>> {
        self.store
            .run(async {
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let (lease_until, now) = (ts(lease_until)?, ts(now)?);
                // One statement: autocommitted, the lease is taken in one round trip.
                let rows = self.store.write_rows(|| sqlx::query(CLAIM).bind(lease_until).bind(now).bind(limit)).await?;
                let mut entries = rows
                    .iter()
                    .map(|r| {
                        let seq: i64 = r.get(0);
                        Ok(OutboxEntry { seq: crate::codec::uint(seq)?, event: from_json(r.get::<&str, _>(1))? })
                    })
                    .collect::<Result<Vec<_>>>()?;
                // RETURNING does not promise an order.
                entries.sort_by_key(|e| e.seq);
                Ok(entries)
            })
            .await
    }

    async fn mark_published(&self, seqs: &[u64]) -> Result<()> {
        self.store
            .run(async {
                if seqs.is_empty() {
                    return Ok(());
                }
                let seqs = seq_array(seqs);
                self.store.write_one(|| sqlx::query(MARK_PUBLISHED).bind(seqs.clone())).await.map(|_| ())
            })
            .await
    }

    async fn release(&self, seqs: &[u64]) -> Result<()> {
        self.store
            .run(async {
                if seqs.is_empty() {
                    return Ok(());
                }
                let seqs = seq_array(seqs);
                self.store.write_one(|| sqlx::query(RELEASE).bind(seqs.clone())).await.map(|_| ())
            })
            .await
    }
}
