//! The swarm's report: one screen for people, one JSON document for scripts.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::ledger::Tally;

/// Latency percentiles, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub samples: u64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1e3;
        Self {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p95: ms(histogram.value_at_quantile(0.95)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            samples: histogram.len(),
        }
    }
}

/// Everything a run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    pub url: String,
    pub scenario: String,
    pub connections: u64,
    pub connected: u64,
    /// Extra connections that never read (`--stuck`), outside every other figure.
    pub stuck: u64,
    pub sent: u64,
    /// Expected, received, lost, duplicated, unexpected, misdelivered and dropped: the ledger's
    /// figures, at the report's top level in its JSON.
    #[serde(flatten)]
    pub tally: Tally,
    /// Counts by kind: `handshake_<status>`, `close_<code>`, `connect_timeout`, `error_frame_<code>`, …
    pub errors: BTreeMap<String, u64>,
    /// Publish to receipt (broadcast) or round trip (echo).
    pub latency_ms: Percentiles,
    pub connect_ms: Percentiles,
    pub deliveries_per_sec: f64,
    /// From the first publish to the last receipt.
    pub time_to_last_delivery_ms: f64,
    pub duration_s: f64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = |name: &str, l: &Percentiles, f: &mut fmt::Formatter<'_>| {
            writeln!(
                f,
                "{name:<12} p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms  ({} samples)",
                l.p50, l.p90, l.p99, l.p999, l.max, l.samples
            )
        };
        writeln!(f, "{} scenario against {}", self.scenario, self.url)?;
        writeln!(
            f,
            "connections  {} of {} connected, {} dropped",
            self.connected, self.connections, self.tally.dropped
        )?;
        if self.stuck > 0 {
            writeln!(f, "stuck        {} more connected that never read", self.stuck)?;
        }
        writeln!(
            f,
            "deliveries   {} sent, {} expected, {} received, {} lost, {} duplicated",
            self.sent, self.tally.expected, self.tally.received, self.tally.lost, self.tally.duplicated
        )?;
        if self.scenario == "channels" {
            writeln!(
                f,
                "channels     {} misdelivered (received outside their channels)",
                self.tally.misdelivered
            )?;
        }
        writeln!(
            f,
            "throughput   {:.0} deliveries/s, last delivery {:.1} ms after the first publish",
            self.deliveries_per_sec, self.time_to_last_delivery_ms
        )?;
        p("latency", &self.latency_ms, f)?;
        p("connect", &self.connect_ms, f)?;
        if self.errors.is_empty() {
            writeln!(f, "errors       none")?;
        } else {
            let errors: Vec<String> = self.errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            writeln!(f, "errors       {}", errors.join(", "))?;
        }
        write!(f, "duration     {:.2} s", self.duration_s)
    }
}

/// Writes `value` as pretty JSON to `path`, when one was given (every tool's `--json`).
pub fn write_json(path: Option<&Path>, value: &impl Serialize) -> anyhow::Result<()> {
    if let Some(path) = path {
        std::fs::write(path, serde_json::to_string_pretty(value)?)?;
    }
    Ok(())
}
