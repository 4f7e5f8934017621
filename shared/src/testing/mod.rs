//! Test doubles for the ports, for tests and load tools only: they are built with the `testing`
//! feature, which no Lambda function turns on.
//!
//! - [`ScriptedPoster`]: `@connections` answering each connection as a test scripts it.
//! - [`ObservedStore`]: the in-memory store, counting its reads and failing them on request.
//! - [`BrokenHistory`], [`BrokenPresence`], [`BrokenQuotas`], [`BrokenUsage`]: history, presence,
//!   quotas and the fan-out count whose every call fails.
//! - [`vars`]: an environment made up by a test.

mod env;
mod history;
mod poster;
mod presence;
mod quota;
mod store;
mod usage;

pub use env::vars;
pub use history::BrokenHistory;
pub use poster::{Scripted, ScriptedPoster};
pub use presence::BrokenPresence;
pub use quota::BrokenQuotas;
pub use store::ObservedStore;
pub use usage::BrokenUsage;
