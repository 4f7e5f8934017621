//! `local`: runs the WebSocket API on this machine. `cargo run --release -p local -- --help`.

mod cli;

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

// Every delivery is an SDK call that allocates freely; glibc's malloc was a quarter of the gateway's
// CPU in a 10,000-connection broadcast.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Logs go to stderr, in colour only on a terminal; stdout carries the URLs, for scripts.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    match cli::run(cli::Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // What went wrong and why, on one line: a command's mistake is the user's to read, not a
            // debug dump with a backtrace (which `RUST_BACKTRACE` would add to anyhow's `Debug`).
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
