//! Rebuilds the crate when a migration is added or edited: `sqlx::migrate!`
//! embeds `migrations/` at compile time, and Cargo does not track that
//! directory on its own (a stale build would ship without the new migration).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
