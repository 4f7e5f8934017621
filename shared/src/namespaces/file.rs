//! `namespaces.toml`: one table a namespace, its options the stack's defaults where it gives none.
//!
//! ```toml
//! [chat]                    # chat/general, chat/eu/paris, …
//! history_size = 100        # messages kept per channel (0: none), at most 1,000
//! history_ttl_seconds = 300 # each kept for, 1 to 86,400
//! presence = true           # members kept, `presence` answered
//! join_leave = true         # subscribers may ask for join and leave frames (needs presence)
//! publish = "clients"       # or "backend": clients may then only subscribe
//! subscribe_hook = { function = "rooms", timeout_ms = 1000, on_failure = "refuse" }
//! publish_hook = { function = "moderate" }   # on_failure "allow" lets a request through
//! event_hook = { function = "archive" }       # every message, after its offset, asynchronously
//! publish_rate_per_connection = 60  # a client's publishes a second here (0: none), counted apart
//! publish_rate_per_user = 120
//! ```
//!
//! Anything wrong — TOML that does not parse, an option or a namespace named twice, an unknown
//! option, a value out of range, a name that is no channel segment — is an error naming the file
//! and the line, and nothing of the file applies: the local gateway does not start, nor do the
//! functions.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::options::{ChannelOptions, EventHook, Hook, Namespaces, OnFailure, Publishers};
use crate::channel::{Channel, MAX_SEGMENT_CHARS};
use crate::history::HistorySettings;
use crate::quota::QuotaOverride;

/// The file's name, at the repository's root: the functions are built with it, and the local
/// gateway reads it from where it starts.
pub const FILE: &str = "namespaces.toml";

/// What is wrong with a namespace file, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct NamespacesError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    history_size: Option<Spanned<usize>>,
    history_ttl_seconds: Option<Spanned<u64>>,
    presence: Option<bool>,
    join_leave: Option<Spanned<bool>>,
    publish: Option<Publishers>,
    subscribe_hook: Option<Spanned<RawHook>>,
    publish_hook: Option<Spanned<RawHook>>,
    event_hook: Option<Spanned<RawEventHook>>,
    publish_rate_per_connection: Option<Spanned<u32>>,
    publish_rate_per_user: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    function: Spanned<String>,
    timeout_ms: Option<Spanned<u64>>,
    on_failure: Option<OnFailure>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEventHook {
    function: Spanned<String>,
}

/// The most messages a second a quota may allow, as the template's parameters.
const MAX_PUBLISH_RATE: u32 = 10_000;

/// The longest function name or ARN `Invoke` takes (an ARN with a version or alias).
const MAX_FUNCTION_CHARS: usize = 170;

/// Reads `text`, the contents of `file`, over `defaults`.
pub fn parse(file: &str, text: &str, defaults: ChannelOptions) -> Result<Namespaces, NamespacesError> {
    let at = |span: Option<Range<usize>>, message: String| NamespacesError {
        file: file.to_owned(),
        line: span.map_or(1, |span| line_of(text, span.start)),
        message,
    };
    let raw: BTreeMap<Spanned<String>, Spanned<Options>> =
        toml::from_str(text).map_err(|err| at(err.span(), err.message().to_owned()))?;
    let mut named = BTreeMap::new();
    for (name, options) in raw {
        let span = name.span();
        let name = name.into_inner();
        if Channel::parse(&name).map_or(true, |channel| channel.as_str().contains('/')) {
            return Err(at(
                Some(span),
                format!(
                    "\"{name}\" is not a namespace: a namespace is a channel's first segment, 1 to \
                     {MAX_SEGMENT_CHARS} of A-Z a-z 0-9 _ -"
                ),
            ));
        }
        let options =
            resolve(options.into_inner(), &defaults).map_err(|(span, message)| at(Some(span), message))?;
        named.insert(name, options);
    }
    Ok(Namespaces::new(defaults, named))
}

