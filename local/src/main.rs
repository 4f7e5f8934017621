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
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr, in colour only on a terminal; stdout carries the URLs, for scripts.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    cli::run(cli::Args::parse()).await
}
