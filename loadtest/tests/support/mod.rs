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

/// Holds every frame the scenarios send and receive to `docs/asyncapi.yaml` from now on; when the
/// guard is dropped at the end of a test that did not fail otherwise, any frame the document does
/// not describe fails it.
pub fn frames_checked() -> FramesChecked {
    loadtest::frame_check::install(|sent, frame| {
        use testkit::contract::{Direction, contract};
        contract().violations(if sent { Direction::Sent } else { Direction::Received }, frame)
    });
    FramesChecked
}

pub struct FramesChecked;

impl Drop for FramesChecked {
    fn drop(&mut self) {
        let violations = loadtest::frame_check::violations();
        if !std::thread::panicking() && !violations.is_empty() {
            panic!("frames docs/asyncapi.yaml does not describe:\n{}", violations.join("\n"));
        }
    }
}
