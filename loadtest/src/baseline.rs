//! The baseline: a plain tokio WebSocket broadcast server, with none of API Gateway's semantics.
//!
//! It speaks the same protocol as the local gateway (plain text and `echo` come back, `broadcast`
//! reaches everyone in the same envelope), but fans out in-process: no events, no queue, no
//! `@connections` calls. What the swarm measures against it is the floor this machine allows.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Frames waiting for one slow client before it misses some, like API Gateway's 429.
const OUTBOUND_BUFFER: usize = 1024;

#[derive(Default)]
struct Hub {
    clients: RwLock<HashMap<u64, mpsc::Sender<Utf8Bytes>>>,
    next_id: AtomicU64,
}

impl Hub {
    fn broadcast(&self, frame: &Utf8Bytes) {
        let clients = self.clients.read().unwrap_or_else(PoisonError::into_inner);
        for client in clients.values() {
            let _ = client.try_send(frame.clone());
        }
    }
}

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    action: &'a str,
    data: Box<RawValue>,
}

/// Serves until `shutdown` resolves.
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let hub = Arc::new(Hub::default());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                stream.set_nodelay(true).ok();
                tokio::spawn(client(hub.clone(), stream));
            }
        }
    }
}

async fn client(hub: Arc<Hub>, stream: TcpStream) {
    // The same buffer sizes as the local gateway, so memory per connection compares like for like.
    let settings = WebSocketConfig::default().read_buffer_size(4 * 1024).write_buffer_size(0);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(settings)).await else { return };
    let id = hub.next_id.fetch_add(1, Ordering::Relaxed);
    let name = format!("baseline{id:08}");
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(OUTBOUND_BUFFER);
    hub.clients.write().unwrap_or_else(PoisonError::into_inner).insert(id, tx.clone());
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            Some(frame) = rx.recv() => {
                if sink.send(Message::Text(frame)).await.is_err() {
                    break;
                }
            }
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Request<'_>>(&text) {
                    Ok(request) if request.action == "broadcast" => {
                        let sent_at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
                        let frame = format!(
                            r#"{{"type":"broadcast","id":"{}","from":"{name}","sentAt":{sent_at},"data":{}}}"#,
                            uuid::Uuid::new_v4(),
                            request.data.get()
                        );
                        hub.broadcast(&Utf8Bytes::from(frame));
                    }
                    _ => {
                        let _ = tx.try_send(text);
                    }
                },
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    hub.clients.write().unwrap_or_else(PoisonError::into_inner).remove(&id);
}
