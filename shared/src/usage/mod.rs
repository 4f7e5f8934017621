//! The fan-out ceiling: how many deliveries each sender's messages made this minute, counted by the
//! worker as it posts and read by the ingress before it queues the sender's next message — the
//! port ([`port`]) beside its adapters, [`memory`] for the local gateway and tests and [`dynamodb`]
//! for Lambda (the same table as the connections: the ingress and the worker are two functions, so
//! the count must live where both reach it).

mod dynamodb;
mod memory;
mod port;

pub use dynamodb::DynamoUsage;
pub use memory::MemoryUsage;
pub use port::{Ceiling, Usage, minute_of, sender_key, sender_of};
