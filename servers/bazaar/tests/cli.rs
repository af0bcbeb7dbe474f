//! The `bazaar` binary's command-line contract: help and version, exit code
//! 2 with a named setting on bad configuration, the one-shot commands
//! (`migrate`, `seed`, `worker dlq`), and a standalone worker that serves
//! its health route and stops on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_bazaar");

/// The binary with a clean environment (no settings leaking in from the
/// developer's shell) and quiet logs.
fn bazaar(data_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "NATS_URL",
        "BAZAAR_ADMIN_EMAIL",
        "BAZAAR_ADMIN_PASSWORD",
        "BAZAAR_HTTP_ADDR",
        "BAZAAR_GRPC_ADDR",
        "BAZAAR_DEMO",
    ] {
        command.env_remove(var);
    }
    command.env("BAZAAR_LOG", "warn").env("BAZAAR_DATA_DIR", data_dir).stdin(Stdio::null());
    command
}

fn run(command: &mut Command) -> (Option<i32>, String, String) {
    let Output { status, stdout, stderr } = command.output().expect("run bazaar");
    (status.code(), String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).into_owned())
}

#[test]
fn version_and_help_describe_the_commands_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(bazaar(dir.path()).arg("--version"));
    assert_eq!((code, out.trim()), (Some(0), concat!("bazaar ", env!("CARGO_PKG_VERSION"))));
    let (code, out, _) = run(bazaar(dir.path()).arg("--help"));
    assert_eq!(code, Some(0));
    for word in ["serve", "http", "grpc", "worker", "migrate", "seed", "DATABASE_URL", "REDIS_URL", "NATS_URL"] {
        assert!(out.contains(word), "--help does not mention {word}:\n{out}");
    }
    let (code, out, _) = run(bazaar(dir.path()).args(["serve", "--help"]));
    assert_eq!(code, Some(0));
    assert!(out.contains("--demo") && out.contains("--http-addr") && out.contains("BAZAAR_ADMIN_PASSWORD"), "{out}");
}

/// Arguments, environment, and the start of the expected stderr.
type Case = (&'static [&'static str], &'static [(&'static str, &'static str)], &'static str);

#[test]
fn a_bad_setting_exits_with_code_2_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [Case; 4] = [
        (&["serve"], &[("DATABASE_URL", "mysql://db/bazaar")], "error: invalid DATABASE_URL: "),
        (&["serve", "--http-addr", "localhost"], &[], "error: invalid --http-addr: "),
        (&["http"], &[("BAZAAR_ADMIN_EMAIL", "root@example.com")], "error: invalid BAZAAR_ADMIN_PASSWORD: "),
        (&["migrate"], &[("BAZAAR_LOG_FORMAT", "xml")], "error: invalid BAZAAR_LOG_FORMAT: "),
    ];
    for (args, env, expected) in cases {
        let (code, out, err) = run(bazaar(dir.path()).args(args).envs(env.iter().copied()));
        assert_eq!(code, Some(2), "{args:?} {env:?}: {err}");
        assert!(err.starts_with(expected), "{args:?} {env:?}: stderr was {err:?}");
        assert!(out.is_empty(), "nothing on stdout: {out}");
    }
    assert!(!dir.path().join("bazaar.db").exists(), "nothing is opened before the settings are valid");
}

#[test]
fn a_taken_port_fails_the_start_with_the_flag_named() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, err) = run(bazaar(dir.path()).args(["http", "--http-addr", &addr]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!("cannot listen on {addr} (--http-addr)")), "{err}");
}

#[test]
fn migrate_creates_the_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(bazaar(dir.path()).arg("migrate"));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "database migrated (sqlite)");
    assert!(dir.path().join("bazaar.db").exists());
    // Migrating again is a no-op, not an error.
    assert_eq!(run(bazaar(dir.path()).arg("migrate")).0, Some(0));
}

#[test]
fn seeding_tops_the_catalog_up_and_never_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(bazaar(dir.path()).args(["seed", "--products", "3"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("demo catalog: 3 products (3 new)"), "{out}");
    for email in ["admin@demo.bazaar", "vendor@demo.bazaar", "buyer@demo.bazaar", "demo-password"] {
        assert!(out.contains(email), "logins not printed: {out}");
    }
    let (code, out, _) = run(bazaar(dir.path()).args(["seed", "--products", "3"]));
    assert_eq!(code, Some(0));
    assert!(out.contains("demo catalog: 3 products, already seeded"), "{out}");
    let (code, out, _) = run(bazaar(dir.path()).args(["seed", "--products", "5"]));
    assert_eq!(code, Some(0));
    assert!(out.contains("demo catalog: 5 products (2 new)"), "{out}");
}

#[test]
fn dead_letter_commands_work_without_a_running_worker() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(bazaar(dir.path()).args(["worker", "dlq", "list"]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "0 dead letter(s)");
    let (code, out, _) = run(bazaar(dir.path()).args(["worker", "dlq", "replay", "--all"]));
    assert_eq!((code, out.trim()), (Some(0), "0 of 0 replayed successfully"));
    let (code, _, err) = run(bazaar(dir.path()).args(["worker", "dlq", "replay", "not-an-id"]));
    assert_eq!(code, Some(1));
    assert!(err.contains("\"not-an-id\" is not a dead letter id"), "{err}");
    let (code, _, err) =
        run(bazaar(dir.path()).args(["worker", "dlq", "replay", "01a22bc8-528a-75a9-b6b8-ead41cac74b1"]));
    assert_eq!(code, Some(1));
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn a_standalone_worker_serves_its_health_route_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bazaar(dir.path())
        .args(["worker", "--http-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line on stdout").unwrap();
    let addr = first.strip_prefix("worker listening on http://").unwrap_or_else(|| panic!("{first}")).to_owned();

    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(stream, "GET /health/live HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0), "graceful stop");
}
