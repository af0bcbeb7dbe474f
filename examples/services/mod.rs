//! Reaching the PostgreSQL and NATS servers the broker-backed examples
//! need, and saying how to start them when they are not there.

// Each example compiles this module on its own and uses part of it (the
// NATS-only example needs no PostgreSQL helper).
#![allow(dead_code)]

use std::error::Error;
use std::fmt::Display;

/// `DATABASE_URL` when set, else the local test server (trust auth).
pub(crate) fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `NATS_URL` when set, else the local server.
pub(crate) fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// How to start PostgreSQL on this machine (Debian's cluster tools).
pub(crate) const START_POSTGRES: &str = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";

/// How to start NATS with JetStream on this machine.
pub(crate) const START_NATS: &str = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
     -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server";

/// Prints which service is missing and how to start it; the error it
/// returns ends the example non-zero.
pub(crate) fn unreachable(service: &str, url: &str, cause: impl Display, start: &str) -> Box<dyn Error> {
    eprintln!();
    eprintln!("This example needs {service} at {url} and could not reach it: {cause}");
    eprintln!("Start it with:");
    eprintln!("    {start}");
    eprintln!();
    format!("{service} is not reachable at {url}").into()
}

/// A short random tag, so a run's schema, stream and subjects cannot meet
/// another run's (or the test suites').
pub(crate) fn run_tag() -> String {
    use bazaar_core::entropy::{Entropy, OsEntropy};
    hex_prefix(&OsEntropy.bytes32())
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(4).map(|b| format!("{b:02x}")).collect()
}
