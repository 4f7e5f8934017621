//! The scenario's run: subscribers first, then the publishers, then the reckoning.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::bail;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;

use super::context::{Ctx, channel_of};
use super::report::{self, RecoveryReport};
use super::settings::RecoverySwarmSettings;
use super::{publisher, subscriber};
use crate::swarm::socket;

/// Runs the scenario until every subscriber has caught up with what was published (or `settle`
/// after the last publish, or the deadline), and accounts for what each saw.
pub async fn run(settings: RecoverySwarmSettings) -> anyhow::Result<RecoveryReport> {
    if settings.subscribers == 0 || settings.publishers == 0 {
        bail!("the recovery scenario needs at least one subscriber and one publisher");
    }
    let target = socket::resolve(&settings.url).await?;
    let credentials = aws_credential_types::Credentials::new(
        &settings.credentials.0,
        &settings.credentials.1,
        None,
        None,
        "recovery-swarm",
    );
    let poster = shared::poster::ApiGatewayPoster::for_local_endpoint(
        &settings.endpoint,
        &settings.region,
        credentials,
    );
    let ctx = Arc::new(Ctx {
        target,
        started: Instant::now(),
        stop: CancellationToken::new(),
        calm: AtomicBool::new(false),
        poster,
        settings: settings.clone(),
    });
    let deadline = ctx.started + settings.deadline;
    let positions: Arc<Vec<AtomicU64>> =
        Arc::new((0..settings.subscribers).map(|_| AtomicU64::new(0)).collect());
    let ready = Arc::new(AtomicU64::new(0));
    let subscribers: Vec<_> = (0..settings.subscribers)
        .map(|index| {
            tokio::spawn(subscriber::subscriber(ctx.clone(), index, positions.clone(), ready.clone()))
        })
        .collect();
    // Publishing starts once every subscriber has its first position, so that what it is owed is known.
    while ready.load(Ordering::Relaxed) < u64::from(settings.subscribers) && Instant::now() < deadline {
        sleep(Duration::from_millis(20)).await;
    }
    let published = publisher::publish(&ctx, deadline).await;
    ctx.calm.store(true, Ordering::Relaxed);
    let last = published.latest_by_channel();
    let until = (Instant::now() + settings.settle).min(deadline);
    let caught_up = || {
        (0..settings.subscribers).all(|i| {
            let channel = channel_of(i, settings.channels);
            positions[i as usize].load(Ordering::Relaxed) >= last.get(&channel).copied().unwrap_or(0)
        })
    };
    while !caught_up() && Instant::now() < until {
        sleep(Duration::from_millis(20)).await;
    }
    ctx.stop.cancel();
    let mut records = Vec::with_capacity(subscribers.len());
    for task in subscribers {
        records.push(task.await?);
    }
    Ok(report::tally(&settings, &published, records))
}
