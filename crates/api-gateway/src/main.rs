use std::process::ExitCode;

use api_gateway::configuration::Settings;
use api_gateway::startup::Application;

#[tokio::main]
async fn main() -> ExitCode {
    substrate::app::main(
        "api-gateway",
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
