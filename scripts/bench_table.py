#!/usr/bin/env python3
"""Renders BENCHMARKS.md from the JSON files scripts/bench writes."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

out = Path(sys.argv[1])


def load(name):
    return json.loads((out / f"{name}.json").read_text())


def ratio(a, b):
    return f"{a / b:.1f}×" if b else "–"


cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()

print("# Benchmarks\n")
print("Regenerate with `scripts/bench` (it rewrites this file). Everything runs on one machine over")
print("loopback, the swarm and the server sharing its cores: the figures are this machine's, not AWS's.")
print(f"Measured at commit `{commit}` on {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}.\n")
print("- **local gateway**: the full pipeline — the ingress handler on every message, the in-process queue")
print("  and event source mapping, the worker scanning the store once per batch and making one")
print("  `@connections` HTTP call per delivery through `aws-sdk-apigatewaymanagement`.")
print("- **baseline**: `loadtest/src/baseline.rs`, a plain tokio WebSocket broadcast server that fans out")
print("  in-process: the floor this machine allows.\n")

print("## Broadcast fan-out\n")
print("One publisher, 5 broadcasts one second apart, 128-byte messages. Time to last delivery is from the")
print("publish to the last connection's receipt, per broadcast (p99 of the per-delivery latencies ≈ the")
print("slowest delivery of a broadcast).\n")
print("| connections | server | lost | duplicated | latency p50 | p99 | max | vs baseline (p99) |")
print("|---:|---|---:|---:|---:|---:|---:|---:|")
for n in (1000, 5000, 10000):
    g, b = load(f"broadcast-{n}-gateway"), load(f"broadcast-{n}-baseline")
    for name, r in (("local gateway", g), ("baseline", b)):
        l = r["latency_ms"]
        vs = ratio(g["latency_ms"]["p99"], b["latency_ms"]["p99"]) if r is g else ""
        print(f"| {n:,} | {name} | {r['lost']} | {r['duplicated']} | {l['p50']:.1f} ms | {l['p99']:.1f} ms | {l['max']:.1f} ms | {vs} |")
print()
print("Deliveries per second while a broadcast is in flight (connections ÷ time to its last delivery):\n")
print("| connections | local gateway | baseline |")
print("|---:|---:|---:|")
for n in (1000, 5000, 10000):
    g, b = load(f"broadcast-{n}-gateway"), load(f"broadcast-{n}-baseline")
    rate = lambda r: n / (r["latency_ms"]["max"] / 1e3) if r["latency_ms"]["max"] else 0
    print(f"| {n:,} | {rate(g):,.0f} /s | {rate(b):,.0f} /s |")

print("\n## Echo round trip at 1,000 messages/s\n")
print("100 connections, each sending 50 `echo` messages, 1,000 messages/s in all, 128 bytes.\n")
print("| server | lost | RTT p50 | p90 | p99 | max |")
print("|---|---:|---:|---:|---:|---:|")
for name, key in (("local gateway", "gateway"), ("baseline", "baseline")):
    r = load(f"echo-{key}")
    l = r["latency_ms"]
    print(f"| {name} | {r['lost']} | {l['p50']:.2f} ms | {l['p90']:.2f} ms | {l['p99']:.2f} ms | {l['max']:.2f} ms |")

print("\n## Memory per connection\n")
print("Resident memory of the server process before and at the peak of 10,000 idle connections.\n")
print("| server | connected | before | peak | per connection |")
print("|---|---:|---:|---:|---:|")
for name, key in (("local gateway", "gateway"), ("baseline", "baseline")):
    m, h = load(f"memory-{key}"), load(f"hold-{key}")
    per = (m["peak_kb"] - m["before_kb"]) * 1024 / max(h["connected"], 1)
    print(f"| {name} | {h['connected']:,} | {m['before_kb'] / 1024:.1f} MB | {m['peak_kb'] / 1024:.1f} MB | {per / 1024:.1f} KB |")

print("\n## Profiling notes\n")
print("`perf record` on the gateway during a 10,000-connection broadcast showed glibc's malloc and free at")
print("about a quarter of its CPU: every delivery is an SDK call that allocates freely (SigV4 signing,")
print("the orchestrator's interceptors). With mimalloc as the gateway's allocator the 10,000-connection")
print("broadcast went from 1.6–1.9 s to 0.83–0.89 s to the last delivery. tungstenite's default 128 KB")
print("read buffer per connection had made 10,000 idle connections cost 1.3 GB; 4 KB buffers bring that")
print("to the figures above.")

print("\n## Lambda bootstraps\n")
bootstraps = sorted(Path(".aws-sam/build").glob("*/bootstrap"))
if bootstraps:
    print("From the last `sam build` (arm64, cargo-lambda's release settings):\n")
    print("| function | size |")
    print("|---|---:|")
    for b in bootstraps:
        print(f"| {b.parent.name} | {b.stat().st_size / 1e6:.1f} MB |")
else:
    print("Run `sam build` (or `scripts/test`, which runs it) first to list the bootstrap sizes here.")

print("\n## Against the goals\n")
g10 = load("broadcast-10000-gateway")
b10 = load("broadcast-10000-baseline")
echo = load("echo-gateway")
print("| goal | measured | met |")
print("|---|---|---|")
print(f"| broadcast to 10,000 through the full pipeline in ≤ 1 s | {g10['latency_ms']['max'] / 1e3:.2f} s to the last delivery "
      f"({ratio(g10['latency_ms']['max'], b10['latency_ms']['max'])} the baseline's {b10['latency_ms']['max'] / 1e3:.2f} s) "
      f"| {'yes' if g10['latency_ms']['max'] <= 1000 else 'no'} |")
print(f"| echo p99 ≤ 5 ms at 1,000 msg/s | {echo['latency_ms']['p99']:.2f} ms | {'yes' if echo['latency_ms']['p99'] <= 5 else 'no'} |")
sizes = [b.stat().st_size / 1e6 for b in bootstraps]
if sizes:
    print(f"| bootstraps ≤ 8 MB | {', '.join(f'{s:.1f} MB' for s in sizes)} | {'yes' if max(sizes) <= 8 else 'no'} |")
print("| worker CPU per delivery ≤ 25 µs | not measured yet | – |")
print("| Lambda init ≤ 10 ms | not measured yet | – |")
