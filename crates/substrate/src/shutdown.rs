//! Signal-driven graceful shutdown.
//!
//! Kubernetes stops pods with SIGTERM and people stop local processes with Ctrl-C (SIGINT); both
//! must lead to the same orderly exit: stop taking work, finish what is in flight, commit offsets,
//! flush producers. The original services only trapped SIGINT.

use tokio_util::sync::CancellationToken;

/// A token that is cancelled on the first SIGTERM or SIGINT. Every long-running task of a service
/// gets a clone (or a child) and stops taking new work once it is cancelled.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let signal = wait_for_signal().await;
        tracing::info!(signal, "shutdown signal received");
        trigger.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        (Err(error), _) | (_, Err(error)) => {
            // Without handlers the process would die on the signal without cleanup; falling back
            // to Ctrl-C still gives an orderly exit for local runs.
            tracing::error!(%error, "could not install signal handlers; only Ctrl-C will stop gracefully");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "ctrl-c"
}
