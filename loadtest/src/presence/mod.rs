//! The presence scenario: what presence's goals measure, from the clients' side.
//!
//! 1. **Members**: `members` connections subscribe to one channel and then ask for its `join` and
//!    `leave` frames (a second subscribe with `joinLeave`, which joins no one again: filling a room
//!    of watchers one by one would cost members² posts before the first measurement).
//! 2. **Probes**: a new connection joins the room and leaves it, by `unsubscribe` or by closing its
//!    socket, in turn; the time from its request (or its close) to each member's frame is a latency.
//! 3. **Presence reads**: `presence` of the room, one after another: round trips, and counts that
//!    must be exact.
//! 4. **Churn** (optional): `churn_connections` subscribe, unsubscribe, and close and reconnect at
//!    random on `churn_channels` channels; at the end `presence` must count exactly those still
//!    subscribed to each, and
//!    the lifecycle events the gateway POSTed to this swarm (`--events-url` pointed at
//!    `events_listen`) must alternate `ChannelOccupied`/`ChannelVacated` by `seq`, with none missing.
//!
//! [`members`] is phases 1–3, [`churn`] phase 4, [`report`] what they counted; [`settings`] what a
//! run does, `request` one request and its answer, `run` the phases in order.

pub mod churn;
pub mod members;
pub mod report;
mod request;
mod run;
pub mod settings;

pub use self::report::PresenceReport;
pub use self::run::run;
pub use self::settings::PresenceSwarmSettings;
