//! Test doubles for running a function's real bootstrap as Lambda runs it: [`bootstrap`] starts the
//! executable, [`runtime_api`] is the Lambda Runtime API it polls for events and answers,
//! [`connections`] an `@connections` endpoint that records every call, and [`lambda_env`] the
//! environment Lambda gives every function, [`invoke_api`] Lambda's Invoke API serving functions a
//! test writes (the hooks'). [`moto_endpoint`] and [`unique_name`] serve every test
//! that runs against moto_server. [`contract`] is the protocol's contract (`docs/asyncapi.yaml`), which
//! the end-to-end tests hold every frame to; [`server_contract`] the server API's (`docs/openapi.yaml`),
//! which they hold every answer to. [`events`] are API Gateway's events in the shapes AWS sends them.

pub mod bootstrap;
pub mod connections;
pub mod contract;
pub mod events;
pub mod invoke_api;
mod lambda_env;
mod moto;
pub mod runtime_api;
mod server;
pub mod server_contract;

pub use bootstrap::Bootstrap;
pub use connections::RecordingConnections;
pub use invoke_api::{InvokeApi, Outcome};
pub use lambda_env::lambda_env;
pub use moto::{moto_endpoint, unique_name};
pub use runtime_api::{Invocation, RuntimeApi, TRACE_ID};
