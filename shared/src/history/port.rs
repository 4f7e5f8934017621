//! The port itself: what the handlers ask of a channel's history, and how much of it is kept.

use std::time::Duration;

use async_trait::async_trait;

use crate::channel::Channel;
use crate::domain::{Envelope, Epoch};
use crate::environment::Env;
use crate::error::StoreError;
use crate::limits::{CONNECTION_TTL_MARGIN, MAX_CONNECTION_DURATION};

/// How much of each channel's history is kept: the last `size` messages, each for `ttl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistorySettings {
    /// Messages kept per channel; 0 turns history and offsets off.
    pub size: usize,
    /// How long each message is kept.
    pub ttl: Duration,
}

impl HistorySettings {
    /// The last hundred messages: enough for a client away through a short outage on a busy channel.
    pub const DEFAULT_SIZE: usize = 100;
    /// The most a channel may keep: one `history` answer's worth.
    pub const MAX_SIZE: usize = 1_000;
    /// Five minutes: long enough for a reconnect storm of 100,000 clients at API Gateway's 500 new
    /// connections a second (200 s), with room to spare.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
    /// A day: DynamoDB deletes expired items within days anyway, and reads skip them before.
    pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

    pub fn is_on(&self) -> bool {
        self.size > 0
    }

    /// How long a stream's state (its latest offset and epoch) outlives its last use: a subscriber
    /// may stay connected for API Gateway's longest connection, and then have the history's own
    /// lifetime to come back and recover. Longer than any message, so a quiet channel keeps its epoch
    /// while a client could still recover from it.
    pub fn stream_lifetime(&self) -> Duration {
        MAX_CONNECTION_DURATION + self.ttl + CONNECTION_TTL_MARGIN
    }

    /// `HISTORY_SIZE` (default 100, 0 off, at most 1,000) and `HISTORY_TTL_SECONDS` (default 300, 1
    /// to 86,400), read with the function's other variables.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let size: usize = env.optional("HISTORY_SIZE", Self::DEFAULT_SIZE);
        if size > Self::MAX_SIZE {
            env.invalid("HISTORY_SIZE", format!("must be at most {}", Self::MAX_SIZE));
        }
        let ttl: u64 = env.optional("HISTORY_TTL_SECONDS", Self::DEFAULT_TTL.as_secs());
        if ttl == 0 || ttl > Self::MAX_TTL.as_secs() {
            env.invalid("HISTORY_TTL_SECONDS", format!("must be from 1 to {}", Self::MAX_TTL.as_secs()));
        }
        Self { size, ttl: Duration::from_secs(ttl) }
    }
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self { size: Self::DEFAULT_SIZE, ttl: Self::DEFAULT_TTL }
    }
}

/// A channel's stream: the offset of its latest message (0 before its first) and its epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stream {
    pub offset: u64,
    pub epoch: Epoch,
}

/// Which of a channel's kept messages to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// The newest, at most this many.
    Newest(usize),
    /// Those after this offset, at most `limit`.
    After { offset: u64, limit: usize },
}

/// Messages read from a channel's history, oldest first, with the stream they belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub stream: Stream,
    pub messages: Vec<Kept>,
    /// The offsets between the first and the last message read that hold no message: taken by a
    /// publish that then failed. A reader skips them rather than waits for them.
    pub missing: Vec<u64>,
    /// Whether the limit left kept messages out: older ones for [`Range::Newest`], newer ones for
    /// [`Range::After`].
    pub more: bool,
}

impl Page {
    /// Whether every message after `offset` that a client of that position needs is here (or known
    /// missing): the position is in this epoch, and the message right after it is still kept. A
    /// position past the stream's end, or further back than what is kept, cannot be recovered.
    pub fn recovers(&self, offset: u64, epoch: &Epoch) -> bool {
        if *epoch != self.stream.epoch || offset > self.stream.offset {
            return false;
        }
        offset == self.stream.offset || self.messages.first().is_some_and(|first| first.offset == offset + 1)
    }
}

/// One kept message: its offset, and its frame as delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    pub offset: u64,
    pub frame: String,
}

/// Where each channel's messages are numbered and kept.
#[async_trait]
pub trait History: Send + Sync {
    /// The channel's stream — started (offset 0, a new epoch) when it has none or its state
    /// expired — whose lifetime starts again: the position a subscribe answers with.
    async fn stream(&self, channel: &Channel) -> Result<Stream, StoreError>;

    /// Gives `envelope` (a message on a channel) its channel's next offset and keeps it.
    async fn append(&self, envelope: &mut Envelope) -> Result<(), StoreError>;

