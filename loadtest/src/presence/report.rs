//! What a presence run measured, counted from the frames, answers and events that arrived.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::report::Percentiles;

/// A presence run's figures: `frames_received` must equal `frames_expected`, `presence_inexact`,
/// `edges_out_of_turn`, `changes_missing` and `changes_repeated` must be 0, and the churn's counts
/// must agree.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PresenceReport {
    pub url: String,
    pub members: u64,
    /// Members that joined the room and watch it.
    pub joined: u64,
    /// A member's first subscribe (its join), round trip.
    pub subscribe_ms: Percentiles,
    pub probes: u64,
    /// Join and leave frames the members should have had from the probes, and had.
    pub frames_expected: u64,
    pub frames_received: u64,
    /// From a probe's subscribe to each member's `join` frame.
    pub join_ms: Percentiles,
    /// From a probe's leaving to each member's `leave` frame: all, by `unsubscribe`, by a closed socket.
    pub leave_ms: Percentiles,
    pub leave_by_unsubscribe_ms: Percentiles,
    pub leave_by_close_ms: Percentiles,
    /// `presence` of the room, round trip; its largest answer; answers whose counts were not exact.
    pub presence_ms: Percentiles,
    pub presence_bytes: u64,
    pub presence_inexact: u64,
    pub churn_actions: u64,
    /// The channels the churn is spread over; those whose `presence` count or events disagreed
    /// with the connections subscribed at the end.
    pub churn_channels: u64,
    pub churn_channels_inexact: u64,
    /// Churn connections subscribed at the end, as their answers said, and as `presence` counted.
    pub churn_subscribed: u64,
    pub churn_presence_clients: Option<u64>,
    /// Lifecycle events of the churn's channel received, its occupied and vacated events, those out
    /// of turn by `seq`, changes numbered but not received, or received twice, and joins less leaves.
    pub events_received: u64,
    pub occupied: u64,
    pub vacated: u64,
    pub edges_out_of_turn: u64,
    pub changes_missing: u64,
    pub changes_repeated: u64,
    pub events_members: Option<u64>,
    pub errors: BTreeMap<String, u64>,
}

impl PresenceReport {
    /// Whether everything that must hold held.
    pub fn clean(&self) -> bool {
        let churned = self.churn_actions == 0
            || (self.churn_presence_clients == Some(self.churn_subscribed)
                && self.churn_channels_inexact == 0
                && (self.events_received == 0
                    || (self.events_members == Some(self.churn_subscribed)
                        && self.edges_out_of_turn == 0
                        && self.changes_missing == 0
                        && self.changes_repeated == 0)));
        self.joined == self.members
            && self.frames_received == self.frames_expected
            && self.presence_inexact == 0
            && churned
    }
}

impl fmt::Display for PresenceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = |p: &Percentiles| {
            format!(
                "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
                p.p50, p.p95, p.p99, p.max, p.samples
            )
        };
        writeln!(f, "presence: {} members of {} joined and watch the room", self.joined, self.members)?;
        writeln!(f, "  subscribe (join):        {}", p(&self.subscribe_ms))?;
        writeln!(
            f,
            "  probes:                  {} ({} of {} frames received)",
            self.probes, self.frames_received, self.frames_expected
        )?;
        writeln!(f, "  join to every member:    {}", p(&self.join_ms))?;
        writeln!(f, "  leave to every member:   {}", p(&self.leave_ms))?;
        writeln!(f, "    by unsubscribe:        {}", p(&self.leave_by_unsubscribe_ms))?;
        writeln!(f, "    by closing the socket: {}", p(&self.leave_by_close_ms))?;
        writeln!(
            f,
            "  presence:                {} (largest answer {} bytes, {} not exact)",
            p(&self.presence_ms),
            self.presence_bytes,
            self.presence_inexact
        )?;
        if self.churn_actions > 0 {
            writeln!(
                f,
                "churn: {} actions on {} channels; {} subscribed at the end, presence counts {} ({} channels inexact)",
                self.churn_actions,
                self.churn_channels,
                self.churn_subscribed,
                self.churn_presence_clients.map_or("nothing".into(), |n| n.to_string()),
                self.churn_channels_inexact
            )?;
            writeln!(
                f,
                "  events: {} received; {} occupied, {} vacated, {} out of turn; {} changes missing, {} repeated; joins - leaves = {}",
                self.events_received,
                self.occupied,
                self.vacated,
                self.edges_out_of_turn,
                self.changes_missing,
                self.changes_repeated,
                self.events_members.map_or("negative".into(), |n| n.to_string())
            )?;
        }
        if !self.errors.is_empty() {
            writeln!(f, "  errors: {:?}", self.errors)?;
        }
        write!(f, "{}", if self.clean() { "clean" } else { "NOT CLEAN" })
    }
}
