//! The run as a picture: latency over the run, and its distribution, in one SVG file.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use crate::report::Report;

/// Points drawn at most in the scatter; more only thicken the ink.
const MAX_POINTS: usize = 20_000;
/// Bars in the distribution.
const BUCKETS: u32 = 60;

/// Writes an SVG of `samples` — (milliseconds since the first publish, latency in microseconds) — with
/// the report's headline figures as its title.
pub fn write_svg(path: &Path, report: &Report, samples: &[(u64, u64)]) -> anyhow::Result<()> {
    let plot = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot(&e))?;
    let title = format!(
        "{} to {} connections: {} received, {} lost, {} duplicated, p99 {:.1} ms",
        report.scenario,
        report.connected,
        report.tally.received,
        report.tally.lost,
        report.tally.duplicated,
        report.latency_ms.p99
    );
    let root = root.titled(&title, ("sans-serif", 18)).map_err(|e| plot(&e))?;
    let (over_time, distribution) = root.split_vertically(380);

    let latency_ms = |us: u64| us as f64 / 1e3;
    let max_x = samples.iter().map(|(at, _)| *at).max().unwrap_or(1).max(1) as f64;
    let max_y = samples.iter().map(|(_, us)| latency_ms(*us)).fold(1.0, f64::max) * 1.05;
    let mut chart = ChartBuilder::on(&over_time)
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .caption("latency over the run", ("sans-serif", 15))
        .build_cartesian_2d(0.0..max_x, 0.0..max_y)
        .map_err(|e| plot(&e))?;
    chart
        .configure_mesh()
        .x_desc("ms since the first publish")
        .y_desc("latency, ms")
        .draw()
        .map_err(|e| plot(&e))?;
    let step = samples.len().div_ceil(MAX_POINTS).max(1);
    chart
        .draw_series(
            samples
                .iter()
                .step_by(step)
                .map(|(at, us)| Circle::new((*at as f64, latency_ms(*us)), 1, BLUE.filled())),
        )
        .map_err(|e| plot(&e))?;

    let width = max_y / f64::from(BUCKETS);
    let mut counts = vec![0u64; BUCKETS as usize];
    for (_, us) in samples {
        let bucket = ((latency_ms(*us) / width) as usize).min(counts.len() - 1);
        counts[bucket] += 1;
    }
    let tallest = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut chart = ChartBuilder::on(&distribution)
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .caption("latency distribution", ("sans-serif", 15))
        .build_cartesian_2d(0.0..max_y, 0..tallest + tallest / 10 + 1)
        .map_err(|e| plot(&e))?;
    chart.configure_mesh().x_desc("latency, ms").y_desc("deliveries").draw().map_err(|e| plot(&e))?;
    chart
        .draw_series(counts.iter().enumerate().map(|(n, count)| {
            let left = n as f64 * width;
            Rectangle::new([(left, 0), (left + width * 0.9, *count)], BLUE.mix(0.6).filled())
        }))
        .map_err(|e| plot(&e))?;
    root.present().map_err(|e| plot(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_is_an_svg_with_both_panels() {
        let path = std::env::temp_dir().join(format!("chart-{}.svg", uuid::Uuid::new_v4()));
        let samples: Vec<(u64, u64)> = (0..5_000).map(|n| (n / 5, 1_000 + (n * 37) % 20_000)).collect();
        write_svg(&path, &Report { scenario: "broadcast".into(), ..Report::default() }, &samples)
            .expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("written");
        std::fs::remove_file(&path).ok();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("latency over the run") && svg.contains("latency distribution"));
        assert!(svg.matches("<circle").count() > 1_000);
    }
}
