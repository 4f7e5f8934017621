//! Channel history in memory: the local gateway's, and the unit tests'.
//!
//! It keeps what the DynamoDB adapter keeps and forgets when it forgets: each stream's state for
//! [`HistorySettings::stream_lifetime`] after its last use, each message for its `ttl`, no more than
//! `size` messages a channel, and the position each message id was given, for as long as its stream.
//! What has expired is swept once a minute: a channel only ever subscribed to holds its epoch (some
//! 150 bytes) for its lifetime, as DynamoDB holds its `META` item, and nothing after.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::port::{History, HistorySettings, Kept, Page, Range, Stream, cost, page, spent, window};
use crate::channel::Channel;
use crate::domain::{Envelope, Epoch, MessageId, Position};
use crate::error::StoreError;
use crate::namespaces::{ChannelOptions, Namespaces};
use crate::sync::lock;

/// How often, at most, what has expired is swept: a sweep walks every channel.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Every channel's stream.
#[derive(Debug)]
pub struct MemoryHistory {
    /// How much each channel keeps, by its namespace.
    namespaces: Namespaces,
    streams: Mutex<Streams>,
}

impl Default for MemoryHistory {
    fn default() -> Self {
        Self::new(HistorySettings::default())
    }
}

#[derive(Debug)]
struct Streams {
    by_channel: HashMap<Channel, StreamState>,
    swept_at: Instant,
}

#[derive(Debug)]
struct StreamState {
    offset: u64,
    epoch: Epoch,
    /// When the stream's state expires unless used again.
    expires: Instant,
    /// Its messages and the positions given, once it has had any: most channels are only
    /// subscribed to, and hold no more than their epoch.
    log: Option<Box<Log>>,
}

#[derive(Debug, Default)]
struct Log {
    /// Each kept message's frame and expiry, by offset: expiries grow with offsets (a channel's
    /// `ttl` is its namespace's), so what has expired is always at the front.
    messages: BTreeMap<u64, (String, Instant)>,
    /// The offset each message id was given, until when: as long as the stream's own state, for a
    /// redelivery may come after its message has left the history.
    placed: HashMap<MessageId, (u64, Instant)>,
    /// The same ids in the order they were placed, which is the order they expire in: expiring is a
    /// look at the front, not a walk through two hours of ids on every publish (which made a
    /// publish at 2,000 a second cost more each second: `bench_server_api`).
    placed_order: VecDeque<(Instant, MessageId)>,
}

impl Log {
    /// Drops what has expired, and what `size` no longer keeps of a stream at `latest`.
    fn expire(&mut self, now: Instant, latest: u64, size: usize) {
        let kept_from = latest.saturating_sub(size as u64) + 1;
        while let Some(entry) = self.messages.first_entry() {
            let (offset, (_, expires)) = (*entry.key(), entry.get());
            if offset >= kept_from && *expires > now {
                break;
            }
            entry.remove();
        }
        while self.placed_order.front().is_some_and(|(expires, _)| *expires <= now) {
            let Some((expires, id)) = self.placed_order.pop_front() else { break };
            // Placed again since (a later entry stands for it): that one keeps it.
            if self.placed.get(&id).is_some_and(|(_, until)| *until == expires) {
                self.placed.remove(&id);
            }
        }
    }

    fn remember(&mut self, id: MessageId, offset: u64, until: Instant) {
        self.placed.insert(id.clone(), (offset, until));
        self.placed_order.push_back((until, id));
    }

    fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.placed.is_empty()
    }
}

impl StreamState {
    fn new(expires: Instant) -> Self {
        Self { offset: 0, epoch: Epoch::random(), expires, log: None }
    }
}

impl Streams {
    /// Forgets expired streams and messages, once a [`SWEEP_EVERY`] at most.
    fn sweep(&mut self, now: Instant, namespaces: &Namespaces) {
        if now < self.swept_at + SWEEP_EVERY {
            return;
        }
        self.swept_at = now;
        self.by_channel.retain(|channel, state| {
            if let Some(log) = &mut state.log {
                log.expire(now, state.offset, namespaces.history(channel).size);
                if log.is_empty() {
                    state.log = None;
                }
            }
            state.expires > now
        });
        if self.by_channel.capacity() > 4 * self.by_channel.len().max(64) {
            self.by_channel.shrink_to_fit();
        }
    }
}

impl MemoryHistory {
    /// Every channel keeping as `settings` say.
    pub fn new(settings: HistorySettings) -> Self {
        Self::of(Namespaces::uniform(ChannelOptions::defaults(settings, true)))
    }

    /// Each channel keeping as its namespace says.
    pub fn of(namespaces: Namespaces) -> Self {
        Self {
            namespaces,
            streams: Mutex::new(Streams { by_channel: HashMap::new(), swept_at: Instant::now() }),
        }
    }

    /// What a channel in no namespace keeps.
    pub fn settings(&self) -> HistorySettings {
        self.namespaces.defaults().history
    }

    /// Streams held, expired ones not yet swept included.
    pub fn channels(&self) -> usize {
        lock(&self.streams).by_channel.len()
    }

