//! Events in the shapes API Gateway sends them, for tests that hand them to a function directly or
//! through its bootstrap: one copy of each, so that the tests of one function agree on what AWS sends.

use serde_json::{Value, json};

/// The HTTP API's REQUEST authorizer event (payload format 2.0) for a `POST /api/publish` carrying
/// `authorization` as its `Authorization` header, as the server API's bearer routes send it.
pub fn http_authorizer_event(authorization: &str) -> Value {
    json!({
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:us-east-1:123456789012:api1234567/$default/POST/api/publish",
        "identitySource": [authorization],
        "routeKey": "POST /api/{method}",
        "rawPath": "/api/publish",
        "rawQueryString": "",
        "headers": {"authorization": authorization, "content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api1234567",
            "domainName": "api1234567.execute-api.us-east-1.amazonaws.com",
            "http": {"method": "POST", "path": "/api/publish", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "curl/8.5.0"},
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "POST /api/{method}",
            "stage": "$default",
            "time": "07/Dec/2026:00:00:00 +0000",
            "timeEpoch": 1_796_601_600_000_i64
        },
        "pathParameters": {"method": "publish"}
    })
}
