//! A user with many connections disconnected by the server API: how long until every socket is
//! closed, and whether each connection's `leave` frame and lifecycle events came once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::calls::{Caller, token};

/// A user's connection, subscribed to `room/kick`: how long after `kicked` (set when the
/// disconnect is sent) its socket closed, if it did.
async fn member(ws_url: String, kicked: Arc<Mutex<Option<Instant>>>) -> anyhow::Result<Option<Duration>> {
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{ws_url}/?token={}", token("mallory", false)?)).await?;
    socket.send(Message::text(json!({"action":"subscribe","channel":"room/kick"}).to_string())).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) => {
                return Ok(kicked.lock().await.map(|at| at.elapsed()));
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_))) => return Ok(kicked.lock().await.map(|at| at.elapsed())),
            Err(_) => return Ok(None),
        }
    }
}

pub async fn disconnect_phase(
    connections: usize,
    caller: &Arc<Caller>,
    ws_url: &str,
    http_url: &str,
) -> anyhow::Result<()> {
    let (mut watcher, _) =
        tokio_tungstenite::connect_async(format!("{ws_url}/?token={}", token("watcher", false)?)).await?;
    watcher
        .send(Message::text(json!({"action":"subscribe","channel":"room/kick","joinLeave":true}).to_string()))
        .await?;
    let kicked = Arc::new(Mutex::new(None));
    let members: Vec<_> =
        (0..connections).map(|_| tokio::spawn(member(ws_url.to_owned(), kicked.clone()))).collect();
    let (mut joins, mut ids) = (0, HashSet::new());
    while joins < connections + 1 {
        let frame = tokio::time::timeout(Duration::from_secs(30), watcher.next())
            .await?
            .context("the watcher's socket")??;
        if let Message::Text(text) = frame
            && serde_json::from_str::<Value>(&text)?["type"] == "join"
        {
            joins += 1;
        }
    }
    let sent = Instant::now();
    *kicked.lock().await = Some(sent);
    let response = caller
        .http
        .post(format!("{}/api/disconnect", caller.base))
        .bearer_auth(&caller.bearer)
        .body(json!({"user": "mallory", "code": 4003, "reason": "banned"}).to_string())
        .send()
        .await?;
    let answered = sent.elapsed();
    let answer: Value = serde_json::from_str(&response.text().await?)?;
    let mut closed = Vec::new();
    for member in members {
        if let Some(after) = member.await?? {
            closed.push(after);
        }
    }
    let last = closed.iter().max().copied().unwrap_or_default();
    let mut leaves = 0;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(Duration::from_secs(2), watcher.next()).await {
        if let Message::Text(text) = frame {
            let frame: Value = serde_json::from_str(&text)?;
            if frame["type"] == "leave" {
                leaves += 1;
                ids.insert(frame["connection"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    let events: Value =
        serde_json::from_str(&reqwest::get(format!("{http_url}/_local/events")).await?.text().await?)?;
    let mut left: HashMap<(String, String), usize> = HashMap::new();
    for event in events["events"].as_array().context("events")? {
        if event["detail-type"] == "MemberLeft" && event["detail"]["user"] == "mallory" {
            let key = (
                event["detail"]["channel"].as_str().unwrap_or_default().to_owned(),
                event["detail"]["connection"].as_str().unwrap_or_default().to_owned(),
            );
            *left.entry(key).or_default() += 1;
        }
    }
    let once = left.values().filter(|n| **n == 1).count();
    println!(
        "disconnect of a user with {} connections: answered {} after {:.0} ms; {} sockets closed, the last {:.0} ms after the call; \
         the watcher got {leaves} leave frames for {} connections; {} MemberLeft events ({} of them once per channel and connection)",
        connections,
        answer,
        answered.as_secs_f64() * 1000.0,
        closed.len(),
        last.as_secs_f64() * 1000.0,
        ids.len(),
        left.values().sum::<usize>(),
        once,
    );
    ensure!(
        closed.len() == connections && leaves == connections && ids.len() == connections,
        "not every connection was closed and left once"
    );
    ensure!(
        left.len() == 2 * connections && once == left.len(),
        "each connection leaves room/kick and user/mallory once"
    );
    Ok(())
}
