//! What a channel's namespace decides for it, and the table that answers for any channel.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::channel::{Channel, ChannelPattern};
use crate::history::HistorySettings;
use crate::quota::QuotaOverride;

/// Who may publish to a namespace's channels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Publishers {
    /// Clients, as far as their token allows, and the backend.
    #[default]
    Clients,
    /// The backend alone (through the queue): clients may only subscribe.
    Backend,
}

/// A function the ingress asks before it lets a subscribe or a publish through, and what it does
/// when the function does not answer (a timeout, an error, an answer it cannot read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    /// A Lambda function's name or ARN, as `Invoke` takes it.
    pub function: String,
    /// How long the ingress waits for the answer.
    pub timeout: Duration,
    pub on_failure: OnFailure,
}

impl Hook {
    /// Long enough for a warm function and its network round trip many times over; a cold start
    /// of a small function fits too.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);
    /// Well inside API Gateway's 29 s integration timeout and the ingress's own.
    pub const MAX_TIMEOUT: Duration = Duration::from_millis(10_000);
}

/// A function handed every message published to a namespace's channels — by a client or the
/// backend — once it has its offset, asynchronously: Lambda's `Event` invocation, which Lambda
/// queues and retries by itself; no one waits for it and its answer decides nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventHook {
    /// A Lambda function's name or ARN, as `Invoke` takes it.
    pub function: String,
}

/// What a hook that does not answer means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// The request is refused `unavailable` ("send it again"): nothing passes unchecked.
    #[default]
    Refuse,
    /// The request goes through as if the hook had allowed it unchanged.
    Allow,
}

/// The options of one channel: its namespace's, or the stack's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelOptions {
    /// How much of its history is kept (size 0: none, and no offsets).
    pub history: HistorySettings,
    /// Whether its members are kept (`presence` answered, `join`/`leave` sent).
    pub presence: bool,
    /// Whether a subscriber may ask for `join` and `leave` frames (`joinLeave`).
    pub join_leave: bool,
    pub publishers: Publishers,
    /// Asked about every subscribe (and resubscribe), `history` and `presence` of its channels.
    pub subscribe_hook: Option<Hook>,
    /// Asked about every client's publish to its channels, before the message takes an offset.
    pub publish_hook: Option<Hook>,
    /// Handed every message published to its channels, after it has its offset.
    pub event_hook: Option<EventHook>,
    /// Quotas of its own in place of the stack's: a client's publishes to its channels are
    /// counted apart from the rest.
    pub quotas: Option<QuotaOverride>,
}

impl ChannelOptions {
    /// The stack's defaults: what every channel had before namespaces, and what a channel in no
    /// listed namespace still has.
    pub fn defaults(history: HistorySettings, presence: bool) -> Self {
        Self {
            history,
            presence,
            join_leave: presence,
            publishers: Publishers::Clients,
            subscribe_hook: None,
            publish_hook: None,
            event_hook: None,
            quotas: None,
        }
    }

    fn functions(&self) -> impl Iterator<Item = &str> {
        let asked = self.subscribe_hook.iter().chain(&self.publish_hook).map(|hook| hook.function.as_str());
        asked.chain(self.event_hook.iter().map(|hook| hook.function.as_str()))
    }
}

impl Default for ChannelOptions {
    fn default() -> Self {
        Self::defaults(HistorySettings::default(), true)
    }
}

/// Every namespace's options, and the defaults for a channel in none. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespaces {
    table: Arc<Table>,
}

#[derive(Debug, PartialEq, Eq)]
struct Table {
    defaults: ChannelOptions,
    named: BTreeMap<String, ChannelOptions>,
}

impl Default for Namespaces {
    fn default() -> Self {
        Self::uniform(ChannelOptions::default())
    }
}

impl Namespaces {
    /// No namespace: every channel has `defaults`.
    pub fn uniform(defaults: ChannelOptions) -> Self {
        Self::new(defaults, BTreeMap::new())
    }

