//! Stopping on SIGTERM or SIGINT. A process running as PID 1 (a container's entrypoint) gets
//! no default action for these signals: without handlers it ignores them, and every pod stop
//! waits for the grace period and ends in SIGKILL. The servers install handlers here and stop at
//! their next safe point (never in the middle of an FRR batch).

use tokio::sync::watch;

/// Becomes set once SIGTERM or SIGINT arrived; cheap to clone and to check.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Installs the SIGTERM and SIGINT handlers (inside a tokio runtime). A second signal
    /// while stopping ends the process at once, with status 1.
    pub fn on_signals() -> std::io::Result<Shutdown> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            let name = |term: bool| if term { "SIGTERM" } else { "SIGINT" };
            let first = tokio::select! {
                _ = term.recv() => true,
                _ = int.recv() => false,
            };
            tracing::info!(signal = name(first), "stopping");
            let _ = tx.send(true);
            let second = tokio::select! {
                _ = term.recv() => true,
                _ = int.recv() => false,
            };
            tracing::warn!(signal = name(second), "second signal while stopping; exiting now");
            std::process::exit(1);
        });
        Ok(Shutdown(rx))
    }

    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once a stop was requested.
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|stop| *stop).await.is_err() {
            // the sender is gone without a stop: never resolve
            std::future::pending::<()>().await;
        }
    }
}
