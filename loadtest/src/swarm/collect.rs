//! Phase 3: once the run has stopped, every connection task's result gathered into the report:
//! latencies, errors by kind, and the ledger's tally of what was expected, received, lost and
//! duplicated.

use std::collections::BTreeMap;

use anyhow::Context;
use hdrhistogram::Histogram;
use tokio::task::JoinHandle;

use super::dial::Dialled;
use super::publish::Traffic;
use super::settings::{Channels, SwarmSettings};
use crate::ledger;
use crate::report::{Percentiles, Report};

/// A whole run's outcome: the report and the samples behind its chart.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    /// (milliseconds since the first publish, latency in microseconds) per delivery.
    pub samples: Vec<(u64, u64)>,
}

/// The run's outcome, `finished_us` after it started.
pub(crate) async fn outcome(
    settings: &SwarmSettings,
    channels: Option<Channels>,
    dialled: Dialled,
    stuck: Vec<JoinHandle<bool>>,
    traffic: Traffic,
    finished_us: u64,
) -> anyhow::Result<Outcome> {
    let Traffic { published, first_publish_us } = traffic;
    let mut traces = Vec::with_capacity(dialled.tasks.len());
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let mut connect = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let mut samples = Vec::new();
    let mut last_receipt_us = first_publish_us.unwrap_or(0);
    for task in dialled.tasks {
        let result = task.await.context("a connection task panicked")?;
        if let Some(us) = result.connect_us {
            connect.saturating_record(us.max(1));
        }
        for (at, us) in &result.latencies {
            latency.saturating_record((*us).max(1));
            last_receipt_us = last_receipt_us.max(*at);
            samples.push((at.saturating_sub(first_publish_us.unwrap_or(0)) / 1000, *us));
        }
        for kind in result.errors {
            *errors.entry(kind).or_default() += 1;
        }
        traces.push(result.trace);
    }
    let mut stuck_connected = 0;
    for task in stuck {
        stuck_connected += u64::from(task.await.context("a stuck connection task panicked")?);
    }
    let members = move |index: u32, channel: u32| channels.is_some_and(|c| c.member(index, channel));
    let tally = ledger::tally(&published, &traces, &members);
    let delivery_window_s =
        first_publish_us.map(|first| last_receipt_us.saturating_sub(first) as f64 / 1e6).unwrap_or(0.0);
    let report = Report {
        url: settings.url.clone(),
        scenario: format!("{:?}", settings.scenario).to_lowercase(),
        connections: u64::from(settings.connections),
        connected: dialled.connected,
        stuck: stuck_connected,
        sent: published.len() as u64,
        tally,
        errors,
        latency_ms: Percentiles::of(&latency),
        connect_ms: Percentiles::of(&connect),
        deliveries_per_sec: if delivery_window_s > 0.0 {
            tally.received as f64 / delivery_window_s
        } else {
            0.0
        },
        time_to_last_delivery_ms: delivery_window_s * 1e3,
        duration_s: finished_us as f64 / 1e6,
    };
    Ok(Outcome { report, samples })
}