    /// The same, once per message id: a message given again — SQS's redelivery of a backend's
    /// publish, which has no ingress before the queue, or a server API publish retried with its
    /// `id` — gets the position it got the first time. True when this call placed it, false when
    /// it had been placed before (for as long as the channel's stream lives,
    /// [`HistorySettings::stream_lifetime`]).
    async fn append_once(&self, envelope: &mut Envelope) -> Result<bool, StoreError>;

    /// The kept messages of `range`, with the channel's stream (started if it has none, so that the
    /// epoch read is the one its first messages will carry) — no more of them than `budget` bytes
    /// of frames (each counted with one byte more, a comma in a list), but always one when the range
    /// holds any: the newest of [`Range::Newest`], the oldest of [`Range::After`]. What the budget
    /// leaves out makes the page's `more` true. Adapters stop reading once past the budget, so a
    /// read costs about what it returns, not what the channel keeps.
    async fn read(&self, channel: &Channel, range: Range, budget: usize) -> Result<Page, StoreError>;
}

/// The offsets a read fetches, `lo..=hi` (none when `lo > hi`), the first of them the reader
/// asked for, and which end it wants when it cannot have them all. For the newest messages the read
/// starts one offset lower when that one is still kept, so that the page can say whether older
/// messages are: a limit that cuts off older messages must say so as one that cuts off newer ones
/// does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub lo: u64,
    pub hi: u64,
    wanted: u64,
    /// Whether the newest of the window are wanted first (and read first), or the oldest.
    pub newest_first: bool,
}

impl Window {
    pub fn is_empty(&self) -> bool {
        self.lo > self.hi
    }
}

/// What to fetch of a stream at `latest` keeping `size` messages. Offsets from clients are checked
/// arithmetic: the position after `u64::MAX` is no position, never offset 0.
pub(crate) fn window(latest: u64, size: usize, range: Range) -> Window {
    let kept_from = latest.saturating_sub(size as u64) + 1;
    match range {
        Range::Newest(limit) => {
            let wanted = kept_from.max(latest.saturating_sub(limit as u64) + 1);
            Window { lo: wanted.saturating_sub(1).max(kept_from), hi: latest, wanted, newest_first: true }
        }
        Range::After { offset, limit } => {
            let Some(next) = offset.checked_add(1) else {
                return Window { lo: 1, hi: 0, wanted: 1, newest_first: false };
            };
            let lo = kept_from.max(next);
            let hi = latest.min(lo.saturating_add(limit as u64).saturating_sub(1));
            Window { lo, hi, wanted: lo, newest_first: false }
        }
    }
}

/// What one kept message costs of a read's budget: its frame, and a comma.
pub(crate) fn cost(kept: &Kept) -> usize {
    kept.frame.len() + 1
}

/// Whether a read that has found `read` bytes of frames has all a budget of `budget` can take: it
/// may stop, having found one message past it (which says the budget left something out).
pub(crate) fn spent(read: usize, budget: usize) -> bool {
    read > budget
}

