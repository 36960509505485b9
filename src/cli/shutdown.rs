//! SIGINT and SIGTERM, heard from the moment a [`Shutdown`] exists.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Both signals, registered once. A loop that made a fresh listener on each turn would lose
/// a signal that came while it handled something else: tokio gives a listener only the
/// signals that arrive after it was made.
pub struct Shutdown {
    term: Option<Signal>,
    int: Option<Signal>,
}

impl Shutdown {
    /// Registers now, so a signal from here on is kept until [`Shutdown::recv`] sees it.
    pub fn new() -> Self {
        Self {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    /// Resolves at the next SIGINT or SIGTERM, or at once for one that came meanwhile.
    pub async fn recv(&mut self) {
        async fn next(s: &mut Option<Signal>) {
            // No listener (it could not be registered) or no signal driver: never.
            let heard = match s {
                Some(s) => s.recv().await.is_some(),
                None => false,
            };
            if !heard {
                std::future::pending::<()>().await;
            }
        }
        tokio::select! {
            _ = next(&mut self.term) => {}
            _ = next(&mut self.int) => {}
        }
    }
}
