//! Python test servers: a virtualenv under `target/` with pinned packages
//! from PyPI, and a child process listening on a free loopback port.
//! Included by path (`#[path]`) into every test suite that starts one:
//! the SMTP and S3 adapters' and the end-to-end connector scenario.
//!
//! Nothing is skipped: if Python, the install or the server fails, the
//! test panics saying what failed and how to run it by hand, with
//! `CI=true` as on a developer machine.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn fail(what: &str, detail: &str) -> ! {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    eprintln!("\n==================== TEST SERVER UNAVAILABLE ====================");
    eprintln!("{what}\n{detail}");
    eprintln!("These tests need python3 (with venv and pip) and PyPI to install their server.");
    eprintln!("{}", if ci { "(CI=true: this is a CI failure.)" } else { "" });
    eprintln!("=================================================================\n");
    panic!("{what}");
}

fn run(program: &Path, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| fail(&format!("could not run {}", program.display()), &e.to_string()));
    if !out.status.success() {
        let detail = format!(
            "{} {}\n{}{}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        fail(&format!("{} failed ({})", program.display(), out.status), &detail);
    }
}

/// The Python of a virtualenv named `name` holding `requirements`,
/// created (once, under `target/tmp/test-servers/`) if missing. Built
/// aside and renamed into place, so concurrent test processes never see
/// half an install.
pub(crate) fn venv(name: &str, requirements: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-servers");
    let dir = root.join(name);
    if dir.join(".ready").exists() {
        return dir.join("bin/python");
    }
    std::fs::create_dir_all(&root).unwrap_or_else(|e| fail("cannot create target/tmp/test-servers", &e.to_string()));
    let tmp = root.join(format!("{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    run(Path::new("python3"), &["-m", "venv", tmp.to_str().expect("utf-8 path")]);
    let mut args = vec!["-m", "pip", "install", "--disable-pip-version-check", "--quiet"];
    args.extend_from_slice(requirements);
    run(&tmp.join("bin/python"), &args);
    std::fs::write(tmp.join(".ready"), requirements.join("\n")).expect("write marker");
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another test process finished first; use theirs.
        let _ = std::fs::remove_dir_all(&tmp);
        assert!(dir.join(".ready").exists(), "{} is neither ready nor replaceable", dir.display());
    }
    dir.join("bin/python")
}

/// A free TCP port on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Starts `python script args…`, waiting (up to a minute) for it to print
/// `READY`. Its standard input stays open for as long as the returned
/// child lives; the scripts exit when it closes, so a server never
/// outlives the test process.
pub(crate) fn spawn(python: &Path, script: &Path, args: &[String]) -> Child {
    let mut child = Command::new(python)
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("could not start {}", script.display()), &e.to_string()));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) if line.trim() == "READY" => child,
        Ok(line) => fail(&format!("{} did not start", script.display()), &format!("it printed {line:?}")),
        Err(_) => fail(&format!("{} did not get ready within 60 s", script.display()), ""),
    }
}

/// The messages `adapters/smtp/tests/smtp_server.py` accepted into
/// `maildir`, oldest first (it writes each aside and renames it into place,
/// so none is read half-written).
#[allow(dead_code)] // Only the suites with an SMTP server read mail.
pub(crate) fn accepted_mail(maildir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(maildir)
        .expect("maildir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml") && !n.starts_with('.'))
        .collect();
    names.sort();
    names.into_iter().filter_map(|n| std::fs::read_to_string(maildir.join(n)).ok()).collect()
}
