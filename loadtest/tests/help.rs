//! Each load-testing tool says what it is in its `--help`, run as the README runs it.

use std::process::Command;

#[test]
fn every_tool_says_what_it_is_in_its_help() {
    for (binary, about) in [
        (env!("CARGO_BIN_EXE_loadtest"), "A WebSocket swarm"),
        (env!("CARGO_BIN_EXE_baseline"), "A plain WebSocket broadcast server"),
        (env!("CARGO_BIN_EXE_worker_cpu"), "Measures the worker handler's CPU time per delivery"),
        (env!("CARGO_BIN_EXE_init_time"), "Times a Lambda bootstrap's cold start"),
        (env!("CARGO_BIN_EXE_simulate"), "One broadcast to --connections simulated connections"),
    ] {
        let output = Command::new(binary).arg("--help").output().expect("the binary runs");
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success() && help.starts_with(about), "{binary} --help: {help}");
    }
}
