//! Channels and the patterns connections subscribe with.
//!
//! A channel is 1 to [`MAX_SEGMENTS`] segments joined by `/`, each 1 to [`MAX_SEGMENT_CHARS`]
//! characters of `A-Z a-z 0-9 _ -`: `chat/general`, `doc/42/editors`. A [`Channel`] is what a publish
//! names; a [`ChannelPattern`] is what a subscription names, either a channel or a prefix ending in
//! `/*` that matches every channel below it at any depth (`chat/*` matches `chat/general` and
//! `chat/eu/paris`, not `chat` itself). A channel's publish reaches the subscribers of at most
//! [`MAX_SEGMENTS`] patterns ([`Channel::patterns`]), which is what lets the worker find them by
//! querying a few partitions instead of scanning the table.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Segments in a channel, or in a pattern before its `/*`.
pub const MAX_SEGMENTS: usize = 5;

/// Characters in one segment.
pub const MAX_SEGMENT_CHARS: usize = 50;

/// Subscriptions one connection may hold.
pub const MAX_SUBSCRIPTIONS: usize = 100;

/// The first segment of every user's own channel, `user/<sub>`.
pub const USER_SEGMENT: &str = "user";

/// Why a channel or pattern was refused; the message says what a valid one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidChannel {
    #[error(
        "a channel is 1 to {MAX_SEGMENTS} segments joined by '/', each 1 to {MAX_SEGMENT_CHARS} of A-Z a-z 0-9 _ -"
    )]
    Malformed,
    #[error("a publish, a history or a presence names one channel: wildcards are for subscriptions")]
    WildcardInPublish,
    #[error("a wildcard subscription ends in \"/*\" after at least one segment (\"chat/*\")")]
    MisplacedWildcard,
    #[error(
        "a wildcard matches channels below its prefix, and no channel has more than {MAX_SEGMENTS} segments: \
         at most {} segments before \"/*\"",
        MAX_SEGMENTS - 1
    )]
    WildcardTooDeep,
}

/// A concrete channel: what a publish names and a message is delivered on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Channel(String);

