//! [`Committer`]: a thread that commits the index on an interval, bounding
//! how long a write waits to become visible.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::CatalogIndex;

/// How often [`CatalogIndex::spawn_committer`] commits unless told
/// otherwise: a write is visible within this plus one commit (a few
/// milliseconds), well inside the one-second freshness target, while a busy
/// writer still makes at most four commits (and new segments) a second.
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(250);

/// Commits its index every interval until dropped; dropping it commits one
/// last time and joins the thread.
///
/// Each tick is [`CatalogIndex::commit`]: a commit when something was
/// written, else only a reload that picks up finished merges. A failed
/// commit is logged and retried at the next tick (the writes stay pending).
#[derive(Debug)]
pub struct Committer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl CatalogIndex {
    /// Starts a [`Committer`] for this index, committing every `every`.
    ///
    /// # Errors
    /// [`bazaar_core::Error::Unavailable`] when the thread cannot be started.
    pub fn spawn_committer(&self, every: Duration) -> bazaar_core::Result<Committer> {
        let (stop, stopped) = mpsc::channel::<()>();
        let index = self.clone();
        let thread = std::thread::Builder::new()
            .name("search-index-commit".into())
            .spawn(move || {
                loop {
                    let last = match stopped.recv_timeout(every) {
                        Err(RecvTimeoutError::Timeout) => false,
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                    };
                    if let Err(e) = index.commit() {
                        tracing::warn!(error = %e, "search index commit failed; retrying at the next tick");
                    }
                    if last {
                        return;
                    }
                }
            })
            .map_err(|e| bazaar_core::Error::unavailable(crate::error::WHAT, e))?;
        Ok(Committer { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread for its final commit.
        self.stop.take();
        if let Some(t) = self.thread.take() {
            // A panicked committer has nothing left to clean up.
            let _ = t.join();
        }
    }
}
