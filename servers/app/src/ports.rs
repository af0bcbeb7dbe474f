//! Every port the marketplace needs, opened from the configured URLs:
//! SQLite (the embedded default) or PostgreSQL, asset bytes in the data
//! directory, and the in-process bus until [`crate::Broker`] replaces it.

use std::path::Path;
use std::sync::Arc;

use bazaar_core::Result;
use bazaar_core::assets::BlobStore;
use bazaar_core::clock::Clock;
use bazaar_core::marketplace::{Bus, Ports};
use bazaar_memory::{InProcessBus, MemoryBackend};
use bazaar_postgres::PgStore;
use bazaar_sqlite::SqliteStore;

use crate::blobs::LocalBlobStore;
use crate::config::Database;

/// Everything in memory (tests, examples): nothing survives the process.
pub fn memory(clock: Arc<dyn Clock>) -> Ports {
    MemoryBackend::new(clock).ports()
}

/// Opens and migrates `database`; blobs go to `<data_dir>/blobs`; the bus
/// is in-process; product searches go through the one-second cache.
///
/// # Errors
/// [`bazaar_core::Error::Unavailable`] when the database cannot be opened
/// or migrated, or the blob directory cannot be created.
pub async fn open(database: &Database, data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Ports> {
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::open(data_dir.join("blobs")).await?);
    open_with(database, blobs, clock).await
}

/// [`open`] with asset bytes in `blobs` (a bucket, or a directory chosen elsewhere).
///
/// # Errors
/// As [`open`].
pub async fn open_with(database: &Database, blobs: Arc<dyn BlobStore>, clock: Arc<dyn Clock>) -> Result<Ports> {
    let bus = Bus::new(Arc::new(InProcessBus::new(clock.clone())));
    let ports = match database {
        Database::Sqlite(url) => {
            if let Some(path) = url.strip_prefix("sqlite://").filter(|p| !p.starts_with(':')) {
                let dir = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty());
                if let Some(dir) = dir {
                    tokio::fs::create_dir_all(dir)
                        .await
                        .map_err(|e| bazaar_core::Error::unavailable("data directory", e))?;
                }
            }
            let db = SqliteStore::connect(url).await?;
            db.migrate().await?;
            db.ports(bus, blobs)
        }
        Database::Postgres(url) => {
            let db = PgStore::connect(url).await?;
            db.migrate().await?;
            db.ports(bus, blobs)
        }
    };
    Ok(ports.with_search_cache(clock))
}
