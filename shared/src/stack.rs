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
use crate::poster::Closer;
use crate::presence::{DynamoPresence, Membership, Presence, PresenceSettings};
use crate::queue::{Queue, SqsQueue};
use crate::quota::{MemoryQuotas, QuotaSettings, Quotas};
use crate::store::{ConnectionStore, DynamoStore};
use crate::usage::{Ceiling, DynamoUsage};

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
    /// `HOOK_FUNCTIONS`: the ARNs of the functions the role may invoke (the template's
    /// `HookFunctionArns`, comma-separated); every hook the namespace file names must be one.
    pub hook_functions: Vec<String>,
    /// `FANOUT_PER_USER_PER_MINUTE`: the most deliveries one sender's messages may make a minute
    /// (the cost guard); 0, the default, sets none.
    pub fanout_per_minute: u64,
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
    /// What one connection and one user may publish or broadcast a second: the ingress's.
    pub quotas: Arc<dyn Quotas>,
    /// How the ingress closes a connection flooding past its quota; `None`: it does not.
    pub closer: Option<Arc<dyn Closer>>,
    /// The fan-out ceiling: the worker adds each sender's deliveries, the ingress refuses a sender
    /// past it. `None`: no ceiling.
    pub ceiling: Option<Ceiling>,
    pub namespaces: Namespaces,
}

impl StackPorts {
    /// `store` and `queue` with every optional port off, no quota and no namespace: what a test or
    /// a tool starts from, setting the ports it needs with `..StackPorts::new(store, queue)`.
    pub fn new(store: Arc<dyn ConnectionStore>, queue: Arc<dyn Queue>) -> Self {
        Self {
            store,
            queue,
            history: None,
            presence: None,
            events: None,
            hooks: None,
            quotas: Arc::new(crate::quota::MemoryQuotas::unlimited()),
            closer: None,
            ceiling: None,
            namespaces: Namespaces::default(),
        }
    }

    /// `channel`'s history, when its namespace keeps one.
    pub fn history_of(&self, channel: &Channel) -> Option<&Arc<dyn History>> {
        self.history.as_ref().filter(|_| self.namespaces.history(channel).is_on())
    }

