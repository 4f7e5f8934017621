//! Phases 1–3: a room of watching members, probes joining and leaving it, and `presence` reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::Message;

use super::report::PresenceReport;
use super::request::{ANSWER, Socket, ask};
use super::settings::PresenceSwarmSettings;
use crate::report::Percentiles;
use crate::swarm::socket::{self, Target, connect};

/// The room every member is in.
pub const ROOM: &str = "presence/room";

/// When each member saw each frame: by (`join` or `leave`, the connection it names).
type Seen = Arc<Mutex<HashMap<(String, String), Vec<Instant>>>>;

fn histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

pub(crate) async fn run(
    settings: &PresenceSwarmSettings,
    target: &Target,
    report: &mut PresenceReport,
) -> anyhow::Result<()> {
    let seen: Seen = Arc::default();
    let mut subscribe = histogram();
    let mut readers = Vec::new();
    // Phase 1: the members connect, a few at a time, then join one after another: each subscribe's
    // round trip is its own cost, not its place in a crowd of requests.
    let mut connecting = futures::stream::iter(0..settings.members)
        .map(|index| {
            let url = settings.url.clone();
            let source = socket::source_address(target, index, settings.members + 2);
            async move { connect(&url, target, source, None).await }
        })
        .buffer_unordered(50);
    let mut connected = Vec::new();
    while let Some(ws) = connecting.next().await {
        match ws {
            Ok(ws) => connected.push(ws),
            Err(kind) => *report.errors.entry(kind).or_default() += 1,
        }
    }
    drop(connecting);
    let mut members = Vec::new();
    for mut ws in connected {
        let started = Instant::now();
        let plain = json!({"action":"subscribe","channel":ROOM,"ref":"s"});
        match ask(&mut ws, &plain, ANSWER).await {
            Some(answer) if answer["type"] == "subscribed" => {
                subscribe.record(micros(started.elapsed())).ok();
                members.push(ws);
            }
            Some(_) => *report.errors.entry("subscribe_refused".into()).or_default() += 1,
            None => *report.errors.entry("subscribe_unanswered".into()).or_default() += 1,
        }
    }
    // Then every member watches: only once all have joined, or each join would go to the watchers
    // before it (members² / 2 posts).
    let mut watching = futures::stream::iter(members)
        .map(|mut ws| async move {
            let watch = json!({"action":"subscribe","channel":ROOM,"joinLeave":true,"ref":"w"});
            match ask(&mut ws, &watch, ANSWER).await {
                Some(answer) if answer["type"] == "subscribed" => Ok(ws),
                Some(_) => Err("watch_refused".to_owned()),
                None => Err("watch_unanswered".to_owned()),
            }
        })
        .buffer_unordered(50);
    while let Some(watching) = watching.next().await {
        match watching {
            Ok(ws) => readers.push(tokio::spawn(read_frames(ws, seen.clone()))),
            Err(kind) => *report.errors.entry(kind).or_default() += 1,
        }
    }
    drop(watching);
    report.joined = readers.len() as u64;
    report.subscribe_ms = Percentiles::of(&subscribe);

    // Phase 2: probes join and leave, each waited for at every member (or for 5 s).
    let (mut join, mut leave_unsubscribe, mut leave_close) = (histogram(), histogram(), histogram());
    for probe in 0..settings.probes {
        let source = socket::source_address(target, settings.members + 1, settings.members + 2);
        let mut ws = match connect(&settings.url, target, source, None).await {
            Ok(ws) => ws,
            Err(kind) => {
                *report.errors.entry(kind).or_default() += 1;
                continue;
            }
        };
        // It watches too, so that its own join frame tells it its connection id.
        let request = json!({"action":"subscribe","channel":ROOM,"joinLeave":true,"ref":"p"});
        let sent = Instant::now();
        crate::frame_check::sent(&request.to_string());
        ws.send(Message::text(request.to_string())).await.ok();
        let Some(me) = own_id(&mut ws).await else {
            *report.errors.entry("probe_without_its_join".into()).or_default() += 1;
            continue;
        };
        let joined = arrivals(&seen, "join", &me, report.joined).await;
        report.frames_expected += report.joined;
        report.frames_received += joined.len() as u64;
        for at in joined {
            join.record(micros(at.saturating_duration_since(sent))).ok();
        }
        let by_close = probe % 2 == 1;
        let left_at = Instant::now();
        if by_close {
            // A tab closed: its close frame, then its socket.
            ws.close(None).await.ok();
            drop(ws);
        } else {
            ask(&mut ws, &json!({"action":"unsubscribe","channel":ROOM,"ref":"u"}), ANSWER).await;
        }
        let left = arrivals(&seen, "leave", &me, report.joined).await;
        report.frames_expected += report.joined;
        report.frames_received += left.len() as u64;
        let histogram = if by_close { &mut leave_close } else { &mut leave_unsubscribe };
        for at in left {
            histogram.record(micros(at.saturating_duration_since(left_at))).ok();
        }
        report.probes += 1;
        sleep(Duration::from_millis(200)).await;
    }
    report.join_ms = Percentiles::of(&join);
    report.leave_by_unsubscribe_ms = Percentiles::of(&leave_unsubscribe);
    report.leave_by_close_ms = Percentiles::of(&leave_close);
    let mut leave = leave_unsubscribe;
    leave.add(&leave_close).ok();
    report.leave_ms = Percentiles::of(&leave);

    // Phase 3: presence, one read after another, from a connection that is no member.
    let mut reads = histogram();
    if settings.presence_reads > 0 {
        let source = socket::source_address(target, settings.members, settings.members + 2);
        let mut asker = connect(&settings.url, target, source, None).await.map_err(anyhow::Error::msg)?;
        for n in 0..settings.presence_reads {
            let request = json!({"action":"presence","channel":ROOM,"ref":format!("r{n}")});
            let started = Instant::now();
            let Some(answer) = ask(&mut asker, &request, ANSWER).await else {
                *report.errors.entry("presence_unanswered".into()).or_default() += 1;
                continue;
            };
            reads.record(micros(started.elapsed())).ok();
            report.presence_bytes = report.presence_bytes.max(answer.to_string().len() as u64);
            let listed = answer["members"].as_array().map_or(0, Vec::len) as u64;
            if answer["clients"].as_u64() != Some(report.joined) || listed != report.joined.min(1000) {
                report.presence_inexact += 1;
            }
        }
    }
    report.presence_ms = Percentiles::of(&reads);
    for reader in readers {
        reader.abort();
    }
    Ok(())
}

