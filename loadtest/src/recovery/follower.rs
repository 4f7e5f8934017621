//! What an app built on the browser client sees of a channel: the client's ordering and recovery
//! (`client/streams.js`), in Rust, so that the swarm counts what an app would. Messages are
//! delivered in offset order; one that arrives ahead of a missing offset waits, then the missing range
//! is read from `history`; repeats are dropped by offset; a position that cannot be recovered, or an
//! offset no longer kept, is a gap the app is told of.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

/// A channel message as it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub channel: String,
    pub offset: u64,
    pub epoch: String,
    pub id: String,
    /// The publisher's send time, microseconds since the run started, from the message's data.
    pub sent_us: Option<u64>,
}

impl Frame {
    /// A `message` frame with an offset and an epoch; `None` for anything else.
    pub fn parse(value: &Value) -> Option<Self> {
        if value["type"] != "message" {
            return None;
        }
        Some(Self {
            channel: value["channel"].as_str()?.to_owned(),
            offset: value["offset"].as_u64()?,
            epoch: value["epoch"].as_str()?.to_owned(),
            id: value["id"].as_str()?.to_owned(),
            sent_us: value["data"]["t"].as_u64(),
        })
    }
}

/// A position in a channel's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub epoch: String,
}

impl Position {
    /// The `offset` and `epoch` of a `subscribed` or `history` answer.
    pub fn of(answer: &Value) -> Option<Self> {
        Some(Self { offset: answer["offset"].as_u64()?, epoch: answer["epoch"].as_str()?.to_owned() })
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({ "offset": self.offset, "epoch": self.epoch })
    }
}

/// What the app is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Delivered(Frame),
    /// Offsets `from..=to` of `channel` will never come (or the whole position was lost, `to` being
    /// where the channel goes on from).
    Gap {
        channel: String,
        from: u64,
        to: u64,
    },
    /// What was missed is on its way.
    Recovered {
        channel: String,
        count: u64,
    },
}

#[derive(Debug)]
struct Stream {
    position: Position,
    /// Messages that came ahead of a missing offset, and offsets history marked as holding nothing
    /// (`None`).
    waiting: BTreeMap<u64, Option<Frame>>,
    /// Since when something has waited (or a catch-up from history is due).
    waiting_since: Option<Instant>,
    filling: bool,
    /// The channel's latest offset when a resubscription had more to catch up on than the gateway
    /// replays: read from history up to it.
    until: u64,
}

impl Stream {
    fn new(position: Position) -> Self {
        Self { position, waiting: BTreeMap::new(), waiting_since: None, filling: false, until: 0 }
    }

    /// Steps over the offsets before `next` that history no longer keeps, telling the app.
    fn skip_to(&mut self, next: u64, channel: &str, events: &mut Vec<Event>) {
        if next > self.position.offset + 1 {
            events.push(Event::Gap {
                channel: channel.to_owned(),
                from: self.position.offset + 1,
                to: next - 1,
            });
            self.position.offset = next - 1;
        }
    }

    fn behind(&self) -> bool {
        !self.waiting.is_empty() || self.position.offset < self.until
    }

    /// Delivers what waits from the next offset on, stepping over the offsets that hold nothing.
    fn advance(&mut self, events: &mut Vec<Event>) {
        while let Some(next) = self.waiting.remove(&(self.position.offset + 1)) {
            self.position.offset += 1;
            if let Some(frame) = next {
                events.push(Event::Delivered(frame));
            }
        }
        if self.behind() {
            self.waiting_since.get_or_insert_with(Instant::now);
        } else {
            self.waiting_since = None;
        }
    }
}

/// Every channel's stream, as the client keeps them.
#[derive(Debug, Default)]
pub struct Follower {
    streams: HashMap<String, Stream>,
    /// Frames dropped as repeats of an offset already delivered.
    pub repeats: u64,
}

