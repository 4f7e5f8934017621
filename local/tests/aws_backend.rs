//! The local gateway on the DynamoDB and SQS adapters, against `moto_server`: the SDK code paths that
//! run on Lambda, end to end. `scripts/test` starts moto and passes it in `MOTO_ENDPOINT`; without it
//! these tests fail rather than skip.

mod support;

use std::time::Duration;

use futures::TryStreamExt;
use local::{Backend, Gateway, Settings};
use serde_json::Value;
use shared::aws::provision::{ensure_queue, ensure_table, sdk_for_endpoint};
use shared::{ConnectionId, ConnectionRecord, ConnectionRef, ConnectionStore};
use support::{PATIENCE, next_text, send_text};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Running {
    ws_url: String,
    store: std::sync::Arc<dyn ConnectionStore>,
    shutdown: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start() -> Running {
    let endpoint = std::env::var("MOTO_ENDPOINT")
        .expect("MOTO_ENDPOINT is not set: run scripts/test, which starts moto_server");
    let sdk = sdk_for_endpoint(&endpoint).await;
    let name = format!("gw-{}", uuid::Uuid::new_v4().simple());
    ensure_table(&sdk, &name).await.expect("moto is unreachable: could not create the table");
    let (queue_url, _) =
        ensure_queue(&sdk, &name, Duration::from_secs(30), 5).await.expect("create the queue");
    let (bulk_queue_url, _) = ensure_queue(&sdk, &format!("{name}-bulk"), Duration::from_secs(30), 5)
        .await
        .expect("create the bulk queue");
    let settings = Settings {
        backend: Backend::Aws {
            sdk: Box::new(sdk),
            table: name,
            queue_url,
            bulk_queue_url: Some(bulk_queue_url),
        },
        ..Settings::default()
    };
    let gateway =
        Gateway::new(TcpListener::bind("127.0.0.1:0").await.expect("bind"), settings).expect("gateway");
    let shutdown = CancellationToken::new();
    let running = Running { ws_url: gateway.ws_url(), store: gateway.store(), shutdown: shutdown.clone() };
    tokio::spawn(gateway.run(shutdown.cancelled_owned()));
    running
}

async fn stored_ids(store: &dyn ConnectionStore) -> Vec<ConnectionId> {
    let pages: Vec<Vec<ConnectionRef>> = store.scan().try_collect().await.expect("scan");
    let mut ids: Vec<ConnectionId> = pages.into_iter().flatten().map(|c| c.id).collect();
    ids.sort();
    ids
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn echo_and_broadcast_work_over_dynamodb_and_sqs() {
    let gateway = start().await;
    let (mut alice, _) = tokio_tungstenite::connect_async(&gateway.ws_url).await.expect("connect");
    let (mut bob, _) = tokio_tungstenite::connect_async(&gateway.ws_url).await.expect("connect");
    assert_eq!(stored_ids(gateway.store.as_ref()).await.len(), 2, "both $connects wrote to DynamoDB");

    send_text(&mut alice, "Hello").await;
    assert_eq!(next_text(&mut alice).await, "Hello");

    send_text(&mut alice, r#"{"action":"broadcast","data":"via sqs"}"#).await;
    for client in [&mut alice, &mut bob] {
        let frame: Value = serde_json::from_str(&next_text(client).await).expect("json");
        assert_eq!(frame["data"], "via sqs");
    }
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_stale_record_in_dynamodb_is_pruned_by_the_worker() {
    let gateway = start().await;
    let (mut alice, _) = tokio_tungstenite::connect_async(&gateway.ws_url).await.expect("connect");
    let alive = stored_ids(gateway.store.as_ref()).await;
    let stale = ConnectionId::parse("StaleStaleStale0").expect("id");
    let record = ConnectionRecord { id: stale.clone(), connected_at_ms: 0, source_ip: None, expires_at_s: 0 };
    gateway.store.put(&record).await.expect("put a record whose connection is gone");

    send_text(&mut alice, r#"{"action":"broadcast","data":1}"#).await;
    next_text(&mut alice).await;

    let deadline = tokio::time::Instant::now() + PATIENCE;
    while stored_ids(gateway.store.as_ref()).await.contains(&stale) {
        assert!(tokio::time::Instant::now() < deadline, "the stale record was never pruned");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored_ids(gateway.store.as_ref()).await, alive);
}