/// Records each `join` and `leave` frame a member receives.
async fn read_frames(mut ws: Socket, seen: Seen) {
    while let Some(Ok(frame)) = ws.next().await {
        let Message::Text(text) = frame else { continue };
        crate::frame_check::received(text.as_str());
        let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else { continue };
        if let (Some(kind @ ("join" | "leave")), Some(connection)) =
            (value["type"].as_str(), value["connection"].as_str())
        {
            let key = (kind.to_owned(), connection.to_owned());
            shared::sync::lock(&seen).entry(key).or_default().push(Instant::now());
        }
    }
}

/// The connection id a probe's own join frame names.
async fn own_id(ws: &mut Socket) -> Option<String> {
    let found = async {
        while let Some(Ok(frame)) = ws.next().await {
            let Message::Text(text) = frame else { continue };
            crate::frame_check::received(text.as_str());
            if let Ok(value) = serde_json::from_str::<Value>(text.as_str())
                && value["type"] == "join"
            {
                return value["connection"].as_str().map(str::to_owned);
            }
        }
        None
    };
    timeout(Duration::from_secs(5), found).await.ok().flatten()
}

/// When the members saw `kind` for `connection`: waits until `expected` have, or 5 s.
async fn arrivals(seen: &Seen, kind: &str, connection: &str, expected: u64) -> Vec<Instant> {
    let key = (kind.to_owned(), connection.to_owned());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let count = shared::sync::lock(seen).get(&key).map_or(0, Vec::len) as u64;
        if count >= expected || Instant::now() >= deadline {
            return shared::sync::lock(seen).remove(&key).unwrap_or_default();
        }
        sleep(Duration::from_millis(5)).await;
    }
}
