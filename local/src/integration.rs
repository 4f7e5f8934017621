//! The events API Gateway and the SQS event source mapping send to Lambda, as JSON.
//!
//! The shapes follow what AWS sends field for field (see `shared/reference` beside the repository and
//! the `aws_lambda_events` fixtures); the tests pin the fields handlers are known to read.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use md5::{Digest, Md5};
use serde_json::{Map, Value, json};
use shared::ConnectionId;
use shared::ReceivedMessage;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::ids;

/// The deployment being stood in for.
#[derive(Clone, Debug)]
pub struct Api {
    pub api_id: String,
    pub stage: String,
    pub region: String,
}

/// What the gateway knows about a connection from its handshake.
#[derive(Clone, Debug)]
pub struct Connection {
    pub id: ConnectionId,
    pub connected_at_ms: i64,
    pub source_ip: String,
    pub user_agent: Option<String>,
    /// The `Host` the client connected to: API Gateway's `domainName`.
    pub domain_name: String,
    /// What the `$connect` authorizer allowed it as (`principalId` and the context): on every event
    /// of the connection as `requestContext.authorizer`.
    pub authorizer: Option<Map<String, Value>>,
}

/// A message's payload as API Gateway hands it over.
#[derive(Clone, Copy, Debug)]
pub enum Payload<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

