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
    assert!(gateway.queue.peek().is_empty(), "nothing was queued");
}

#[tokio::test]
async fn a_publish_that_is_not_a_job_goes_to_the_dead_letter_list_and_nothing_is_delivered() {
    let settings = Settings {
        queue: shared::queue::QueueSettings {
            visibility_timeout: Duration::from_millis(200),
            max_receive_count: Some(2),
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
