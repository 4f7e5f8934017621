//! One simulated broadcast, start to finish: the connections stored, the broadcast queued, the
//! mapping invoking the worker until the queue is idle (or the simulated time runs out), and the
//! report.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use local::esm::{EsmSettings, Mapping};
use local::integration::Api;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::value::RawValue;
use shared::queue::MemoryQueue;
use shared::stack::StackPorts;
use shared::store::MemoryStore;
use shared::sync::lock;
use shared::testing::ObservedStore;
use shared::{ConnectionRecord, ConnectionStore, Envelope, Job, Queue};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use worker::{Ports, Worker};

use super::endpoint::{SimPoster, id};
use super::observed::{CountingQueue, TimedFunction};
use super::report::{self, Cost, EchoedSettings, SimReport, Usage};
use super::settings::SimSettings;

/// Runs one broadcast to `settings.connections` and reports it. Call it on a runtime whose clock is
/// paused (`tokio::time::pause`), or it takes the broadcast's real time.
pub async fn run(settings: SimSettings) -> anyhow::Result<SimReport> {
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let gone: Vec<bool> =
        (0..settings.connections).map(|_| rng.random_bool(settings.gone.clamp(0.0, 1.0))).collect();
    let live = gone.iter().filter(|gone| !**gone).count();

    let store = MemoryStore::with_page_size(settings.page_size.max(1));
    let connected_at_ms = shared::clock::epoch_ms() - 3_600_000;
    for i in 0..settings.connections {
        let record =
            ConnectionRecord { id: id(i), connected_at_ms, source_ip: None, expires_at_s: i64::MAX / 2 };
        store.put(&record).await?;
    }
    let store = Arc::new(ObservedStore::new(store));
    let poster = Arc::new(SimPoster::new(&settings, gone));
    let memory_queue = Arc::new(MemoryQueue::new(settings.queue));
    let queue = Arc::new(CountingQueue::new(memory_queue.clone()));
    let ports = Ports::new(StackPorts::new(store.clone(), queue.clone()), poster.clone());
    let api = Api { api_id: "sim".into(), stage: "sim".into(), region: "us-east-1".into() };
    // One worker function per queue, each with its mapping, as the template deploys them.
    let mut lanes = Vec::new();
    match settings.lanes {
        None => lanes.push((memory_queue.clone(), settings.worker.clone(), settings.esm, ports)),
        Some(split) => {
            let bulk_queue = Arc::new(MemoryQueue::new(settings.queue));
            let ports = ports.with_bulk_queue(Arc::new(CountingQueue::sharing(&queue, bulk_queue.clone())));
            let [interactive, bulk] = settings.worker.lanes(split);
            let bulk_esm = EsmSettings { max_concurrency: split.bulk_concurrency as usize, ..settings.esm };
            lanes.push((memory_queue.clone(), interactive, settings.esm, ports.clone()));
            lanes.push((bulk_queue, bulk, bulk_esm, ports));
        }
    }
    let functions: Vec<Arc<TimedFunction>> = lanes
        .iter()
        .map(|(_, worker, _, ports)| Arc::new(TimedFunction::new(Worker::new(ports.clone(), worker.clone()))))
        .collect();

    let data = RawValue::from_string(format!("\"{}\"", "x".repeat(settings.message_bytes)))?;
    let envelope = Envelope::broadcast(id(0), shared::clock::epoch_ms(), data)?;
    let began = Instant::now();
    queue.send(&Job::broadcast(envelope)).await?;
    let direct = (settings.direct_rate > 0.0).then(|| {
        let (messages, queue) = (poster.direct.clone(), queue.clone() as Arc<dyn Queue>);
        let (rate, duration) = (settings.direct_rate, settings.direct_for);
        tokio::spawn(async move { messages.publish(queue, rate, duration).await })
    });

    let shutdown = CancellationToken::new();
    let polling: Vec<_> = lanes
        .iter()
        .zip(&functions)
        .enumerate()
        .map(|(lane, ((source, _, esm, _), function))| {
            let mapping = Mapping {
                queue: source.clone(),
                queue_name: format!("simulated-lane-{lane}"),
                api: api.clone(),
                function: function.clone(),
                settings: *esm,
            };
            tokio::spawn(mapping.run(shutdown.clone()))
        })
        .collect();
    let finished = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let idle = lanes.iter().all(|(source, ..)| {
            let stats = source.stats();
            stats.visible + stats.in_flight + stats.delayed == 0
        }) && functions.iter().all(|function| function.running.load(Ordering::Relaxed) == 0)
            && direct.as_ref().is_none_or(|publishing| publishing.is_finished());
        if idle {
            break true;
        }
        if began.elapsed() >= settings.limit {
            break false;
        }
    };
    shutdown.cancel();
    for polling in polling {
        polling.await?;
    }

    let counts: Vec<u32> = poster.received.iter().map(|n| n.load(Ordering::Relaxed)).collect();
    let delivered = counts.iter().filter(|n| **n > 0).count();
    let duplicated: u64 = counts.iter().map(|n| u64::from(n.saturating_sub(1))).sum();
    let last = *lock(&poster.last_delivery);
    let invocations: u64 = functions.iter().map(|function| function.started.load(Ordering::Relaxed)).sum();
    let finished_invocations: u64 =
        functions.iter().map(|function| function.finished.load(Ordering::Relaxed)).sum();
    let (busy_s, longest) = functions.iter().fold((0.0, 0.0_f64), |(busy, longest), function| {
        let (b, l) = *lock(&function.durations);
        (busy + b, longest.max(l))
    });
    let pages = store.pages();
    let read_units = report::read_units(&pages);
    let gone_answers = poster.gone_answers.load(Ordering::Relaxed);
    let cost = Cost::of(Usage {
        delivered,
        message_bytes: settings.message_bytes,
        busy_s,
        memory_mb: settings.memory_mb,
        invocations,
        sqs_requests: queue.counts.requests.load(Ordering::Relaxed) + 2 * invocations,
        read_units,
        pruned: gone_answers,
    });
    let calls = poster.calls.load(Ordering::Relaxed);
    let floor_s = (live as f64 - settings.account_burst).max(0.0) / settings.account_rate.max(1.0);
    let invocations_at_once =
        settings.lanes.map_or(settings.esm.max_concurrency, |lanes| lanes.bulk_concurrency as usize).max(1)
            as f64;
    let mean_latency = (settings.latency.0 + settings.latency.1).as_secs_f64() / 2.0;
    let model = settings.cpu();
    let floors = report::Floors {
        account_s: floor_s,
        cpu_s: model
            .map_or(0.0, |m| calls as f64 * m.wall_per_delivery().as_secs_f64() / invocations_at_once),
        concurrency_s: calls as f64 * mean_latency
            / (invocations_at_once * settings.worker.post_concurrency.max(1) as f64),
    };
    Ok(SimReport {
        floors,
        held_back_by: floors.tightest(),
        cpu_time_s: model.map_or(0.0, |m| calls as f64 * m.per_delivery.as_secs_f64()),
        cpu_share: model.map_or(1.0, |m| m.share),
        connections: settings.connections,
        live,
        delivered,
        duplicated,
        lost: live - delivered,
        time_to_last_delivery_s: last.map_or(0.0, |last| last.duration_since(began).as_secs_f64()),
        floor_s,
        invocations,
        timed_out: invocations - finished_invocations,
        longest_invocation_s: longest,
        shard_jobs: queue.counts.shard_jobs.load(Ordering::Relaxed),
        retry_jobs: queue.counts.retry_jobs.load(Ordering::Relaxed),
        dead_letters: lanes.iter().map(|(source, ..)| source.stats().dead).sum(),
        lanes: settings.lanes.is_some(),
        direct: direct.is_some().then(|| poster.direct.report()),
        calls,
        throttled_by_account: poster.throttled_by_account.load(Ordering::Relaxed),
        throttled_injected: poster.throttled_injected.load(Ordering::Relaxed),
        gone_answers,
        scan_pages: pages.len() as u64,
        read_units,
        cost_usd: cost.total(),
        cost,
        finished,
        settings: EchoedSettings {
            post_concurrency: settings.worker.post_concurrency,
            post_rate: settings.worker.post_rate,
            shard_size: settings.worker.shard_size,
            max_concurrency: settings.esm.max_concurrency,
            batch_size: settings.esm.batch_size,
            function_timeout_s: settings.esm.function_timeout.as_secs_f64(),
            latency_ms: (settings.latency.0.as_millis(), settings.latency.1.as_millis()),
            capacity: settings.capacity,
            throttle: settings.throttle,
            gone: settings.gone,
            memory_mb: settings.memory_mb,
            cpu_per_delivery_us: settings.cpu_per_delivery.map(|d| d.as_secs_f64() * 1e6),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use worker::WorkerSettings;

    fn small(connections: usize) -> SimSettings {
        SimSettings { connections, ..SimSettings::default() }
    }

    #[tokio::test(start_paused = true)]
    async fn a_sharded_broadcast_reaches_every_live_connection_once() {
        let report = run(small(20_000)).await.expect("simulated");
        assert!(report.finished);
        assert_eq!((report.delivered, report.lost, report.duplicated), (20_000, 0, 0));
        assert!(report.shard_jobs >= 9, "{} shard jobs", report.shard_jobs);
        assert!(report.invocations >= 2);
        assert!(report.time_to_last_delivery_s >= report.floor_s, "{report:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_small_broadcast_is_not_split() {
        let report = run(small(500)).await.expect("simulated");
        assert_eq!((report.delivered, report.lost, report.duplicated), (500, 0, 0));
        assert_eq!((report.shard_jobs, report.invocations), (0, 1));
        assert_eq!(report.scan_pages, 2, "the sample and the rest");
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_and_gone_connections_lose_nothing_and_double_nothing() {
        let report =
            run(SimSettings { throttle: 0.05, gone: 0.02, ..small(20_000) }).await.expect("simulated");
        assert!(report.finished);
        assert_eq!((report.lost, report.duplicated, report.dead_letters), (0, 0, 0), "{report:?}");
        assert!(report.throttled_injected > 0 && report.gone_answers > 0);
        assert!(report.live < 20_000);
    }

    #[tokio::test(start_paused = true)]
    async fn an_endpoint_of_limited_capacity_serves_no_faster_than_it() {
        let unlimited = run(small(4_000)).await.expect("simulated");
        let limited = run(SimSettings { capacity: Some(1_000.0), ..small(4_000) }).await.expect("simulated");
        assert_eq!((limited.delivered, limited.lost, limited.duplicated), (4_000, 0, 0));
        assert!(limited.time_to_last_delivery_s >= 4.0, "{limited:?}");
        assert!(unlimited.time_to_last_delivery_s < 2.0, "{unlimited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn without_shards_one_invocation_posts_everything() {
        let settings = SimSettings {
            worker: WorkerSettings { shard_size: 0, ..WorkerSettings::default() },
            ..small(5_000)
        };
        let report = run(settings).await.expect("simulated");
        assert_eq!((report.delivered, report.lost, report.duplicated), (5_000, 0, 0));
        assert_eq!((report.shard_jobs, report.invocations), (0, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_with_little_memory_is_held_back_by_its_cpu_and_one_with_a_core_by_the_account() {
        let per_delivery = Some(Duration::from_micros(100));
        let little = run(SimSettings { memory_mb: 128, cpu_per_delivery: per_delivery, ..small(20_000) })
            .await
            .expect("simulated");
        assert_eq!((little.delivered, little.lost, little.duplicated), (20_000, 0, 0));
        assert_eq!(little.held_back_by, "cpu", "{little:?}");
        assert!(little.time_to_last_delivery_s >= little.floors.cpu_s * 0.9, "{little:?}");
        assert!((little.cpu_time_s - little.calls as f64 * 100e-6).abs() < 1e-6, "{little:?}");
        let full = run(SimSettings { memory_mb: 1_769, cpu_per_delivery: per_delivery, ..small(20_000) })
            .await
            .expect("simulated");
        assert_eq!(full.held_back_by, "account", "{full:?}");
        assert!(full.time_to_last_delivery_s < little.time_to_last_delivery_s / 2.0, "{full:?} {little:?}");
        let uncharged =
            run(SimSettings { cpu_per_delivery: None, ..small(20_000) }).await.expect("simulated");
        assert_eq!((uncharged.cpu_time_s, uncharged.floors.cpu_s), (0.0, 0.0));
    }
}
