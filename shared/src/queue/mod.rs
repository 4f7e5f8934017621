//! The queue port: where the ingress and backends hand jobs to the worker, and where an event source
//! mapping takes them from, with its adapters beside it — [`memory`] (SQS's semantics in-process, for
//! the local gateway) and [`sqs`]. Its error, [`crate::error::QueueError`], is with the others.

mod memory;
mod port;
mod sqs;

pub use memory::{MemoryQueue, QueueFull, QueueSettings, QueueStats};
pub use port::{Queue, QueueSource, ReceivedMessage};
pub use sqs::{SQS_MAX_MESSAGE_BYTES, SqsQueue};
