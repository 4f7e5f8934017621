//! The history port: each channel a stream of messages numbered by offset, kept for a while so that
//! a client that comes back gets what it missed, with its adapters beside it — [`memory`] for the
//! local gateway and tests, [`dynamodb`] for Lambda (the same table as the connections).

mod dynamodb;
mod memory;
mod port;

pub use dynamodb::DynamoHistory;
pub use memory::MemoryHistory;
pub use port::{History, HistorySettings, Kept, Page, Range, Stream};
