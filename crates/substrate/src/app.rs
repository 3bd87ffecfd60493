//! The common `main` of every service: load settings, start telemetry, log the redacted
//! configuration, run until SIGTERM/SIGINT, and report how the process ended.
//!
//! A service is a [`Service`] (how it is built from its settings and run) with
//! [`ServiceSettings`] (where they come from and how they are checked); its `main` is
//! `substrate::app::run::<Application>().await`.

use std::fmt::Debug;
use std::future::Future;
use std::process::ExitCode;

use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::BoxError;
use crate::config::ConfigError;
use crate::telemetry::TelemetrySettings;

/// Environment variable names of an original service, each mapped to the key it sets.
pub type Aliases = &'static [(&'static str, &'static str)];

/// A service's settings: layered from its `config/` directory and the environment.
pub trait ServiceSettings: Debug + DeserializeOwned {
    /// The original deployment's environment names this service still accepts, beside the
    /// `APP__…` names: the alias sets of the shared parts it uses, then its own.
    const ALIASES: &'static [Aliases];

    /// The telemetry part of the settings.
    fn telemetry(&self) -> &TelemetrySettings;

    /// Cross-field checks after loading; an error stops the service before it starts.
    fn validate(&self) -> Result<(), ConfigError>;

    /// Loads the settings from `config_dir` and the environment, then validates them.
    fn load_from(config_dir: &str) -> Result<Self, ConfigError> {
        let settings: Self = crate::config::load_service(config_dir, Self::ALIASES)?;
        settings.validate()?;
        Ok(settings)
    }
}

/// A service binary: how it is built from its settings and run until shutdown.
pub trait Service: Sized {
    /// `service.name` in telemetry and log lines.
    const NAME: &'static str;
    /// The crate's `config/` directory (`concat!(env!("CARGO_MANIFEST_DIR"), "/config")`).
    const CONFIG_DIR: &'static str;
    /// Its settings.
    type Settings: ServiceSettings;

    /// Creates clients and binds listeners; contacts no dependency, so an unreachable one
    /// shows in readiness rather than as a crash.
    fn build(settings: Self::Settings) -> impl Future<Output = Result<Self, BoxError>>;

    /// Runs until `shutdown` is cancelled, then drains and flushes.
    fn run_until_stopped(
        self,
        shutdown: CancellationToken,
    ) -> impl Future<Output = Result<(), BoxError>>;
}

/// The `main` of service `S`: 0 after a clean shutdown, 1 when configuration, startup or the
/// service itself failed.
pub async fn run<S: Service>() -> ExitCode {
    main(
        S::NAME,
        || S::Settings::load_from(S::CONFIG_DIR),
        |settings, shutdown| async move { S::build(settings).await?.run_until_stopped(shutdown).await },
    )
    .await
}

async fn main<S, R, Fut>(
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
