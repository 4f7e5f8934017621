//! What the server API answers when it does nothing: each refusal's HTTP status and stable code, in
//! `{"error":{"code":…,"message":…}}` as the WebSocket protocol's errors. `docs/server-api.md`'s
//! table lists the same codes ([`ServerError::CODES`]; a test holds them together).

use shared::InputError;

use crate::actions::Refusal;

/// Why a server API call was refused, or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A body or field the WebSocket protocol refuses the same way: `invalid_json`,
    /// `invalid_channel`, `missing_data`, `message_too_large`, `invalid_limit`, `invalid_since`,
    /// `unrecoverable_position`, `presence_off`…
    #[error(transparent)]
    Input(#[from] InputError),
    /// A field of the server API's own (`id`, `channels`, `messages`, `user`, `connection`,
    /// `code`, `reason`, `reconnect`) missing or wrong.
    #[error("invalid \"{field}\": {detail}")]
    InvalidField { field: &'static str, detail: String },
    #[error(
        "a request publishes at most {limit} messages (each channel of each message counts), not {count}"
    )]
    BatchTooLarge { count: usize, limit: usize },
    #[error("the body is {bytes} bytes, past the server API's limit of {limit}")]
    BodyTooLarge { bytes: usize, limit: usize },
    #[error("no method {path:?}; the server API's methods are POST /api/{{{known}}}")]
    UnknownMethod { path: String, known: String },
    #[error("the server API takes POST, not {0}")]
    MethodNotAllowed(String),
    /// Neither SigV4 nor a token with the server scope let the call in: a route left open, or a
    /// client's token. API Gateway refuses these before the function; this is the function's own
    /// check, in case a route is ever deployed without its authorizer.
    #[error(
        "this call is not a server's: sign it with SigV4, or send a token carrying the \"{scope}\" scope"
    )]
    NotServer { scope: &'static str },
    /// The store, the history or the queue failed; the message says whether sending again may help.
    #[error("{0}")]
    Unavailable(String),
}

impl ServerError {
    /// Every code of the server API's own, beside the [`InputError`] codes it shares.
    pub const CODES: [&'static str; 7] = [
        "invalid_field",
        "batch_too_large",
        "body_too_large",
        "unknown_method",
        "method_not_allowed",
        "forbidden",
        "unavailable",
    ];

    /// The stable code a backend matches on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Input(err) => err.code(),
            Self::InvalidField { .. } => "invalid_field",
            Self::BatchTooLarge { .. } => "batch_too_large",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::UnknownMethod { .. } => "unknown_method",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::NotServer { .. } => "forbidden",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// The HTTP status: 4xx for the caller's mistake (nothing was done), 503 when sending again may
    /// help.
    pub fn status(&self) -> u16 {
        match self {
            Self::Input(InputError::TooLarge { .. }) | Self::BodyTooLarge { .. } => 413,
            Self::Input(_) | Self::InvalidField { .. } | Self::BatchTooLarge { .. } => 400,
            Self::NotServer { .. } => 403,
            Self::UnknownMethod { .. } => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::Unavailable(_) => 503,
        }
    }

    /// `{"error":{"code":…,"message":…}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code(), "message": self.to_string() } })
    }

    pub(crate) fn field(field: &'static str, detail: impl Into<String>) -> Self {
        Self::InvalidField { field, detail: detail.into() }
    }
}

impl From<Refusal> for ServerError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Input(err) => Self::Input(err),
            Refusal::Unavailable(message) => Self::Unavailable(message),
            // A server is held to no client's quota or ceiling; neither is asked for its calls.
            Refusal::RateLimited { .. } | Refusal::FanoutSpent { .. } => {
                Self::Unavailable("refused by a client's limit; send it again".into())
            }
        }
    }
}
