//! What a recovery run's apps saw, held against what was published: every subscriber is owed every
//! message of its channel after the position it first subscribed at. Counted from the deliveries
//! that happened, never from the ones planned.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::publisher::Published;
use super::settings::RecoverySwarmSettings;
use super::subscriber::Record;
use crate::report::Percentiles;

/// A recovery run's figures: `lost`, `duplicated`, `reordered` and `mismatched` must be 0; `gaps`
/// are what the apps were told they could not have (and reloaded for).
#[derive(Clone, Debug, Default, Serialize)]
pub struct RecoveryReport {
    pub url: String,
    pub subscribers: u64,
    pub channels: u64,
    pub publishers: u64,
    /// Publishes acknowledged with an offset.
    pub published: u64,
    /// Publishes refused or unanswered, by kind.
    pub refused: BTreeMap<String, u64>,
    /// Messages the subscribers were owed, all together.
    pub owed: u64,
    /// Deliveries to the apps.
    pub delivered: u64,
    pub cuts_by_client: u64,
    pub cuts_by_server: u64,
    /// Resubscriptions answered `recovered: true`, and `recovered: false`.
    pub recovered: u64,
    pub unrecovered: u64,
    /// Gap events, and the owed messages they covered.
    pub gaps: u64,
    pub in_gaps: u64,
    /// Owed messages the app neither got nor was told of.
    pub lost: u64,
    /// Deliveries of an offset the app already had.
    pub duplicated: u64,
    /// Deliveries of an offset lower than the one before.
    pub reordered: u64,
    /// Deliveries whose id is not the one published at that offset.
    pub mismatched: u64,
    /// Frames dropped by the client as repeats before the app saw them.
    pub repeats_dropped: u64,
    /// From a socket reopening to the app holding every missed message (recoveries that missed some).
    pub recovery_ms: Percentiles,
    /// Messages recovered per recovery, on average.
    pub recovered_messages_mean: f64,
    /// Publish to delivery of live messages.
    pub latency_ms: Percentiles,
    /// Subscribe round trips: a first subscribe, and a resubscription with `since` that missed nothing.
    pub subscribe_ms: Percentiles,
    pub resubscribe_ms: Percentiles,
    pub errors: BTreeMap<String, u64>,
}

fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
    // Bounded as the swarm's are: an auto-resizing histogram clamps a saturating record instead.
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    for value in values {
        histogram.saturating_record(value);
    }
    histogram
}

/// Holds every subscriber's deliveries against what was published.
pub(crate) fn tally(
    settings: &RecoverySwarmSettings,
    published: &Published,
    records: Vec<Record>,
) -> RecoveryReport {
    let mut report = RecoveryReport {
        url: settings.url.clone(),
        subscribers: u64::from(settings.subscribers),
        channels: u64::from(settings.channels),
        publishers: u64::from(settings.publishers),
        published: published.count(),
        refused: published.refused.clone(),
        ..RecoveryReport::default()
    };
    let mut recoveries = Vec::new();
    let (mut latencies, mut subscribes, mut resubscribes) = (Vec::new(), Vec::new(), Vec::new());
    for record in records {
        let owed: Vec<(&u64, &String)> = match (record.start, published.by_channel.get(&record.channel)) {
            (Some(start), Some(messages)) => messages.range(start + 1..).collect(),
            _ => Vec::new(),
        };
        let truth = published.by_channel.get(&record.channel);
        let mut had = HashSet::new();
        let mut last = None;
        for (offset, id) in &record.delivered {
            if !had.insert(*offset) {
                report.duplicated += 1;
            }
            if last.is_some_and(|last| *offset < last) {
                report.reordered += 1;
            }
            last = Some(*offset);
            if truth.and_then(|t| t.get(offset)).is_some_and(|published| published != id) {
                report.mismatched += 1;
            }
        }
        let in_gap = |offset: u64| record.gaps.iter().any(|&(from, to)| (from..=to).contains(&offset));
        for (offset, _) in &owed {
            if had.contains(offset) {
                continue;
            }
            if in_gap(**offset) {
                report.in_gaps += 1;
            } else {
                report.lost += 1;
            }
        }
        report.owed += owed.len() as u64;
        report.delivered += record.delivered.len() as u64;
        report.gaps += record.gaps.len() as u64;
        report.recovered += record.recovered;
        report.unrecovered += record.unrecovered;
        report.cuts_by_client += record.cuts_by_client;
        report.cuts_by_server += record.cuts_by_server;
        report.repeats_dropped += record.repeats;
        recoveries.extend(record.recoveries);
        latencies.extend(record.latencies_us);
        subscribes.extend(record.subscribe_us);
        resubscribes.extend(record.resubscribe_us);
        for error in record.errors {
            *report.errors.entry(error).or_default() += 1;
        }
    }
    report.recovery_ms = Percentiles::of(&histogram(recoveries.iter().map(|(us, _)| *us)));
    if !recoveries.is_empty() {
        report.recovered_messages_mean =
            recoveries.iter().map(|(_, n)| *n as f64).sum::<f64>() / recoveries.len() as f64;
    }
    report.latency_ms = Percentiles::of(&histogram(latencies));
    report.subscribe_ms = Percentiles::of(&histogram(subscribes));
    report.resubscribe_ms = Percentiles::of(&histogram(resubscribes));
    report
}

