//! The scenario's run: its phases in order.

use super::report::PresenceReport;
use super::settings::PresenceSwarmSettings;
use super::{churn, members};
use crate::swarm::socket;

/// Runs the phases and accounts for what they saw.
pub async fn run(settings: PresenceSwarmSettings) -> anyhow::Result<PresenceReport> {
    let target = socket::resolve(&settings.url).await?;
    let mut report = PresenceReport {
        url: settings.url.clone(),
        members: u64::from(settings.members),
        ..PresenceReport::default()
    };
    members::run(&settings, &target, &mut report).await?;
    if settings.churn_connections > 0 {
        churn::run(&settings, &target, &mut report).await?;
    }
    Ok(report)
}
