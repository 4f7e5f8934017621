//! One subscriber's life: connect, subscribe (from its last position after the first time), follow
//! its channel as the browser client does, be cut — by dropping its socket, or by the server's
//! `DELETE @connections` — stay away a while, and come back; until the run ends. It records what
//! its app saw.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;

use super::context::{Ctx, channel_of};
use super::follower::{Event, Follower, Frame};
use crate::swarm::socket::{self, connect, error_kind};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What one subscriber's app saw.
#[derive(Debug, Default)]
pub struct Record {
    pub index: u32,
    pub channel: String,
    /// The position its first subscribe started from: it is owed every message after it.
    pub start: Option<u64>,
    /// Each delivery to the app, in the order delivered: offset and id.
    pub delivered: Vec<(u64, String)>,
    /// Offsets the app was told it would never get.
    pub gaps: Vec<(u64, u64)>,
    pub recovered: u64,
    /// Resubscriptions answered `recovered: false`.
    pub unrecovered: u64,
    /// From a socket reopening to the app holding every message it missed, for each recovery that
    /// had something to recover: microseconds, and how many messages.
    pub recoveries: Vec<(u64, u64)>,
    /// Publish to delivery of live messages, microseconds.
    pub latencies_us: Vec<u64>,
    /// Subscribe round trips: a first one, and a resubscription that had missed nothing.
    pub subscribe_us: Vec<u64>,
    pub resubscribe_us: Vec<u64>,
    pub cuts_by_client: u64,
    pub cuts_by_server: u64,
    /// Frames the follower dropped as offsets already delivered.
    pub repeats: u64,
    pub errors: Vec<String>,
}

/// A recovery under way: since when, up to which offset.
struct Recovering {
    since: Instant,
    up_to: u64,
    count: u64,
}

pub(crate) async fn subscriber(
    ctx: Arc<Ctx>,
    index: u32,
    positions: Arc<Vec<AtomicU64>>,
    ready: Arc<AtomicU64>,
) -> Record {
    let settings = &ctx.settings;
    let channel = channel_of(index, settings.channels);
    let mut record = Record { index, channel: channel.clone(), ..Record::default() };
    let mut follower = Follower::default();
    let source = socket::source_address(&ctx.target, index, settings.subscribers + settings.publishers);
    let mut failures = 0u32;
    while !ctx.stop.is_cancelled() {
        let mut ws = match connect(&settings.url, &ctx.target, source, None).await {
            Ok(ws) => ws,
            Err(kind) => {
                record.errors.push(kind);
                failures += 1;
                sleep(Duration::from_millis(100 * u64::from(failures.min(20)))).await;
                continue;
            }
        };
        failures = 0;
        let opened = Instant::now();
        follower.unfilled(&channel);
        let me = if settings.server_cuts > 0.0 { own_id(&mut ws, index).await } else { None };
        let mut life = Life {
            ctx: &ctx,
            record: &mut record,
            follower: &mut follower,
            recovering: None,
            positions: &positions,
        };
        let Some(subscribed) = life.subscribe(&mut ws, opened).await else {
            sleep(Duration::from_millis(200)).await;
            continue;
        };
        if subscribed {
            ready.fetch_add(1, Ordering::Relaxed);
        }
        let cut_at = settings.cut_every.map(|(lo, hi)| Instant::now() + random_between(lo, hi));
        let cut = life.follow(&mut ws, cut_at, me.as_deref()).await;
        match cut {
            Ending::Stopped => break,
            Ending::Cut | Ending::Dropped => {
                let (lo, hi) = settings.away;
                tokio::select! {
                    () = sleep(random_between(lo, hi)) => {}
                    () = ctx.stop.cancelled() => break,
                }
            }
        }
    }
    record.repeats = follower.repeats;
    record
}

enum Ending {
    Stopped,
    Cut,
    Dropped,
}

/// One connection's worth of a subscriber.
struct Life<'a> {
    ctx: &'a Ctx,
    record: &'a mut Record,
    follower: &'a mut Follower,
    recovering: Option<Recovering>,
    positions: &'a [AtomicU64],
}

