//! The server API's authorizer: a Lambda authorizer of API Gateway's HTTP API (payload format 2.0,
//! simple responses) for the `/api/…` routes. It lets a call in when its `Authorization: Bearer …`
//! token verifies as a client's would *and* carries the server scope
//! ([`shared::identity::SERVER_SCOPE`]); the ingress then finds `{"sub":…,"server":true}` in
//! `requestContext.authorizer.lambda`. A client's token verifies but lacks the scope: refused.
//! [`Event`] tells its events from the WebSocket's, since one function serves both.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayV2CustomAuthorizerSimpleResponse,
    ApiGatewayV2CustomAuthorizerV2Request,
};
use serde::{Deserialize, Deserializer, Serialize};
use shared::identity::{SERVER_KEY, SUB_KEY};
use shared::lambda::ByVersion;

use crate::handler::{Authorizer, AuthorizerError, AuthorizerResponse};
use crate::verify::Refused;

/// What the authorizer is invoked with: the WebSocket's `$connect`, or a server API call.
#[derive(Debug)]
pub enum Event {
    Connect(Box<ApiGatewayCustomAuthorizerRequestTypeRequest>),
    Server(Box<ApiGatewayV2CustomAuthorizerV2Request>),
}

/// Its answer to each.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Connect(AuthorizerResponse),
    Server(ApiGatewayV2CustomAuthorizerSimpleResponse),
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match ByVersion::deserialize(deserializer)? {
            ByVersion::V2(request) => Self::Server(Box::new(request)),
            ByVersion::Other(request) => Self::Connect(Box::new(request)),
        })
    }
}

impl Authorizer {
    /// Answers either kind of event.
    pub async fn answer(&self, event: Event) -> Result<Answer, AuthorizerError> {
        match event {
            Event::Connect(request) => self.handle(*request).await.map(Answer::Connect),
            Event::Server(request) => self.handle_server(*request).await.map(Answer::Server),
        }
    }

    /// Answers one server API call: authorized with `{"sub":…,"server":true}` for a token with the
    /// server scope, refused (API Gateway answers 403) for any other.
    pub async fn handle_server(
        &self,
        request: ApiGatewayV2CustomAuthorizerV2Request,
    ) -> Result<ApiGatewayV2CustomAuthorizerSimpleResponse, AuthorizerError> {
        let header = request.headers.get(http::header::AUTHORIZATION).and_then(|value| value.to_str().ok());
        let token = header
            .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
            .unwrap_or_default()
            .trim();
        let mut answer = ApiGatewayV2CustomAuthorizerSimpleResponse::default();
        answer.context = serde_json::json!({});
        match self.verifier().verify(token).await {
            Ok(claims) if claims.server => {
                tracing::info!(sub = %claims.sub, "server call allowed");
                answer.is_authorized = true;
                answer.context = serde_json::json!({ SUB_KEY: claims.sub, SERVER_KEY: true });
            }
            Ok(claims) => {
                tracing::info!(sub = %claims.sub, "server call denied: the token lacks the server scope");
            }
            Err(Refused::KeysUnavailable(detail)) => return Err(AuthorizerError::KeysUnavailable(detail)),
            Err(refused) => tracing::info!(reason = %refused, "server call denied"),
        }
        Ok(answer)
    }
}
