//! The connection store port: where connections and their subscriptions are remembered between
//! `$connect` and `$disconnect`, with its adapters beside it — [`memory`] for the local gateway and
//! tests, [`dynamodb`] for Lambda (one table, single-table design). Its errors,
//! [`crate::error::StoreError`] and [`crate::error::SubscribeError`], are with the others.

mod dynamodb;
mod memory;
mod port;

pub use dynamodb::{DynamoStore, INDEX as CONNECTIONS_INDEX};
pub use memory::MemoryStore;
pub use port::{ConnectionStore, Held, Subscription};