    pub(super) fn new(defaults: ChannelOptions, named: BTreeMap<String, ChannelOptions>) -> Self {
        Self { table: Arc::new(Table { defaults, named }) }
    }

    /// The options of `channel`: its namespace's, or the defaults.
    pub fn of(&self, channel: &Channel) -> &ChannelOptions {
        self.named(first_segment(channel.as_str()))
    }

    /// The options of every channel `pattern` names: a pattern has at least one segment before its
    /// `/*`, so all its channels share one namespace.
    pub fn of_pattern(&self, pattern: &ChannelPattern) -> &ChannelOptions {
        self.named(first_segment(pattern.as_str()))
    }

    /// The namespace `channel` is in: its first segment, listed or not.
    pub fn name_of(channel: &Channel) -> &str {
        first_segment(channel.as_str())
    }

    /// How much of `channel`'s history is kept.
    pub fn history(&self, channel: &Channel) -> HistorySettings {
        self.of(channel).history
    }

    /// The defaults, for a channel in no listed namespace.
    pub fn defaults(&self) -> &ChannelOptions {
        &self.table.defaults
    }

    /// The listed namespaces and their options, by name.
    pub fn listed(&self) -> impl Iterator<Item = (&str, &ChannelOptions)> {
        self.table.named.iter().map(|(name, options)| (name.as_str(), options))
    }

    /// Whether any channel keeps history: whether the history port is needed at all.
    pub fn any_history(&self) -> bool {
        self.all().any(|options| options.history.is_on())
    }

    /// Whether any channel keeps its members: whether the presence port is needed at all.
    pub fn any_presence(&self) -> bool {
        self.all().any(|options| options.presence)
    }

    /// Every function a namespace names, once each: what the functions may invoke.
    pub fn functions(&self) -> Vec<&str> {
        let mut functions: Vec<&str> = self.all().flat_map(ChannelOptions::functions).collect();
        functions.sort_unstable();
        functions.dedup();
        functions
    }

    fn all(&self) -> impl Iterator<Item = &ChannelOptions> {
        std::iter::once(&self.table.defaults).chain(self.table.named.values())
    }

    fn named(&self, namespace: &str) -> &ChannelOptions {
        self.table.named.get(namespace).unwrap_or(&self.table.defaults)
    }
}

fn first_segment(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat_keeps_nothing() -> Namespaces {
        let chat = ChannelOptions {
            history: HistorySettings { size: 0, ..HistorySettings::default() },
            presence: false,
            join_leave: false,
            publishers: Publishers::Backend,
            subscribe_hook: None,
            publish_hook: None,
            event_hook: None,
            quotas: None,
        };
        Namespaces::new(ChannelOptions::default(), BTreeMap::from([("chat".to_owned(), chat)]))
    }

    #[test]
    fn a_channel_takes_its_first_segments_options_and_any_other_the_defaults() {
        let namespaces = chat_keeps_nothing();
        let channel = |raw| Channel::parse(raw).expect("a channel");
        assert!(!namespaces.history(&channel("chat/general")).is_on());
        assert!(!namespaces.of(&channel("chat")).presence);
        assert_eq!(namespaces.of(&channel("chat/eu/paris")).publishers, Publishers::Backend);
        assert_eq!(namespaces.of(&channel("chatter/x")), namespaces.defaults());
        assert_eq!(namespaces.of(&channel("room/chat")), namespaces.defaults());
        let pattern = ChannelPattern::parse("chat/*").expect("a pattern");
        assert!(!namespaces.of_pattern(&pattern).presence);
    }

    #[test]
    fn the_ports_are_needed_when_any_channel_uses_them() {
        let namespaces = chat_keeps_nothing();
        assert!(namespaces.any_history() && namespaces.any_presence());
        let off = ChannelOptions::defaults(HistorySettings { size: 0, ..HistorySettings::default() }, false);
        let on = ChannelOptions::default();
        let some = Namespaces::new(off.clone(), BTreeMap::from([("chat".to_owned(), on)]));
        assert!(some.any_history() && some.any_presence());
        assert!(!Namespaces::uniform(off).any_history());
    }
}
