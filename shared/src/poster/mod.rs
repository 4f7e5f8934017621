//! The poster port: how the worker reaches a connection, and the closer: how the ingress ends a
//! flooding one — with their adapter beside them —
//! [`api_gateway`], `@connections` through `aws-sdk-apigatewaymanagement`, which also reaches the
//! local gateway (its own `@connections` endpoint). Tests script one in `crate::testing`. Its error,
//! [`crate::error::PostError`], is with the others.

mod api_gateway;
mod port;

pub use api_gateway::{ApiGatewayPoster, POST_ATTEMPT_TIMEOUT, POST_CONNECT_TIMEOUT};
pub use port::{Closer, Poster};
