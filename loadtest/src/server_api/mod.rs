//! The server API's benchmark (`bench_server_api`): [`calls`] publishes as a backend does, paced;
//! [`inbox`] is what the subscribers received; [`disconnect`] times a user's disconnect and counts
//! its leaves.

pub mod calls;
pub mod disconnect;
pub mod inbox;