impl Follower {
    /// The last position delivered on `channel`: what a resubscription recovers from.
    pub fn position(&self, channel: &str) -> Option<Position> {
        self.streams.get(channel).map(|stream| stream.position.clone())
    }

    /// What a `subscribed` answer says. A first subscribe starts the stream there unless it is
    /// followed already; a resubscription from `since` is `Recovered`, or a `Gap` up to the answer.
    pub fn subscribed(&mut self, channel: &str, answer: &Value, since: Option<&Position>) -> Vec<Event> {
        let Some(latest) = Position::of(answer) else { return Vec::new() };
        let mut events = Vec::new();
        let old = self.streams.remove(channel);
        if let Some(old) = old {
            if old.position.epoch == latest.epoch && (since.is_none() || answer["recovered"] == true) {
                if let Some(since) = since {
                    let count = latest.offset.saturating_sub(since.offset);
                    events.push(Event::Recovered { channel: channel.to_owned(), count });
                }
                self.streams.insert(channel.to_owned(), old);
                return events;
            }
            if let Some(since) =
                since.filter(|since| old.position.epoch == latest.epoch && since.offset <= latest.offset)
            {
                // Not replayed (more was missed than the gateway replays, or some is no longer
                // kept): read from history from here, at once, as the browser client does.
                events.push(Event::Recovered {
                    channel: channel.to_owned(),
                    count: latest.offset - since.offset,
                });
                let mut old = old;
                old.until = old.until.max(latest.offset);
                if !old.filling {
                    old.waiting_since = Some(Instant::now() - Duration::from_secs(3600));
                }
                self.streams.insert(channel.to_owned(), old);
                return events;
            }
            events.push(Event::Gap {
                channel: channel.to_owned(),
                from: old.position.offset + 1,
                to: latest.offset,
            });
            let mut stream = Stream::new(latest.clone());
            for (offset, frame) in old.waiting {
                if let Some(frame) = frame.filter(|f| offset > latest.offset && f.epoch == latest.epoch) {
                    stream.waiting.insert(offset, Some(frame));
                }
            }
            stream.advance(&mut events);
            self.streams.insert(channel.to_owned(), stream);
            return events;
        }
        self.streams.insert(channel.to_owned(), Stream::new(latest));
        events
    }

    /// A message frame: delivered if it is next, held if it came ahead of one, dropped if delivered.
    pub fn arrived(&mut self, frame: Frame) -> Vec<Event> {
        let mut events = Vec::new();
        let channel = frame.channel.clone();
        let stream = self.streams.entry(channel.clone()).or_insert_with(|| {
            Stream::new(Position { offset: frame.offset.saturating_sub(1), epoch: frame.epoch.clone() })
        });
        if stream.position.epoch != frame.epoch {
            events.push(Event::Gap {
                channel: channel.clone(),
                from: stream.position.offset + 1,
                to: frame.offset - 1,
            });
            *stream =
                Stream::new(Position { offset: frame.offset.saturating_sub(1), epoch: frame.epoch.clone() });
        }
        if frame.offset <= stream.position.offset || stream.waiting.contains_key(&frame.offset) {
            self.repeats += 1;
            return events;
        }
        stream.waiting.insert(frame.offset, Some(frame));
        stream.advance(&mut events);
        events
    }

    /// The channels whose waiting messages have waited `wait` with no history read under way: each
    /// with the position to read `history` after. Marks them as being filled.
    pub fn due(&mut self, wait: Duration) -> Vec<(String, Position)> {
        let now = Instant::now();
        self.streams
            .iter_mut()
            .filter(|(_, s)| !s.filling && s.waiting_since.is_some_and(|since| now - since >= wait))
            .map(|(channel, stream)| {
                stream.filling = true;
                (channel.clone(), stream.position.clone())
            })
            .collect()
    }

