//! The heart of the WebSocket API: its domain, its ports and their adapters.
//!
//! The ingress and worker Lambdas, and the local gateway that stands in for API Gateway, are thin
//! shells around this crate.
//!
//! - What clients and backends send is parsed into the [`domain`] (connections, envelopes, jobs and
//!   their audiences, shards, backend publishes) and [`channel`]s; [`identity`] is who a connection's
//!   authorizer said it is and what it may do; [`error`] is every error a client can be sent, with
//!   its code.
//! - The ports, each beside its adapters: [`store`] (connections and subscriptions: in memory,
//!   DynamoDB), [`history`] (each channel's numbered messages: in memory, DynamoDB), [`presence`]
//!   (each channel's members and their exact count: in memory, DynamoDB), [`events`] (lifecycle
//!   events for the backend: in memory, EventBridge), [`queue`]
//!   (jobs: in memory, SQS), [`quota`] (what one client may send a second: in memory), [`usage`] (the deliveries each sender's messages made this minute, for the fan-out ceiling: in memory, DynamoDB) and [`poster`] (`@connections`); [`namespaces`] is what each kind of channel keeps and who may publish to it, [`hooks`] the app's functions a namespace asks (AppSync Events' shapes, over Lambda's `Invoke`); [`aws`] is what the AWS adapters share. [`testing`] holds test doubles, behind the `testing` feature.
//! - Around them: [`limits`] (API Gateway's), [`pacing`] (token buckets and the adaptive post rate),
//!   [`environment`] (reading a function's environment), [`stack`] (what the template tells every function, and the AWS ports it makes), [`sync`] (locks that outlive a panic), [`lambda`] (what every bootstrap does),
//!   [`metrics`] (CloudWatch's embedded metric format) and [`clock`].

pub mod aws;
pub mod channel;
pub mod clock;
pub mod domain;
pub mod environment;
pub mod error;
pub mod events;
pub mod history;
pub mod hooks;
pub mod identity;
pub mod lambda;
pub mod limits;
pub mod metrics;
pub mod namespaces;
pub mod pacing;
pub mod poster;
pub mod presence;
pub mod queue;
pub mod quota;
pub mod stack;
pub mod store;
pub mod sync;
#[cfg(feature = "testing")]
pub mod testing;
pub mod usage;

pub use channel::{Channel, ChannelPattern};
pub use domain::{
    Audience, BackendPublish, ConnectionId, ConnectionRecord, ConnectionRef, Envelope, Epoch, Job, MessageId,
    Position, Sender, Shard,
};
pub use environment::EnvError;
pub use error::{InputError, PostError, QueueError, StoreError, SubscribeError};
pub use events::{Events, LifecycleEvent};
pub use history::History;
pub use identity::Identity;
pub use poster::Poster;
pub use presence::Presence;
pub use queue::{Queue, QueueSource, ReceivedMessage};
pub use quota::Quotas;
pub use store::{ConnectionStore, Subscription};
