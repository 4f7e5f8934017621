#!/usr/bin/env python3
"""Renders the "Presence and lifecycle events" section of BENCHMARKS.md from scripts/bench-presence's reports.

    bench_presence_table.py target/bench-presence <commit>

and rewrites the section between its kept:presence markers in BENCHMARKS.md.
"""
import json, pathlib, sys

import kept_section
out = pathlib.Path(sys.argv[1])
commit = sys.argv[2]
r = lambda name: json.loads((out / f"{name}.json").read_text())
room = r("room-1000")
subs = {p: [r(f"subscribe-presence-{p}-{n}") for n in (1, 2)] for p in ("on", "off")}
pubs = {p: [r(f"publish-presence-{p}-{n}") for n in (1, 2)] for p in ("on", "off")}
churns = {c: r(f"churn-500-on-{c}") for c in (1, 100)}
mean = lambda runs, key, q: sum(x[key][q] for x in runs) / len(runs)
def ms(x): return f"{x:.1f} ms"
met = lambda ok: "yes" if ok else "no"
def pct(p): return f"p50 {ms(p['p50'])}, p95 {ms(p['p95'])}, p99 {ms(p['p99'])}, max {ms(p['max'])}"
def churn(x):
    return (f"{x['churn_actions']:,} subscribes, unsubscribes and closes; {x['churn_subscribed']} subscribed at the end, "
            f"`presence` counted {x['churn_presence_clients']} ({x['churn_channels_inexact']} channels inexact); "
            f"{x['events_received']:,} events: {x['occupied']} occupied, {x['vacated']} vacated, {x['edges_out_of_turn']} out of turn, "
            f"{x['changes_missing']} changes missing, {x['changes_repeated']} repeated; joins − leaves = {x['events_members']}")
def churn_ok(x):
    return (x['churn_presence_clients'] == x['churn_subscribed'] and x['churn_channels_inexact'] == 0
            and x['events_members'] == x['churn_subscribed'] and x['edges_out_of_turn'] == 0
            and x['changes_missing'] == 0 and x['changes_repeated'] == 0 and x['events_received'] > 0)
whole = room['frames_received'] == room['frames_expected']
rows = [
    ("join and leave reach the channel's other members ≤ 100 ms p95, 1,000 members (a leave by closing the socket included)",
     f"join {pct(room['join_ms'])}; leave {pct(room['leave_ms'])}; {room['frames_received']:,} of {room['frames_expected']:,} frames received",
     f"leave by unsubscribe {pct(room['leave_by_unsubscribe_ms'])}; by closing the socket {pct(room['leave_by_close_ms'])}",
     met(whole and room['join_ms']['p95'] <= 100 and room['leave_ms']['p95'] <= 100 and room['leave_by_close_ms']['samples'] > 0)),
    ("`presence` of a channel of 1,000 members ≤ 50 ms p95",
     f"{pct(room['presence_ms'])} over {room['presence_ms']['samples']} reads; {room['presence_inexact']} not exact",
     f"answers of {room['presence_bytes']:,} bytes (1,000 members without `info`)",
     met(room['presence_ms']['p95'] <= 50 and room['presence_inexact'] == 0 and room['presence_ms']['samples'] > 0)),
    ("subscribing with presence adds ≤ 2 ms p99 to a subscribe (1,000 subscribes to one channel, on against off)",
     "on: " + "; ".join(f"p50 {ms(x['subscribe_ms']['p50'])}, p99 {ms(x['subscribe_ms']['p99'])}" for x in subs['on'])
     + f" — mean p99 {ms(mean(subs['on'], 'subscribe_ms', 'p99'))}",
     "off: " + "; ".join(f"p50 {ms(x['subscribe_ms']['p50'])}, p99 {ms(x['subscribe_ms']['p99'])}" for x in subs['off'])
     + f" — mean p99 {ms(mean(subs['off'], 'subscribe_ms', 'p99'))}",
     met(mean(subs['on'], 'subscribe_ms', 'p99') - mean(subs['off'], 'subscribe_ms', 'p99') <= 2)),
    ("publishing is as fast as before: a publish to 1,000 of 10,000 with presence on within 10 % of off",
     "on: " + "; ".join(f"p50 {ms(x['latency_ms']['p50'])}, p99 {ms(x['latency_ms']['p99'])}, {x['received']:,} of {x['expected']:,}" for x in pubs['on'])
     + f" — mean p50 {ms(mean(pubs['on'], 'latency_ms', 'p50'))}, p99 {ms(mean(pubs['on'], 'latency_ms', 'p99'))}",
     "off: " + "; ".join(f"p50 {ms(x['latency_ms']['p50'])}, p99 {ms(x['latency_ms']['p99'])}, {x['received']:,} of {x['expected']:,}" for x in pubs['off'])
     + f" — mean p50 {ms(mean(pubs['off'], 'latency_ms', 'p50'))}, p99 {ms(mean(pubs['off'], 'latency_ms', 'p99'))}",
     met(mean(pubs['on'], 'latency_ms', 'p50') <= 1.1 * mean(pubs['off'], 'latency_ms', 'p50')
         and mean(pubs['on'], 'latency_ms', 'p99') <= 1.1 * mean(pubs['off'], 'latency_ms', 'p99'))),
    ("500 connections joining and leaving one channel at random for 60 s: occupied/vacated alternate, final counts exact, `presence` equals the connections subscribed",
     churn(churns[1]),
     "the same 500 over 100 channels (5 each, filling and emptying all the time): " + churn(churns[100]),
     met(churn_ok(churns[1]) and churn_ok(churns[100]))),
]
lines = [
    "## Presence and lifecycle events",
    "",
    "Regenerate with `scripts/bench-presence` (it rewrites this section; `scripts/bench` keeps it). Measured",
    f"at commit `{commit}`, loopback, the swarm and the gateway sharing the machine's cores, the worker at",
    "its AWS pacing. The presence swarm (`loadtest --scenario presence`) times each `join` and `leave` frame",
    "at every member from the probe's request (or its close), reads `presence` one request after another,",
    "and in the churn receives the gateway's lifecycle events itself (`local --events-url`) and holds them",
    "against the answers its connections got. On and off are `local` with and without `--no-presence`,",
    "alternating; the publish runs are pipeline mode (`--post-rate 1000000`), as in *History and recovery*.",
    "",
]
lines += kept_section.goals_table(rows)
lines += [
    "",
    "On AWS, computed from the items `shared/src/presence/dynamodb.rs` writes and the requests it makes",
    "(`cargo test -p shared what_a_membership_costs` holds these figures against the adapter's items):",
    "a subscribe to a channel costs 2 write units more (the member's `UpdateItem` and the count's; 3 with",
    "an `info` of a full 1 KB), an unsubscribe or a disconnect 2 per channel; `presence` of 1,000 members",
    "one eventually consistent `Query` of 19 read units (items of about 150 bytes; 145 with 1 KB of `info`",
    "each), $2.38 per million reads.",
]
kept_section.write("presence", lines)
