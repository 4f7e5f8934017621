//! The local gateway: API Gateway WebSocket and the SQS event source mapping on one machine.
//!
//! It serves WebSocket clients and the `@connections` management API on one port, turns every
//! handshake, message and close into the exact event API Gateway would send, and hands it — as JSON,
//! through serde — to the very `authorizer`, `ingress` and `worker` handlers that run on Lambda. Broadcasts travel
//! through an in-process SQS stand-in to the worker, which reaches the clients through the real
//! `aws-sdk-apigatewaymanagement` client pointed at this gateway, so every delivery is a SigV4-signed
//! HTTP `@connections` call as on AWS.
//!
//! - [`gateway`]: the routes, starting and stopping; [`state`] is what every request shares.
//! - [`settings`]: what can be configured, with AWS's and the template's defaults.
//! - [`serve`]: the HTTP/1.1 server, with its time limits; [`host`] the `Host` names it answers.
//! - [`authorize`]: the `$connect` route's REQUEST authorizer, run as API Gateway runs it.
//! - [`connection`]: one WebSocket connection from `$connect` to `$disconnect`; [`outbox`] is its
//!   outbound buffer and [`registry`] the live connections `@connections` reaches.
//! - [`management`]: `@connections`, behind [`sigv4`]; [`exchange`] what every endpoint shares (AWS's
//!   error answers, a body read within a size and a time).
//! - [`integration`], [`routing`], [`ids`]: the exact JSON API Gateway sends its integration, and how
//!   it routes.
//! - [`server_api`]: the server API's routes as the stack's HTTP API serves them, behind [`sigv4`] or
//!   the authorizer (its answers kept in [`authorizations`]); [`signing`] signs a backend's calls to it.
//! - [`sqs`]: SQS's `SendMessage` for the in-process queue, for backends that publish.
//! - [`function`]: Lambda functions as JSON in, JSON out; [`esm`] the SQS event source mapping;
//!   [`async_invoke`] Lambda's queue of asynchronous invocations, for event hooks.
//! - [`faults`]: faults injected on demand.
//! - [`lifecycle`]: lifecycle events as EventBridge would carry them: `--events-url` and
//!   `/_local/events`.
//! - [`devtools`]: not AWS APIs: the demo page, its client, development tokens and `/_local/stats`.

pub mod async_invoke;
pub mod authorizations;
pub mod authorize;
pub mod connection;
pub mod devtools;
pub mod esm;
pub mod exchange;
pub mod faults;
pub mod function;
pub mod gateway;
pub mod host;
pub mod ids;
pub mod integration;
pub mod lifecycle;
pub mod management;
pub mod outbox;
pub mod registry;
pub mod routing;
pub mod serve;
pub mod server_api;
pub mod settings;
pub mod signing;
pub mod sigv4;
pub mod sqs;
pub mod state;

pub use devtools::STATS_PATH;
pub use faults::Faults;
pub use gateway::{Gateway, StartError};
pub use settings::{Backend, Bucket, Credentials, Settings};
pub use state::AppState;