/// A page from the messages found in `window` (in offset order, expired ones already left out):
/// those below what was asked for only say that older messages are kept; the budget keeps the
/// wanted end; the offsets missing between two messages kept are gaps; those missing before the
/// first may have expired, and are left for the reader to judge with [`Page::recovers`].
pub(crate) fn page(stream: Stream, found: Vec<Kept>, window: Window, budget: usize) -> Page {
    let older = found.first().is_some_and(|kept| kept.offset < window.wanted);
    let mut found: Vec<Kept> = found.into_iter().filter(|kept| kept.offset >= window.wanted).collect();
    let total = found.len();
    let mut used = 0;
    let mut fits = |kept: &Kept| {
        used += cost(kept);
        used <= budget
    };
    let keep = if window.newest_first {
        found.iter().rev().take_while(|kept| fits(kept)).count()
    } else {
        found.iter().take_while(|kept| fits(kept)).count()
    }
    .max(total.min(1));
    if window.newest_first {
        found.drain(..total - keep);
    } else {
        found.truncate(keep);
    }
    let missing = found.windows(2).flat_map(|pair| (pair[0].offset + 1)..pair[1].offset).collect();
    let more = older || keep < total || window.hi < stream.offset;
    Page { stream, messages: found, missing, more }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(window: Window) -> (u64, u64) {
        (window.lo, window.hi)
    }

    #[test]
    fn a_read_covers_what_is_kept_of_its_range() {
        assert_eq!(
            span(window(150, 100, Range::Newest(50))),
            (100, 150),
            "one older, to tell if more are kept"
        );
        assert_eq!(span(window(150, 100, Range::Newest(500))), (51, 150), "no further back than kept");
        assert_eq!(span(window(150, 100, Range::After { offset: 41, limit: 50 })), (51, 100));
        assert_eq!(span(window(150, 100, Range::After { offset: 120, limit: 50 })), (121, 150));
        assert_eq!(span(window(3, 100, Range::Newest(50))), (1, 3));
        assert!(window(0, 100, Range::Newest(50)).is_empty(), "an empty stream reads nothing");
        assert!(
            window(150, 100, Range::After { offset: 150, limit: 50 }).is_empty(),
            "nothing after the latest"
        );
    }

    #[test]
    fn an_offset_after_the_largest_is_no_position_and_never_wraps_to_the_first() {
        for offset in [u64::MAX, u64::MAX - 1, 151] {
            let read = window(150, 100, Range::After { offset, limit: 50 });
            assert!(read.is_empty(), "{offset}: {read:?}");
        }
        let read = window(150, 100, Range::After { offset: 0, limit: usize::MAX });
        assert_eq!(span(read), (51, 150), "an unbounded limit stops at the latest");
    }

    #[test]
    fn more_says_whether_a_limit_left_kept_messages_out_on_either_side() {
        let stream = |latest: u64| Stream { offset: latest, epoch: Epoch::parse("e").expect("epoch") };
        let kept = |offsets: std::ops::RangeInclusive<u64>| {
            offsets.map(|offset| Kept { offset, frame: String::new() }).collect::<Vec<_>>()
        };
        let newest = |limit: usize, stored: std::ops::RangeInclusive<u64>| {
            let read = window(10, 100, Range::Newest(limit));
            let found =
                kept(stored).into_iter().filter(|k| (read.lo..=read.hi).contains(&k.offset)).collect();
            page(stream(10), found, read, usize::MAX)
        };
        let one = newest(1, 1..=10);
        assert_eq!(one.messages.iter().map(|k| k.offset).collect::<Vec<_>>(), [10]);
        assert!(one.more, "nine older messages are kept");
        let all = newest(10, 1..=10);
        assert_eq!(all.messages.len(), 10);
        assert!(!all.more, "nothing older");
        let expired = newest(2, 9..=10);
        assert!(!expired.more, "the older ones expired: none kept");
        let after = window(10, 100, Range::After { offset: 2, limit: 3 });
        let page = page(stream(10), kept(3..=5), after, usize::MAX);
        assert!(page.more && page.messages.len() == 3, "newer ones follow");
    }

    #[test]
    fn a_budget_keeps_the_wanted_end_at_least_one_message_and_says_more() {
        let stream = Stream { offset: 10, epoch: Epoch::parse("e").expect("epoch") };
        // Frames of 9 bytes: each costs 10.
        let kept = |offsets: std::ops::RangeInclusive<u64>| {
            offsets.map(|offset| Kept { offset, frame: "x".repeat(9) }).collect::<Vec<_>>()
        };
        let offsets = |page: &Page| page.messages.iter().map(|k| k.offset).collect::<Vec<_>>();
        let newest = page(stream.clone(), kept(1..=10), window(10, 100, Range::Newest(10)), 30);
        assert_eq!((offsets(&newest), newest.more), (vec![8, 9, 10], true));
        let after =
            page(stream.clone(), kept(3..=10), window(10, 100, Range::After { offset: 2, limit: 100 }), 30);
        assert_eq!((offsets(&after), after.more), (vec![3, 4, 5], true));
        let tight =
            page(stream.clone(), kept(3..=10), window(10, 100, Range::After { offset: 2, limit: 100 }), 1);
        assert_eq!(offsets(&tight), [3], "one, whatever the budget");
        let ample = page(stream, kept(3..=10), window(10, 100, Range::After { offset: 2, limit: 100 }), 80);
        assert_eq!((ample.messages.len(), ample.more), (8, false), "exactly the budget");
        assert!(spent(31, 30) && !spent(30, 30));
    }

    #[test]
    fn a_position_recovers_in_its_epoch_while_the_message_after_it_is_kept() {
        let epoch = Epoch::random();
        let kept = |offsets: &[u64]| {
            offsets.iter().map(|&offset| Kept { offset, frame: String::new() }).collect::<Vec<_>>()
        };
        let at = |latest: u64, found: &[u64]| {
            let all = Window { lo: 1, hi: latest, wanted: 1, newest_first: false };
            page(Stream { offset: latest, epoch: epoch.clone() }, kept(found), all, usize::MAX)
        };
        assert!(at(10, &[]).recovers(10, &epoch), "nothing missed");
        assert!(at(10, &[8, 9, 10]).recovers(7, &epoch));
        assert!(!at(10, &[9, 10]).recovers(7, &epoch), "8 is gone: expired, or lost");
        assert!(!at(10, &[8, 9, 10]).recovers(7, &Epoch::random()), "another epoch");
        assert!(!at(10, &[]).recovers(11, &epoch), "a position from the future");
        let gaps = at(10, &[5, 7, 10]);
        assert_eq!(gaps.missing, [6, 8, 9]);
        assert!(gaps.recovers(4, &epoch));
    }
}