impl Channel {
    pub fn parse(raw: &str) -> Result<Self, InvalidChannel> {
        if raw.split('/').any(|segment| segment == "*") {
            return Err(InvalidChannel::WildcardInPublish);
        }
        segments_valid(raw).then(|| Self(raw.to_owned())).ok_or(InvalidChannel::Malformed)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Every pattern a subscriber to this channel may have used, the channel itself first:
    /// `chat/eu/paris` → `chat/eu/paris`, `chat/eu/*`, `chat/*`.
    pub fn patterns(&self) -> Vec<ChannelPattern> {
        let mut patterns = vec![ChannelPattern(self.0.clone())];
        let mut prefix = self.0.as_str();
        while let Some((parent, _)) = prefix.rsplit_once('/') {
            patterns.push(ChannelPattern(format!("{parent}/*")));
            prefix = parent;
        }
        patterns
    }

    /// The user whose own channel this is: `alice` for `user/alice`.
    pub fn owner(&self) -> Option<&str> {
        self.0.strip_prefix(USER_SEGMENT)?.strip_prefix('/').filter(|rest| !rest.contains('/'))
    }

    /// A user's own channel, when their `sub` is a valid segment.
    pub fn of_user(sub: &str) -> Option<Self> {
        Self::parse(&format!("{USER_SEGMENT}/{sub}")).ok().filter(|channel| channel.owner() == Some(sub))
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// What a subscription names: a channel, or a prefix ending in `/*`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ChannelPattern(String);

impl ChannelPattern {
    pub fn parse(raw: &str) -> Result<Self, InvalidChannel> {
        let prefix = raw.strip_suffix("/*").unwrap_or(raw);
        if prefix.split('/').any(|segment| segment == "*") || raw == "*" {
            return Err(InvalidChannel::MisplacedWildcard);
        }
        if !segments_valid(prefix) {
            return Err(InvalidChannel::Malformed);
        }
        // A pattern that no channel can match is a client's bug, told at once rather than a
        // subscription that silently never delivers.
        let wildcard = prefix.len() < raw.len();
        if wildcard && prefix.split('/').count() >= MAX_SEGMENTS {
            return Err(InvalidChannel::WildcardTooDeep);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments before the wildcard, and whether there is one.
    fn prefix(&self) -> (&str, bool) {
        match self.0.strip_suffix("/*") {
            Some(prefix) => (prefix, true),
            None => (&self.0, false),
        }
    }

    pub fn is_wildcard(&self) -> bool {
        self.prefix().1
    }

    /// The channel this pattern names, unless it is a wildcard.
    pub fn as_channel(&self) -> Option<Channel> {
        if self.is_wildcard() { None } else { Channel::parse(&self.0).ok() }
    }

    /// Whether a message on `channel` reaches a subscriber of this pattern.
    pub fn matches(&self, channel: &Channel) -> bool {
        match self.prefix() {
            (prefix, true) => channel.as_str().strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/')),
            (exact, false) => exact == channel.as_str(),
        }
    }

    /// Whether every channel this pattern matches is also matched by `grant`: how a subscription is
    /// checked against the patterns a token allows (`chat/eu/*` is within `chat/*`).
    pub fn is_within(&self, grant: &ChannelPattern) -> bool {
        match (self.prefix(), grant.prefix()) {
            ((mine, wildcard), (granted, true)) => {
                (wildcard && mine == granted)
                    || mine.strip_prefix(granted).is_some_and(|rest| rest.starts_with('/'))
            }
            ((mine, wildcard), (granted, false)) => !wildcard && mine == granted,
        }
    }

    /// The user whose own channels this pattern reaches, if it starts with `user/`: `Some(Some("alice"))`
    /// for `user/alice` and `user/alice/*`, `Some(None)` for `user/*`, which reaches everyone's.
    pub fn user_scope(&self) -> Option<Option<&str>> {
        let (prefix, _) = self.prefix();
        let rest = prefix.strip_prefix(USER_SEGMENT)?;
        if rest.is_empty() {
            return Some(None);
        }
        let rest = rest.strip_prefix('/')?;
        Some(Some(rest.split('/').next().unwrap_or(rest)))
    }
}

impl From<Channel> for ChannelPattern {
    fn from(channel: Channel) -> Self {
        Self(channel.0)
    }
}

impl fmt::Display for ChannelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ChannelPattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

fn segments_valid(raw: &str) -> bool {
    let mut count = 0;
    for segment in raw.split('/') {
        count += 1;
        let valid = (1..=MAX_SEGMENT_CHARS).contains(&segment.len())
            && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid || count > MAX_SEGMENTS {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(raw: &str) -> Channel {
        Channel::parse(raw).expect(raw)
    }

    fn pattern(raw: &str) -> ChannelPattern {
        ChannelPattern::parse(raw).expect(raw)
    }

    #[test]
    fn channels_of_one_to_five_valid_segments_are_accepted() {
        let longest = vec!["a".repeat(50); 5].join("/");
        for ok in ["chat", "chat/general", "a-b_C9/x", longest.as_str()] {
            assert!(Channel::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn malformed_channels_are_refused() {
        let long_segment = "a".repeat(51);
        for bad in [
            "",
            "/",
            "chat/",
            "/chat",
            "chat//general",
            "a/b/c/d/e/f",
            "chat room",
            "chat.general",
            "café",
            long_segment.as_str(),
        ] {
            assert_eq!(Channel::parse(bad), Err(InvalidChannel::Malformed), "{bad:?}");
            assert_eq!(ChannelPattern::parse(bad), Err(InvalidChannel::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn a_wildcard_is_refused_in_a_publish_and_anywhere_but_the_end_of_a_pattern() {
        assert_eq!(Channel::parse("chat/*"), Err(InvalidChannel::WildcardInPublish));
        for bad in ["*", "*/chat", "chat/*/x", "chat/*/*"] {
            assert_eq!(ChannelPattern::parse(bad), Err(InvalidChannel::MisplacedWildcard), "{bad}");
        }
        assert_eq!(ChannelPattern::parse("chat/x*"), Err(InvalidChannel::Malformed));
        assert!(ChannelPattern::parse("a/b/c/d/*").is_ok(), "four segments before the wildcard");
        assert!(ChannelPattern::parse("a/b/c/d/e").is_ok(), "five segments, no wildcard");
        assert_eq!(ChannelPattern::parse("a/b/c/d/e/f/*"), Err(InvalidChannel::Malformed));
    }

    #[test]
    fn a_wildcard_below_the_deepest_channel_is_refused_since_nothing_could_match_it() {
        let err = ChannelPattern::parse("a/b/c/d/e/*").expect_err("no channel has six segments");
        assert_eq!(err, InvalidChannel::WildcardTooDeep);
        assert!(err.to_string().contains("at most 4 segments before"), "{err}");
        assert!(
            !Channel::parse("a/b/c/d/e")
                .expect("the deepest channel")
                .patterns()
                .iter()
                .any(|p| p.as_str() == "a/b/c/d/e/*")
        );
    }

    #[test]
    fn a_wildcard_matches_every_channel_below_it_at_any_depth_and_not_itself() {
        let chat = pattern("chat/*");
        assert!(chat.matches(&channel("chat/general")));
        assert!(chat.matches(&channel("chat/eu/paris")));
        assert!(!chat.matches(&channel("chat")));
        assert!(!chat.matches(&channel("chatter/x")));
        assert!(pattern("chat/general").matches(&channel("chat/general")));
        assert!(!pattern("chat/general").matches(&channel("chat/general/x")));
    }

    #[test]
    fn a_channel_lists_itself_and_each_wildcard_ancestor() {
        let names = |c: &str| channel(c).patterns().iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(names("chat/eu/paris"), ["chat/eu/paris", "chat/eu/*", "chat/*"]);
        assert_eq!(names("chat"), ["chat"]);
        // Every listed pattern matches the channel, and every matching pattern is listed.
        let c = channel("a/b/c/d/e");
        assert_eq!(c.patterns().len(), MAX_SEGMENTS);
        assert!(c.patterns().iter().all(|p| p.matches(&c)));
    }

    #[test]
    fn a_pattern_is_within_a_grant_that_matches_everything_it_does() {
        assert!(pattern("chat/general").is_within(&pattern("chat/*")));
        assert!(pattern("chat/eu/*").is_within(&pattern("chat/*")));
        assert!(pattern("chat/general").is_within(&pattern("chat/general")));
        assert!(pattern("chat/*").is_within(&pattern("chat/*")));
        assert!(!pattern("chat/*").is_within(&pattern("chat/general")));
        assert!(!pattern("chat/*").is_within(&pattern("chat/eu/*")));
        assert!(!pattern("chat").is_within(&pattern("chat/*")));
        assert!(!pattern("chatter/x").is_within(&pattern("chat/*")));
    }

    #[test]
    fn user_channels_name_their_owner() {
        assert_eq!(channel("user/alice").owner(), Some("alice"));
        assert_eq!(channel("user/alice/x").owner(), None);
        assert_eq!(channel("users/alice").owner(), None);
        assert_eq!(Channel::of_user("alice"), Some(channel("user/alice")));
        assert_eq!(Channel::of_user("alice/bob"), None, "a sub that is not one segment has no channel");
        assert_eq!(Channel::of_user("a b"), None);
        assert_eq!(pattern("user/alice/*").user_scope(), Some(Some("alice")));
        assert_eq!(pattern("user/*").user_scope(), Some(None));
        assert_eq!(pattern("user").user_scope(), Some(None));
        assert_eq!(pattern("userx/y").user_scope(), None);
    }
}
