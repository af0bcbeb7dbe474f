//! Embed the marketplace in your own tokio program over the embedded SQLite
//! store: no server, no broker, one database file.
//!
//! Shows: opening and migrating [`SqliteStore`], the in-process event bus,
//! the two credential ports from `bazaar-auth`, building the
//! [`Marketplace`], and running one sale (sign-up, moderation, order,
//! payment, license, validation; see `walkthrough/mod.rs`) with
//! [`Marketplace::pump`] as the in-process worker. Then it closes the
//! database, opens the file again and validates the key there, to show that
//! everything (license included) lives in that one file.
//!
//! Needs nothing but a temporary directory. Run with
//! `cargo run -p bazaar-examples --example embed_sqlite`; it exits non-zero
//! unless the license is issued and still validates after the reopen.

mod walkthrough;

use std::path::Path;
use std::sync::Arc;

use bazaar_auth::{Argon2Passwords, JwtTokens};
use bazaar_core::assets::UrlSigner;
use bazaar_core::clock::{Clock, SystemClock};
use bazaar_core::entropy::{Entropy, OsEntropy};
use bazaar_core::licensing::LicenseSigner;
use bazaar_core::marketplace::{Bus, Marketplace, SigningKeys};
use bazaar_memory::{InProcessBus, MemoryBlobStore};
use bazaar_sqlite::SqliteStore;

use walkthrough::{MACHINE, Outcome, ensure, sell_one_license};

/// The marketplace's secrets. They must be the same on every start, or
/// license keys, download URLs and sessions issued before a restart stop
/// verifying: a real program reads them from its secret store; this one
/// draws them once per run.
#[derive(Clone, Copy)]
struct Secrets {
    license_seed: [u8; 32],
    url_secret: [u8; 32],
    webhook_secret: [u8; 32],
    jwt_secret: [u8; 32],
}

impl Secrets {
    fn draw() -> Self {
        let e = OsEntropy;
        Self {
            license_seed: e.bytes32(),
            url_secret: e.bytes32(),
            webhook_secret: e.bytes32(),
            jwt_secret: e.bytes32(),
        }
    }

    fn signing_keys(&self) -> Outcome<SigningKeys> {
        Ok(SigningKeys {
            license: LicenseSigner::from_seed(&self.license_seed),
            urls: UrlSigner::new(&self.url_secret)?,
            webhook_secret: self.webhook_secret.to_vec(),
        })
    }
}

/// The marketplace over the SQLite file at `path`.
async fn open(path: &Path, secrets: Secrets) -> Outcome<(SqliteStore, Marketplace)> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let db = SqliteStore::open(path).await?;
    db.migrate().await?;
    // The in-process bus reaches handlers in this process only, which is
    // all an embedded marketplace has. Asset bytes stay in memory here;
    // give it your own `BlobStore` to keep uploads.
    let bus = Bus::new(Arc::new(InProcessBus::new(clock.clone())));
    let market = Marketplace::builder(db.ports(bus, Arc::new(MemoryBlobStore::new())))
        .clock(clock)
        .keys(secrets.signing_keys()?)
        .passwords(Arc::new(Argon2Passwords::default()))
        .tokens(Arc::new(JwtTokens::new(secrets.jwt_secret)))
        .build()?;
    Ok((db, market))
}

#[tokio::main]
async fn main() -> Outcome {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("market.db");
    let secrets = Secrets::draw();
    println!("marketplace in {}", path.display());

    let (db, market) = open(&path, secrets).await?;
    let license = sell_one_license(&market, "sqlite", || async {
        // The in-process worker: relay the outbox, run the handlers.
        let handled = market.pump().await?;
        println!("  {handled} event deliveries handled");
        Ok(())
    })
    .await?;
    drop(market);
    db.close().await;

    println!("- reopen the file: the license is still there");
    let (db, market) = open(&path, secrets).await?;
    let check = market.licenses.validate(&license.key, Some(MACHINE)).await?;
    println!("  after reopening: valid={} ({:?})", check.valid, check.code);
    ensure(check.valid, "the license survives a restart")?;
    db.close().await;
    println!("done");
    Ok(())
}
