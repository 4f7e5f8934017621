#!/usr/bin/env python3
"""Renders the "By worker memory" section of BENCHMARKS.md from scripts/bench-memory's reports.

    bench_memory_table.py target/bench-memory <commit>
"""
import json, pathlib, sys

import kept_section
out, commit = pathlib.Path(sys.argv[1]), sys.argv[2]
r = lambda name: json.loads((out / f"{name}.json").read_text())
sizes = (128, 256, 512, 1024, 1769)
runs = {m: (r(f"sim-memory-{m}-100000"), r(f"sim-memory-{m}-1000000")) for m in sizes}


def cell(s):
    c = s["cost"]
    done = "" if s["finished"] else " (unfinished)"
    return (f"{s['time_to_last_delivery_s']:.1f} s{done}, {s['time_to_last_delivery_s'] / s['floor_s']:.2f}× the floor, "
            f"held back by {s['held_back_by']}; **${s['cost_usd']:.4f}** = Lambda ${c['lambda']:.4f} + API Gateway "
            f"${c['api_gateway']:.4f} + SQS ${c['sqs']:.5f} + DynamoDB ${c['dynamodb']:.5f}")


within = [m for m in sizes if runs[m][1]["finished"] and runs[m][1]["time_to_last_delivery_s"] <= 1.05 * runs[m][1]["floor_s"]]
cheapest = min(within, key=lambda m: runs[m][1]["cost_usd"]) if within else None
cpu = runs[512][0]["settings"]["cpu_per_delivery_us"]
lines = [
    "## By worker memory",
    "",
    "Regenerate with `scripts/bench-memory` (`scripts/bench-fanout` runs it; it rewrites this section). At",
    f"commit `{commit}`: `simulate` with the template's defaults but `--memory-mb`. Lambda gives a function",
    "CPU in proportion to its memory (1,769 MB is one vCPU; the worker runs on one thread, so no more helps",
    f"it); each delivery costs the worker {cpu:.1f} µs of CPU at a full core (`worker_cpu`, *Worker CPU*",
    "below), taken one after another on the invocation's share of a core while the calls' network time",
    "(20–60 ms) overlaps. *Held back by* names the tightest of three limits for the calls made: the account's",
    "rate (10,000/s), the invocations' CPU, their calls in flight. Cost per broadcast of 128 bytes at us-east-1",
    "list prices (Lambda arm64 per GB-s of the invocations' duration and per request, API Gateway per",
    "message, SQS per request, DynamoDB per read unit).",
    "",
    "| `WorkerMemorySize` | share of a core | 100,000 connections | 1,000,000 connections |",
    "|---|---|---|---|",
]
for m in sizes:
    a, b = runs[m]
    lines.append(f"| {m} MB | {a['cpu_share']:.2f} | {cell(a)} | {cell(b)} |")
lines += [
    "",
    (f"The cheapest size that keeps a million within 5 % of the account's floor ({runs[512][1]['floor_s']:.1f} s) is "
     f"**{cheapest} MB**: the template's default `WorkerMemorySize` (`docs/operations.md`, *Cost*)." if cheapest else
     "No size keeps a million within 5 % of the account's floor."),
]
kept_section.write("memory", lines)
