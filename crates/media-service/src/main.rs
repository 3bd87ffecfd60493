use std::process::ExitCode;

use media_service::configuration::Settings;
use media_service::startup::Application;

#[tokio::main]
async fn main() -> ExitCode {
    substrate::app::main(
        "media-service",
        Settings::load,
        |settings, shutdown| async move {
            Application::build(settings)
                .await?
                .run_until_stopped(shutdown)
                .await
        },
    )
    .await
}
