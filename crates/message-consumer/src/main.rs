use std::process::ExitCode;

use message_consumer::configuration::Settings;
use message_consumer::startup::Application;

#[tokio::main]
async fn main() -> ExitCode {
    substrate::app::main(
        "message-consumer",
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
