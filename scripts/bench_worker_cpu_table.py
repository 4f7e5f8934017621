#!/usr/bin/env python3
"""Renders the "Worker CPU" section of BENCHMARKS.md from scripts/bench-worker-cpu's reports.

    bench_worker_cpu_table.py target/bench-worker-cpu <commit> <base commit>
"""
import json, pathlib, sys

import kept_section
out, commit, base = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
r = lambda name: json.loads((out / f"{name}.json").read_text())
mean = lambda runs: sum(x["cpu_per_delivery_us"] for x in runs) / len(runs)
new10k = [r(f"new-10000-{n}") for n in (1, 2)]
new1500 = [r(f"new-1500-{n}") for n in (1, 2)]
base1500 = [r(f"base-1500-{n}") for n in (1, 2)]
base_defaults = r("base-defaults")
us = lambda runs: ", ".join(f"{x['cpu_per_delivery_us']:.1f} µs ({int(x['deliveries']):,} deliveries)" for x in runs)
lines = [
    "## Worker CPU",
    "",
    "Regenerate with `scripts/bench-worker-cpu` (it rewrites this section; `scripts/bench` keeps it).",
    f"Measured at commit `{commit}` beside commit `{base}` (before `worker_cpu` counted real posts), in the",
    "same run, on this 2-core machine. `worker_cpu` runs the worker handler in its own process on tokio's",
    "current-thread runtime, as the bootstrap does, fanning batches of 10 broadcasts of 128 bytes out",
    "through the real SDK poster to a stub `@connections` in another process; a broadcast larger than a",
    "shard goes out as shard jobs, run batch after batch until the queue is empty. Deliveries are the",
    "posts the stub answered 200: fewer than connections × broadcasts fails the run (a test shows it).",
    "",
    "| run | CPU per delivery | beside it, same run |",
    "|---|---|---|",
    f"| 10,000 connections (sharded: the default case, the real path) | mean **{mean(new10k):.1f} µs**: {us(new10k)} | "
    f"the base commit's default run said {base_defaults['cpu_per_delivery_us']:.1f} µs for {int(base_defaults['deliveries']):,} \"deliveries\" "
    "— its shard jobs were never posted |",
    f"| 1,500 connections (below one shard) | mean {mean(new1500):.1f} µs: {us(new1500)} | base commit, same size: "
    f"mean {mean(base1500):.1f} µs: {us(base1500)} |",
    "",
    f"Goal ≤ 25 µs: {'met' if mean(new10k) <= 25 else 'not met'} ({mean(new10k):.1f} µs). "
    "`simulate` charges this figure per delivery (`--cpu-us-per-delivery`, default in its help).",
]
perf = out / "perf-top.txt"
if perf.exists() and perf.read_text().strip():
    lines += ["", "Where the worker's process spends it (`perf record -g`, 10,000 connections; self time by shared object and symbol):", "", "```"]
    lines += [line.rstrip()[:150] for line in perf.read_text().splitlines()[:20]]
    lines += ["```"]
kept_section.write("worker-cpu", lines)
