//! Backends publish through the local gateway's SQS endpoint with the real `aws-sdk-sqs` client,
//! exactly as they would to SQS on AWS.

mod support;

use std::time::Duration;

use aws_sdk_sqs::Client as Sqs;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use local::Settings;
use serde_json::{Value, json};
use support::*;

async fn sqs(gateway: &TestGateway, access_key: &str, secret: &str) -> (Sqs, String) {
    let queue_url = gateway.queue_url.clone().expect("the SQS endpoint");
    let origin = queue_url.rsplitn(3, '/').nth(2).expect("an origin").to_owned();
    let credentials = aws_credential_types::Credentials::new(access_key, secret, None, None, "test");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(origin)
        .credentials_provider(credentials)
        .load()
        .await;
    (Sqs::new(&sdk), queue_url)
}

async fn subscribed(gateway: &TestGateway, channel: &str) -> Client {
    let mut client = gateway.connect().await;
    send_text(&mut client, &json!({"action": "subscribe", "channel": channel}).to_string()).await;
    assert_eq!(
        serde_json::from_str::<Value>(&next_text(&mut client).await).expect("json")["type"],
        "subscribed"
    );
    client
}

#[tokio::test]
async fn send_message_from_the_sdk_is_delivered_like_a_clients_publish_without_a_sender() {
    let gateway = TestGateway::start_with_sqs(Settings::default()).await;
    let mut news = subscribed(&gateway, "news").await;
    let mut other = subscribed(&gateway, "sports").await;
    let (sqs, queue_url) = sqs(&gateway, "local", "local").await;

    let body = json!({"action": "publish", "channel": "news", "data": {"headline": "hi"}}).to_string();
    let sent = sqs.send_message().queue_url(&queue_url).message_body(body).send().await.expect("SendMessage");

    let frame: Value = serde_json::from_str(&next_text(&mut news).await).expect("json");
    assert_eq!((frame["type"].as_str(), frame["channel"].as_str()), (Some("message"), Some("news")));
    assert_eq!(frame["data"], json!({"headline": "hi"}));
    assert_eq!(frame["id"].as_str(), sent.message_id(), "the SQS message id, stable across redeliveries");
    assert!(frame.get("from").is_none() && frame.get("user").is_none(), "{frame}");
    assert_eq!(frame["offset"], 1, "numbered in its channel like a client's publish: {frame}");
    assert_silent(&mut other, Duration::from_millis(300)).await;

    let url = sqs.get_queue_url().queue_name("local-broadcasts").send().await.expect("GetQueueUrl");
    assert_eq!(url.queue_url(), Some(queue_url.as_str()));
}

#[tokio::test]
async fn send_message_batch_delivers_each_entry_and_fails_bad_ones_alone() {
    let gateway = TestGateway::start_with_sqs(Settings::default()).await;
    let mut client = subscribed(&gateway, "chat/*").await;
    let (sqs, queue_url) = sqs(&gateway, "local", "local").await;
    let entry = |id: &str, body: String| {
        SendMessageBatchRequestEntry::builder().id(id).message_body(body).build().expect("entry")
    };
    let publish =
        |n: u32| json!({"action": "publish", "channel": format!("chat/r{n}"), "data": n}).to_string();

    let sent = sqs
        .send_message_batch()
        .queue_url(&queue_url)
        .entries(entry("a", publish(1)))
        .entries(entry("b", publish(2)))
        .entries(
            SendMessageBatchRequestEntry::builder()
                .id("late")
                .message_body(publish(3))
                .delay_seconds(901)
                .build()
                .expect("entry"),
        )
        .send()
        .await
        .expect("SendMessageBatch");

    assert_eq!(sent.successful().len(), 2);
    assert_eq!(sent.failed().iter().map(|f| f.id()).collect::<Vec<_>>(), ["late"]);
    let mut seen: Vec<i64> = Vec::new();
    for _ in 0..2 {
        let frame: Value = serde_json::from_str(&next_text(&mut client).await).expect("json");
        seen.push(frame["data"].as_i64().expect("n"));
    }
    seen.sort_unstable();
    assert_eq!(seen, [1, 2]);
}

