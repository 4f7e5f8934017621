//! The swarm: many WebSocket connections, driven through a scenario, and what they saw.
//!
//! A run goes through three phases, each in a file of its own: [`dial`] opens the connections at a
//! bounded rate, each a task of its own ([`connection`], over a [`socket`]) recording what it
//! receives; [`publish`] sends the scenario's stamped messages at a bounded rate and waits for their
//! deliveries; [`collect`] gathers every task's record into the report. [`settings`] says what a run
//! does, `run` walks the phases, and [`progress`] shows it. Everything a run does is bounded in count and time: it ends once
//! every expected delivery has arrived, or `settle` after the last publish, or at `deadline`.

pub mod collect;
pub mod connection;
pub mod dial;
pub mod progress;
pub mod publish;
mod run;
pub mod settings;
pub mod socket;

pub use self::collect::Outcome;
pub use self::run::run;
pub use self::settings::{Channels, Scenario, SwarmSettings};
pub use self::socket::frames;
