//! The recovery scenario: subscribers that do what the browser client does — deliver each channel in
//! offset order, fill a missing offset from history, resubscribe from their last position after a
//! drop — while their sockets are cut at random (a client-side drop, or `DELETE @connections` from
//! the server side) and publishers keep publishing. The report counts, per subscriber and channel,
//! what the app would see: recovered, gaps, lost, duplicated, reordered.
//!
//! [`follower`] is the client's ordering and recovery; [`subscriber`] one subscriber's life of
//! connections and cuts; [`publisher`] the traffic, whose acknowledgements (each message's offset
//! and id) are the truth the [`report`] holds every subscriber's deliveries against.

pub mod follower;
pub mod publisher;
pub mod report;
pub mod subscriber;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::bail;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;

pub use self::report::RecoveryReport;
use crate::swarm::socket;

/// What a recovery run does.
#[derive(Clone, Debug)]
pub struct RecoveryConfig {
    pub url: String,
    /// Subscribers, each on one channel (subscriber `i` on channel `i % channels`).
    pub subscribers: u32,
    pub channels: u32,
    /// Publishing connections, each publishing in sequence (every publish answered before the next).
    pub publishers: u32,
    /// Messages per publisher, spread over the channels.
    pub messages: u64,
    /// Publishes per second, all publishers together.
    pub rate: f64,
    /// Bytes of `data` per message, at least.
    pub size: usize,
    /// How long a subscriber stays connected before its socket is cut, drawn from this range; `None`
    /// never cuts.
    pub cut_every: Option<(Duration, Duration)>,
    /// How long a cut subscriber stays away before it reconnects, drawn from this range.
    pub away: (Duration, Duration),
    /// The fraction of cuts made by the server (`DELETE @connections`); the rest drop the socket.
    pub server_cuts: f64,
    /// How long a message ahead of a missing offset waits before the history is read (the client's
    /// `orderWaitMs`).
    pub order_wait: Duration,
    /// `@connections` for the server's cuts, and the key pair it is signed with.
    pub endpoint: String,
    pub region: String,
    pub credentials: (String, String),
    /// How long to wait after the last publish for every subscriber to catch up.
    pub settle: Duration,
    pub deadline: Duration,
}

/// What the tasks share.
pub(crate) struct Ctx {
    pub config: RecoveryConfig,
    pub target: socket::Target,
    pub started: Instant,
    /// Cancelled when the run ends.
    pub stop: CancellationToken,
    /// Set when publishing is over: no more cuts, so that every subscriber can catch up.
    pub calm: AtomicBool,
    pub poster: shared::poster::ApiGatewayPoster,
}

impl Ctx {
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// The channel subscriber `index` is on.
pub fn channel_of(index: u32, channels: u32) -> String {
    format!("recovery/c{}", index % channels.max(1))
}

/// Runs the scenario until every subscriber has caught up with what was published (or `settle`
/// after the last publish, or the deadline), and accounts for what each saw.
pub async fn run(config: RecoveryConfig) -> anyhow::Result<RecoveryReport> {
    if config.subscribers == 0 || config.publishers == 0 {
        bail!("the recovery scenario needs at least one subscriber and one publisher");
    }
    let target = socket::resolve(&config.url).await?;
    let credentials = aws_credential_types::Credentials::new(
        &config.credentials.0,
        &config.credentials.1,
        None,
        None,
        "recovery-swarm",
    );
    let poster =
        shared::poster::ApiGatewayPoster::for_local_endpoint(&config.endpoint, &config.region, credentials);
    let ctx = Arc::new(Ctx {
        target,
        started: Instant::now(),
        stop: CancellationToken::new(),
        calm: AtomicBool::new(false),
        poster,
        config: config.clone(),
    });
    let deadline = ctx.started + config.deadline;
    let positions: Arc<Vec<AtomicU64>> =
        Arc::new((0..config.subscribers).map(|_| AtomicU64::new(0)).collect());
    let ready = Arc::new(AtomicU64::new(0));
    let subscribers: Vec<_> = (0..config.subscribers)
        .map(|index| {
            tokio::spawn(subscriber::subscriber(ctx.clone(), index, positions.clone(), ready.clone()))
        })
        .collect();
    // Publishing starts once every subscriber has its first position, so that what it is owed is known.
    while ready.load(Ordering::Relaxed) < u64::from(config.subscribers) && Instant::now() < deadline {
        sleep(Duration::from_millis(20)).await;
    }
    let published = publisher::publish(&ctx, deadline).await;
    ctx.calm.store(true, Ordering::Relaxed);
    let last = published.latest_by_channel();
    let until = (Instant::now() + config.settle).min(deadline);
    let caught_up = || {
        (0..config.subscribers).all(|i| {
            let channel = channel_of(i, config.channels);
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
    Ok(report::tally(&config, &published, records))
}
