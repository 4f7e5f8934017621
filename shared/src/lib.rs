//! The heart of the WebSocket API: its domain, its ports and their adapters.
//!
//! The ingress and worker Lambdas, and the local gateway that stands in for API Gateway, are thin
//! shells around this crate: [`domain`] parses what clients send into types that cannot be wrong,
//! [`ports`] names the three things the handlers need from outside (a connection store, a queue and a
//! poster), [`memory`] and [`aws`] implement them, and [`limits`] holds API Gateway's limits.

pub mod aws;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod lambda;
pub mod limits;
pub mod memory;
pub mod pacing;
pub mod ports;

pub use config::{ConfigError, IngressConfig, WorkerConfig};
pub use domain::{ConnectionId, ConnectionRecord, ConnectionRef, Envelope, Inbound, Job, MessageId};
pub use error::{InputError, PostError, QueueError, StoreError};
pub use ports::{ConnectionStore, Poster, Queue, QueueSource, ReceivedMessage};
