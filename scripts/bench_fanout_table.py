#!/usr/bin/env python3
"""Renders the "Fan-out at the account's limit" section of BENCHMARKS.md from scripts/bench-fanout's reports.

    bench_fanout_table.py target/bench-fanout <commit>

and rewrites the section between its kept:fanout markers in BENCHMARKS.md.
"""
import json, pathlib, sys

import kept_section

out = pathlib.Path(sys.argv[1])
commit = sys.argv[2]


def r(name):
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


met = lambda ok: "yes" if ok else "no"


def swarm(report):
    lat = report["latency_ms"]
    return (f"max {lat['max'] / 1000:.2f} s, p99 {lat['p99'] / 1000:.2f} s; "
            f"{report['received']:,} of {report['expected']:,}, {report['lost']} lost, {report['duplicated']} duplicated")


def sim(report):
    if report is None:
        return "—"
    done = "" if report["finished"] else ", unfinished after a simulated hour"
    return (f"{report['time_to_last_delivery_s']:.1f} s, {report['invocations']} invocations, "
            f"{report['lost']:,} lost, {report['duplicated']} duplicated{done}")


rows = []
for n, goal in ((10000, 1.2), (18000, 2.2)):
    new, old = r(f"local-defaults-{n}"), r(f"local-before-{n}")
    if new and old:
        rows.append((f"local gateway, its defaults: broadcast to {n:,}, last delivery ≤ {goal} s, 0 lost, 0 duplicated",
                     swarm(new), "before: " + swarm(old),
                     met(new["latency_ms"]["max"] <= goal * 1000 and new["lost"] == 0 and new["duplicated"] == 0)))
# The goals were set beside a pipeline of 0.63 s for 10,000; scaled by this machine's own
# pipeline (the worker as it was, same run) they ask the same of the design here.
pipe_before = r("pipeline-before-10000")
for n, goal in ((10000, 1.2), (18000, 2.2)):
    new = r(f"local-defaults-{n}")
    if new and pipe_before:
        scale = pipe_before["latency_ms"]["max"] / 1000 / 0.63
        rows.append((f"… the same goal scaled to this machine: ≤ {goal} s × {scale:.2f} (its pipeline, 10,000, the worker as it was: "
                     f"{pipe_before['latency_ms']['max'] / 1000:.2f} s against the issue's 0.63 s) = {goal * scale:.1f} s",
                     swarm(new), "", met(new["latency_ms"]["max"] <= goal * scale * 1000 and new["lost"] == 0 and new["duplicated"] == 0)))
new, old = r("pipeline-defaults-10000"), r("pipeline-before-10000")
if new and old:
    rows.append(("pipeline mode (`--no-throttle --post-rate 1000000`), 10,000: not slower than before",
                 swarm(new), "before: " + swarm(old),
                 met(new["latency_ms"]["max"] <= old["latency_ms"]["max"] * 1.1)))
for n, goal in ((100000, 11), (1000000, 105)):
    s, t = r(f"sim-{n}"), r(f"sim-throttled-{n}")
    if s:
        rows.append((f"simulated {n:,}: last delivery ≤ {goal} s, no invocation past its timeout, 0 lost, 0 duplicated",
                     sim(s) + f", {s['timed_out']} timed out, longest invocation {s['longest_invocation_s']:.1f} s",
                     "before: " + sim(r(f"sim-before-{n}")),
                     met(s["time_to_last_delivery_s"] <= goal and s["timed_out"] == 0 and s["lost"] == 0 and s["duplicated"] == 0)))
    if s and t:
        rows.append((f"simulated {n:,} with 5 % of calls answered 429: within 10 % of it",
                     sim(t), f"without: {s['time_to_last_delivery_s']:.1f} s",
                     met(t["time_to_last_delivery_s"] <= s["time_to_last_delivery_s"] * 1.1 and t["lost"] == 0 and t["duplicated"] == 0)))
local10 = r("local-defaults-10000")
for name, what in (("defaults", "its defaults (the machine's CPU holds it back)"),
                   ("rate2000", "an account of 2,000 calls/s (the account's rate holds it back)")):
    measured, simulated = r(f"local-{name}-10000"), r(f"sim-local-{name}-10000" if name != "defaults" else "sim-local-10000")
    if measured and simulated:
        m, t = measured["latency_ms"]["max"] / 1000, simulated["time_to_last_delivery_s"]
        rows.append((f"`simulate` reproduces the local gateway at 10,000 within 20 %: {what}",
                     f"simulated {t:.2f} s ({simulated['invocations']} invocations, {simulated['shard_jobs']} shard jobs)",
                     f"measured {m:.2f} s", met(abs(t - m) <= 0.2 * m)))

