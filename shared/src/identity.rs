//! Who a connection is and which channels it may use: what the `$connect` authorizer decided.
//!
//! API Gateway hands the authorizer's answer (`principalId` and its `context`) to the integration as
//! `requestContext.authorizer` on every event of the connection, so each subscribe and publish is
//! checked from the event alone, without reading the table. Context values can only be strings,
//! numbers or booleans, so the lists of patterns travel as JSON text.

use std::collections::HashMap;

use serde_json::Value;

use crate::channel::{Channel, ChannelPattern};
use crate::error::InputError;

/// The context keys the authorizer sets and the ingress reads.
pub const SUB_KEY: &str = "sub";
pub const SUBSCRIBE_KEY: &str = "subscribe";
pub const PUBLISH_KEY: &str = "publish";
pub const INFO_KEY: &str = "info";
/// Set (to `true`) by the server API's authorizer alone, for a token carrying [`SERVER_SCOPE`].
pub const SERVER_KEY: &str = "server";

/// The scope a token must carry (in its `scope` claim, space-separated as OAuth 2.0 access tokens
/// carry it, or a list as some issuers write `scp`) to call the server API: the name a Cognito
/// resource server `realtime` with a custom scope `server` gives its client-credentials tokens.
/// A client's token, which has no such scope, is never enough.
pub const SERVER_SCOPE: &str = "realtime/server";

/// The most bytes a token's `info` claim may hold, as compact JSON: it rides on every event of the
/// connection (inside API Gateway's 8 KB authorizer result) and in every `join` frame and member.
pub const MAX_INFO_BYTES: usize = 1024;

/// A token's `info` claim: what a connection shows of itself to the members of its channels (a
/// display name, an avatar), a JSON object of at most [`MAX_INFO_BYTES`] as compact JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info(String);

/// Why a token's `info` claim is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InfoError {
    #[error("the token's info claim is not a JSON object")]
    NotAnObject,
    #[error("the token's info claim is {bytes} bytes of JSON, more than {MAX_INFO_BYTES}")]
    TooLarge { bytes: usize },
}

impl Info {
    /// Reads a claim's value: an object, at most [`MAX_INFO_BYTES`] once compact.
    pub fn from_value(value: &Value) -> Result<Self, InfoError> {
        if !value.is_object() {
            return Err(InfoError::NotAnObject);
        }
        let text = value.to_string();
        if text.len() > MAX_INFO_BYTES {
            return Err(InfoError::TooLarge { bytes: text.len() });
        }
        Ok(Self(text))
    }

    /// Reads JSON text, as the authorizer's context or a stored member carries it.
    pub fn parse(text: &str) -> Result<Self, InfoError> {
        let value: Value = serde_json::from_str(text).map_err(|_| InfoError::NotAnObject)?;
        Self::from_value(&value)
    }

    /// The compact JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The object as raw JSON, to place in a frame as it is.
    pub fn to_raw(&self) -> Box<serde_json::value::RawValue> {
        // Written by `from_value` from a JSON value: always valid JSON.
        serde_json::value::RawValue::from_string(self.0.clone()).unwrap_or_default()
    }
}

/// The channels a token allows for one verb.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// The token did not restrict this verb.
    Any,
    /// Only channels within one of these patterns.
    Only(Vec<ChannelPattern>),
}

impl Grant {
    fn allows(&self, pattern: &ChannelPattern) -> bool {
        match self {
            Self::Any => true,
            Self::Only(grants) => grants.iter().any(|grant| pattern.is_within(grant)),
        }
    }

    /// The context value: absent for [`Grant::Any`], else a JSON list of patterns.
    pub fn to_context(&self) -> Option<String> {
        match self {
            Self::Any => None,
            Self::Only(grants) => {
                Some(Value::from(grants.iter().map(ChannelPattern::as_str).collect::<Vec<_>>()).to_string())
            }
        }
    }

    /// Reads a context value written by [`Grant::to_context`]. Anything else grants nothing: a
    /// context this code did not write must not widen what a connection may do.
    fn from_context(value: Option<&Value>) -> Self {
        let Some(value) = value else { return Self::Any };
        let patterns = value
            .as_str()
            .and_then(|text| serde_json::from_str::<Vec<ChannelPattern>>(text).ok())
            .unwrap_or_default();
        Self::Only(patterns)
    }
}

