//! A fan-out simulator for sizes one machine cannot hold: the real worker, the local gateway's event
//! source mapping and the in-memory queue, run under tokio's paused clock against a simulated
//! `@connections` endpoint.
//!
//! Nothing here is a model of the worker: [`Worker::process`] runs as on Lambda — sampling, splitting
//! into shards, pacing, retrying, requeueing — and the mapping invokes it with SQS events as the
//! local gateway does, stopping an invocation at its timeout. What is simulated is the world around
//! it: `@connections` answers after a latency drawn from a range (20–60 ms, Lambda to API Gateway in
//! one region), takes a token from the account's bucket (10,000/s, burst 5,000) or answers 429, and
//! answers 410 for connections that are gone; every post that gets through is counted per connection.
//! Time only passes while every task waits, so a 100 s broadcast to a million connections takes the
//! seconds of CPU its work needs. Lambda's CPU is simulated too ([`cpu`]): each delivery costs the
//! worker the CPU `worker_cpu` measured, on the share of a core its memory buys.
//!
//! - [`settings`]: what to simulate; [`run`] runs one broadcast and returns its [`SimReport`]
//!   ([`report`], with its cost at AWS's list prices).
//! - [`endpoint`]: the simulated `@connections`; [`cpu`]: each invocation's share of a core;
//!   [`direct`]: messages to one connection published beside the broadcast, each timed;
//!   [`observed`]: the queue counted and each invocation timed, as the report needs them.

pub mod cpu;
pub mod direct;
pub mod endpoint;
pub mod observed;
pub mod report;
pub mod run;
pub mod settings;

pub use report::{Cost, EchoedSettings, SimReport};
pub use run::run;
pub use settings::SimSettings;