#[tokio::test]
async fn the_endpoint_refuses_what_sqs_refuses() {
    let gateway = TestGateway::start_with_sqs(Settings::default()).await;
    let (sqs, queue_url) = sqs(&gateway, "local", "local").await;
    let code = |err: aws_sdk_sqs::error::SdkError<_, _>| {
        use aws_sdk_sqs::error::ProvideErrorMetadata;
        err.code().map(str::to_owned).unwrap_or_else(|| format!("{err:?}"))
    };

    let wrong_queue =
        sqs.send_message().queue_url(format!("{queue_url}-nope")).message_body("x").send().await;
    assert_eq!(code(wrong_queue.expect_err("no such queue")), "QueueDoesNotExist");
    // The same path on another host is another queue, which does not exist here; a loopback name
    // for this endpoint is this queue.
    let port = queue_url.split(':').nth(2).and_then(|rest| rest.split('/').next()).expect("a port");
    for foreign in [
        queue_url.replacen("127.0.0.1", "sqs.us-east-1.amazonaws.com", 1),
        queue_url.replacen(&format!("127.0.0.1:{port}"), "127.0.0.1:1", 1),
    ] {
        let elsewhere = sqs.send_message().queue_url(&foreign).message_body("x").send().await;
        assert_eq!(code(elsewhere.expect_err("another host")), "QueueDoesNotExist", "{foreign}");
    }

    let too_big =
        sqs.send_message().queue_url(&queue_url).message_body("x".repeat(256 * 1024 + 1)).send().await;
    assert_eq!(code(too_big.expect_err("too big")), "InvalidParameterValue");
    let control = sqs.send_message().queue_url(&queue_url).message_body("a\u{1}b").send().await;
    assert_eq!(code(control.expect_err("invalid characters")), "InvalidMessageContents");
    let (stranger, _) = self::sqs(&gateway, "someone", "else").await;
    let unknown_key = stranger.send_message().queue_url(&queue_url).message_body("x").send().await;
    assert_eq!(code(unknown_key.expect_err("unknown key")), "UnrecognizedClientException");
    let (forger, _) = self::sqs(&gateway, "local", "wrong").await;
    let bad_signature = forger.send_message().queue_url(&queue_url).message_body("x").send().await;
    assert_eq!(code(bad_signature.expect_err("bad signature")), "InvalidSignatureException");

    let origin = queue_url.rsplitn(3, '/').nth(2).expect("origin").to_owned();
    let unsigned = reqwest::Client::new()
        .post(&origin)
        .header("X-Amz-Target", "AmazonSQS.SendMessage")
        .header("Content-Type", "application/x-amz-json-1.0")
        .body(json!({"QueueUrl": queue_url, "MessageBody": "x"}).to_string())
        .send()
        .await
        .expect("answered");
    assert_eq!(unsigned.status(), 403);

    // A lone surrogate, which no SDK can send (a Rust or Java string cannot hold one).
    let raw = format!(r#"{{"QueueUrl":"{queue_url}","MessageBody":"a\ud800b"}}"#);
    let request = reqwest::Client::new()
        .post(&origin)
        .header("X-Amz-Target", "AmazonSQS.SendMessage")
        .header("Content-Type", "application/x-amz-json-1.0")
        .body(raw)
        .build()
        .expect("a request");
    let answer = reqwest::Client::new()
        .execute(sign_for(request, "sqs", credentials(), std::time::SystemTime::now()))
        .await
        .expect("answered");
    assert_eq!(answer.status(), 400);
    let error: Value = serde_json::from_str(&answer.text().await.expect("a body")).expect("json");
    assert_eq!(error["__type"], "com.amazonaws.sqs#InvalidMessageContents", "{error}");

    // A body far past any request's limit gets its error answer, not a cut connection.
    let huge = reqwest::Client::new()
        .post(&origin)
        .header("X-Amz-Target", "AmazonSQS.SendMessage")
        .header("Content-Type", "application/x-amz-json-1.0")
        .body(vec![b'x'; 20 * 1024 * 1024])
        .send()
        .await
        .expect("an answer rather than a reset");
    assert_eq!(huge.status(), 400);
    let error: Value = serde_json::from_str(&huge.text().await.expect("a body")).expect("json");
    assert_eq!(error["__type"], "com.amazonaws.sqs#InvalidParameterValue", "{error}");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("shorter than 262144 bytes")), "{error}");
    assert!(gateway.queue.peek().is_empty() && gateway.queue.stats().in_flight == 0, "nothing was queued");

    let alias = queue_url.replacen("127.0.0.1", "localhost", 1);
    let body = json!({"action": "publish", "channel": "news", "data": 1}).to_string();
    sqs.send_message().queue_url(&alias).message_body(body).send().await.expect("localhost is this endpoint");
}

#[tokio::test]
async fn the_queue_refuses_past_its_bytes_so_no_sender_grows_the_gateway_without_end() {
    let settings = Settings {
        queue: shared::queue::QueueSettings { max_bytes: 100_000, ..shared::queue::QueueSettings::default() },
        ..Settings::default()
    };
    let gateway = TestGateway::start_with_sqs(settings).await;
    let (sqs, queue_url) = sqs(&gateway, "local", "local").await;
    let body = json!({"action": "publish", "channel": "news", "data": "x".repeat(40_000)}).to_string();
    // Delayed 15 minutes: held, not delivered, as in the attack that grew the gateway by 93 MB.
    let send = || sqs.send_message().queue_url(&queue_url).message_body(&body).delay_seconds(900).send();
    send().await.expect("the first fits");
    send().await.expect("the second fits");
    let refused = send().await.expect_err("the third would pass 100,000 bytes");
    use aws_sdk_sqs::error::ProvideErrorMetadata;
    assert_eq!(refused.code(), Some("OverLimit"), "{refused:?}");
    assert_eq!(gateway.queue.stats().delayed, 2);
    assert!(gateway.queue.bytes() <= 100_000);
}

#[tokio::test]
async fn a_publish_that_is_not_a_job_goes_to_the_dead_letter_list_and_nothing_is_delivered() {
    let settings = Settings {
        queue: shared::queue::QueueSettings {
            visibility_timeout: Duration::from_millis(200),
            max_receive_count: Some(2),
            ..shared::queue::QueueSettings::default()
        },
        esm: local::esm::EsmSettings {
            function_timeout: Duration::from_millis(200),
            ..local::esm::EsmSettings::default()
        },
        worker: worker::WorkerSettings { deadline_reserve: Duration::from_millis(50), ..Default::default() },
        ..Settings::default()
    };
    let gateway = TestGateway::start_with_sqs(settings).await;
    let mut client = subscribed(&gateway, "news").await;
    let (sqs, queue_url) = sqs(&gateway, "local", "local").await;
    let poison = json!({"action": "publish", "channel": "news/*", "data": 1}).to_string();
    sqs.send_message().queue_url(&queue_url).message_body(&poison).send().await.expect("SQS takes any text");

    eventually("the poison in the dead-letter list", || gateway.queue.dead_letters() == [poison.clone()])
        .await;
    assert_silent(&mut client, Duration::from_millis(200)).await;
}