    /// The live state of `channel`'s stream, started anew if it had none or its state expired; its
    /// lifetime starts again.
    fn live<'a>(&self, streams: &'a mut Streams, channel: &Channel) -> &'a mut StreamState {
        let now = Instant::now();
        streams.sweep(now, &self.namespaces);
        let expires = now + self.namespaces.history(channel).stream_lifetime();
        let state = streams.by_channel.entry(channel.clone()).or_insert_with(|| StreamState::new(expires));
        if state.expires <= now {
            *state = StreamState::new(expires);
        }
        state.expires = expires;
        state
    }

    fn place(&self, state: &mut StreamState, channel: &Channel, envelope: &mut Envelope) {
        let now = Instant::now();
        let settings = self.namespaces.history(channel);
        state.offset += 1;
        envelope.place(Position { offset: state.offset, epoch: state.epoch.clone() });
        let frame = String::from_utf8(envelope.frame()).unwrap_or_default();
        let log = state.log.get_or_insert_with(Box::default);
        log.messages.insert(state.offset, (frame, now + settings.ttl));
        log.remember(envelope.id.clone(), state.offset, now + settings.stream_lifetime());
        // No more than `size` messages, nor any expired one: what DynamoDB's reads skip.
        log.expire(now, state.offset, settings.size);
    }
}

fn channel_of(envelope: &Envelope) -> Result<&Channel, StoreError> {
    envelope.channel.as_ref().ok_or_else(|| StoreError::Rejected("a broadcast has no channel history".into()))
}

#[async_trait]
impl History for MemoryHistory {
    async fn stream(&self, channel: &Channel) -> Result<Stream, StoreError> {
        let mut streams = lock(&self.streams);
        let state = self.live(&mut streams, channel);
        Ok(Stream { offset: state.offset, epoch: state.epoch.clone() })
    }

    async fn append(&self, envelope: &mut Envelope) -> Result<(), StoreError> {
        let channel = channel_of(envelope)?.clone();
        let mut streams = lock(&self.streams);
        let state = self.live(&mut streams, &channel);
        self.place(state, &channel, envelope);
        Ok(())
    }

    async fn append_once(&self, envelope: &mut Envelope) -> Result<bool, StoreError> {
        let channel = channel_of(envelope)?.clone();
        let mut streams = lock(&self.streams);
        let state = self.live(&mut streams, &channel);
        match state.log.as_ref().and_then(|log| log.placed.get(&envelope.id)) {
            Some(&(offset, _)) => {
                envelope.place(Position { offset, epoch: state.epoch.clone() });
                Ok(false)
            }
            None => {
                self.place(state, &channel, envelope);
                Ok(true)
            }
        }
    }

