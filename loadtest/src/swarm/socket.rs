//! One WebSocket connection's socket: where to connect, from which loopback source address (so that
//! more connections than one address has ports can open), with a token when the run is
//! authenticated, and text sent in frames API Gateway accepts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use shared::limits::MAX_FRAME_BYTES;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

/// Ports one source address can use towards one destination: stay well inside Linux's ephemeral
/// range (32768–60999) before moving to the next loopback source address.
const CONNECTIONS_PER_SOURCE_ADDRESS: u32 = 20_000;

/// Where the swarm connects: the resolved address, and whether it is loopback (whose source
/// addresses can be spread over 127.0.0.0/8).
#[derive(Clone)]
pub(crate) struct Target {
    pub addr: SocketAddr,
    loopback: bool,
}

pub(crate) async fn resolve(url: &str) -> anyhow::Result<Target> {
    let uri: http::Uri = url.parse().with_context(|| format!("{url} is not a URL"))?;
    let host = uri.host().context("the URL has no host")?;
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("wss") { 443 } else { 80 });
    let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await?
        .next()
        .with_context(|| format!("{host} did not resolve"))?;
    Ok(Target { addr, loopback: addr.ip().is_loopback() })
}

/// Spreads connections over 127.0.0.1, .2, … once one source address would run out of ports.
pub(crate) fn source_address(target: &Target, index: u32, connections: u32) -> Option<IpAddr> {
    if !target.loopback || !target.addr.is_ipv4() || connections <= CONNECTIONS_PER_SOURCE_ADDRESS {
        return None;
    }
    let n = index / CONNECTIONS_PER_SOURCE_ADDRESS;
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, (n / 250) as u8, (n % 250) as u8 + 1)))
}

pub(crate) fn error_kind(err: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match err {
        Error::Http(response) => format!("handshake_{}", response.status().as_u16()),
        Error::Io(io) => format!("io_{:?}", io.kind()).to_lowercase(),
        Error::ConnectionClosed | Error::AlreadyClosed => "closed".into(),
        Error::Protocol(_) => "protocol".into(),
        Error::Tls(_) => "tls".into(),
        Error::Capacity(_) => "capacity".into(),
        _ => "other".into(),
    }
}

/// The receive buffer of a stuck connection: small, so that the server's side fills quickly.
pub(crate) const STUCK_RECEIVE_BUFFER: u32 = 4096;

/// How long one handshake may take before it counts as failed.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens one WebSocket connection from `source`, with a small receive buffer for a stuck one.
pub(crate) async fn connect(
    url: &str,
    target: &Target,
    source: Option<IpAddr>,
    receive_buffer: Option<u32>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    String,
> {
    let socket = if target.addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }
        .map_err(|e| format!("io_{:?}", e.kind()).to_lowercase())?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0)).map_err(|e| format!("bind_{:?}", e.kind()).to_lowercase())?;
    }
    if let Some(bytes) = receive_buffer {
        socket.set_recv_buffer_size(bytes).map_err(|e| format!("io_{:?}", e.kind()).to_lowercase())?;
    }
    let stream =
        socket.connect(target.addr).await.map_err(|e| format!("connect_{:?}", e.kind()).to_lowercase())?;
    stream.set_nodelay(true).ok();
    let (ws, _) = tokio_tungstenite::client_async_tls_with_config(url, stream, None, None)
        .await
        .map_err(|e| error_kind(&e))?;
    Ok(ws)
}

/// The URL connection `index` connects to: with a development token of its own, signed with
/// `jwt_secret`, when the run is authenticated.
pub(crate) fn url_for(url: &str, jwt_secret: Option<&str>, index: u32) -> String {
    let Some(secret) = jwt_secret else { return url.to_owned() };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let claims =
        authorizer::token::DevClaims { sub: format!("swarm-{index}"), exp: now + 3600, ..Default::default() };
    match authorizer::token::mint(secret.as_bytes(), &claims) {
        Ok(token) => with_token(url, &token),
        Err(_) => url.to_owned(),
    }
}

/// `url` with a `token` query parameter.
fn with_token(url: &str, token: &str) -> String {
    let has_path = url.split_once("://").is_some_and(|(_, rest)| rest.contains('/'));
    if has_path { format!("{url}?token={token}") } else { format!("{url}/?token={token}") }
}

/// `text` as one text message in frames of at most API Gateway's 32 KB: a larger single frame closes
/// the connection with 1009, so clients fragment what they send.
pub fn frames(text: String) -> Vec<Message> {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    if text.len() <= MAX_FRAME_BYTES {
        return vec![Message::text(text)];
    }
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(MAX_FRAME_BYTES).collect();
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(n, chunk)| {
            let opcode = if n == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
            Message::Frame(Frame::message(chunk.to_vec(), opcode, n == last))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_goes_in_the_query_string_with_or_without_a_path() {
        assert_eq!(with_token("ws://127.0.0.1:3001", "t"), "ws://127.0.0.1:3001/?token=t");
        assert_eq!(with_token("wss://x.example/Prod", "t"), "wss://x.example/Prod?token=t");
    }

    #[test]
    fn messages_past_32_kb_are_sent_in_fragments_of_at_most_32_kb() {
        assert!(matches!(frames("small".into()).as_slice(), [Message::Text(_)]));
        let big = "x".repeat(100 * 1024);
        let fragments = frames(big.clone());
        assert_eq!(fragments.len(), 4);
        let mut joined = Vec::new();
        for (n, fragment) in fragments.iter().enumerate() {
            let Message::Frame(frame) = fragment else { panic!("a raw frame") };
            assert!(frame.payload().len() <= MAX_FRAME_BYTES);
            assert_eq!(frame.header().is_final, n == 3);
            joined.extend_from_slice(frame.payload());
        }
        assert_eq!(joined, big.as_bytes());
    }
}