    /// What a membership change of `channel` uses, when its namespace keeps members.
    pub fn membership_of(&self, channel: &Channel) -> Option<Membership<'_>> {
        self.namespaces.of(channel).presence.then(|| self.membership()).flatten()
    }

    /// With clients' messages counted against `settings`, in this process (`quota::memory` says
    /// what that allows on AWS): the ingress's.
    pub fn with_quotas(mut self, settings: QuotaSettings) -> Self {
        self.quotas = Arc::new(MemoryQuotas::new(settings));
        self
    }

    /// With `closer` ending the connections that flood past their quota: the ingress's.
    pub fn with_closer(mut self, closer: Arc<dyn Closer>) -> Self {
        self.closer = Some(closer);
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
            .field("ceiling", &self.ceiling)
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
            hook_functions: env
                .present("HOOK_FUNCTIONS")
                .map(|arns| arns.split(',').filter(|arn| !arn.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
            fanout_per_minute: env.optional("FANOUT_PER_USER_PER_MINUTE", 0),
        }
    }

    /// What a channel in no namespace keeps: `HISTORY_SIZE`, `HISTORY_TTL_SECONDS`, `PRESENCE`.
    pub fn defaults(&self) -> ChannelOptions {
        ChannelOptions::defaults(self.history, self.presence.on)
    }

    /// The namespaces of the file the function was built with ([`namespaces::FILE`]'s `text`), over
    /// the stack's defaults; refused when it names a hook the role may not invoke, which would
    /// otherwise refuse every request it hooks with Lambda's `AccessDenied`.
    pub fn namespaces(&self, text: &str) -> Result<Namespaces, NamespacesError> {
        let namespaces = namespaces::parse(namespaces::FILE, text, self.defaults())?;
        let granted = |function: &str| self.hook_functions.iter().any(|arn| names(arn, function));
        match namespaces.functions().into_iter().find(|function| !granted(function)) {
            None => Ok(namespaces),
            Some(function) => Err(NamespacesError {
                file: namespaces::FILE.to_owned(),
                line: text.lines().position(|line| line.contains(function)).map_or(1, |at| at + 1),
                message: format!(
                    "the hook function {function} is not among the functions the stack may invoke \
                     (HOOK_FUNCTIONS: {:?}); deploy with --parameter-overrides HookFunctionArns=<its ARN,…>",
                    self.hook_functions.join(",")
                ),
            }),
        }
    }

    /// The DynamoDB, SQS, EventBridge and Lambda adapters of its ports, those its settings and `namespaces`
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
            hooks: (!namespaces.functions().is_empty())
                .then(|| Arc::new(LambdaHooks::from_sdk(sdk)) as Arc<dyn Hooks>),
            // The ingress sets its own (`with_quotas`); the worker counts nothing.
            quotas: Arc::new(MemoryQuotas::unlimited()),
            closer: None,
            ceiling: (self.fanout_per_minute > 0).then(|| Ceiling {
                usage: Arc::new(DynamoUsage::from_sdk(sdk, self.table.clone())),
                per_minute: self.fanout_per_minute,
            }),
            namespaces,
        }
    }
}
/// Whether the granted `arn` is how `function` (a name, or an ARN with or without a qualifier) is
/// invoked: the ARN itself, or the name of the unqualified function it grants.
fn names(arn: &str, function: &str) -> bool {
    arn == function || arn.rsplit_once(":function:").is_some_and(|(_, name)| name == function)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(hook_functions: Option<&str>) -> Stack {
        let vars = [
            ("AWS_REGION", Some("eu-west-1")),
            ("CONNECTIONS_TABLE", Some("connections")),
            ("QUEUE_URL", Some("https://sqs.eu-west-1.amazonaws.com/123456789012/jobs")),
            ("HOOK_FUNCTIONS", hook_functions),
        ];
        let lookup =
            |name: &str| vars.iter().find(|(n, _)| *n == name).and_then(|(_, v)| v.map(str::to_owned));
        let mut env = Env::new(lookup);
        let stack = Stack::read(&mut env);
        env.finish().expect("the variables are valid");
        stack
    }

    const HOOKED: &str = "[chat]\nsubscribe_hook = { function = \"rooms\" }\n\n[log]\n\
                          event_hook = { function = \"arn:aws:lambda:eu-west-1:123456789012:function:archive\" }\n";

    #[test]
    fn a_file_whose_hooks_the_role_may_all_invoke_is_read() {
        let granted = "arn:aws:lambda:eu-west-1:123456789012:function:rooms,\
                       arn:aws:lambda:eu-west-1:123456789012:function:archive";
        let namespaces = stack(Some(granted)).namespaces(HOOKED).expect("every hook granted");
        assert_eq!(namespaces.functions().len(), 2);
        assert!(stack(None).namespaces("[chat]\nhistory_size = 5\n").is_ok(), "no hook needs no grant");
    }

    #[test]
    fn a_hook_the_role_may_not_invoke_stops_the_function_at_init_naming_its_line() {
        let only_rooms = "arn:aws:lambda:eu-west-1:123456789012:function:rooms";
        let err = stack(Some(only_rooms)).namespaces(HOOKED).expect_err("archive is not granted");
        assert_eq!(err.line, 5, "{err}");
        assert!(err.to_string().contains("HookFunctionArns"), "{err}");
        let err = stack(Some(""))
            .namespaces("[chat]\nsubscribe_hook = { function = \"rooms\" }\n")
            .expect_err("nothing granted");
        assert!(err.line == 2 && err.message.contains("rooms"), "{err}");
        let elsewhere = "arn:aws:lambda:eu-west-1:123456789012:function:rooms-v2";
        assert!(
            stack(Some(elsewhere)).namespaces("[chat]\nsubscribe_hook = { function = \"rooms\" }\n").is_err()
        );
    }
}