/// API Gateway's `requestTime`: `26/Nov/2026:14:26:26 +0000`.
pub fn request_time(epoch_ms: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(epoch_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.format(format_description!("[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"))
        .unwrap_or_default()
}

fn request_context(
    api: &Api,
    conn: &Connection,
    route_key: &str,
    event_type: &str,
    now_ms: i64,
) -> Map<String, Value> {
    let request_id = ids::request_id();
    let mut identity = Map::new();
    identity.insert("sourceIp".into(), json!(conn.source_ip));
    if let Some(agent) = &conn.user_agent {
        identity.insert("userAgent".into(), json!(agent));
    }
    let context = json!({
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(now_ms),
        "messageDirection": "IN",
        "stage": api.stage,
        "connectedAt": conn.connected_at_ms,
        "requestTimeEpoch": now_ms,
        "identity": identity,
        "requestId": request_id,
        "domainName": conn.domain_name,
        "connectionId": conn.id,
        "apiId": api.api_id,
    });
    match context {
        Value::Object(mut map) => {
            if let Some(authorizer) = &conn.authorizer {
                map.insert("authorizer".into(), Value::Object(authorizer.clone()));
            }
            map
        }
        _ => Map::new(),
    }
}

/// The ARN the authorizer's policy must allow: the `$connect` route of this stage.
pub fn connect_arn(api: &Api) -> String {
    format!("arn:aws:execute-api:{}:000000000000:{}/{}/$connect", api.region, api.api_id, api.stage)
}

/// The REQUEST authorizer's event: the `$connect` event's headers, query string and request context
/// (without `authorizer`, which it is about to decide), with its `type` and `methodArn`.
pub fn authorizer_request(
    api: &Api,
    conn: &Connection,
    headers: &HeaderMap,
    query: Option<&str>,
    port: u16,
    now_ms: i64,
) -> Value {
    let mut event = connect(api, conn, headers, query, port, now_ms);
    event["type"] = json!("REQUEST");
    event["methodArn"] = json!(connect_arn(api));
    event["stageVariables"] = json!({});
    if let Some(object) = event.as_object_mut() {
        object.remove("isBase64Encoded");
    }
    event
}

/// `Sec-WebSocket-Key` rather than hyper's lower case, as API Gateway forwards the client's headers.
fn canonical(name: &str) -> String {
    match name {
        "sec-websocket-key" => "Sec-WebSocket-Key".into(),
        "sec-websocket-version" => "Sec-WebSocket-Version".into(),
        "sec-websocket-extensions" => "Sec-WebSocket-Extensions".into(),
        "sec-websocket-protocol" => "Sec-WebSocket-Protocol".into(),
        "x-amzn-trace-id" => "X-Amzn-Trace-Id".into(),
        _ => name
            .split('-')
            .map(|part| {
                let mut chars = part.chars();
                chars.next().map_or_else(String::new, |c| c.to_ascii_uppercase().to_string() + chars.as_str())
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

/// The `$connect` event, with the handshake's headers and query string.
pub fn connect(
    api: &Api,
    conn: &Connection,
    headers: &HeaderMap,
    query: Option<&str>,
    port: u16,
    now_ms: i64,
) -> Value {
    let mut multi: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        // Hop-by-hop headers stop at API Gateway.
        if matches!(name.as_str(), "connection" | "upgrade") {
            continue;
        }
        multi
            .entry(canonical(name.as_str()))
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let trace = format!("Root=1-{:08x}-{}", now_ms / 1000, hex::encode(rand::random::<[u8; 12]>()));
    for (name, value) in [
        ("X-Amzn-Trace-Id", trace),
        ("X-Forwarded-For", conn.source_ip.clone()),
        ("X-Forwarded-Port", port.to_string()),
        ("X-Forwarded-Proto", "http".to_owned()),
    ] {
        multi.insert(name.to_owned(), vec![value]);
    }
    let single: BTreeMap<&String, &String> = multi.iter().filter_map(|(k, v)| Some((k, v.last()?))).collect();

    let mut event = json!({
        "headers": single,
        "multiValueHeaders": multi,
        "requestContext": request_context(api, conn, "$connect", "CONNECT", now_ms),
        "isBase64Encoded": false,
    });
    let mut query_multi: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        query_multi.entry(key.into_owned()).or_default().push(value.into_owned());
    }
    if !query_multi.is_empty() {
        let query_single: BTreeMap<&String, &String> =
            query_multi.iter().filter_map(|(k, v)| Some((k, v.last()?))).collect();
        event["queryStringParameters"] = json!(query_single);
        event["multiValueQueryStringParameters"] = json!(query_multi);
    }
    event
}

/// A `MESSAGE` event for `route_key`. Binary frames arrive base64-encoded, as API Gateway sends them.
pub fn message(api: &Api, conn: &Connection, route_key: &str, payload: Payload<'_>, now_ms: i64) -> Value {
    let mut context = request_context(api, conn, route_key, "MESSAGE", now_ms);
    context.insert("messageId".into(), json!(ids::request_id()));
    let (body, is_base64) = match payload {
        Payload::Text(text) => (text.to_owned(), false),
        Payload::Binary(bytes) => (STANDARD.encode(bytes), true),
    };
    json!({ "requestContext": context, "body": body, "isBase64Encoded": is_base64 })
}

/// The `$disconnect` event, with the close code and reason API Gateway reports.
pub fn disconnect(api: &Api, conn: &Connection, code: u16, reason: &str, now_ms: i64) -> Value {
    let mut context = request_context(api, conn, "$disconnect", "DISCONNECT", now_ms);
    context.insert("disconnectStatusCode".into(), json!(code));
    context.insert("disconnectReason".into(), json!(reason));
    json!({
        "headers": { "Host": conn.domain_name, "X-Forwarded-For": conn.source_ip },
        "multiValueHeaders": { "Host": [conn.domain_name], "X-Forwarded-For": [conn.source_ip] },
        "requestContext": context,
        "isBase64Encoded": false,
    })
}

/// The SQS event for one batch, as the event source mapping delivers it.
pub fn sqs(api: &Api, queue_name: &str, messages: &[ReceivedMessage]) -> Value {
    let arn = format!("arn:aws:sqs:{}:000000000000:{queue_name}", api.region);
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": m.receive_count.to_string(),
                    "SentTimestamp": m.sent_at_ms.to_string(),
                    "SenderId": "AROAIWPX5BD2BHG722MW4:ingress",
                    "ApproximateFirstReceiveTimestamp": m.first_received_at_ms.to_string(),
                },
                "messageAttributes": {},
                "md5OfBody": hex::encode(Md5::digest(m.body.as_bytes())),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": api.region,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// An HTTP API request as API Gateway hands it to a Lambda proxy integration (payload format 2.0,
/// on the `$default` stage): what the server API's routes send the ingress.
#[derive(Clone, Debug)]
pub struct HttpRequest<'a> {
    /// `POST /api/{method}`: the route that matched.
    pub route_key: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub source_ip: &'a str,
    /// The `Host` it was sent to.
    pub domain_name: &'a str,
    /// The route's path parameters: `{"method":"publish"}`.
    pub path_parameters: Value,
    /// The account the API belongs to.
    pub account: &'a str,
}

impl HttpRequest<'_> {
    /// Headers as payload format 2.0 has them: lower case, repeated ones joined with commas.
    fn headers(&self) -> Map<String, Value> {
        let mut joined: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in self.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            joined
                .entry(name.as_str().to_owned())
                .and_modify(|all| *all = format!("{all},{value}"))
                .or_insert(value);
        }
        joined.into_iter().map(|(name, value)| (name, Value::String(value))).collect()
    }

    fn context(&self, api: &Api, now_ms: i64) -> Value {
        json!({
            "accountId": self.account,
            "apiId": api.api_id,
            "domainName": self.domain_name,
            "domainPrefix": self.domain_name.split('.').next().unwrap_or_default(),
            "http": {
                "method": self.method,
                "path": self.path,
                "protocol": "HTTP/1.1",
                "sourceIp": self.source_ip,
                "userAgent": self.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default(),
            },
            "requestId": ids::request_id(),
            "routeKey": self.route_key,
            "stage": "$default",
            "time": request_time(now_ms),
            "timeEpoch": now_ms,
        })
    }

    /// The integration's event, with `authorizer` (`{"iam":…}` or `{"lambda":…}`) in its context and
    /// the body as sent: text when it is UTF-8, base64 otherwise, as API Gateway passes binary.
    pub fn event(&self, api: &Api, authorizer: Value, body: &[u8], now_ms: i64) -> Value {
        let mut context = self.context(api, now_ms);
        context["authorizer"] = authorizer;
        let (body, encoded) = match std::str::from_utf8(body) {
            Ok(text) => (text.to_owned(), false),
            Err(_) => (STANDARD.encode(body), true),
        };
        json!({
            "version": "2.0",
            "routeKey": self.route_key,
            "rawPath": self.path,
            "rawQueryString": self.query,
            "headers": self.headers(),
            "requestContext": context,
            "pathParameters": self.path_parameters,
            "body": body,
            "isBase64Encoded": encoded,
        })
    }

    /// A Lambda authorizer's event (payload format 2.0): the request without its body, with the
    /// route's ARN and the identity source's values.
    pub fn authorizer_event(&self, api: &Api, identity: &str, now_ms: i64) -> Value {
        let route_arn = format!(
            "arn:aws:execute-api:{}:{}:{}/$default/{}{}",
            api.region, self.account, api.api_id, self.method, self.path
        );
        json!({
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": route_arn,
            "identitySource": [identity],
            "routeKey": self.route_key,
            "rawPath": self.path,
            "rawQueryString": self.query,
            "headers": self.headers(),
            "requestContext": self.context(api, now_ms),
            "pathParameters": self.path_parameters,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
    use aws_lambda_events::sqs::SqsEvent;

    fn api() -> Api {
        Api { api_id: "local".into(), stage: "local".into(), region: "us-east-1".into() }
    }

    fn conn() -> Connection {
        Connection {
            id: ConnectionId::parse("AbCdEfGhIjKlMnOp").expect("id"),
            connected_at_ms: 1_764_167_186_000,
            source_ip: "127.0.0.1".into(),
            user_agent: Some("wscat".into()),
            domain_name: "127.0.0.1:3001".into(),
            authorizer: None,
        }
    }

    #[test]
    fn request_time_has_api_gateways_format() {
        assert_eq!(request_time(1_764_167_186_000), "26/Nov/2025:14:26:26 +0000");
    }

    #[test]
    fn a_connect_event_carries_headers_query_and_the_full_request_context() {
        let mut headers = HeaderMap::new();
        headers.insert("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==".parse().expect("header"));
        headers.insert("host", "127.0.0.1:3001".parse().expect("header"));
        headers.insert("connection", "Upgrade".parse().expect("header"));
        let event =
            connect(&api(), &conn(), &headers, Some("room=lobby&tag=a&tag=b"), 3001, 1_764_167_186_500);

        assert_eq!(event["headers"]["Sec-WebSocket-Key"], "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(event["headers"]["Host"], "127.0.0.1:3001");
        assert!(event["headers"].get("Connection").is_none());
        assert!(event["headers"]["X-Amzn-Trace-Id"].as_str().is_some_and(|t| t.starts_with("Root=1-")));
        assert_eq!(event["queryStringParameters"], json!({"room": "lobby", "tag": "b"}));
        assert_eq!(event["multiValueQueryStringParameters"]["tag"], json!(["a", "b"]));
        let context = &event["requestContext"];
        for field in [
            "routeKey",
            "eventType",
            "extendedRequestId",
            "requestTime",
            "messageDirection",
            "stage",
            "connectedAt",
            "requestTimeEpoch",
            "identity",
            "requestId",
            "domainName",
            "connectionId",
            "apiId",
        ] {
            assert!(context.get(field).is_some(), "requestContext.{field} is missing");
        }
        assert_eq!(context["eventType"], "CONNECT");
        assert_eq!(context["identity"]["sourceIp"], "127.0.0.1");

        let parsed: ApiGatewayWebsocketProxyRequest = serde_json::from_value(event).expect("deserializes");
        assert_eq!(parsed.request_context.connection_id.as_deref(), Some("AbCdEfGhIjKlMnOp"));
        assert_eq!(parsed.request_context.request_time_epoch, 1_764_167_186_500);
    }

    #[test]
    fn message_and_disconnect_events_deserialize_as_lambda_would() {
        let text = message(&api(), &conn(), "$default", Payload::Text("Hello"), 1);
        let parsed: ApiGatewayWebsocketProxyRequest = serde_json::from_value(text).expect("message");
        assert_eq!(parsed.body.as_deref(), Some("Hello"));
        assert!(parsed.request_context.message_id.is_some());

        let binary = message(&api(), &conn(), "$default", Payload::Binary(&[0, 1, 2]), 1);
        assert_eq!(binary["body"], "AAEC");
        assert_eq!(binary["isBase64Encoded"], true);

        let gone = disconnect(&api(), &conn(), 1001, "Going away", 2);
        let parsed: ApiGatewayWebsocketProxyRequest = serde_json::from_value(gone).expect("disconnect");
        assert_eq!(parsed.request_context.disconnect_status_code, Some(1001));
        assert_eq!(parsed.request_context.event_type.as_deref(), Some("DISCONNECT"));
    }

    #[test]
    fn an_authorizer_event_deserializes_as_the_authorizer_reads_it_and_later_events_carry_its_context() {
        let event = authorizer_request(&api(), &conn(), &HeaderMap::new(), Some("token=abc"), 3001, 1);
        assert_eq!(event["type"], "REQUEST");
        let parsed: aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest =
            serde_json::from_value(event).expect("an authorizer event");
        assert_eq!(
            parsed.method_arn.as_deref(),
            Some("arn:aws:execute-api:us-east-1:000000000000:local/local/$connect")
        );
        assert_eq!(parsed.query_string_parameters.first("token"), Some("abc"));

        let allowed = Connection {
            authorizer: Some(Map::from_iter([
                ("principalId".to_owned(), json!("alice")),
                ("sub".to_owned(), json!("alice")),
            ])),
            ..conn()
        };
        let parsed: ApiGatewayWebsocketProxyRequest =
            serde_json::from_value(message(&api(), &allowed, "$default", Payload::Text("x"), 1))
                .expect("message");
        assert_eq!(parsed.request_context.authorizer.fields["sub"], "alice");
        assert_eq!(parsed.request_context.authorizer.fields["principalId"], "alice");
    }

    #[test]
    fn an_sqs_event_has_the_attributes_and_md5_sqs_sends() {
        let received = ReceivedMessage {
            message_id: "m-1".into(),
            receipt_handle: "r-1".into(),
            body: "test".into(),
            receive_count: 2,
            sent_at_ms: 10,
            first_received_at_ms: 11,
        };
        let event = sqs(&api(), "broadcasts", &[received]);
        assert_eq!(event["Records"][0]["md5OfBody"], "098f6bcd4621d373cade4e832627b4f6");
        assert_eq!(event["Records"][0]["attributes"]["ApproximateReceiveCount"], "2");
        let parsed: SqsEvent = serde_json::from_value(event).expect("deserializes");
        assert_eq!(
            parsed.records[0].event_source_arn.as_deref(),
            Some("arn:aws:sqs:us-east-1:000000000000:broadcasts")
        );
    }
}
