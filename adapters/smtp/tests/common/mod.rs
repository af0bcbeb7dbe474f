//! The SMTP server the tests deliver to: aiosmtpd from PyPI, in a
//! virtualenv under `target/`, started once per test process (see
//! `tests/smtp_server.py` for what it accepts, defers and refuses), and
//! reading what it accepted.

// Shared with the other test suites that start Python servers.
#[path = "../../../../tests/support/python.rs"]
pub(crate) mod python;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Mutex, OnceLock};

use bazaar_core::ids::NotificationId;

/// The pinned server package.
pub(crate) const AIOSMTPD: &str = "aiosmtpd==1.4.6";

/// The running server: its port and the directory of accepted messages.
pub(crate) struct SmtpServer {
    pub(crate) port: u16,
    pub(crate) maildir: PathBuf,
    _child: Mutex<Child>,
}

/// The server, started on first use.
pub(crate) fn server() -> &'static SmtpServer {
    static SERVER: OnceLock<SmtpServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let python = python::venv("aiosmtpd-1.4.6", &[AIOSMTPD]);
        let port = python::free_port();
        let maildir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("test-servers")
            .join(format!("maildir-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&maildir).expect("maildir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
        let child = python::spawn(&python, &script, &[port.to_string(), maildir.display().to_string()]);
        SmtpServer { port, maildir, _child: Mutex::new(child) }
    })
}

/// One accepted message: its raw headers and body.
#[derive(Debug, Clone)]
pub(crate) struct Mail {
    pub(crate) headers: String,
    pub(crate) body: String,
}

impl Mail {
    /// The unfolded value of header `name`.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        let unfolded = self.headers.replace("\r\n ", " ").replace("\r\n\t", " ").replace("\n ", " ");
        unfolded.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    /// The body as text, undoing a quoted-printable transfer encoding
    /// (soft line breaks and `=XX` escapes).
    pub(crate) fn text(&self) -> String {
        let qp = self.header("Content-Transfer-Encoding").is_some_and(|e| e.eq_ignore_ascii_case("quoted-printable"));
        if !qp {
            return self.body.clone();
        }
        let joined = self.body.replace("=\r\n", "").replace("=\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = (bytes[i] == b'=' && i + 2 < bytes.len())
                .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
                .flatten();
            match hex {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The notification id in the `Message-ID` (`<id@domain>`).
    pub(crate) fn notification_id(&self) -> Option<NotificationId> {
        let id = self.header("Message-ID")?;
        id.trim_start_matches('<').split('@').next()?.parse().ok()
    }
}

impl SmtpServer {
    /// Every message accepted so far for `address`.
    pub(crate) fn mails_to(&self, address: &str) -> Vec<Mail> {
        python::accepted_mail(&self.maildir)
            .into_iter()
            .filter_map(|raw| {
                let (headers, body) = raw.split_once("\r\n\r\n").or_else(|| raw.split_once("\n\n"))?;
                Some(Mail { headers: headers.to_owned(), body: body.to_owned() })
            })
            .filter(|m| m.header("To").is_some_and(|to| to.contains(address)))
            .collect()
    }

    /// Makes the server defer (451) every message to `local`@… (`true`),
    /// or accept them again.
    pub(crate) fn refuse(&self, local: &str, refusing: bool) {
        let flag = self.maildir.join(format!("refuse-{}", local.to_ascii_lowercase()));
        if refusing {
            std::fs::write(flag, b"").expect("flag");
        } else {
            let _ = std::fs::remove_file(flag);
        }
    }
}