    /// A `history` answer for `channel`, read after a due position: what it holds is put in order,
    /// what it marks missing stepped over, and what it no longer keeps before the first waiting
    /// message is a gap.
    pub fn filled(&mut self, channel: &str, answer: &Value) -> Vec<Event> {
        let mut events = Vec::new();
        let Some(stream) = self.streams.get_mut(channel) else { return events };
        stream.filling = false;
        if answer["epoch"].as_str() != Some(stream.position.epoch.as_str()) {
            return self.lost(channel);
        }
        if !stream.behind() {
            return events;
        }
        let messages: Vec<Frame> =
            answer["messages"].as_array().into_iter().flatten().filter_map(Frame::parse).collect();
        let marked = answer["missing"].as_array().into_iter().flatten().filter_map(Value::as_u64).min();
        let first = messages.first().map(|frame| frame.offset).into_iter().chain(marked).min();
        for frame in messages.into_iter().filter(|f| f.offset > stream.position.offset) {
            stream.waiting.entry(frame.offset).or_insert(Some(frame));
        }
        for offset in answer["missing"].as_array().into_iter().flatten().filter_map(Value::as_u64) {
            if offset > stream.position.offset {
                stream.waiting.entry(offset).or_insert(None);
            }
        }
        let more = answer["more"] == true;
        // History answers the oldest it keeps after the position: what lies before its first message
        // is gone, and so is everything up to what waits when nothing more is kept.
        let waited = stream.waiting.keys().next().copied();
        let gone = first.or(if more { None } else { Some(waited.unwrap_or(stream.until + 1)) });
        if let Some(gone) = gone {
            stream.skip_to(gone, channel, &mut events);
        }
        stream.advance(&mut events);
        // What still waits for an offset history neither holds nor marks: gone before it was read.
        if let Some(&first) = stream.waiting.keys().next().filter(|_| !more) {
            stream.skip_to(first, channel, &mut events);
            stream.advance(&mut events);
        }
        if stream.behind() {
            // Read again at once if more is kept, else after another wait.
            stream.waiting_since =
                Some(if more { Instant::now() - Duration::from_secs(3600) } else { Instant::now() });
        }
        events
    }

    /// The stream this follower followed on `channel` is gone (history answered another epoch, or
    /// refused its position as `unrecoverable_position`): what waits can never be put in order, so
    /// the app is told of a gap up to it, and the channel starts afresh with its next message.
    pub fn lost(&mut self, channel: &str) -> Vec<Event> {
        let Some(stream) = self.streams.remove(channel) else { return Vec::new() };
        let to = stream.waiting.keys().next_back().copied().unwrap_or(stream.position.offset);
        vec![Event::Gap { channel: channel.to_owned(), from: stream.position.offset + 1, to }]
    }

