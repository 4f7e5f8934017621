//! The heart of the WebSocket API: its domain, its ports and their adapters.
//!
//! The ingress and worker Lambdas, and the local gateway that stands in for API Gateway, are thin
//! shells around this crate: [`domain`] and [`channel`] are the types that what clients send is parsed
//! into, [`identity`] is who a connection's authorizer said it is and what it may do,
//! [`ports`] names the three things the handlers need from outside (a connection store, a queue and a
//! poster), [`memory`] and [`aws`] implement them, [`limits`] holds API Gateway's limits and [`metrics`]
//! writes what the functions did as CloudWatch metrics.

pub mod aws;
pub mod channel;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod identity;
pub mod lambda;
pub mod limits;
pub mod memory;
pub mod metrics;
pub mod pacing;
pub mod ports;

pub use channel::{Channel, ChannelPattern};
pub use config::{ConfigError, IngressConfig, WorkerConfig};
pub use domain::{
    Audience, BackendPublish, ConnectionId, ConnectionRecord, ConnectionRef, Envelope, Job, MessageId,
    Sender, Shard,
};
pub use error::{InputError, PostError, QueueError, StoreError, SubscribeError};
pub use identity::Identity;
pub use ports::{ConnectionStore, Poster, Queue, QueueSource, ReceivedMessage, Subscription};
