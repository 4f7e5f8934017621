//! Delivery accounting: from what was published and what each connection received, how much was
//! expected, delivered, lost and duplicated.
//!
//! Pure functions over traces, so that the numbers a load test reports can be checked on traces made
//! up by hand. A message on a channel is expected by the channel's members only; one received by a
//! connection that is not a member is `misdelivered`, the one failure worse than a loss. A connection expects every message published to its destination while it was connected;
//! once it drops, nothing published from [`DROP_SETTLE_US`] before the drop on is expected of it,
//! since those deliveries may have been in flight when it went.

use std::collections::{HashMap, HashSet};

/// Messages published this close to a connection's drop are not expected of it: a delivery the worker
/// put in a retry job may still be on its way 15 s after it was published (its retry jobs wait 1, 2,
/// 4 and 8 s), more on a loaded machine. With 5 s here, a 2-core machine running the debug build
/// counted deliveries still in flight to a connection cut later as lost, one run in two.
pub const DROP_SETTLE_US: u64 = 20_000_000;

/// Who a message is sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Every connection (a broadcast).
    All,
    /// One connection (an echo to its sender).
    Only(u32),
    /// The members of one channel, as [`Membership`] says.
    Channel(u32),
}

/// Whether connection `index` is subscribed to channel `channel`, directly or by a wildcard.
pub type Membership<'a> = &'a dyn Fn(u32, u32) -> bool;

/// One message sent by the swarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    pub publisher: u32,
    pub seq: u64,
    /// Microseconds since the swarm started.
    pub at_us: u64,
    pub destination: Destination,
}

/// What one connection saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    pub index: u32,
    /// When the handshake completed; `None` if it never did.
    pub connected_at_us: Option<u64>,
    /// When it closed or failed before the swarm closed it.
    pub dropped_at_us: Option<u64>,
    /// Every (publisher, seq) received, duplicates included.
    pub received: Vec<(u32, u64)>,
}

/// The totals a report gives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub expected: u64,
    /// Distinct expected messages that arrived.
    pub received: u64,
    pub lost: u64,
    /// Receipts beyond the first of the same message on the same connection.
    pub duplicated: u64,
    /// Receipts of messages the connection was not expected to get (say, published before it joined).
    pub unexpected: u64,
    /// Receipts of messages on a channel the connection is not a member of: a leak across channels.
    pub misdelivered: u64,
    pub dropped: u64,
}

fn is_addressed(trace: &Trace, message: &Published, members: Membership<'_>) -> bool {
    match message.destination {
        Destination::All => true,
        Destination::Only(index) => index == trace.index,
        Destination::Channel(channel) => members(trace.index, channel),
    }
}

fn expects(trace: &Trace, message: &Published, members: Membership<'_>) -> bool {
    let Some(connected) = trace.connected_at_us else { return false };
    let addressed = is_addressed(trace, message, members);
    let before_drop = trace.dropped_at_us.is_none_or(|dropped| message.at_us + DROP_SETTLE_US < dropped);
    addressed && message.at_us >= connected && before_drop
}

/// Accounts every trace against everything published; `members` answers for channel messages.
pub fn tally(published: &[Published], traces: &[Trace], members: Membership<'_>) -> Tally {
    let by_key: HashMap<(u32, u64), &Published> =
        published.iter().map(|m| ((m.publisher, m.seq), m)).collect();
    let mut tally = Tally::default();
    for trace in traces {
        if trace.dropped_at_us.is_some() {
            tally.dropped += 1;
        }
        let mut seen = HashSet::with_capacity(trace.received.len());
        let mut delivered = 0;
        for key in &trace.received {
            if !seen.insert(*key) {
                tally.duplicated += 1;
                continue;
            }
            match by_key.get(key) {
                Some(message) if expects(trace, message, members) => delivered += 1,
                Some(message) if !is_addressed(trace, message, members) => tally.misdelivered += 1,
                _ => tally.unexpected += 1,
            }
        }
        let expected = published.iter().filter(|m| expects(trace, m, members)).count() as u64;
        tally.expected += expected;
        tally.received += delivered;
        tally.lost += expected.saturating_sub(delivered);
    }
    tally
}

