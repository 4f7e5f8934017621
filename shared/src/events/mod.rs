//! The lifecycle events port: what the backend is told as channels fill and empty and members come
//! and go, with its adapters beside it — [`memory`] (the recent events, for the local gateway and
//! tests) and [`eventbridge`] (an Amazon EventBridge bus, for Lambda).

mod eventbridge;
mod memory;
mod port;

pub use eventbridge::EventBridgeEvents;
pub use memory::RecentEvents;
pub use port::{Events, EventsError, LifecycleEvent, LifecycleKind, SOURCE};
