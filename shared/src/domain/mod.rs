//! The domain: what the handlers pass between them, each type built by a `parse` that either succeeds
//! or says exactly what is wrong, so that past that point the code never re-checks.
//!
//! - [`connection`]: connection ids, the record the store keeps, and a listing's reference.
//! - [`envelope`]: the frame a connection receives, its message id and its sender.
//! - [`position`]: where a message stands in its channel's stream: offset and epoch.
//! - [`job`]: a job on the queue and its [`Audience`], who receives it.
//! - [`shard`]: the disjoint parts a large audience is split into.
//! - [`publish`]: what a backend queues to publish, which becomes a job.
//!
//! Channels and their patterns are [`crate::channel`]; who a connection is, [`crate::identity`].

pub mod connection;
pub mod envelope;
pub mod job;
pub mod position;
pub mod publish;
pub mod shard;

pub use connection::{ConnectionId, ConnectionRecord, ConnectionRef, InvalidConnectionId};
pub use envelope::{Envelope, EnvelopeKind, MessageId, Sender};
pub use job::{Audience, Job, PoisonJob};
pub use position::{Epoch, Position};
pub use publish::{BackendAction, BackendPublish};
pub use shard::{InvalidShard, MAX_SHARDS, Shard};
