//! The handler: [`Authorizer::handle`] answers API Gateway's REQUEST authorizer event — Allow with
//! the token's claims as `context` (which API Gateway hands to the integration as
//! `requestContext.authorizer`), Deny for any token that does not verify, and an error, which API
//! Gateway turns into a 500, only when the keys cannot be had.

use std::collections::HashMap;

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use serde::Serialize;
use serde_json::Value;
use shared::identity::{INFO_KEY, PUBLISH_KEY, SUB_KEY, SUBSCRIBE_KEY};

use crate::verify::{MAX_RESULT_BYTES, Refused, Verifier};

/// The query string parameter the token travels in: the authorizer's identity source
/// `route.request.querystring.token`.
pub const TOKEN_PARAMETER: &str = "token";

/// Why the authorizer could not decide: API Gateway answers the handshake 500.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizerError {
    /// The issuer's keys could not be fetched; a later attempt may succeed.
    #[error("the signing keys are unavailable: {0}")]
    KeysUnavailable(String),
}

impl AuthorizerError {
    /// The name Lambda reports as the invocation's `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::KeysUnavailable(_) => "KeysUnavailable",
        }
    }
}

/// The handler and how it verifies tokens.
#[derive(Debug)]
pub struct Authorizer {
    verifier: Verifier,
}

/// The answer API Gateway expects from a REQUEST authorizer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerResponse {
    pub principal_id: String,
    pub policy_document: PolicyDocument,
    /// Strings only: API Gateway accepts strings, numbers and booleans, so lists travel as JSON text.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub context: HashMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: &'static str,
    pub statement: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub action: &'static str,
    pub effect: Effect,
    pub resource: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Effect {
    Allow,
    Deny,
}

impl AuthorizerResponse {
    fn new(principal_id: String, effect: Effect, resource: String, context: HashMap<String, String>) -> Self {
        let statement = vec![Statement { action: "execute-api:Invoke", effect, resource }];
        Self { principal_id, policy_document: PolicyDocument { version: "2012-10-17", statement }, context }
    }

    /// A Deny, which says no more than that: why goes to the log, not to the client.
    fn deny(resource: String) -> Self {
        Self::new("anonymous".into(), Effect::Deny, resource, HashMap::new())
    }

    pub fn effect(&self) -> Effect {
        self.policy_document.statement.first().map_or(Effect::Deny, |s| s.effect)
    }

    /// What API Gateway puts in `requestContext.authorizer` on each event of an allowed connection:
    /// `principalId` beside the context.
    pub fn request_context(&self) -> HashMap<String, Value> {
        let mut fields: HashMap<String, Value> =
            self.context.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
        fields.insert("principalId".into(), Value::from(self.principal_id.as_str()));
        fields
    }
}

impl Authorizer {
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }

    pub(crate) fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Answers one REQUEST authorizer event.
    pub async fn handle(
        &self,
        request: ApiGatewayCustomAuthorizerRequestTypeRequest,
    ) -> Result<AuthorizerResponse, AuthorizerError> {
        let resource = request.method_arn.unwrap_or_default();
        let token = request.query_string_parameters.first(TOKEN_PARAMETER).unwrap_or_default();
        match self.verifier.verify(token).await {
            Ok(claims) => {
                let mut context = HashMap::from([(SUB_KEY.to_owned(), claims.sub.clone())]);
                if let Some(subscribe) = claims.subscribe.to_context() {
                    context.insert(SUBSCRIBE_KEY.to_owned(), subscribe);
                }
                if let Some(publish) = claims.publish.to_context() {
                    context.insert(PUBLISH_KEY.to_owned(), publish);
                }
                if let Some(info) = &claims.info {
                    context.insert(INFO_KEY.to_owned(), info.as_str().to_owned());
                }
                let allowed = AuthorizerResponse::new(claims.sub, Effect::Allow, resource.clone(), context);
                let bytes = serde_json::to_vec(&allowed).map_or(usize::MAX, |json| json.len());
                if bytes > MAX_RESULT_BYTES {
                    tracing::info!(reason = %Refused::TooLarge { bytes }, "denied");
                    return Ok(AuthorizerResponse::deny(resource));
                }
                tracing::info!(sub = %allowed.principal_id, "allowed");
                Ok(allowed)
            }
            Err(Refused::KeysUnavailable(detail)) => Err(AuthorizerError::KeysUnavailable(detail)),
            Err(refused) => {
                // Why goes to the log, not to the client: a 403 says no more on AWS either.
                tracing::info!(reason = %refused, "denied");
                Ok(AuthorizerResponse::deny(resource))
            }
        }
    }
}
