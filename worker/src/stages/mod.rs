//! The stages a batch goes through, in order, each in a file of its own and each a method of the
//! [`invocation::Invocation`] they share, marking the [`batch::Batch`]; then what they share.

/// 1. The SQS records parsed into the `Batch` that keeps every message's fate; poison failed.
pub(crate) mod batch;

/// 2. A channel's message not yet in its history (a backend's publish) numbered, once per id; every
///    frame rendered, once.
pub(crate) mod number;

/// 3. A new message on a channel with an event hook handed to it, asynchronously.
pub(crate) mod notify;

/// 4. Who each message goes to: audiences sampled, large ones split into shard jobs.
pub(crate) mod plan;

/// 5. Every (message, connection) post, page by page as the audiences are listed.
pub(crate) mod fan_out;

/// 6. One post, paced, with its retries and the stuck-client rule.
pub(crate) mod post;

/// 7. The outcomes gathered: delivered, gone, unfinished; a listing that failed fails its messages.
pub(crate) mod tally;

/// 8. Each sender's deliveries counted against the fan-out ceiling.
pub(crate) mod meter;

/// 9. Connections not reached yet back on the queue, in retry jobs.
pub(crate) mod requeue;

/// 10. Gone connections deleted.
pub(crate) mod prune;

/// What every stage of one invocation shares.
pub(crate) mod invocation;
/// An audience listed from the store, whole or one shard.
pub(crate) mod listing;
/// Connections that have stopped reading.
pub(crate) mod stuck;