/// One namespace's options over the defaults, or the span of the value that is wrong.
fn resolve(raw: Options, defaults: &ChannelOptions) -> Result<ChannelOptions, (Range<usize>, String)> {
    let mut history = defaults.history;
    if let Some(size) = raw.history_size {
        if *size.get_ref() > HistorySettings::MAX_SIZE {
            return Err((size.span(), format!("history_size must be at most {}", HistorySettings::MAX_SIZE)));
        }
        history.size = size.into_inner();
    }
    if let Some(ttl) = raw.history_ttl_seconds {
        let max = HistorySettings::MAX_TTL.as_secs();
        if !(1..=max).contains(ttl.get_ref()) {
            return Err((ttl.span(), format!("history_ttl_seconds must be from 1 to {max}")));
        }
        history.ttl = std::time::Duration::from_secs(ttl.into_inner());
    }
    let presence = raw.presence.unwrap_or(defaults.presence);
    let join_leave = match raw.join_leave {
        Some(asked) if *asked.get_ref() && !presence => {
            return Err((
                asked.span(),
                "join_leave needs presence: join and leave frames are presence's".into(),
            ));
        }
        Some(asked) => asked.into_inner(),
        None => presence,
    };
    let publishers = raw.publish.unwrap_or(defaults.publishers);
    let publish_hook = match raw.publish_hook {
        Some(asked) if publishers == Publishers::Backend => {
            return Err((
                asked.span(),
                "publish_hook asks about clients' publishes, and publish = \"backend\" lets none through \
                 (the backend's skip publish hooks)"
                    .into(),
            ));
        }
        asked => asked.map(hook).transpose()?,
    };
    let rate = |given: Option<Spanned<u32>>, key: &str| match given {
        Some(rate) if *rate.get_ref() > MAX_PUBLISH_RATE => {
            Err((rate.span(), format!("{key} must be at most {MAX_PUBLISH_RATE} (0: no limit)")))
        }
        given => Ok(given.map(Spanned::into_inner)),
    };
    let per_connection = rate(raw.publish_rate_per_connection, "publish_rate_per_connection")?;
    let per_user = rate(raw.publish_rate_per_user, "publish_rate_per_user")?;
    let quotas = (per_connection.is_some() || per_user.is_some())
        .then_some(QuotaOverride { per_connection, per_user });
    Ok(ChannelOptions {
        quotas,
        history,
        presence,
        join_leave,
        publishers,
        subscribe_hook: raw.subscribe_hook.map(hook).transpose()?,
        publish_hook,
        event_hook: raw
            .event_hook
            .map(|raw| function(raw.into_inner().function).map(|function| EventHook { function }))
            .transpose()?,
    })
}

fn function(function: Spanned<String>) -> Result<String, (Range<usize>, String)> {
    let name = function.get_ref();
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '$');
    if name.is_empty() || name.len() > MAX_FUNCTION_CHARS || !name.chars().all(valid) {
        return Err((
            function.span(),
            format!(
                "function must be a Lambda function's name or ARN (1 to {MAX_FUNCTION_CHARS} of A-Z a-z 0-9 - _ . : $)"
            ),
        ));
    }
    Ok(function.into_inner())
}

fn hook(raw: Spanned<RawHook>) -> Result<Hook, (Range<usize>, String)> {
    let raw = raw.into_inner();
    let function = function(raw.function)?;
    let timeout = match raw.timeout_ms {
        None => Hook::DEFAULT_TIMEOUT,
        Some(ms) => {
            let max = Hook::MAX_TIMEOUT.as_millis() as u64;
            if !(1..=max).contains(ms.get_ref()) {
                return Err((ms.span(), format!("timeout_ms must be from 1 to {max}")));
            }
            std::time::Duration::from_millis(ms.into_inner())
        }
    };
    Ok(Hook { function, timeout, on_failure: raw.on_failure.unwrap_or_default() })
}

