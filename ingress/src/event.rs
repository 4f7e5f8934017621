//! What the ingress is invoked with: an API Gateway WebSocket event (`$connect`, `$disconnect`, a
//! message), or — from the server API's HTTP API — a payload format 2.0 request; and the answer
//! each expects. One function serves both: the server API's publish is the client's publish (the
//! same ports, the same numbering, the same queue), and it shares the WebSocket's warm instances
//! rather than paying a bootstrap and cold starts of its own.

use aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayV2httpRequest, ApiGatewayV2httpResponse,
    ApiGatewayWebsocketProxyRequest,
};
use serde::{Deserialize, Deserializer, Serialize};
use shared::lambda::ByVersion;

/// One invocation's event.
#[derive(Debug)]
pub enum Event {
    WebSocket(Box<ApiGatewayWebsocketProxyRequest>),
    Http(Box<ApiGatewayV2httpRequest>),
}

/// The answer: the WebSocket route response, or the HTTP response.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Response {
    WebSocket(ApiGatewayProxyResponse),
    Http(ApiGatewayV2httpResponse),
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match ByVersion::deserialize(deserializer)? {
            ByVersion::V2(request) => Self::Http(Box::new(request)),
            ByVersion::Other(event) => Self::WebSocket(Box::new(event)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_api_request_and_a_websocket_event_are_told_apart() {
        let http = r#"{"version":"2.0","routeKey":"POST /api/{method}","rawPath":"/api/publish",
            "requestContext":{"http":{"method":"POST","path":"/api/publish"},"timeEpoch":1},"body":"{}"}"#;
        assert!(matches!(serde_json::from_str::<Event>(http), Ok(Event::Http(_))));
        let websocket = r#"{"requestContext":{"routeKey":"$default","eventType":"MESSAGE","connectionId":"abc=",
            "apiId":"x","stage":"prod","requestTimeEpoch":1,"connectedAt":1},"body":"hi","isBase64Encoded":false}"#;
        assert!(matches!(serde_json::from_str::<Event>(websocket), Ok(Event::WebSocket(_))));
        assert!(serde_json::from_str::<Event>("[1]").is_err());
    }
}