/// Who sent an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// No authorizer ran: authorization is off.
    Anonymous,
    User {
        sub: String,
        subscribe: Grant,
        publish: Grant,
        /// The token's `info` claim, shown to the members of the channels the connection joins.
        info: Option<Info>,
    },
}

impl Identity {
    /// Reads `requestContext.authorizer`: empty when no authorizer ran.
    pub fn from_authorizer(fields: &HashMap<String, Value>) -> Self {
        let sub = fields.get(SUB_KEY).or_else(|| fields.get("principalId")).and_then(Value::as_str);
        match sub {
            None if fields.is_empty() => Self::Anonymous,
            // An authorizer ran but named nobody: a user who may do nothing.
            None => Self::User {
                sub: String::new(),
                subscribe: Grant::Only(vec![]),
                publish: Grant::Only(vec![]),
                info: None,
            },
            Some(sub) => Self::User {
                sub: sub.to_owned(),
                subscribe: Grant::from_context(fields.get(SUBSCRIBE_KEY)),
                publish: Grant::from_context(fields.get(PUBLISH_KEY)),
                // Written by the authorizer, which refuses a token with an invalid one: anything
                // else is not shown rather than trusted.
                info: fields.get(INFO_KEY).and_then(Value::as_str).and_then(|text| Info::parse(text).ok()),
            },
        }
    }

    /// The authenticated user's `sub`.
    pub fn user(&self) -> Option<&str> {
        match self {
            Self::Anonymous => None,
            Self::User { sub, .. } => Some(sub),
        }
    }

    /// The token's `info` claim.
    pub fn info(&self) -> Option<&Info> {
        match self {
            Self::Anonymous => None,
            Self::User { info, .. } => info.as_ref(),
        }
    }

    /// The user's own channel, `user/<sub>`, which every connection of theirs is subscribed to.
    pub fn own_channel(&self) -> Option<Channel> {
        self.user().and_then(Channel::of_user)
    }

    /// Whether this connection may subscribe to `pattern`. A `user/…` pattern is its owner's alone
    /// (`user/*` is nobody's); the rest is what the token's `subscribe` claim allows.
    pub fn may_subscribe(&self, pattern: &ChannelPattern) -> Result<(), InputError> {
        let forbid = |reason| InputError::ForbiddenChannel {
            verb: "subscribe to",
            channel: pattern.to_string(),
            reason,
        };
        if let Some(owner) = pattern.user_scope() {
            return match (owner, self.user()) {
                (Some(owner), Some(sub)) if owner == sub => Ok(()),
                _ => Err(forbid("user channels are their own user's")),
            };
        }
        match self {
            Self::Anonymous => Ok(()),
            Self::User { subscribe, .. } if subscribe.allows(pattern) => Ok(()),
            Self::User { .. } => Err(forbid("the token's \"subscribe\" claim does not include it")),
        }
    }

