use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    substrate::app::run::<message_consumer::startup::Application>().await
}
