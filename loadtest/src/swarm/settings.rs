//! What a swarm run does: the scenario, how many connections at what rate, what they publish, and
//! who subscribes to what in the channels scenario.

use std::time::Duration;

use crate::stamp::{ALL_CHANNELS, channel_name};

/// What the swarm does once connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Publishers send stamped `echo` messages; each times its own round trip.
    Echo,
    /// Publishers send stamped `broadcast` messages; every connection should receive every one.
    Broadcast,
    /// Connections stay open and idle for `hold`; drops are reported.
    Hold,
    /// Each connection subscribes to one of `channels` channels (and the first `wildcards` also to a
    /// wildcard over all of them); publishers publish to channels at random. Every subscriber must get
    /// exactly its channels' messages, once: anything else is lost, duplicated or misdelivered.
    Channels,
    /// Subscribers that follow their channel as the browser client does (in offset order, missing
    /// offsets read from history, resubscribing from their last position) have their sockets cut at
    /// random while publishers publish; the report counts what their apps saw (`recovery` module).
    Recovery,
    /// `connections` members watch one channel while probes join and leave it and `presence` is
    /// read; then, optionally, connections join and leave a channel at random and the counts and
    /// lifecycle events are checked (`presence` module).
    Presence,
}

#[derive(Clone, Debug)]
pub struct SwarmSettings {
    pub url: String,
    pub connections: u32,
    /// New connections per second.
    pub connect_rate: u32,
    pub scenario: Scenario,
    pub publishers: u32,
    /// Messages per publisher.
    pub messages: u64,
    /// Messages per second, all publishers together.
    pub rate: f64,
    /// Bytes per message, at least.
    pub size: usize,
    /// How long the hold scenario holds.
    pub hold: Duration,
    /// How long to wait for deliveries after the last publish.
    pub settle: Duration,
    /// The whole run's upper bound.
    pub deadline: Duration,
    pub progress: bool,
    /// Extra connections that complete their handshake and then never read, with a receive window of
    /// a few kilobytes: what a hung browser tab or a stalled mobile client does to everyone else.
    pub stuck: u32,
    /// The channels scenario's number of channels.
    pub channels: u32,
    /// Connections (the first after the publishers) also subscribed to the wildcard over every channel.
    pub wildcards: u32,
    /// Connect with development tokens signed with this secret (`?token=`), one user per connection.
    pub jwt_secret: Option<String>,
}

impl Default for SwarmSettings {
    fn default() -> Self {
        Self {
            url: "ws://127.0.0.1:3001".into(),
            connections: 100,
            connect_rate: 500,
            scenario: Scenario::Broadcast,
            publishers: 1,
            messages: 10,
            rate: 10.0,
            size: 0,
            hold: Duration::from_secs(10),
            settle: Duration::from_secs(10),
            deadline: Duration::from_secs(300),
            progress: false,
            stuck: 0,
            channels: 100,
            wildcards: 0,
            jwt_secret: None,
        }
    }
}

/// Who subscribes to what in the channels scenario.
#[derive(Clone, Copy, Debug)]
pub struct Channels {
    pub count: u32,
    /// Connections `publishers..publishers + wildcards` are also on the wildcard.
    pub wildcard_from: u32,
    pub wildcard_to: u32,
}

impl Channels {
    /// The channel connection `index` is subscribed to.
    pub fn of(&self, index: u32) -> u32 {
        index % self.count.max(1)
    }

    pub fn on_wildcard(&self, index: u32) -> bool {
        (self.wildcard_from..self.wildcard_to).contains(&index)
    }

    /// Whether connection `index` receives what is published on `channel`.
    pub fn member(&self, index: u32, channel: u32) -> bool {
        self.on_wildcard(index) || self.of(index) == channel
    }

    /// The patterns connection `index` subscribes to.
    pub(crate) fn patterns(&self, index: u32) -> Vec<String> {
        let mut patterns = vec![channel_name(self.of(index))];
        if self.on_wildcard(index) {
            patterns.push(ALL_CHANNELS.to_owned());
        }
        patterns
    }

    /// The channel of the `n`th publish: spread over every channel, in no particular order.
    pub fn target(&self, n: u64) -> u32 {
        (n.wrapping_mul(2_654_435_761) % u64::from(self.count.max(1))) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_members_are_those_on_the_channel_and_those_on_the_wildcard() {
        let channels = Channels { count: 10, wildcard_from: 1, wildcard_to: 3 };
        assert!(channels.member(13, 3) && !channels.member(13, 4));
        assert!(channels.member(2, 7), "on the wildcard");
        assert_eq!(channels.patterns(2), ["load/c2", "load/*"]);
        assert_eq!(channels.patterns(13), ["load/c3"]);
        let targets: std::collections::HashSet<u32> = (0..1000).map(|n| channels.target(n)).collect();
        assert_eq!(targets.len(), 10, "publishes reach every channel");
    }
}
