use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = dispatchlog::config::Cli::parse();
    match dispatchlog::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dispatchlog: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
