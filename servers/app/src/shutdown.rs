//! One stop signal fanned out to every server of the process.
//!
//! `bazaar serve` runs several servers that each take a shutdown future;
//! [`Shutdown`] hands each its own [`Shutdown::wait`] future, and is
//! triggered once: by SIGINT/SIGTERM, or by the first server that fails so
//! the others stop too instead of leaving a half-working process.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

/// A cloneable, trigger-once stop signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A signal not yet triggered.
    pub fn new() -> Self {
        Self { tx: Arc::new(watch::channel(false).0) }
    }

    /// Triggers the signal; every [`Shutdown::wait`] future completes.
    /// Triggering twice is harmless.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the signal was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once the signal is triggered (at once if it already was).
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            // The sender lives in `self.tx`, shared by every clone; if all
            // of them are gone nobody can trigger any more, so stop too.
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }

    /// Triggers the signal on SIGINT (Ctrl-C) or SIGTERM.
    ///
    /// The signal streams are registered before this returns, so a process
    /// that calls it before announcing that it listens cannot miss a stop
    /// sent right after the announcement (a stream created later does not
    /// see a signal delivered before it existed).
    pub fn trigger_on_signals(&self) {
        let this = self.clone();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = [("SIGINT", signal(SignalKind::interrupt())), ("SIGTERM", signal(SignalKind::terminate()))];
            for (name, stream) in streams {
                let this = this.clone();
                match stream {
                    Ok(mut stream) => {
                        tokio::spawn(async move {
                            tokio::select! {
                                received = stream.recv() => if received.is_some() {
                                    tracing::info!(signal = name, "stop signal received, shutting down");
                                    this.trigger();
                                },
                                () = this.wait() => {}
                            }
                        });
                    }
                    Err(e) => tracing::error!(signal = name, error = %e, "cannot listen for the stop signal"),
                }
            }
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            tokio::select! {
                () = bazaar_http::shutdown_signal() => this.trigger(),
                () = this.wait() => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_waiter_wakes_once_triggered_even_late_ones() {
        let shutdown = Shutdown::new();
        let early = tokio::spawn(shutdown.clone().wait());
        assert!(!shutdown.is_triggered());
        shutdown.clone().trigger();
        early.await.unwrap();
        assert!(shutdown.is_triggered());
        // A waiter created after the trigger completes at once.
        shutdown.wait().await;
        shutdown.trigger();
    }
}
