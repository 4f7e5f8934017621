//! The gateway counts each client's messages as the deployed ingress does: a client sending as fast
//! as its socket allows is answered `rate_limited`, and a client beside it is not.

mod support;

use local::Settings;
use serde_json::json;
use shared::quota::QuotaSettings;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_past_its_quota_is_rate_limited_and_the_client_beside_it_is_not() {
    let gateway = TestGateway::start(Settings {
        quotas: QuotaSettings::new(10, 0),
        stage_throttle: None,
        ..Settings::default()
    })
    .await;
    let mut flooder = gateway.connect().await;
    let mut neighbour = gateway.connect().await;
    let (mut queued, mut limited) = (0, 0);
    for n in 0..100 {
        let answer = request(&mut flooder, json!({"action":"publish","channel":"room/1","data":n})).await;
        match answer["type"].as_str() {
            Some("published") => queued += 1,
            _ => {
                assert_eq!(answer["error"]["code"], "rate_limited", "{answer}");
                assert!(answer["error"]["retryAfterMs"].as_u64().is_some_and(|ms| ms >= 1));
                limited += 1;
            }
        }
    }
    assert!((20..=30).contains(&queued), "a burst of 20 and what refilled meanwhile: {queued}");
    assert_eq!(queued + limited, 100);
    let answer = request(&mut neighbour, json!({"action":"publish","channel":"room/1","data":"hi"})).await;
    assert_eq!(answer["type"], "published", "{answer}");
    gateway.stop().await;
}