impl Life<'_> {
    /// Subscribes, from the last position delivered when there is one. `Some(true)` for the first
    /// subscription of the run, `Some(false)` for a resubscription, `None` if it failed.
    async fn subscribe(&mut self, ws: &mut Socket, opened: Instant) -> Option<bool> {
        let channel = self.record.channel.clone();
        let since = self.follower.position(&channel).filter(|_| self.record.start.is_some());
        let mut request = json!({ "action": "subscribe", "channel": channel, "ref": "s" });
        if let Some(since) = &since {
            request["since"] = since.to_json();
        }
        let began = Instant::now();
        crate::frame_check::sent(&request.to_string());
        ws.send(Message::text(request.to_string())).await.ok()?;
        loop {
            let value = match timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    crate::frame_check::received(&text);
                    serde_json::from_str::<Value>(&text).unwrap_or_default()
                }
                Ok(Some(Ok(_))) => continue,
                _ => {
                    self.record.errors.push("subscribe_unanswered".into());
                    return None;
                }
            };
            if value["ref"] != "s" {
                // A live message can come before the answer: it is the stream's all the same.
                self.handle(&value);
                continue;
            }
            if value["type"] != "subscribed" {
                let code = value["error"]["code"].as_str().unwrap_or("throttled");
                self.record.errors.push(format!("subscribe_{code}"));
                return None;
            }
            let rtt = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
            let first = self.record.start.is_none();
            match &since {
                None => self.record.subscribe_us.push(rtt),
                Some(since) if value["offset"].as_u64() == Some(since.offset) => {
                    self.record.resubscribe_us.push(rtt)
                }
                Some(_) => {}
            }
            if since.is_some() && value["recovered"] == false {
                self.record.unrecovered += 1;
            }
            let events = self.follower.subscribed(&channel, &value, since.as_ref());
            if first {
                let at = self.follower.position(&channel).map_or(0, |p| p.offset);
                let delivered_before = self.record.delivered.first().map(|(offset, _)| offset - 1);
                self.record.start = Some(delivered_before.map_or(at, |d| d.min(at)));
            }
            for event in &events {
                if let Event::Recovered { count, .. } = event
                    && *count > 0
                {
                    let up_to = value["offset"].as_u64().unwrap_or(0);
                    self.recovering = Some(Recovering { since: opened, up_to, count: *count });
                }
            }
            self.apply(events);
            return Some(first);
        }
    }

    /// Reads until the run stops, the socket drops, or the cut comes.
    async fn follow(&mut self, ws: &mut Socket, cut_at: Option<Instant>, me: Option<&str>) -> Ending {
        let ctx = self.ctx;
        let never = Instant::now() + Duration::from_secs(86_400);
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut cut_pending = false;
        loop {
            let calm = ctx.calm.load(Ordering::Relaxed);
            let cut_at = cut_at.filter(|_| !calm && !cut_pending).unwrap_or(never);
            tokio::select! {
                () = ctx.stop.cancelled() => {
                    let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
                    return Ending::Stopped;
                }
                () = sleep_until(cut_at) => {
                    match me.filter(|_| rand::random_bool(ctx.settings.server_cuts.clamp(0.0, 1.0))) {
                        Some(id) => {
                            // The server's cut: the socket is closed by API Gateway, and read to its end.
                            self.record.cuts_by_server += 1;
                            cut_pending = true;
                            let id = shared::ConnectionId::parse(id).ok();
                            if let Some(id) = id
                                && let Err(err) = ctx.poster.disconnect(&id).await
                            {
                                self.record.errors.push(format!("disconnect_{err}"));
                            }
                        }
                        None => {
                            // The client's: the socket goes, without a close frame.
                            self.record.cuts_by_client += 1;
                            return Ending::Cut;
                        }
                    }
                }
                _ = tick.tick() => {
                    for (channel, since) in self.follower.due(ctx.settings.order_wait) {
                        let request = json!({ "action": "history", "channel": channel, "since": since.to_json(), "limit": 100, "ref": "h" });
                        crate::frame_check::sent(&request.to_string());
                        if ws.send(Message::text(request.to_string())).await.is_err() {
                            return Ending::Dropped;
                        }
                    }
                }
                frame = ws.next() => match frame {
                    Some(Ok(Message::Text(text))) => {
                        crate::frame_check::received(&text);
                        let value: Value = serde_json::from_str(&text).unwrap_or_default();
                        self.handle(&value);
                    }
                    Some(Ok(Message::Close(_))) | None => {
                        return if cut_pending { Ending::Cut } else { self.dropped("closed") };
                    }
                    Some(Ok(_)) => {}
                    Some(Err(err)) => {
                        return if cut_pending { Ending::Cut } else { self.dropped(&error_kind(&err)) };
                    }
                },
            }
        }
    }

    fn dropped(&mut self, kind: &str) -> Ending {
        self.record.errors.push(format!("dropped_{kind}"));
        Ending::Dropped
    }

    /// A frame other than the subscribe's answer: a message, a history answer, an error.
    fn handle(&mut self, value: &Value) {
        let channel = self.record.channel.clone();
        if value["ref"] == "h" {
            let events = if value["type"] == "history" {
                self.follower.filled(&channel, value)
            } else if value["error"]["code"] == "unrecoverable_position" {
                self.follower.lost(&channel)
            } else {
                self.record.errors.push("history_refused".into());
                self.follower.unfilled(&channel);
                Vec::new()
            };
            self.apply(events);
            return;
        }
        match Frame::parse(value) {
            Some(frame) if frame.channel == channel => {
                let events = self.follower.arrived(frame);
                self.apply(events);
            }
            Some(_) => {}
            None if value.get("error").is_some() || value["message"] == "Too Many Requests" => {
                let code = value["error"]["code"].as_str().unwrap_or("throttled");
                self.record.errors.push(format!("error_frame_{code}"));
            }
            None => {}
        }
    }

    fn apply(&mut self, events: Vec<Event>) {
        let now_us = self.ctx.now_us();
        for event in events {
            match event {
                Event::Delivered(frame) => {
                    if self.recovering.is_none()
                        && let Some(sent) = frame.sent_us
                    {
                        self.record.latencies_us.push(now_us.saturating_sub(sent));
                    }
                    self.record.delivered.push((frame.offset, frame.id));
                }
                Event::Gap { from, to, .. } => {
                    self.record.gaps.push((from, to));
                    // A recovery that ends in a gap is not timed: the app reloads instead.
                    self.recovering = None;
                }
                Event::Recovered { .. } => self.record.recovered += 1,
            }
        }
        let at = self.follower.position(&self.record.channel).map_or(0, |p| p.offset);
        if let Some(slot) = self.positions.get(self.record.index as usize) {
            slot.store(at, Ordering::Relaxed);
        }
        if let Some(recovering) = self.recovering.as_ref().filter(|r| at >= r.up_to) {
            let took = u64::try_from(recovering.since.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.record.recoveries.push((took, recovering.count));
            self.recovering = None;
        }
    }
}

/// This connection's id, as `@connections` knows it: the `from` of a message it publishes to a
/// channel of its own.
async fn own_id(ws: &mut Socket, index: u32) -> Option<String> {
    let channel = format!("recovery/self/{index}");
    for request in [
        json!({ "action": "subscribe", "channel": channel, "ref": "me" }),
        json!({ "action": "publish", "channel": channel, "data": 0, "ref": "me" }),
    ] {
        crate::frame_check::sent(&request.to_string());
        ws.send(Message::text(request.to_string())).await.ok()?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let frame =
            timeout(deadline.saturating_duration_since(Instant::now()), ws.next()).await.ok()??.ok()?;
        let Message::Text(text) = frame else { continue };
        crate::frame_check::received(&text);
        let value: Value = serde_json::from_str(&text).unwrap_or_default();
        if value["type"] == "message" && value["channel"] == channel.as_str() {
            return value["from"].as_str().map(str::to_owned);
        }
    }
}

fn random_between(lo: Duration, hi: Duration) -> Duration {
    if hi <= lo {
        return lo;
    }
    lo + (hi - lo).mul_f64(rand::random::<f64>())
}