/// For runs without channels.
pub fn no_channels(_index: u32, _channel: u32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(published: &[Published], traces: &[Trace]) -> Tally {
        super::tally(published, traces, &no_channels)
    }

    fn broadcast(publisher: u32, seq: u64, at_us: u64) -> Published {
        Published { publisher, seq, at_us, destination: Destination::All }
    }

    fn trace(index: u32, connected: u64, dropped: Option<u64>, received: &[(u32, u64)]) -> Trace {
        Trace { index, connected_at_us: Some(connected), dropped_at_us: dropped, received: received.to_vec() }
    }

    #[test]
    fn full_delivery_has_nothing_lost_or_doubled() {
        let published = [broadcast(0, 0, 10), broadcast(0, 1, 20)];
        let traces = [trace(0, 0, None, &[(0, 0), (0, 1)]), trace(1, 0, None, &[(0, 1), (0, 0)])];
        let t = tally(&published, &traces);
        assert_eq!((t.expected, t.received, t.lost, t.duplicated), (4, 4, 0, 0));
    }

    #[test]
    fn a_missing_receipt_is_lost_and_a_repeated_one_is_a_duplicate() {
        let published = [broadcast(0, 0, 10), broadcast(0, 1, 20)];
        let traces =
            [trace(0, 0, None, &[(0, 0), (0, 0)]), trace(1, 0, None, &[(0, 0), (0, 1), (0, 1), (0, 1)])];
        let t = tally(&published, &traces);
        assert_eq!((t.expected, t.received, t.lost, t.duplicated), (4, 3, 1, 3));
    }

    #[test]
    fn a_dropped_connection_is_counted_and_expects_nothing_published_after_it_went() {
        let settle = DROP_SETTLE_US;
        let published = [broadcast(0, 0, 0), broadcast(0, 1, settle), broadcast(0, 2, 2 * settle)];
        // Dropped just past the settle time: the second message was in flight, the third after.
        let traces = [
            trace(0, 0, None, &[(0, 0), (0, 1), (0, 2)]),
            trace(1, 0, Some(settle + settle / 10), &[(0, 0)]),
        ];
        let t = tally(&published, &traces);
        assert_eq!((t.expected, t.received, t.lost, t.dropped), (4, 4, 0, 1));
    }

    #[test]
    fn messages_published_before_a_connection_joined_are_not_expected_of_it() {
        let published = [broadcast(0, 0, 100), broadcast(0, 1, 300)];
        let traces = [trace(0, 200, None, &[(0, 0), (0, 1)])];
        let t = tally(&published, &traces);
        assert_eq!((t.expected, t.received, t.lost, t.unexpected), (1, 1, 0, 1));
    }

    #[test]
    fn an_echo_is_expected_only_by_its_sender() {
        let published = [Published { publisher: 1, seq: 0, at_us: 10, destination: Destination::Only(1) }];
        let traces = [trace(0, 0, None, &[]), trace(1, 0, None, &[])];
        let t = tally(&published, &traces);
        assert_eq!((t.expected, t.lost), (1, 1));
    }

    #[test]
    fn a_connection_that_never_connected_expects_nothing() {
        let published = [broadcast(0, 0, 10)];
        let traces = [Trace { index: 3, ..Trace::default() }];
        assert_eq!(tally(&published, &traces), Tally::default());
    }
}

#[cfg(test)]
mod channel_tests {
    use super::*;

    /// Connections 0 and 1 are on channel 0, connection 2 on channel 1, connection 3 on every channel.
    fn members(index: u32, channel: u32) -> bool {
        match index {
            0 | 1 => channel == 0,
            2 => channel == 1,
            _ => true,
        }
    }

    fn on(channel: u32, seq: u64) -> Published {
        Published { publisher: 0, seq, at_us: 10, destination: Destination::Channel(channel) }
    }

    fn trace(index: u32, received: &[(u32, u64)]) -> Trace {
        Trace { index, connected_at_us: Some(0), dropped_at_us: None, received: received.to_vec() }
    }

    #[test]
    fn a_channel_message_is_expected_by_its_members_alone() {
        let published = [on(0, 0), on(1, 1)];
        let traces =
            [trace(0, &[(0, 0)]), trace(1, &[(0, 0)]), trace(2, &[(0, 1)]), trace(3, &[(0, 0), (0, 1)])];
        let t = tally(&published, &traces, &members);
        assert_eq!((t.expected, t.received, t.lost, t.misdelivered), (5, 5, 0, 0));
    }

    #[test]
    fn a_message_received_outside_its_channel_is_misdelivered_not_unexpected() {
        let published = [on(0, 0), on(1, 1)];
        let traces =
            [trace(0, &[(0, 0), (0, 1)]), trace(1, &[]), trace(2, &[(0, 1)]), trace(3, &[(0, 0), (0, 1)])];
        let t = tally(&published, &traces, &members);
        assert_eq!((t.expected, t.received, t.lost, t.misdelivered, t.unexpected), (5, 4, 1, 1, 0));
    }
}
