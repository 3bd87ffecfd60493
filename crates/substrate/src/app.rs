//! The common `main` of every service: load settings, start telemetry, log the redacted
//! configuration, run until SIGTERM/SIGINT, and report how the process ended.

use std::fmt::Debug;
use std::future::Future;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::BoxError;
use crate::config::ConfigError;
use crate::telemetry::TelemetrySettings;

/// Settings that carry a telemetry block.
pub trait ServiceSettings: Debug {
    /// The telemetry part of the settings.
    fn telemetry(&self) -> &TelemetrySettings;
}

/// Runs a service to completion and maps the outcome to an exit code: 0 after a clean
/// shutdown, 1 when configuration, startup or the service itself failed.
pub async fn main<S, R, Fut>(
    service: &'static str,
    load: impl FnOnce() -> Result<S, ConfigError>,
    run: R,
) -> ExitCode
where
    S: ServiceSettings,
    R: FnOnce(S, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    let settings = match load() {
        Ok(settings) => settings,
        Err(error) => {
            // Telemetry is not up yet, so this goes straight to stderr.
            eprintln!("{service}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let _telemetry = match crate::telemetry::init(service, settings.telemetry()) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("{service}: telemetry: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Secrets are wrapped in `SecretString`, whose Debug output is redacted.
    tracing::info!(service, settings = ?settings, "starting");
    let shutdown = crate::shutdown::on_signal();
    match run(settings, shutdown).await {
        Ok(()) => {
            tracing::info!(service, "stopped cleanly");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(service, error.message = %error, error.cause_chain = %crate::telemetry::cause_chain(&*error), "stopped with an error");
            ExitCode::FAILURE
        }
    }
}
