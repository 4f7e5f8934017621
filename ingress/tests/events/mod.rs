//! The `requestContext` API Gateway sends with every WebSocket event, for the ingress's tests (the
//! handler on in-memory ports and the real bootstrap alike).

use serde_json::{Value, json};

pub const ID: &str = "TWegAcC4EowCHnA=";
pub const REQUEST_EPOCH_MS: i64 = 1_764_167_186_000;

/// `requestContext` as API Gateway sends it for `route` and `event_type`.
pub fn context(route: &str, event_type: &str) -> Value {
    json!({
        "routeKey": route,
        "eventType": event_type,
        "extendedRequestId": "TWegAcC4EowCHnA=",
        "requestTime": "26/Nov/2025:14:26:26 +0000",
        "messageDirection": "IN",
        "stage": "Prod",
        "connectedAt": REQUEST_EPOCH_MS - 5_000,
        "requestTimeEpoch": REQUEST_EPOCH_MS,
        "identity": { "sourceIp": "192.0.2.1", "userAgent": "wscat" },
        "requestId": "TWegAcC4EowCHnA=",
        "domainName": "abcd1234.execute-api.us-east-1.amazonaws.com",
        "connectionId": ID,
        "apiId": "abcd1234"
    })
}
