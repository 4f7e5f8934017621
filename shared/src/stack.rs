//! What the template tells the ingress and the worker alike — where the stack keeps its
//! connections and its jobs, and what it keeps of each channel — and the ports that makes on AWS:
//! the connection store and the queue, and, where its settings turn them on, a channel's history,
//! its members, and where lifecycle events go. Each function's own
//! `Deployment` holds a [`Stack`] beside what it alone is told.

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::channel::Channel;
use crate::environment::Env;
use crate::events::{EventBridgeEvents, Events};
use crate::history::{DynamoHistory, History, HistorySettings};
use crate::hooks::{Hooks, LambdaHooks};
use crate::namespaces::{self, ChannelOptions, Namespaces, NamespacesError};
use crate::presence::{DynamoPresence, Membership, Presence, PresenceSettings};
use crate::queue::{Queue, SqsQueue};
use crate::store::{ConnectionStore, DynamoStore};

/// What every function that keeps connections is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    /// `AWS_REGION`, set by Lambda.
    pub region: String,
    /// `CONNECTIONS_TABLE`: the DynamoDB table holding connections, channels' history and members.
    pub table: String,
    /// `QUEUE_URL`: the SQS queue that feeds the worker.
    pub queue_url: String,
    /// `HISTORY_SIZE` and `HISTORY_TTL_SECONDS`: how much of each channel's history is kept.
    pub history: HistorySettings,
    /// `PRESENCE` and `EVENT_BUS_NAME`: whether members are kept, and where lifecycle events go.
    pub presence: PresenceSettings,
}

/// The ports a [`Stack`] makes on AWS — its connection store and queue, and those its settings may
/// leave off (`None` when they do) — as one value: all the ingress is given, and all the worker is
/// given but its poster; with the [`Namespaces`] that say which of them serve a channel.
#[derive(Clone)]
pub struct StackPorts {
    pub store: Arc<dyn ConnectionStore>,
    pub queue: Arc<dyn Queue>,
    /// `None` when no channel keeps history.
    pub history: Option<Arc<dyn History>>,
    /// `None` when no channel keeps its members.
    pub presence: Option<Arc<dyn Presence>>,
    pub events: Option<Arc<dyn Events>>,
    /// Where the functions a namespace names are invoked; `None` when it names none.
    pub hooks: Option<Arc<dyn Hooks>>,
    pub namespaces: Namespaces,
}

impl StackPorts {
    /// `channel`'s history, when its namespace keeps one.
    pub fn history_of(&self, channel: &Channel) -> Option<&Arc<dyn History>> {
        self.history.as_ref().filter(|_| self.namespaces.history(channel).is_on())
    }

    /// What a membership change of `channel` uses, when its namespace keeps members.
    pub fn membership_of(&self, channel: &Channel) -> Option<Membership<'_>> {
        self.namespaces.of(channel).presence.then(|| self.membership()).flatten()
    }

    /// With the Lambda adapter of the hooks the namespaces name, when they name any: the ingress's.
    pub fn with_hooks(mut self, sdk: &SdkConfig) -> Self {
        if !self.namespaces.functions().is_empty() {
            self.hooks = Some(Arc::new(LambdaHooks::from_sdk(sdk)));
        }
        self
    }

    /// What a membership change uses, when any channel keeps members: leaving every channel of a
    /// connection that is gone.
    pub fn membership(&self) -> Option<Membership<'_>> {
        Membership::of(self.presence.as_ref(), &self.queue, self.events.as_ref())
    }
}

impl std::fmt::Debug for StackPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackPorts")
            .field("history", &self.history.is_some())
            .field("presence", &self.presence.is_some())
            .field("events", &self.events.is_some())
            .field("hooks", &self.hooks.is_some())
            .field("namespaces", &self.namespaces)
            .finish()
    }
}

impl Stack {
    /// Reads the stack's variables with the function's others.
    pub fn read<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        Self {
            region: env.required("AWS_REGION"),
            table: env.required("CONNECTIONS_TABLE"),
            queue_url: env.required("QUEUE_URL"),
            history: HistorySettings::from_env(env),
            presence: PresenceSettings::from_env(env),
        }
    }

    /// What a channel in no namespace keeps: `HISTORY_SIZE`, `HISTORY_TTL_SECONDS`, `PRESENCE`.
    pub fn defaults(&self) -> ChannelOptions {
        ChannelOptions::defaults(self.history, self.presence.on)
    }

    /// The namespaces of the file the function was built with ([`namespaces::FILE`]'s `text`), over
    /// the stack's defaults.
    pub fn namespaces(&self, text: &str) -> Result<Namespaces, NamespacesError> {
        namespaces::parse(namespaces::FILE, text, self.defaults())
    }

    /// The DynamoDB, SQS and EventBridge adapters of its ports, those its settings and `namespaces`
    /// turn on.
    pub fn ports(&self, sdk: &SdkConfig, namespaces: Namespaces) -> StackPorts {
        StackPorts {
            store: Arc::new(DynamoStore::from_sdk(sdk, self.table.clone())),
            queue: Arc::new(SqsQueue::from_sdk(sdk, self.queue_url.clone())),
            history: namespaces.any_history().then(|| {
                Arc::new(DynamoHistory::from_sdk(sdk, self.table.clone(), namespaces.clone()))
                    as Arc<dyn History>
            }),
            presence: namespaces
                .any_presence()
                .then(|| Arc::new(DynamoPresence::from_sdk(sdk, self.table.clone())) as Arc<dyn Presence>),
            events: self
                .presence
                .event_bus
                .as_ref()
                .map(|bus| Arc::new(EventBridgeEvents::from_sdk(sdk, bus.clone())) as Arc<dyn Events>),
            // The ingress adds them (`with_hooks`): the worker asks no hook, and leaves the Lambda
            // client out of its bootstrap.
            hooks: None,
            namespaces,
        }
    }
}
