//! `baseline`: the plain tokio WebSocket broadcast server the local gateway is measured against.

use std::net::IpAddr;

use clap::Parser;
use tokio::net::TcpListener;

/// A plain WebSocket broadcast server: the same protocol as the local gateway, none of its semantics.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// 0 picks a free port.
    #[arg(long, default_value_t = 3002)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Err(err) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("could not raise the open-file limit: {err}");
    }
    let listener = TcpListener::bind((args.host, args.port)).await?;
    println!("baseline ready: ws://{}", listener.local_addr()?);
    loadtest::baseline::serve(listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_binds_loopback_unless_told_otherwise() {
        assert_eq!(Args::parse_from(["baseline"]).host, IpAddr::from([127, 0, 0, 1]));
    }
}
