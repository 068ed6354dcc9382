//! Termination signals (SIGTERM, SIGINT).
//!
//! A process running as PID 1 (a container's entrypoint) gets no default action for these
//! signals: without handlers it ignores them, and every pod stop waits for the grace period and
//! ends in SIGKILL. [`Shutdown`] is for the servers, which stop at their next safe point (never
//! in the middle of an FRR batch); [`exit_on_signal`] is for the synchronous commands (`apply`,
//! `apply --watch`, `render`, `lab`): a background thread waits for the signal, runs the cleanup
//! and exits with 128 + the signal number, as a shell reports it.

use tokio::signal::unix::{signal, SignalKind};

/// From now on, SIGTERM or SIGINT run `cleanup` and end the process (exit code 128 + signal).
/// Returns once the handlers are in place, so that no signal can slip through unhandled.
pub fn exit_on_signal(cleanup: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_io().build() {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        rt.block_on(async move {
            let handlers = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
            let (mut term, mut int) = match handlers {
                (Ok(t), Ok(i)) => (t, i),
                (Err(e), _) | (_, Err(e)) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let signo = tokio::select! {
                _ = term.recv() => 15,
                _ = int.recv() => 2,
            };
            cleanup();
            std::process::exit(128 + signo);
        });
    })?;
    ready_rx.recv().unwrap_or_else(|_| Err(std::io::Error::other("the signal thread ended")))
}

/// Becomes set once SIGTERM or SIGINT arrived; cheap to clone and to check.
#[derive(Clone, Debug)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    /// Installs the SIGTERM and SIGINT handlers (inside a tokio runtime). A second signal
    /// while stopping ends the process at once, with status 1.
    pub fn on_signals() -> std::io::Result<Shutdown> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (tx, rx) = tokio::sync::watch::channel(false);
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
