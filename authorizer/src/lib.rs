//! The `$connect` authorizer: a Lambda REQUEST authorizer that verifies the JWT a client passes in
//! the query string (`?token=…`; browsers cannot set headers on a WebSocket) and hands its claims to
//! every later event of the connection.
//!
//! [`config`] reads the environment, [`verify`] checks a token against an HS256 secret or an issuer's JWKS and reads its claims,
//! [`server`] answers the server API's HTTP API (a token with the server scope, or nothing), [`jwks`] is where the keys come from (a URL on AWS, a file locally), [`token`] mints development
//! tokens, and [`handler`] answers API Gateway ([`Authorizer::handle`]): Allow with the claims as
//! `context`, Deny for any token that does not verify, an error (a 500) only when the keys cannot be
//! had.

pub mod deployment;
pub mod handler;
pub mod jwks;
pub mod server;
pub mod token;
pub mod verify;

pub use crate::handler::{
    Authorizer, AuthorizerError, AuthorizerResponse, Effect, PolicyDocument, Statement, TOKEN_PARAMETER,
};
pub use crate::verify::{MAX_RESULT_BYTES, Refused, Verifier};
