//! The S3 API server the tests use: moto's server mode from PyPI, in a
//! virtualenv under `target/`, started once per test process, and a fresh
//! bucket per test.

// Shared with the other test suites that start Python servers.
#[path = "../../../../tests/support/python.rs"]
pub(crate) mod python;

use std::path::Path;
use std::process::Child;
use std::sync::{Mutex, OnceLock};

use bazaar_s3::S3Config;

/// The pinned server package.
pub(crate) const MOTO: &str = "moto[server]==5.2.6";

/// The running server.
pub(crate) struct S3Server {
    pub(crate) endpoint: String,
    _child: Mutex<Child>,
}

/// The server, started on first use.
pub(crate) fn server() -> &'static S3Server {
    static SERVER: OnceLock<S3Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let python = python::venv("moto-5.2.6", &[MOTO]);
        let port = python::free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moto_server.py");
        let child = python::spawn(&python, &script, &[port.to_string()]);
        S3Server { endpoint: format!("http://127.0.0.1:{port}"), _child: Mutex::new(child) }
    })
}

/// A new, empty bucket on the server and a configuration for it.
pub(crate) async fn fresh_bucket() -> S3Config {
    let server = server();
    let bucket = format!("bazaar-test-{}", uuid::Uuid::now_v7().simple());
    // moto takes an unsigned CreateBucket; object_store cannot create buckets.
    let created = reqwest::Client::new().put(format!("{}/{bucket}", server.endpoint)).send().await;
    let status = created.unwrap_or_else(|e| panic!("creating bucket {bucket} on {}: {e}", server.endpoint)).status();
    assert!(status.is_success(), "creating bucket {bucket}: HTTP {status}");
    S3Config::from_values(&bucket, "us-east-1", Some(&server.endpoint), "testing", "testing").unwrap()
}
