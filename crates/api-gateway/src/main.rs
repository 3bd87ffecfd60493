use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    substrate::app::run::<api_gateway::startup::Application>().await
}
