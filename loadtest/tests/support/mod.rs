//! The local gateway on a free loopback port, for the swarm's tests.

use local::{Gateway, Settings};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Starts a gateway with `settings`: its WebSocket URL, and the token that stops it.
pub async fn gateway(settings: Settings) -> (String, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let gateway = Gateway::new(listener, settings).expect("gateway");
    let url = gateway.ws_url();
    let shutdown = CancellationToken::new();
    tokio::spawn(gateway.run(shutdown.clone().cancelled_owned()));
    (url, shutdown)
}