    /// Whether this connection may publish to `channel`. No client publishes to `user/…`: those are
    /// for the backend to reach a user.
    pub fn may_publish(&self, channel: &Channel) -> Result<(), InputError> {
        let forbid = |reason| InputError::ForbiddenChannel {
            verb: "publish to",
            channel: channel.to_string(),
            reason,
        };
        let pattern = ChannelPattern::from(channel.clone());
        if pattern.user_scope().is_some() {
            return Err(forbid("only the backend publishes to user channels"));
        }
        match self {
            Self::Anonymous => Ok(()),
            Self::User { publish, .. } if publish.allows(&pattern) => Ok(()),
            Self::User { .. } => Err(forbid("the token's \"publish\" claim does not include it")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(raw: &str) -> ChannelPattern {
        ChannelPattern::parse(raw).expect(raw)
    }

    fn channel(raw: &str) -> Channel {
        Channel::parse(raw).expect(raw)
    }

    fn alice(subscribe: Grant, publish: Grant) -> Identity {
        Identity::User { sub: "alice".into(), subscribe, publish, info: None }
    }

    #[test]
    fn no_authorizer_is_anonymous_and_anonymous_may_use_every_channel_but_user_ones() {
        let anonymous = Identity::from_authorizer(&HashMap::new());
        assert_eq!(anonymous, Identity::Anonymous);
        assert!(anonymous.may_subscribe(&pattern("chat/*")).is_ok());
        assert!(anonymous.may_publish(&channel("chat/general")).is_ok());
        for user in ["user/alice", "user/*", "user", "user/alice/*"] {
            assert_eq!(anonymous.may_subscribe(&pattern(user)).expect_err(user).code(), "forbidden_channel");
        }
        assert!(anonymous.may_publish(&channel("user/alice")).is_err());
        assert!(anonymous.may_publish(&channel("user")).is_err());
        assert!(anonymous.may_subscribe(&pattern("users/x")).is_ok(), "only the segment user is special");
    }

    #[test]
    fn a_user_may_subscribe_to_their_own_channel_only_and_publish_to_none() {
        let alice = alice(Grant::Any, Grant::Any);
        assert!(alice.may_subscribe(&pattern("user/alice")).is_ok());
        assert!(alice.may_subscribe(&pattern("user/alice/*")).is_ok());
        assert!(alice.may_subscribe(&pattern("user/bob")).is_err());
        assert!(alice.may_subscribe(&pattern("user/*")).is_err());
        assert!(alice.may_publish(&channel("user/alice")).is_err());
        assert_eq!(alice.own_channel(), Some(channel("user/alice")));
    }

    #[test]
    fn grants_limit_subscriptions_and_publishes_to_their_patterns() {
        let alice = alice(Grant::Only(vec![pattern("chat/*")]), Grant::Only(vec![pattern("chat/general")]));
        assert!(alice.may_subscribe(&pattern("chat/eu/*")).is_ok());
        assert!(alice.may_subscribe(&pattern("news")).is_err());
        assert!(alice.may_publish(&channel("chat/general")).is_ok());
        assert!(alice.may_publish(&channel("chat/random")).is_err());
        assert!(alice.may_subscribe(&pattern("user/alice")).is_ok(), "their own channel needs no grant");
    }

    #[test]
    fn the_authorizer_context_round_trips_and_anything_unreadable_grants_nothing() {
        let grant = Grant::Only(vec![pattern("chat/*"), pattern("news")]);
        let fields = HashMap::from([
            ("principalId".to_owned(), Value::from("alice")),
            (SUB_KEY.to_owned(), Value::from("alice")),
            (SUBSCRIBE_KEY.to_owned(), Value::from(grant.to_context().expect("a list"))),
        ]);
        assert_eq!(Identity::from_authorizer(&fields), alice(grant, Grant::Any));

        let garbled = HashMap::from([
            (SUB_KEY.to_owned(), Value::from("alice")),
            (PUBLISH_KEY.to_owned(), Value::from("[\"chat/*")),
            (SUBSCRIBE_KEY.to_owned(), Value::from(7)),
        ]);
        let identity = Identity::from_authorizer(&garbled);
        assert!(identity.may_publish(&channel("chat/x")).is_err());
        assert!(identity.may_subscribe(&pattern("chat/x")).is_err());

        let nameless = HashMap::from([("principalId".to_owned(), Value::from(1))]);
        assert!(Identity::from_authorizer(&nameless).may_subscribe(&pattern("chat")).is_err());
    }

    #[test]
    fn an_info_claim_is_an_object_of_at_most_1_kb_and_the_context_keeps_only_a_valid_one() {
        let info = Info::from_value(&serde_json::json!({"name": "Alice", "avatar": "a.png"})).expect("info");
        assert_eq!(info.as_str(), r#"{"name":"Alice","avatar":"a.png"}"#, "as sent, compact");
        assert_eq!(Info::parse(info.as_str()), Ok(info.clone()));
        for not_object in ["\"Alice\"", "[1]", "null", "1", "{"] {
            assert_eq!(Info::parse(not_object), Err(InfoError::NotAnObject), "{not_object}");
        }
        let big = serde_json::json!({"name": "a".repeat(MAX_INFO_BYTES)});
        assert!(matches!(Info::from_value(&big), Err(InfoError::TooLarge { .. })));
        let fits = serde_json::json!({"n": "a".repeat(MAX_INFO_BYTES - 8)});
        assert_eq!(fits.to_string().len(), MAX_INFO_BYTES);
        assert!(Info::from_value(&fits).is_ok());

        let mut fields = HashMap::from([(SUB_KEY.to_owned(), Value::from("alice"))]);
        fields.insert(INFO_KEY.to_owned(), Value::from(info.as_str()));
        assert_eq!(Identity::from_authorizer(&fields).info(), Some(&info));
        fields.insert(INFO_KEY.to_owned(), Value::from("[1,2]"));
        assert_eq!(Identity::from_authorizer(&fields).info(), None);
    }
}