impl RecoveryReport {
    /// Whether the apps saw anything but what was published, in order, once — or a gap they were told of.
    pub fn clean(&self) -> bool {
        // Nothing owed proves nothing: a gateway with history off answers no offsets to hold against.
        self.owed > 0 && self.lost == 0 && self.duplicated == 0 && self.reordered == 0 && self.mismatched == 0
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |p: &Percentiles| {
            format!(
                "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
                p.p50, p.p95, p.p99, p.max, p.samples
            )
        };
        writeln!(f, "recovery scenario against {}", self.url)?;
        writeln!(
            f,
            "  {} subscribers on {} channels, {} publishers: {} published ({} refused)",
            self.subscribers,
            self.channels,
            self.publishers,
            self.published,
            self.refused.values().sum::<u64>()
        )?;
        writeln!(
            f,
            "  cuts: {} by the client, {} by the server (DELETE @connections)",
            self.cuts_by_client, self.cuts_by_server
        )?;
        writeln!(f, "  resubscriptions: {} recovered, {} not", self.recovered, self.unrecovered)?;
        writeln!(f, "  owed {} deliveries, delivered {}", self.owed, self.delivered)?;
        writeln!(
            f,
            "  lost {}, duplicated {}, reordered {}, mismatched {}; gaps {} ({} messages the apps were told of)",
            self.lost, self.duplicated, self.reordered, self.mismatched, self.gaps, self.in_gaps
        )?;
        writeln!(f, "  repeats dropped by the client: {}", self.repeats_dropped)?;
        writeln!(
            f,
            "  recovery (socket open to every missed message held, {:.1} messages on average): {}",
            self.recovered_messages_mean,
            ms(&self.recovery_ms)
        )?;
        writeln!(f, "  publish to delivery: {}", ms(&self.latency_ms))?;
        writeln!(f, "  subscribe: {}", ms(&self.subscribe_ms))?;
        writeln!(f, "  resubscribe from a position that missed nothing: {}", ms(&self.resubscribe_ms))?;
        if !self.errors.is_empty() {
            writeln!(f, "  errors: {:?}", self.errors)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn swarm() -> RecoverySwarmSettings {
        RecoverySwarmSettings {
            url: "ws://x".into(),
            subscribers: 1,
            channels: 1,
            publishers: 1,
            messages: 5,
            rate: 1.0,
            size: 0,
            cut_every: None,
            away: (Duration::ZERO, Duration::ZERO),
            server_cuts: 0.0,
            order_wait: Duration::from_secs(1),
            endpoint: "http://x".into(),
            region: "us-east-1".into(),
            credentials: ("a".into(), "b".into()),
            settle: Duration::ZERO,
            deadline: Duration::ZERO,
        }
    }

    #[test]
    fn a_missing_a_repeated_an_early_and_a_wrong_delivery_are_each_counted() {
        let mut published = Published::default();
        let messages = (1..=6).map(|n| (n, format!("id{n}"))).collect();
        published.by_channel.insert("c".into(), messages);
        let delivered = [(2, "id2"), (4, "id4"), (3, "id3"), (4, "id4"), (5, "other")];
        let record = Record {
            channel: "c".into(),
            start: Some(1),
            delivered: delivered.iter().map(|(n, id)| (*n, (*id).to_owned())).collect(),
            gaps: vec![(6, 6)],
            ..Record::default()
        };
        let report = tally(&swarm(), &published, vec![record]);
        assert_eq!(report.owed, 5, "2 to 6: what came after its start");
        assert_eq!((report.lost, report.in_gaps), (0, 1), "6 was in a gap the app was told of");
        assert_eq!((report.duplicated, report.reordered, report.mismatched), (1, 1, 1), "{report}");
        assert!(!report.clean());

        let silent = Record {
            channel: "c".into(),
            start: Some(4),
            delivered: vec![(5, "id5".into())],
            ..Record::default()
        };
        let report = tally(&swarm(), &published, vec![silent]);
        assert_eq!(report.lost, 1, "6 neither came nor was a gap");
        assert!(!tally(&swarm(), &Published::default(), Vec::new()).clean(), "nothing owed proves nothing");
    }
}
