//! Load testing for the WebSocket API: a swarm of clients that measures how fast and how completely
//! messages are delivered, and a plain broadcast server to compare the local gateway with.
//!
//! [`swarm`] drives the connections, [`recovery`] cuts subscribers' sockets and checks what their apps saw, [`presence`] measures joins, leaves and `presence` and checks the lifecycle events, [`stamp`] marks what they send, [`ledger`] accounts for losses and
//! duplicates, [`report`] says what happened ([`chart`] draws it), [`frame_check`] holds every frame to the
//! protocol when a test asks, and [`baseline`] is the floor: a WebSocket broadcast
//! server with none of API Gateway's semantics. [`simulate`] runs the worker at sizes no machine's
//! sockets allow, under a paused clock. [`server_api`] measures the server API (`bench_server_api`).

pub mod baseline;
pub mod chart;
pub mod frame_check;
pub mod ledger;
pub mod presence;
pub mod recovery;
pub mod report;
pub mod server_api;
pub mod simulate;
pub mod stamp;
pub mod swarm;