fn line_of(text: &str, at: usize) -> usize {
    text.get(..at).unwrap_or(text).matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Namespaces, NamespacesError> {
        parse("namespaces.toml", text, ChannelOptions::default())
    }

    fn refused(text: &str) -> String {
        read(text).expect_err("refused").to_string()
    }

    #[test]
    fn a_namespace_takes_what_it_says_and_the_defaults_for_the_rest() {
        let namespaces = read(
            "# chat keeps a little\n[chat]\nhistory_size = 10\nhistory_ttl_seconds = 60\n\n\
             [cursor]\nhistory_size = 0\npresence = false\n\n[notifications]\npublish = \"backend\"\n",
        )
        .expect("valid");
        let channel = |raw| Channel::parse(raw).expect("a channel");
        let chat = namespaces.of(&channel("chat/general"));
        assert_eq!((chat.history.size, chat.history.ttl.as_secs()), (10, 60));
        assert!(chat.presence && chat.join_leave);
        let cursor = namespaces.of(&channel("cursor/doc/1"));
        assert!(!cursor.history.is_on() && !cursor.presence && !cursor.join_leave);
        let notifications = namespaces.of(&channel("notifications/alice"));
        assert_eq!(notifications.publishers, Publishers::Backend);
        assert_eq!(notifications.history, HistorySettings::default());
        assert_eq!(namespaces.of(&channel("room/1")), &ChannelOptions::default());
        assert_eq!(namespaces.listed().count(), 3);
    }

    #[test]
    fn an_empty_file_or_one_of_comments_lists_no_namespace() {
        for text in ["", "# nothing yet\n\n"] {
            let namespaces = read(text).expect("valid");
            assert_eq!(namespaces, Namespaces::default());
        }
    }

    #[test]
    fn each_mistake_is_named_with_its_file_and_line_and_nothing_applies() {
        let cases = [
            ("[chat]\nhistory_size = 10\n\n[chat]\npresence = false\n", "namespaces.toml:4:", "duplicate"),
            ("[chat]\nhistroy_size = 10\n", "namespaces.toml:2:", "unknown field `histroy_size`"),
            ("[chat]\nhistory_size = 10\nhistory_size = 20\n", "namespaces.toml:3:", "duplicate"),
            ("\n[chat]\nhistory_size = 5000\n", "namespaces.toml:3:", "at most 1000"),
            ("[chat]\nhistory_ttl_seconds = 0\n", "namespaces.toml:2:", "from 1 to 86400"),
            ("[chat]\npresence = \"yes\"\n", "namespaces.toml:2:", "expected a boolean"),
            ("[chat]\npublish = \"everyone\"\n", "namespaces.toml:2:", "unknown variant `everyone`"),
            (
                "[chat]\npresence = false\njoin_leave = true\n",
                "namespaces.toml:3:",
                "join_leave needs presence",
            ),
            ("history_size = 10\n", "namespaces.toml:1:", "invalid type"),
            ("[\"chat/eu\"]\npresence = false\n", "namespaces.toml:1:", "is not a namespace"),
            ("[\"*\"]\n", "namespaces.toml:1:", "is not a namespace"),
            ("[chat\n", "namespaces.toml:1:", ""),
            ("[chat]\nsubscribe_hook = { function = \"\" }\n", "namespaces.toml:2:", "function must be"),
            ("[chat]\nsubscribe_hook = { function = \"a b\" }\n", "namespaces.toml:2:", "function must be"),
            (
                "[chat]\n\npublish_hook = { function = \"m\", timeout_ms = 0 }\n",
                "namespaces.toml:3:",
                "timeout_ms",
            ),
            (
                "[chat]\npublish_hook = { function = \"m\", timeout_ms = 60000 }\n",
                "namespaces.toml:2:",
                "from 1 to 10000",
            ),
            (
                "[chat]\npublish_hook = { function = \"m\", on_failure = \"ignore\" }\n",
                "namespaces.toml:2:",
                "unknown variant",
            ),
            (
                "[chat]\npublish_hook = { function = \"m\", retries = 3 }\n",
                "namespaces.toml:2:",
                "unknown field `retries`",
            ),
            ("[chat]\nsubscribe_hook = \"rooms\"\n", "namespaces.toml:2:", "invalid type"),
            (
                "[chat]\npublish = \"backend\"\npublish_hook = { function = \"m\" }\n",
                "namespaces.toml:3:",
                "publish_hook",
            ),
            ("[chat]\n\nevent_hook = { function = \"a/b\" }\n", "namespaces.toml:3:", "function must be"),
            ("[chat]\npublish_rate_per_user = 20000\n", "namespaces.toml:2:", "at most 10000"),
            ("[chat]\npublish_rate_per_connection = -1\n", "namespaces.toml:2:", ""),
            (
                "[chat]\nevent_hook = { function = \"archive\", timeout_ms = 100 }\n",
                "namespaces.toml:2:",
                "unknown field `timeout_ms`",
            ),
        ];
        for (text, place, what) in cases {
            let message = refused(text);
            assert!(message.starts_with(place) && message.contains(what), "{text:?} gave {message:?}");
        }
    }

    #[test]
    fn join_and_leave_follow_presence_unless_turned_off() {
        let namespaces = read("[quiet]\npresence = false\n\n[calm]\njoin_leave = false\n").expect("valid");
        let channel = |raw| Channel::parse(raw).expect("a channel");
        assert!(!namespaces.of(&channel("quiet/1")).join_leave);
        let calm = namespaces.of(&channel("calm/1"));
        assert!(calm.presence && !calm.join_leave);
        let off = ChannelOptions::defaults(HistorySettings::default(), false);
        let on_here = parse(FILE, "[room]\npresence = true\n", off).expect("valid");
        assert!(on_here.of(&channel("room/1")).join_leave);
        assert!(on_here.any_presence());
    }

    #[test]
    fn a_hook_names_its_function_and_takes_a_second_and_refusal_unless_told_otherwise() {
        let namespaces = read(
            "[chat]\nsubscribe_hook = { function = \"rooms\" }\n\
             publish_hook = { function = \"arn:aws:lambda:eu-west-1:123456789012:function:moderate:live\", \
             timeout_ms = 250, on_failure = \"allow\" }\n\n[doc]\nsubscribe_hook = { function = \"rooms\" }\n",
        )
        .expect("valid");
        let chat = namespaces.of(&Channel::parse("chat/1").expect("a channel"));
        let subscribe = chat.subscribe_hook.as_ref().expect("a subscribe hook");
        assert_eq!((subscribe.function.as_str(), subscribe.timeout), ("rooms", Hook::DEFAULT_TIMEOUT));
        assert_eq!(subscribe.on_failure, OnFailure::Refuse);
        let publish = chat.publish_hook.as_ref().expect("a publish hook");
        assert_eq!(publish.timeout, std::time::Duration::from_millis(250));
        assert_eq!(publish.on_failure, OnFailure::Allow);
        assert_eq!(
            namespaces.functions(),
            ["arn:aws:lambda:eu-west-1:123456789012:function:moderate:live", "rooms"],
            "each function once"
        );
        assert!(namespaces.of(&Channel::parse("room/1").expect("a channel")).subscribe_hook.is_none());
    }

    #[test]
    fn an_event_hook_names_only_its_function_and_counts_among_the_functions_invoked() {
        let namespaces = read(
            "[chat]\nevent_hook = { function = \"archive\" }\nsubscribe_hook = { function = \"rooms\" }\n",
        )
        .expect("valid");
        let chat = namespaces.of(&Channel::parse("chat/1").expect("a channel"));
        assert_eq!(chat.event_hook, Some(EventHook { function: "archive".into() }));
        assert_eq!(namespaces.functions(), ["archive", "rooms"]);
        assert!(namespaces.of(&Channel::parse("room/1").expect("a channel")).event_hook.is_none());
    }
}
