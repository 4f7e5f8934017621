//! The recovery scenario: subscribers that do what the browser client does — deliver each channel in
//! offset order, fill a missing offset from history, resubscribe from their last position after a
//! drop — while their sockets are cut at random (a client-side drop, or `DELETE @connections` from
//! the server side) and publishers keep publishing. The report counts, per subscriber and channel,
//! what the app would see: recovered, gaps, lost, duplicated, reordered.
//!
//! [`follower`] is the client's ordering and recovery; [`subscriber`] one subscriber's life of
//! connections and cuts; [`publisher`] the traffic, whose acknowledgements (each message's offset
//! and id) are the truth the [`report`] holds every subscriber's deliveries against. [`settings`]
//! is what a run does, `context` what its tasks share, `run` the order of it.

mod context;
pub mod follower;
pub mod publisher;
pub mod report;
mod run;
pub mod settings;
pub mod subscriber;

pub use self::context::channel_of;
pub use self::report::RecoveryReport;
pub use self::run::run;
pub use self::settings::RecoverySwarmSettings;
