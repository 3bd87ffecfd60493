use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    substrate::app::run::<media_service::startup::Application>().await
}
