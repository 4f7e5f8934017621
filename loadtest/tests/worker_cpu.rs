//! `worker_cpu` reports only deliveries that happened: the posts its stub `@connections` answered,
//! a sharded broadcast's shard jobs run to the end; and it fails rather than report a figure when
//! posts went missing.

use std::process::Command;

fn worker_cpu(args: &[&str]) -> (bool, serde_json::Value, String) {
    let json =
        std::env::temp_dir().join(format!("worker_cpu-{}-{}.json", std::process::id(), args.join("_")));
    let output = Command::new(env!("CARGO_BIN_EXE_worker_cpu"))
        .args(args)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("worker_cpu runs");
    let report = std::fs::read_to_string(&json).ok().and_then(|text| serde_json::from_str(&text).ok());
    std::fs::remove_file(&json).ok();
    (
        output.status.success(),
        report.unwrap_or_default(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_broadcast_larger_than_a_shard_is_measured_through_its_shard_jobs_post_by_post() {
    // 2,500 connections: past the worker's 2,000 a shard, so each broadcast goes out as shard jobs.
    let (ok, report, stderr) = worker_cpu(&["--connections", "2500", "--batch", "2", "--batches", "1"]);
    assert!(ok, "{stderr}");
    assert_eq!(report["owed"], 5_000, "{report}");
    assert_eq!(report["deliveries"], 5_000, "every post counted at the stub, none planned only: {report}");
    assert!(report["cpu_per_delivery_us"].as_f64().is_some_and(|us| us > 1.0), "{report}");
}

#[test]
fn posts_that_never_reached_the_stub_fail_the_run_instead_of_counting() {
    // Every 50th call answered 410: the worker prunes those connections, later broadcasts miss them.
    let (ok, report, stderr) =
        worker_cpu(&["--connections", "300", "--batch", "2", "--batches", "1", "--stub-gone-every", "50"]);
    assert!(!ok, "a run short of its deliveries must fail: {report}");
    assert!(stderr.contains("fewer than the 600 deliveries owed"), "{stderr}");
    assert!(report.is_null(), "and write no figure: {report}");
}
