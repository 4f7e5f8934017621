//! What every server API method is held to: a [`Method`] is parsed from the request's body by its
//! row's [`Parse`] — every field checked before anything is done — and served with a [`Call`]:
//! who called, and the ports. [`fields`](super::fields) reads the fields they share.

use async_trait::async_trait;

use super::error::ServerError;
use crate::ports::Ports;

/// Reads a method's body into the method, or says what is wrong with it.
pub type Parse = fn(&str) -> Result<Box<dyn Method>, ServerError>;

/// What a method does once parsed: the JSON answer, or why it was not given.
#[async_trait]
pub trait Method: Send + Sync {
    async fn serve(self: Box<Self>, call: &Call<'_>) -> Result<serde_json::Value, ServerError>;
}

/// Who called, as API Gateway let them in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A SigV4-signed call (the `/iam/api/…` routes): the signer's ARN.
    Iam { arn: String },
    /// A bearer token with the server scope (the `/api/…` routes): its `sub`.
    Token { sub: String },
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Iam { arn } => write!(f, "iam:{arn}"),
            Self::Token { sub } => write!(f, "token:{sub}"),
        }
    }
}

/// What a method may use.
#[derive(Debug)]
pub struct Call<'a> {
    pub caller: &'a Caller,
    /// Epoch milliseconds at which API Gateway received the call.
    pub received_at_ms: i64,
    pub ports: &'a Ports,
}
