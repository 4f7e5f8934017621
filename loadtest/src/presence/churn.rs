//! Phase 4: connections join and leave their channel at random — subscribe, unsubscribe, or close
//! the socket and come back — for a while; then `presence` must count exactly those still
//! subscribed, channel by channel, and the lifecycle events the gateway POSTed here must be whole
//! and alternate on each. One channel is the crowd that never empties; many small ones fill and
//! empty all the time, which is where occupied and vacated can go wrong.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

use super::report::PresenceReport;
use super::request::{ANSWER, Socket, ask};
use super::settings::PresenceSwarmSettings;
use crate::swarm::socket::{self, Target, connect};

/// The channel churn connection `index` joins and leaves, of `channels`.
pub fn channel_of(index: u32, channels: u32) -> String {
    format!("presence/churn/{}", index % channels.max(1))
}

/// What one connection did: its actions, and whether it ended subscribed (with its socket, kept
/// open until the counts are read).
struct Ended {
    channel: String,
    actions: u64,
    subscribed: bool,
    socket: Option<Socket>,
    errors: Vec<String>,
}

pub(crate) async fn run(
    settings: &PresenceSwarmSettings,
    target: &Target,
    report: &mut PresenceReport,
) -> anyhow::Result<()> {
    let events: Arc<Mutex<Vec<Value>>> = Arc::default();
    let receiver = match settings.events_listen {
        Some(addr) => Some(receive_events(addr, events.clone()).await?),
        None => None,
    };
    let until = Instant::now() + settings.churn;
    let connections = settings.churn_connections;
    let tasks: Vec<_> = (0..connections)
        .map(|index| {
            let url = settings.url.clone();
            let source = socket::source_address(target, index, connections);
            let target = target.clone();
            let channel = channel_of(index, settings.churn_channels);
            tokio::spawn(async move { churn(&url, &target, source, channel, until).await })
        })
        .collect();
    let mut ended = Vec::new();
    for task in tasks {
        if let Ok(one) = task.await {
            ended.push(one);
        }
    }
    for one in &mut ended {
        report.churn_actions += one.actions;
        for error in one.errors.drain(..) {
            *report.errors.entry(error).or_default() += 1;
        }
    }
    let mut subscribed: BTreeMap<String, u64> =
        (0..settings.churn_channels.max(1)).map(|n| (channel_of(n, settings.churn_channels), 0)).collect();
    for one in ended.iter().filter(|one| one.subscribed) {
        *subscribed.entry(one.channel.clone()).or_default() += 1;
    }
    report.churn_channels = subscribed.len() as u64;
    report.churn_subscribed = subscribed.values().sum();
    // The `$disconnect`s of the last closed sockets run after their close: give them a moment.
    sleep(Duration::from_secs(2)).await;
    let mut asker = connect(&settings.url, target, None, None).await.map_err(anyhow::Error::msg)?;
    let mut counted = 0;
    for (n, (channel, expected)) in subscribed.iter().enumerate() {
        let request = json!({"action":"presence","channel":channel,"ref":format!("c{n}")});
        let clients = ask(&mut asker, &request, ANSWER).await.and_then(|a| a["clients"].as_u64());
        counted += clients.unwrap_or(0);
        if clients != Some(*expected) {
            report.churn_channels_inexact += 1;
        }
    }
    report.churn_presence_clients = Some(counted);

    if receiver.is_some() {
        // Until no event has come for a second, at most 60 s.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = usize::MAX;
        while Instant::now() < deadline {
            let now = shared::sync::lock(&events).len();
            if now == last {
                break;
            }
            last = now;
            sleep(Duration::from_secs(1)).await;
        }
        account(&shared::sync::lock(&events), &subscribed, report);
    }
    if let Some(receiver) = receiver {
        receiver.abort();
    }
    // Only now: closing the sockets still subscribed is more leaves.
    drop(ended);
    Ok(())
}