    /// A history read that got no answer: it is tried again after the next wait.
    pub fn unfilled(&mut self, channel: &str) {
        if let Some(stream) = self.streams.get_mut(channel) {
            stream.filling = false;
            stream.waiting_since = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn frame(offset: u64) -> Frame {
        Frame { channel: "c".into(), offset, epoch: "e".into(), id: format!("id{offset}"), sent_us: None }
    }

    fn delivered(events: &[Event]) -> Vec<u64> {
        events
            .iter()
            .filter_map(|event| match event {
                Event::Delivered(frame) => Some(frame.offset),
                _ => None,
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn messages_are_delivered_in_offset_order_and_a_repeat_is_dropped() {
        let mut follower = Follower::default();
        follower.subscribed("c", &json!({"offset": 0, "epoch": "e"}), None);
        assert_eq!(delivered(&follower.arrived(frame(2))), Vec::<u64>::new(), "2 waits for 1");
        assert_eq!(delivered(&follower.arrived(frame(1))), [1, 2]);
        assert!(follower.arrived(frame(2)).is_empty());
        assert_eq!(follower.repeats, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_offset_is_read_from_history_after_the_wait_and_one_not_kept_is_a_gap() {
        let mut follower = Follower::default();
        follower.subscribed("c", &json!({"offset": 0, "epoch": "e"}), None);
        follower.arrived(frame(3));
        assert!(follower.due(Duration::from_secs(1)).is_empty(), "not yet");
        tokio::time::advance(Duration::from_secs(1)).await;
        let due = follower.due(Duration::from_secs(1));
        assert_eq!(due, [("c".to_owned(), Position { offset: 0, epoch: "e".into() })]);
        let message = |n: u64| json!({"type": "message", "channel": "c", "offset": n, "epoch": "e", "id": format!("id{n}")});
        let answer = json!({"offset": 3, "epoch": "e", "messages": [message(2), message(3)], "more": false});
        let events = follower.filled("c", &answer);
        assert_eq!(events[0], Event::Gap { channel: "c".into(), from: 1, to: 1 }, "1 is kept no longer");
        assert_eq!(delivered(&events), [2, 3]);

        follower.arrived(frame(6));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(follower.due(Duration::from_secs(1)).len(), 1);
        let answer = json!({"offset": 6, "epoch": "e", "messages": [message(5), message(6)], "missing": [4], "more": false});
        let events = follower.filled("c", &answer);
        assert_eq!(delivered(&events), [5, 6], "4 held nothing: stepped over, no gap");
        assert!(!events.iter().any(|e| matches!(e, Event::Gap { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn a_resubscription_is_recovered_or_a_gap_and_live_messages_that_came_first_are_kept() {
        let mut follower = Follower::default();
        follower.subscribed("c", &json!({"offset": 4, "epoch": "e"}), None);
        let since = follower.position("c").expect("a position");
        let events =
            follower.subscribed("c", &json!({"offset": 9, "epoch": "e", "recovered": true}), Some(&since));
        assert_eq!(events, [Event::Recovered { channel: "c".into(), count: 5 }]);
        follower.arrived(frame(11));
        let events =
            follower.subscribed("c", &json!({"offset": 10, "epoch": "e", "recovered": false}), Some(&since));
        assert_eq!(events, [Event::Recovered { channel: "c".into(), count: 6 }], "read from history instead");
        let due = follower.due(Duration::from_secs(1));
        assert_eq!(due, [("c".to_owned(), since.clone())], "at once");
        let message = |n: u64| json!({"type": "message", "channel": "c", "offset": n, "epoch": "e", "id": format!("id{n}")});
        let page = json!({"offset": 10, "epoch": "e", "messages": [message(6), message(7)], "more": true});
        let events = follower.filled("c", &page);
        assert_eq!(events[0], Event::Gap { channel: "c".into(), from: 5, to: 5 }, "5 is kept no longer");
        assert_eq!(delivered(&events), [6, 7]);
        assert_eq!(follower.due(Duration::from_secs(1)).len(), 1, "more is kept: the next page at once");
        let last = json!({"offset": 10, "epoch": "e", "messages": [message(8), message(9), message(10)], "more": false});
        assert_eq!(delivered(&follower.filled("c", &last)), [8, 9, 10, 11], "then the live one that waited");

        let since = follower.position("c").expect("a position");
        let events =
            follower.subscribed("c", &json!({"offset": 3, "epoch": "new", "recovered": false}), Some(&since));
        assert_eq!(events[0], Event::Gap { channel: "c".into(), from: 12, to: 3 }, "another epoch: a gap");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_history_no_longer_has_is_a_gap_up_to_what_waits_and_starts_afresh() {
        let mut follower = Follower::default();
        follower.subscribed("c", &json!({"offset": 2, "epoch": "e"}), None);
        follower.arrived(frame(5));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(follower.due(Duration::from_secs(1)).len(), 1);
        let events =
            follower.filled("c", &json!({"offset": 1, "epoch": "new", "messages": [], "more": false}));
        assert_eq!(events, [Event::Gap { channel: "c".into(), from: 3, to: 5 }]);
        assert_eq!(follower.position("c"), None, "forgotten: the next message starts it again");
        assert!(follower.lost("c").is_empty(), "once");
    }
}
