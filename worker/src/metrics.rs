//! What the worker did, as operators read it: one CloudWatch Embedded Metric Format line per batch
//! (plain JSON on stdout, which Lambda's log agent turns into metrics without an API call or its
//! latency), and running totals of the same figures for the local gateway's `/_local/stats`.

use std::sync::Mutex;

use serde_json::{Map, Value, json};
use shared::metrics::MetricGroup;
pub use shared::metrics::NAMESPACE;

use crate::latency::LatencySample;
use crate::report::BatchReport;

/// The figures of a batch, each with its CloudWatch unit.
fn figures(report: &BatchReport) -> [(&'static str, &'static str, u64); 9] {
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    [
        ("Messages", "Count", count(report.messages)),
        ("Deliveries", "Count", count(report.delivered)),
        ("Pruned", "Count", count(report.pruned)),
        ("Retried", "Count", count(report.retried)),
        ("Requeued", "Count", count(report.requeued)),
        ("Abandoned", "Count", count(report.abandoned)),
        ("Rejected", "Count", count(report.rejected)),
        ("Redelivered", "Count", count(report.failed.len())),
        ("ShardsQueued", "Count", count(report.shards_queued)),
    ]
}

/// The batch as one EMF line, dimensioned by `function` (the Lambda function's name).
pub fn emf_line(report: &BatchReport, function: &str, timestamp_ms: i64) -> String {
    let mut metrics: Vec<(&str, &str, Value)> =
        figures(report).into_iter().map(|(name, unit, value)| (name, unit, json!(value))).collect();
    if !report.post_latency.samples_us.is_empty() {
        metrics.push(("PostLatency", "Microseconds", json!(report.post_latency.samples_us)));
    }
    shared::metrics::emf_line(&[MetricGroup { dimensions: &[("Function", function)], metrics }], timestamp_ms)
}

/// Every batch's figures added up, as the local gateway shows them.
#[derive(Debug, Default)]
pub struct Totals {
    inner: Mutex<(u64, [u64; 9], LatencySample)>,
}

impl Totals {
    pub fn add(&self, report: &BatchReport) {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.0 += 1;
        for (total, (_, _, value)) in inner.1.iter_mut().zip(figures(report)) {
            *total += value;
        }
        // The batch's sample joins the running one, which thins itself out the same way.
        for &latency in &report.post_latency.samples_us {
            inner.2.record(latency);
        }
        inner.2.max_us = inner.2.max_us.max(report.post_latency.max_us);
    }

    /// `{"batches": …, "Deliveries": …, …, "post_latency_us": {"p50": …, "p99": …, "max": …}}`.
    pub fn to_json(&self) -> Value {
        let inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut totals = Map::new();
        totals.insert("batches".to_owned(), json!(inner.0));
        for ((name, _, _), total) in figures(&BatchReport::default()).iter().zip(inner.1) {
            totals.insert((*name).to_owned(), json!(total));
        }
        let mut sorted = inner.2.samples_us.clone();
        sorted.sort_unstable();
        let at = |q: f64| sorted.get(((sorted.len() as f64 - 1.0) * q).round() as usize).copied();
        totals.insert(
            "post_latency_us".to_owned(),
            json!({ "p50": at(0.5), "p99": at(0.99), "max": (inner.2.max_us > 0).then_some(inner.2.max_us) }),
        );
        Value::Object(totals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_one_emf_line_naming_each_figure_with_its_unit() {
        let mut report = BatchReport {
            messages: 2,
            delivered: 1_000,
            pruned: 3,
            failed: vec!["m".into()],
            ..Default::default()
        };
        report.post_latency.record(1_500);
        report.post_latency.record(40_000);

        let line: Value =
            serde_json::from_str(&emf_line(&report, "ws-worker", 1_764_167_186_000)).expect("json");

        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(line["_aws"]["Timestamp"], 1_764_167_186_000_i64);
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(line["Function"], "ws-worker");
        // Every metric the directive names is a member of the line, as EMF requires.
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .map(|m| m["Name"].as_str().expect("name"))
            .collect();
        assert!(names.iter().all(|name| line.get(*name).is_some()), "{line}");
        assert_eq!(
            (line["Deliveries"].as_u64(), line["Pruned"].as_u64(), line["Redelivered"].as_u64()),
            (Some(1_000), Some(3), Some(1))
        );
        assert_eq!(line["PostLatency"], json!([1_500, 40_000]));
        assert!(
            directive["Metrics"]
                .as_array()
                .expect("metrics")
                .contains(&json!({"Name": "PostLatency", "Unit": "Microseconds"}))
        );
        assert!(names.len() <= 100);
    }

    #[test]
    fn totals_add_up_every_batch() {
        let totals = Totals::default();
        let mut report = BatchReport { delivered: 10, requeued: 2, ..Default::default() };
        report.post_latency.record(2_000);
        totals.add(&report);
        totals.add(&BatchReport { delivered: 5, ..Default::default() });
        let json = totals.to_json();
        assert_eq!(
            (json["batches"].as_u64(), json["Deliveries"].as_u64(), json["Requeued"].as_u64()),
            (Some(2), Some(15), Some(2))
        );
        assert_eq!(json["post_latency_us"]["max"], 2_000);
    }
}