/// One connection's churn until `until`.
async fn churn(
    url: &str,
    target: &Target,
    source: Option<std::net::IpAddr>,
    channel: String,
    until: Instant,
) -> Ended {
    let mut ended =
        Ended { channel: channel.clone(), actions: 0, subscribed: false, socket: None, errors: Vec::new() };
    let mut ws = match connect(url, target, source, None).await {
        Ok(ws) => ws,
        Err(kind) => {
            ended.errors.push(kind);
            return ended;
        }
    };
    let mut n = 0u64;
    while Instant::now() < until {
        sleep(Duration::from_millis(rand::random_range(0..1500))).await;
        n += 1;
        let reference = format!("c{n}");
        if !ended.subscribed {
            let request = json!({"action":"subscribe","channel":channel,"ref":reference});
            match ask(&mut ws, &request, ANSWER).await {
                Some(answer) if answer["type"] == "subscribed" => ended.subscribed = true,
                Some(_) => ended.errors.push("churn_subscribe_refused".into()),
                None => ended.errors.push("churn_subscribe_unanswered".into()),
            }
        } else if rand::random::<f64>() < 0.7 {
            let request = json!({"action":"unsubscribe","channel":channel,"ref":reference});
            match ask(&mut ws, &request, ANSWER).await {
                Some(answer) if answer["type"] == "unsubscribed" => ended.subscribed = false,
                _ => ended.errors.push("churn_unsubscribe_failed".into()),
            }
        } else {
            ws.close(None).await.ok();
            ended.subscribed = false;
            ws = match connect(url, target, source, None).await {
                Ok(ws) => ws,
                Err(kind) => {
                    ended.errors.push(kind);
                    return ended;
                }
            };
        }
        ended.actions += 1;
    }
    ended.socket = Some(ws);
    ended
}

/// Holds each channel's events against what must be: occupied and vacated alternating by `seq`,
/// every change numbered once (none missing), and joins less leaves the members it ended with.
fn account(events: &[Value], subscribed: &BTreeMap<String, u64>, report: &mut PresenceReport) {
    let mut members = 0u64;
    for (channel, expected) in subscribed {
        let ours: Vec<&Value> =
            events.iter().filter(|e| e["detail"]["channel"] == channel.as_str()).collect();
        report.events_received += ours.len() as u64;
        let mut changes: BTreeMap<u64, u64> = BTreeMap::new();
        let mut edges: Vec<(u64, &str)> = Vec::new();
        let (mut joined, mut left) = (0u64, 0u64);
        for event in &ours {
            let seq = event["detail"]["seq"].as_u64().unwrap_or(0);
            match event["detail-type"].as_str().unwrap_or("") {
                "MemberJoined" => {
                    joined += 1;
                    *changes.entry(seq).or_default() += 1;
                }
                "MemberLeft" => {
                    left += 1;
                    *changes.entry(seq).or_default() += 1;
                }
                kind @ ("ChannelOccupied" | "ChannelVacated") => edges.push((seq, kind)),
                _ => {}
            }
        }
        edges.sort_unstable();
        let occupied = edges.iter().filter(|(_, kind)| *kind == "ChannelOccupied").count() as u64;
        report.occupied += occupied;
        report.vacated += edges.len() as u64 - occupied;
        report.edges_out_of_turn += edges
            .iter()
            .enumerate()
            .filter(|(n, (_, kind))| *kind != if n % 2 == 0 { "ChannelOccupied" } else { "ChannelVacated" })
            .count() as u64;
        let last = changes.keys().next_back().copied().unwrap_or(0);
        report.changes_missing += (1..=last).filter(|seq| !changes.contains_key(seq)).count() as u64;
        report.changes_repeated += changes.values().filter(|&&n| n > 1).count() as u64;
        match joined.checked_sub(left) {
            Some(now) if now == *expected => members += now,
            Some(now) => {
                members += now;
                report.churn_channels_inexact += 1;
            }
            None => report.churn_channels_inexact += 1,
        }
    }
    report.events_members = Some(members);
}

/// Serves `POST /` (and any path) on `addr`, keeping each event.
async fn receive_events(
    addr: std::net::SocketAddr,
    events: Arc<Mutex<Vec<Value>>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let app = axum::Router::new().fallback(axum::routing::post(move |body: String| {
        let events = events.clone();
        async move {
            match serde_json::from_str::<Value>(&body) {
                Ok(event) => {
                    shared::sync::lock(&events).push(event);
                    axum::http::StatusCode::OK
                }
                Err(_) => axum::http::StatusCode::BAD_REQUEST,
            }
        }
    }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    Ok(tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    }))
}
