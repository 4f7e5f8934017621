"""BENCHMARKS.md's *Lanes* section from scripts/bench-lanes' reports: bench_lanes_table.py OUT COMMIT CONNECTIONS."""
import json, pathlib, sys
sys.path.insert(0, "scripts")
from kept_section import goals_table, write
out, commit, connections = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
load = lambda name: json.loads((out / f"{name}.json").read_text())
idle, lanes, one = load("idle"), load("lanes"), load("one-queue")
swarm_lanes, swarm_one = load("swarm-lanes"), load("swarm-one-queue")
sim, sim_one = load("sim-lanes"), load("sim-one-queue")
def ms(value):
    return f"{value / 1000:,.1f} s" if value >= 1000 else f"{value:.1f} ms"
def dm(r):
    return f"p50 {ms(r['p50_ms'])}, **p99 {ms(r['p99_ms'])}**, max {ms(r['max_ms'])}; {r['delivered']} of {r['published']} delivered"
def swarm(r):
    return f"{r['received']:,} of {r['expected']:,} broadcast deliveries, {r['lost']} lost"
def simd(r):
    d = r["direct"]
    return (f"direct p50 {ms(d['p50_s']*1000)}, **p99 {ms(d['p99_s']*1000)}** ({d['delivered']:,} of {d['published']:,}); "
            f"broadcast {r['time_to_last_delivery_s']:.1f} s, {100*(r['time_to_last_delivery_s']/r['floor_s']-1):.1f} % over its {r['floor_s']:.1f} s floor")
rows = [
    ("`simulate`: 1,000,000 broadcast, direct messages at 50/s: p99 ≤ 1 s", simd(sim), "one queue: " + simd(sim_one),
     "yes" if sim["direct"]["p99_s"] <= 1 else "no"),
    ("… and the broadcast within 5 % of the account's floor", f"{100*(sim['time_to_last_delivery_s']/sim['floor_s']-1):.1f} %", "",
     "yes" if sim["time_to_last_delivery_s"] <= 1.05 * sim["floor_s"] else "no"),
    (f"locally, beside broadcasts to {connections:,}: 1-to-1 p99 ≤ 2× idle", dm(lanes) + "; " + swarm(swarm_lanes),
     "idle: " + dm(idle) + "; one queue: " + dm(one) + "; " + swarm(swarm_one),
     "yes" if lanes["p99_ms"] <= 2 * idle["p99_ms"] else "no"),
]
write("lanes", [
    "## Lanes: interactive traffic first",
    "",
    f"`scripts/bench-lanes` at `{commit}` on this machine (2 cores): one-to-one messages (`bench_lanes`, a channel of",
    f"one, 50 a second) on an idle gateway and beside a swarm broadcasting to {connections:,} connections once a second",
    "with AWS's pacing, with the lanes and with `--one-queue`; and `simulate --connections 1000000 --direct-rate 50`,",
    "both ways. The local swarm, the gateway and its functions share the machine's two cores.",
    "",
    *goals_table(rows),
    "",
    "The local goal is not met, and the lanes are not what misses it: with one queue the direct messages",
    "waited behind the shard jobs (the p99 beside the swarm above); with the lanes they pass them, and what",
    "is left is, most likely, one machine's two cores posting 10,000 deliveries a second to a swarm of",
    "10,000 on the same cores. Fewer of the bulk lane's calls in flight ahead of each direct message's",
    "help only a little: at 16 per invocation instead of 64 (`local --post-concurrency 16`, the same swarm",
    "and `bench_lanes`, one run) the p99 was 12.7 ms. On AWS the far side of `@connections` is API Gateway's fleet, which `simulate`",
    "models: there the direct messages' p99 is 31 ms against the goal's 1 s.",
])
