//! The connection store port: where connections and their subscriptions are remembered between
//! `$connect` and `$disconnect`, with its adapters beside it — [`memory`] for the local gateway and
//! tests, [`dynamodb`] for Lambda (one table, single-table design).

mod dynamodb;
mod memory;
mod port;

pub use dynamodb::DynamoStore;
pub use memory::MemoryStore;
pub use port::{ConnectionStore, StoreError, SubscribeError, Subscription};
