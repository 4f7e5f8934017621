//! One request of a presence run and its answer, matched by `ref`.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends `request` and waits for the answer carrying its `ref`, skipping other frames; `None` when
/// none came within `wait`.
pub(crate) async fn ask(ws: &mut Socket, request: &Value, wait: Duration) -> Option<Value> {
    crate::frame_check::sent(&request.to_string());
    ws.send(Message::text(request.to_string())).await.ok()?;
    let reference = request.get("ref")?.clone();
    let answer = async {
        while let Some(Ok(frame)) = ws.next().await {
            let Message::Text(text) = frame else { continue };
            crate::frame_check::received(text.as_str());
            if let Ok(value) = serde_json::from_str::<Value>(text.as_str())
                && value.get("ref") == Some(&reference)
            {
                return Some(value);
            }
        }
        None
    };
    timeout(wait, answer).await.ok().flatten()
}

/// How long one request may wait for its answer.
pub(crate) const ANSWER: Duration = Duration::from_secs(10);
