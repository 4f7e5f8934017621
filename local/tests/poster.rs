//! The worker's `@connections` poster through the real SDK, against restJson1 error answers like
//! API Gateway's: each error type must map to the outcome the worker acts on.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use local::exchange::aws_error;
use shared::poster::ApiGatewayPoster;
use shared::{ConnectionId, PostError, Poster};
use tokio::net::TcpListener;

/// Answers each connection id with the error it is named after.
async fn answer(Path(id): Path<String>) -> Response {
    match id.as_str() {
        "gone" => aws_error(StatusCode::GONE, "GoneException", "gone"),
        "throttled" => aws_error(StatusCode::TOO_MANY_REQUESTS, "LimitExceededException", "slow down"),
        "toolarge" => aws_error(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException", "too big"),
        "forbidden" => aws_error(StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden"),
        "broken" => aws_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerErrorException", "oops"),
        _ => StatusCode::OK.into_response(),
    }
}

async fn outcome(poster: &ApiGatewayPoster, id: &str) -> Result<(), PostError> {
    poster.post(&ConnectionId::parse(id).expect("id"), Bytes::from_static(b"hi")).await
}

#[tokio::test]
async fn each_management_api_error_maps_to_the_outcome_the_worker_acts_on() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}/Prod", listener.local_addr().expect("addr"));
    let app = axum::Router::new().route("/Prod/@connections/{id}", axum::routing::post(answer));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let credentials = aws_credential_types::Credentials::new("id", "secret", None, None, "test");
    let poster = ApiGatewayPoster::for_local_endpoint(&endpoint, "us-east-1", credentials);

    assert!(outcome(&poster, "fine").await.is_ok());
    assert!(matches!(outcome(&poster, "gone").await, Err(PostError::Gone)));
    assert!(matches!(outcome(&poster, "throttled").await, Err(PostError::Throttled)));
    assert!(matches!(outcome(&poster, "toolarge").await, Err(PostError::PayloadTooLarge)));
    assert!(matches!(outcome(&poster, "forbidden").await, Err(PostError::Forbidden)));
    let broken = outcome(&poster, "broken").await;
    assert!(matches!(broken, Err(PostError::Transient(_))), "{broken:?}");
}
