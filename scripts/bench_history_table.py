#!/usr/bin/env python3
"""Renders the "History and recovery" section of BENCHMARKS.md from scripts/bench-history's reports.

    bench_history_table.py target/bench-history <commit>

and rewrites the section between its kept:history markers in BENCHMARKS.md.
"""
import json, pathlib, sys

import kept_section
out = pathlib.Path(sys.argv[1])
commit = sys.argv[2]
r = lambda name: json.loads((out / f"{name}.json").read_text())
ons = [r(f"publish-1000-of-10000-history-100-{n}") for n in (1, 2)]
offs = [r(f"publish-1000-of-10000-history-0-{n}") for n in (1, 2)]
mean = lambda runs, q: sum(x['latency_ms'][q] for x in runs) / len(runs)
chaos, o100, o10, rec = r("chaos"), r("order-500-to-100"), r("order-500-to-10"), r("recovery-away-30s")
def ms(x): return f"{x:.1f} ms"
met = lambda ok: "yes" if ok else "no"
def app(x):
    return (f"{x['lost']} lost, {x['duplicated']} duplicated, {x['reordered']} reordered, {x['mismatched']} mismatched, "
            f"{x['gaps']} gaps ({x['in_gaps']:,} messages told of)")
def clean(x): return x['owed'] > 0 and x['lost'] == x['duplicated'] == x['reordered'] == x['mismatched'] == 0
rows = [
    ("recovery: away 30 s while about 100 messages of 1 KB were published; socket open to all of them held in order: p95 ≤ 300 ms (20 runs), 0 gaps, duplicates, out of order",
     f"p50 {ms(rec['recovery_ms']['p50'])}, p95 {ms(rec['recovery_ms']['p95'])}, max {ms(rec['recovery_ms']['max'])} over {rec['recovery_ms']['samples']} recoveries of {rec['recovered_messages_mean']:.0f} messages on average; {app(rec)}",
     f"{rec['cuts_by_client']} cuts by the client, {rec['cuts_by_server']} by `DELETE @connections`",
     met(rec['recovery_ms']['p95'] <= 300 and rec['recovery_ms']['samples'] >= 20 and clean(rec) and rec['gaps'] == 0)),
    ("chaos: 200 subscribers on 20 channels, 100 publishes/s for 120 s, every socket cut every 5–20 s: 0 lost, duplicated, reordered, gaps",
     f"{chaos['published']:,} published, {chaos['delivered']:,} of {chaos['owed']:,} owed deliveries; {app(chaos)}; {chaos['recovered']:,} recoveries",
     f"{chaos['cuts_by_client']:,} cuts by the client, {chaos['cuts_by_server']:,} by the server",
     met(clean(chaos) and chaos['gaps'] == 0)),
    ("one channel, 500 publishes/s for 30 s to 100 subscribers: offsets strictly consecutive; publish → delivery p99 ≤ 50 ms",
     f"{o100['delivered']:,} of {o100['owed']:,} delivered; {app(o100)}; p50 {ms(o100['latency_ms']['p50'])}, p99 {ms(o100['latency_ms']['p99'])}",
     f"to 10 subscribers: {o10['delivered']:,} of {o10['owed']:,}; {app(o10)}; p50 {ms(o10['latency_ms']['p50'])}, p99 {ms(o10['latency_ms']['p99'])}",
     met(clean(o100) and o100['gaps'] == 0 and o100['latency_ms']['p99'] <= 50)),
    ("history costs nothing visible: a publish to 1,000 of 10,000 with history on within 10 % of off",
     "on: " + "; ".join(f"p50 {ms(x['latency_ms']['p50'])}, p99 {ms(x['latency_ms']['p99'])}, {x['received']:,} of {x['expected']:,} delivered" for x in ons)
     + f" — mean p50 {ms(mean(ons, 'p50'))}, p99 {ms(mean(ons, 'p99'))}",
     "off: " + "; ".join(f"p50 {ms(x['latency_ms']['p50'])}, p99 {ms(x['latency_ms']['p99'])}, {x['received']:,} of {x['expected']:,}" for x in offs)
     + f" — mean p50 {ms(mean(offs, 'p50'))}, p99 {ms(mean(offs, 'p99'))}",
     met(mean(ons, 'p50') <= 1.1 * mean(offs, 'p50') and mean(ons, 'p99') <= 1.1 * mean(offs, 'p99'))),
    ("a subscribe with `since` that missed nothing adds ≤ 2 ms p99",
     f"resubscribe p50 {ms(chaos['resubscribe_ms']['p50'])}, p99 {ms(chaos['resubscribe_ms']['p99'])} ({chaos['resubscribe_ms']['samples']} in the chaos run)",
     f"first subscribe p50 {ms(chaos['subscribe_ms']['p50'])}, p99 {ms(chaos['subscribe_ms']['p99'])}",
     met(chaos['resubscribe_ms']['samples'] > 0 and chaos['resubscribe_ms']['p99'] - chaos['subscribe_ms']['p99'] <= 2)),
]
lines = [
    "## History and recovery",
    "",
    f"Regenerate with `scripts/bench-history` (it rewrites this section; `scripts/bench` keeps it). Measured at",
    f"commit `{commit}`, loopback, the swarm and the gateway sharing the machine's cores. The recovery",
    "swarm (`loadtest --scenario recovery`) counts what an app on the browser client would see: each",
    "subscriber follows its channel as `client/websocket-client.js` does, and its deliveries are held",
    "against the offsets the publishers' acknowledgements gave. Pipeline mode is",
    "`local --post-rate 1000000 --no-throttle`; the other runs keep the worker's AWS pacing.",
    "",
]
lines += kept_section.goals_table(rows)
lines += [
    "",
    "500 publishes a second to 100 subscribers are 50,000 `@connections` calls a second: five times API",
    "Gateway's account limit (10,000/s), which a deployed stack paces to, and more than this machine's",
    "pipeline serves with the swarm on the same cores (each call signed, sent and verified over loopback",
    f"HTTP). Deliveries fall seconds behind (p50 {ms(o100['latency_ms']['p50'])}); a subscriber whose next message",
    "is more than the history's 100 messages (0.2 s at that rate) and a second's wait behind is told of a",
    f"gap ({o100['gaps']:,} gaps) rather than held, and drops what comes late ({o100['repeats_dropped']:,} repeats). Nothing is lost",
    "without the app knowing, and nothing is delivered twice or out of order. At a rate the machine serves",
    "(the same 500 publishes a second to 10 subscribers) every subscriber's offsets are consecutive, with",
    f"a p99 of {ms(o10['latency_ms']['p99'])}.",
]
lines += [
    "",
    "On AWS, computed from the items `shared/src/history/dynamodb.rs` writes and the requests it makes",
    "(`cargo test -p shared what_a_message_costs` holds these figures against the adapter's own items):",
    "",
    "| goal | computed | met |",
    "|---|---|---|",
    "| ≤ 3 write units per published message of ≤ 1 KB | 1 (`UpdateItem` of the stream's state) + 2 (`PutItem` of a 1,282-byte item for 1 KB of data) = 3; 2 for up to about 750 bytes of data; a backend's publish 4 and 1 read unit (its id claimed once) | yes |",
    "| a recovery of 100 messages of 1 KB ≤ 13 read units | 13 for 100 items of 1 KB (one eventually consistent `Query`: 100 KB ÷ 4 KB ÷ 2), 16 for 100 messages of 1 KB of data (1.3 KB items); and 1 write unit (the stream's state) | for 1 KB items; 16 for 1 KB of data |",
    "| the most one channel takes | one partition key at DynamoDB's 1,000 write units a second: about 330 messages of 1 KB a second (3 units each), 500 of up to 750 bytes; past it DynamoDB throttles, a client's publish is answered `unavailable` with nothing queued or numbered twice, a backend's is redelivered by SQS; other channels are not affected | documented (`docs/protocol.md`, *History, offsets and recovery*) |",
]
kept_section.write("history", lines)
