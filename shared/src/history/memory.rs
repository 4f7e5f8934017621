//! Channel history in memory: the local gateway's, and the unit tests'.
//!
//! It keeps what the DynamoDB adapter keeps and forgets when it forgets: each stream's state for
//! [`HistorySettings::stream_lifetime`] after its last use, each message for its `ttl`, no more than
//! `size` messages a channel, and the position each message id was given, for as long as its stream.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::time::Instant;

use super::port::{History, HistorySettings, Kept, Page, Range, Stream, cost, page, spent, window};
use crate::channel::Channel;
use crate::domain::{Envelope, Epoch, MessageId, Position};
use crate::error::StoreError;
use crate::sync::lock;

/// Every channel's stream.
#[derive(Debug, Default)]
pub struct MemoryHistory {
    settings: HistorySettings,
    streams: Mutex<HashMap<Channel, StreamState>>,
}

#[derive(Debug)]
struct StreamState {
    offset: u64,
    epoch: Epoch,
    /// When the stream's state expires unless used again.
    expires: Instant,
    /// Each kept message's frame and expiry, by offset.
    messages: BTreeMap<u64, (String, Instant)>,
    /// The offset each message id was given, until when: as long as the stream's own state, for a
    /// redelivery may come after its message has left the history.
    placed: HashMap<MessageId, (u64, Instant)>,
}

impl StreamState {
    fn new(expires: Instant) -> Self {
        Self { offset: 0, epoch: Epoch::random(), expires, messages: BTreeMap::new(), placed: HashMap::new() }
    }
}

impl MemoryHistory {
    pub fn new(settings: HistorySettings) -> Self {
        Self { settings, streams: Mutex::default() }
    }

    pub fn settings(&self) -> HistorySettings {
        self.settings
    }

    /// The live state of `channel`'s stream, started anew if it had none or its state expired; its
    /// lifetime starts again.
    fn live<'a>(
        &self,
        streams: &'a mut HashMap<Channel, StreamState>,
        channel: &Channel,
    ) -> &'a mut StreamState {
        let now = Instant::now();
        let expires = now + self.settings.stream_lifetime();
        let state = streams.entry(channel.clone()).or_insert_with(|| StreamState::new(expires));
        if state.expires <= now {
            *state = StreamState::new(expires);
        }
        state.expires = expires;
        state
    }

    fn place(&self, state: &mut StreamState, envelope: &mut Envelope) {
        let now = Instant::now();
        state.offset += 1;
        envelope.place(Position { offset: state.offset, epoch: state.epoch.clone() });
        let frame = String::from_utf8(envelope.frame()).unwrap_or_default();
        state.messages.insert(state.offset, (frame, now + self.settings.ttl));
        state.placed.insert(envelope.id.clone(), (state.offset, now + self.settings.stream_lifetime()));
        // No more than `size` messages, nor any expired one: what DynamoDB's reads skip.
        let kept_from = state.offset.saturating_sub(self.settings.size as u64) + 1;
        state.messages.retain(|&offset, (_, expires)| offset >= kept_from && *expires > now);
        state.placed.retain(|_, (_, expires)| *expires > now);
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
        self.place(state, envelope);
        Ok(())
    }

    async fn append_once(&self, envelope: &mut Envelope) -> Result<(), StoreError> {
        let channel = channel_of(envelope)?.clone();
        let mut streams = lock(&self.streams);
        let state = self.live(&mut streams, &channel);
        match state.placed.get(&envelope.id) {
            Some(&(offset, _)) => envelope.place(Position { offset, epoch: state.epoch.clone() }),
            None => self.place(state, envelope),
        }
        Ok(())
    }

    async fn read(&self, channel: &Channel, range: Range, budget: usize) -> Result<Page, StoreError> {
        let now = Instant::now();
        let mut streams = lock(&self.streams);
        let state = self.live(&mut streams, channel);
        let stream = Stream { offset: state.offset, epoch: state.epoch.clone() };
        let read = window(state.offset, self.settings.size, range);
        let mut found = Vec::new();
        if !read.is_empty() {
            let live = state
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
        history.append_once(&mut first).await.expect("append");
        let mut again = first.clone();
        again.offset = None;
        history.append_once(&mut again).await.expect("append");
        assert_eq!(again.position(), first.position());
        let mut next = message("chat", 2);
        history.append_once(&mut next).await.expect("append");
        assert_eq!(next.offset, Some(2), "no offset taken twice");
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