    async fn read(&self, channel: &Channel, range: Range, budget: usize) -> Result<Page, StoreError> {
        let now = Instant::now();
        let mut streams = lock(&self.streams);
        let state = self.live(&mut streams, channel);
        let stream = Stream { offset: state.offset, epoch: state.epoch.clone() };
        let read = window(state.offset, self.namespaces.history(channel).size, range);
        let mut found = Vec::new();
        if let (false, Some(log)) = (read.is_empty(), &state.log) {
            let live = log
                .messages
                .range(read.lo..=read.hi)
                .filter(|(_, (_, expires))| *expires > now)
                .map(|(&offset, (frame, _))| Kept { offset, frame: frame.clone() });
            let mut bytes = 0;
            let mut take = |kept: Kept| {
                bytes += cost(&kept);
                found.push(kept);
                !spent(bytes, budget)
            };
            if read.newest_first {
                live.rev().all(&mut take);
                found.reverse();
            } else {
                live.into_iter().all(&mut take);
            }
        }
        Ok(page(stream, found, read, budget))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::value::RawValue;

    use super::*;
    use crate::domain::Sender;

    fn message(channel: &str, n: u32) -> Envelope {
        let data = RawValue::from_string(n.to_string()).expect("json");
        Envelope::message(Channel::parse(channel).expect("channel"), Sender::default(), 0, data)
            .expect("fits")
    }

    fn history(size: usize, ttl_secs: u64) -> MemoryHistory {
        MemoryHistory::new(HistorySettings { size, ttl: Duration::from_secs(ttl_secs) })
    }

    #[tokio::test(start_paused = true)]
    async fn each_channel_numbers_its_messages_from_one_in_an_epoch_of_its_own() {
        let history = history(100, 300);
        let chat = Channel::parse("chat").expect("channel");
        let empty = history.stream(&chat).await.expect("stream");
        assert_eq!(empty.offset, 0);
        for n in 1..=3 {
            let mut envelope = message("chat", n);
            history.append(&mut envelope).await.expect("append");
            assert_eq!(
                envelope.position(),
                Some(Position { offset: u64::from(n), epoch: empty.epoch.clone() })
            );
        }
        let mut other = message("news", 1);
        history.append(&mut other).await.expect("append");
        assert_eq!(other.offset, Some(1));
        assert_ne!(other.epoch, Some(empty.epoch.clone()), "each channel has its own stream");
        let page =
            history.read(&chat, Range::After { offset: 1, limit: 10 }, usize::MAX).await.expect("read");
        assert_eq!(page.messages.iter().map(|kept| kept.offset).collect::<Vec<_>>(), [2, 3]);
        let frame: serde_json::Value = serde_json::from_str(&page.messages[0].frame).expect("json");
        assert_eq!((frame["offset"].as_u64(), frame["data"].as_u64()), (Some(2), Some(2)), "as delivered");
        assert!(page.recovers(1, &empty.epoch) && !page.more);
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_given_again_keeps_its_position() {
        let history = history(100, 300);
        let mut first = message("chat", 1);
        assert!(history.append_once(&mut first).await.expect("append"), "placed by this call");
        let mut again = first.clone();
        again.offset = None;
        assert!(!history.append_once(&mut again).await.expect("append"), "placed before");
        assert_eq!(again.position(), first.position());
        let mut next = message("chat", 2);
        history.append_once(&mut next).await.expect("append");
        assert_eq!(next.offset, Some(2), "no offset taken twice");
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_id_is_remembered_for_its_streams_lifetime_on_a_busy_channel_and_then_forgotten() {
        let history = history(100, 60);
        let lifetime = history.settings().stream_lifetime();
        let mut first = message("chat", 0);
        assert!(history.append_once(&mut first).await.expect("append"));
        let mut n = 0;
        // A busy channel: its stream never expires, its ids still do.
        while n < 800 {
            tokio::time::advance(lifetime / 400).await;
            n += 1;
            history.append(&mut message("chat", n)).await.expect("append");
            if n == 399 {
                let mut again = first.clone();
                again.offset = None;
                assert!(!history.append_once(&mut again).await.expect("append"), "still remembered");
                assert_eq!(again.offset, Some(1));
            }
        }
        let mut again = first.clone();
        again.offset = None;
        assert!(history.append_once(&mut again).await.expect("append"), "forgotten once its lifetime passed");
        assert_eq!(again.offset, Some(802), "placed anew");
        let streams = lock(&history.streams);
        let log = streams.by_channel[&Channel::parse("chat").expect("channel")].log.as_ref().expect("a log");
        assert!(
            log.placed.len() <= 402 && log.placed_order.len() == log.placed.len(),
            "{}",
            log.placed.len()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_last_size_messages_are_kept_and_each_only_for_its_ttl() {
        let history = history(3, 60);
        let chat = Channel::parse("chat").expect("channel");
        for n in 1..=5 {
            history.append(&mut message("chat", n)).await.expect("append");
        }
        let page = history.read(&chat, Range::Newest(10), usize::MAX).await.expect("read");
        assert_eq!(page.messages.iter().map(|kept| kept.offset).collect::<Vec<_>>(), [3, 4, 5]);
        assert!(!page.recovers(1, &page.stream.epoch), "2 is no longer kept");
        tokio::time::advance(Duration::from_secs(61)).await;
        let page = history.read(&chat, Range::Newest(10), usize::MAX).await.expect("read");
        assert!(page.messages.is_empty(), "expired");
        assert_eq!(page.stream.offset, 5, "the stream outlives its messages");
        assert!(!page.recovers(4, &page.stream.epoch));
    }

    #[tokio::test(start_paused = true)]
    async fn expired_streams_and_messages_are_swept_and_a_channel_only_subscribed_to_holds_no_log() {
        let history = history(3, 60);
        for n in 0..1000 {
            history.stream(&Channel::parse(&format!("quiet/{n}")).expect("channel")).await.expect("stream");
        }
        for n in 1..=5 {
            history.append(&mut message("chat", n)).await.expect("append");
        }
        assert_eq!(history.channels(), 1001);
        assert!(lock(&history.streams).by_channel.values().filter(|s| s.log.is_some()).count() == 1);
        tokio::time::advance(Duration::from_secs(61)).await;
        history.stream(&Channel::parse("other").expect("channel")).await.expect("stream");
        {
            let streams = lock(&history.streams);
            let chat = &streams.by_channel[&Channel::parse("chat").expect("channel")];
            assert!(chat.log.as_ref().is_some_and(|log| log.messages.is_empty()), "its messages expired");
        }
        tokio::time::advance(history.settings().stream_lifetime()).await;
        history.stream(&Channel::parse("other").expect("channel")).await.expect("stream");
        assert_eq!(history.channels(), 1, "only the stream just used");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_unused_past_its_lifetime_starts_again_in_a_new_epoch() {
        let history = history(100, 60);
        let chat = Channel::parse("chat").expect("channel");
        history.append(&mut message("chat", 1)).await.expect("append");
        let before = history.stream(&chat).await.expect("stream");
        tokio::time::advance(history.settings().stream_lifetime() - Duration::from_secs(1)).await;
        assert_eq!(history.stream(&chat).await.expect("stream"), before, "used again in time");
        tokio::time::advance(history.settings().stream_lifetime() + Duration::from_secs(1)).await;
        let after = history.stream(&chat).await.expect("stream");
        assert_eq!(after.offset, 0);
        assert_ne!(after.epoch, before.epoch);
    }
}
