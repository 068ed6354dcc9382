//! Termination signals (SIGTERM, SIGINT): wait for one, clean up, go.
//!
//! [`terminated`] is for async code (a server's shutdown future); [`exit_on_signal`] is for the
//! synchronous commands (`apply`, `apply --watch`, `render`): a background thread waits for the
//! signal, runs the cleanup and exits with 128 + the signal number, as a shell reports it.

use tokio::signal::unix::{signal, SignalKind};

/// Waits for SIGTERM or SIGINT; returns the signal number.
pub async fn terminated() -> std::io::Result<i32> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => Ok(15),
        _ = int.recv() => Ok(2),
    }
}

/// From now on, SIGTERM or SIGINT run `cleanup` and end the process (exit code 128 + signal).
/// Returns once the handlers are in place, so that no signal can slip through unhandled.
pub fn exit_on_signal(cleanup: fn()) -> std::io::Result<()> {
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