lines = [
    "## Fan-out at the account's limit",
    "",
    "Regenerate with `scripts/bench-fanout` (it rewrites this section; `scripts/bench` keeps it). Measured at",
    f"commit `{commit}`: the swarm and the gateway share this machine's two cores, on loopback. *Before* is",
    "the worker as it was: `--shard-size 0 --post-concurrency 64 --post-rate 2000 --account-rate 2000`,",
    "each broadcast posted by one invocation at a fixed 2,000 calls/s. Times are the worst of five",
    "broadcasts from publish to the last delivery. Simulated runs are `simulate`: the real worker and event",
    "source mapping under a paused clock, `@connections` calls of 20–60 ms, the account's bucket (10,000/s,",
    "burst 5,000), the template's defaults (5 invocations, batches of 10, 30 s timeout). Set against a local",
    "run, `simulate` gets the gateway's settings (64 calls in flight, loopback calls of 0–2 ms) and its",
    "`--capacity`: the calls per second this machine served in pipeline mode in the same run, since here the",
    "gateway's CPU, shared with the swarm, is a limit AWS's fleet does not have.",
    "",
]
lines += kept_section.goals_table(rows)
lines += [
    "",
    "By size (simulated above 18,000; cost per broadcast at list prices, 128-byte message, the template's `WorkerMemorySize`):",
    "",
    "| connections | last delivery | the account's floor | invocations | shard jobs | retry jobs | read units | cost per broadcast | before: last delivery |",
    "|---|---|---|---|---|---|---|---|---|",
]
for n in (1000, 10000, 18000, 100000, 1000000):
    s, b = r(f"sim-{n}"), r(f"sim-before-{n}")
    if not s:
        continue
    local = r(f"local-defaults-{n}")
    measured = f" (measured here: {local['latency_ms']['max'] / 1000:.2f} s)" if local else ""
    before = f"{b['time_to_last_delivery_s']:.1f} s" + ("" if b["finished"] else " (unfinished)") + (f", {b['lost']:,} lost" if b["lost"] else "") if b else "—"
    lines.append(f"| {n:,} | {s['time_to_last_delivery_s']:.2f} s{measured} | {s['floor_s']:.1f} s | {s['invocations']} | "
                 f"{s['shard_jobs']} | {s['retry_jobs']} | {s['read_units']:.0f} | ${s['cost_usd']:.4f} | {before} |")
pipe, pipe_before = r("pipeline-defaults-10000"), r("pipeline-before-10000")
if local10 and pipe and pipe_before:
    lines += ["",
              f"On these two cores the local goals are out of reach of the pipeline itself: with no limit at all, a",
              f"broadcast to 10,000 takes {pipe_before['latency_ms']['max'] / 1000:.2f} s (the worker as it was) and "
              f"{pipe['latency_ms']['max'] / 1000:.2f} s (sharded) here, where the issue's",
              "0.63 s was measured on a machine about twice as fast. Each delivery is two signed HTTP requests'",
              "worth of CPU (the worker's and the gateway's) and a WebSocket frame, shared with the swarm's 10,000",
              f"sockets. With the defaults a broadcast now takes {local10['latency_ms']['max'] / pipe_before['latency_ms']['max']:.2f}× the time of the pipeline as",
              f"it was, where it took {r('local-before-10000')['latency_ms']['max'] / pipe_before['latency_ms']['max']:.2f}×: the account's",
              "rate is no longer what holds a broadcast back here, the machine is. `simulate` models the network, the",
              "account and (with `--capacity`) a server of limited speed, not the worker's CPU: the rows above check",
              "it against the gateway both where the machine holds a broadcast back and where the account's rate",
              "does, before its figures for 100,000 and 1,000,000 are trusted; on Lambda each invocation has its own CPU."]
c64 = r("sim-64-1000000")
if c64:
    lines += ["", f"With 64 calls in flight per invocation (the earlier default), a million took {c64['time_to_last_delivery_s']:.1f} s:",
              "five invocations of 64 calls at 40 ms post 8,000 a second, below the account's 10,000; hence 128."]
kept_section.write("fanout", lines)
