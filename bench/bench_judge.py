"""The current judge (``rollout.policy``) against the sequential one (``rollout.judge``), side by side.

Each row runs ``--runs`` simulated rollouts per judge over the same synthetic count streams the
emulator draws (``emulator.noise``: per deployment and minute, Poisson requests, binomial
errors, a log-normal measured p99 around the true one), with common random numbers: a run's
minute ``m`` at a given traffic share has the same counts for both judges. The rollout is the
orchestrator's: steps 10/25/50/75/100 (unless the row says otherwise), 5-minute windows, a check
a minute, ``max_inconclusive_windows`` 2, driven by ``rollout.window.next_action`` (an
inconclusive window is extended by what the judge says a verdict needs, at least a window, at
most 6; the current judge says nothing, so its windows are extended by their length). The
current judge sees the window's cumulative counts (as ``observe`` used to query them); the new
one the minute's increment.

Printed per row: how often the rollout rolled back on a failed check (``fail``), rolled back for
lack of data (``inconcl.``), and for regressions how often a failed check caught it after onset
and the median / 90th percentile delay in minutes from onset to rollback (undetected runs count
as never, shown "-"). Healthy rows must have ``fail`` + ``incon.`` at most 1 - confidence (5%).
The last lines check the targets for the sequential judge: healthy rows, regressions of 2x or
more all caught, median delay at 5x and 20x no worse than the current judge's.

    python bench/bench_judge.py [--runs 2000] [--seed 1]      (2-4 minutes at 2,000 runs on 2 busy cores)
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator import noise  # noqa: E402
from rollout.judge import Increment, JudgeConfig, JudgeState, judge_increment, new_window  # noqa: E402
from rollout.model import DeploymentMetrics  # noqa: E402
from rollout.plan import RolloutRequest, parse_request  # noqa: E402
from rollout.policy import HealthSample, Verdict, judge  # noqa: E402
from rollout.window import Action, CheckResult, next_action, open_window  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
Rate = Callable[[int], float]           # minute -> true value


def constant(value: float) -> Rate:
    return lambda minute: value


def from_minute(onset: int, before: float, after: float) -> Rate:
    return lambda minute: after if minute >= onset else before


@dataclass(frozen=True)
class Row:
    """One bench row: load, true error rates and p99s over time, the request, and the onset (None: healthy)."""

    name: str
    rpm: float
    new_rate: Rate
    old_rate: Rate = constant(0.001)
    new_p99: Rate = constant(140.0)
    old_p99: Rate = constant(120.0)
    request: dict = field(default_factory=dict)
    onset: int | None = None


@dataclass
class Outcome:
    kind: str             # promoted, fail, inconclusive
    minute: int


def minute_counts(seed: int, row: str, run: int, minute: int, share: int, spec: Row) -> Increment:
    """What new and old served in one minute at ``share``% to new; the same for both judges."""
    rng = random.Random(f"{seed}:{row}:{run}:{minute}:{share}")
    new_n = noise.poisson(rng, spec.rpm * share / 100)
    old_n = noise.poisson(rng, spec.rpm * (100 - share) / 100)
    new = DeploymentMetrics(new_n, noise.binomial(rng, new_n, spec.new_rate(minute)),
                            noise.latency(rng, spec.new_p99(minute)) if new_n else None)
    old = DeploymentMetrics(old_n, noise.binomial(rng, old_n, spec.old_rate(minute)),
                            noise.latency(rng, spec.old_p99(minute)) if old_n else None)
    return Increment(new, old, 1.0)


def add(total: DeploymentMetrics, more: DeploymentMetrics) -> DeploymentMetrics:
    p99s = [p for p in (total.latency_p99_ms, more.latency_p99_ms) if p is not None]
    return DeploymentMetrics(total.requests + more.requests, total.errors + more.errors, max(p99s) if p99s else None)


def rollout(kind: str, spec: Row, request: RolloutRequest, seed: int, run: int) -> Outcome:
    """One rollout with the ``current`` or ``sequential`` judge; the window logic is ``rollout.window``."""
    steps = request.traffic_steps or (10, 25, 50, 75, 100)
    windows = [(share, request.observation_window) for share in steps]
    if request.bake_time > timedelta(0):
        windows.append((steps[-1], request.bake_time))
    config, state, minute = JudgeConfig.from_request(request), JudgeState(), 0
    for share, length in windows:
        window = open_window(T0 + timedelta(minutes=minute), length)
        state = new_window(state)
        empty = DeploymentMetrics(0, 0, None)
        new_total, old_total = empty, empty
        while True:
            increment = minute_counts(seed, spec.name, run, minute, share, spec)
            minute += 1
            needed: float | None = None
            if kind == "current":
                assert increment.old is not None
                new_total, old_total = add(new_total, increment.new), add(old_total, increment.old)
                verdict = judge(HealthSample(new_total, old_total), request).verdict
            else:
                state, judgement = judge_increment(state, increment, config)
                verdict, needed = judgement.verdict, judgement.needed_minutes
            decision = next_action(window, T0 + timedelta(minutes=minute), CheckResult(verdict, "", needed),
                                   request.max_inconclusive_windows)
            if decision.action is Action.ROLLBACK:
                return Outcome("fail" if verdict is Verdict.FAIL else "inconclusive", minute)
            if decision.action is Action.PASS:
                break
            window = decision.state
    return Outcome("promoted", minute)


ROWS = [
    # healthy: the false rollback rate must stay at or under 1 - confidence
    Row("healthy: new = old = 0.3%, tolerance 0.2 pt, 1k rpm", 1000, constant(0.003), constant(0.003),
        request={"max_error_rate_increase": 0.002}),
    Row("healthy: 0.8% vs 1% threshold, 1,000 rpm", 1000, constant(0.008)),
    Row("healthy: 0.5% vs 1%, 1,000 rpm", 1000, constant(0.005)),
    Row("healthy: 0.5% vs 1%, 200 rpm", 200, constant(0.005)),
    Row("healthy: 0.2% vs 1%, 1,000 rpm", 1000, constant(0.002)),
    Row("healthy: 0.2% vs 1%, 200 rpm", 200, constant(0.002)),
    Row("healthy, zero-inflated: 0.1%, 300 rpm", 300, constant(0.001)),
    Row("healthy, zero-inflated: 0.1%, 100 rpm", 100, constant(0.001)),
    Row("  the same with 10-minute windows", 100, constant(0.001), request={"observation_window": "PT10M"}),
    Row("healthy: p99 250 ms vs 300 ms limit", 1000, constant(0.002),
        new_p99=constant(250.0), request={"latency_p99_threshold_ms": 300}),
    # regressions: detection delay from onset
    Row("regression 1.5x (1.5%) from the start", 1000, constant(0.015), onset=0),
    Row("regression 2x (2%) from the start", 1000, constant(0.02), onset=0),
    Row("regression 5x (5%) from the start", 1000, constant(0.05), onset=0),
    Row("regression 20x (20%) from the start", 1000, constant(0.2), onset=0),
    Row("regression 5x from minute 12 (step 3)", 1000, from_minute(12, 0.002, 0.05), onset=12),
    Row("late 1.5x in a 30-min bake (last 16 min)", 1200, from_minute(29, 0.002, 0.015), onset=29,
        request={"traffic_steps": [10, 50, 100], "bake_time": "PT30M"}),
    Row("latency 140 -> 450 ms (limit 300) from minute 7", 1000, constant(0.002),
        new_p99=from_minute(7, 140.0, 450.0), onset=7, request={"latency_p99_threshold_ms": 300}),
]


def median_delay(spec: Row, outcomes: list[Outcome]) -> float:
    """Minutes from onset to a failed check, median over runs (inf: not caught in half of them)."""
    assert spec.onset is not None
    onset = spec.onset
    delays = sorted(o.minute - onset if o.kind == "fail" and o.minute > onset else math.inf for o in outcomes)
    return delays[min(len(delays) - 1, len(delays) // 2)]


def caught(spec: Row, outcomes: list[Outcome]) -> float:
    assert spec.onset is not None
    return sum(o.kind == "fail" and o.minute > (spec.onset or 0) for o in outcomes) / len(outcomes)


def targets(results: list[tuple[Row, list[Outcome], list[Outcome]]], confidence: float = 0.95) -> list[str]:
    """One line per target of issue 11, for the sequential judge: figures and met / NOT MET."""
    healthy = [(spec, sum(o.kind != "promoted" for o in seq) / len(seq)) for spec, _, seq in results
               if spec.onset is None]
    worst = max(healthy, key=lambda item: item[1])
    big = [(spec, caught(spec, seq), sum(o.kind == "promoted" for o in seq), len(seq)) for spec, _, seq in results
           if spec.onset is not None and any(f" {x}x" in spec.name for x in (2, 5, 20))]
    lowest = min(big, key=lambda item: item[1])
    fast = [(spec, median_delay(spec, cur), median_delay(spec, seq)) for spec, cur, seq in results
            if spec.onset is not None and any(f" {x}x" in spec.name for x in (5, 20))]

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT MET"
    return [
        f"target: healthy rows rolled back (failed or inconclusive) <= {1 - confidence:.0%}: worst {worst[1]:.1%} "
        f"({worst[0].name.strip()}): {verdict(worst[1] <= 1 - confidence)}",
        f"target: regressions of 2x or more never promoted: {sum(p for _, _, p, _ in big)} promoted; caught by a failed "
        f"check after onset in {round(lowest[1] * lowest[3])}/{lowest[3]} runs at least ({lowest[0].name.strip()}; "
        f"the others were rolled back before the onset): {verdict(all(p == 0 for _, _, p, _ in big))}",
        "target: median delay at 5x and 20x no worse than the current judge's: "
        + ", ".join(f"{c:g} vs {s:g} min" for _, c, s in fast) + f": {verdict(all(s <= c for _, c, s in fast))}",
    ]


def summarize(spec: Row, outcomes: list[Outcome]) -> tuple[str, str, str, str]:
    runs = len(outcomes)
    fail = sum(o.kind == "fail" for o in outcomes) / runs
    inconclusive = sum(o.kind == "inconclusive" for o in outcomes) / runs
    if spec.onset is None:
        return f"{fail:6.1%}", f"{inconclusive:6.1%}", "", ""
    onset = spec.onset
    delays = sorted(o.minute - onset if o.kind == "fail" and o.minute > onset else math.inf for o in outcomes)
    caught = sum(d != math.inf for d in delays) / runs

    def at(q: float) -> str:
        value = delays[min(runs - 1, int(q * runs))]
        return "-" if value == math.inf else f"{value:g}"
    return f"{fail:6.1%}", f"{inconclusive:6.1%}", f"{caught:6.1%}", f"{at(0.5):>3}/{at(0.9):>3}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    began = time.perf_counter()
    header = f"{'row':50} | {'fail':>6} {'incon.':>6} {'caught':>6} {'p50/p90':>7} | " \
             f"{'fail':>6} {'incon.':>6} {'caught':>6} {'p50/p90':>7}"
    print(f"{args.runs} rollouts per row and judge, seed {args.seed}; confidence 0.95, error_threshold 1%, "
          f"min_requests 100; delays in minutes from onset")
    print(f"{'':50} | {'current judge (rollout.policy)':^30} | {'sequential judge (rollout.judge)':^30}")
    print(header)
    print("-" * len(header))
    results = []
    for spec in ROWS:
        request = parse_request({"endpoint_name": "bench-ep", "new_deployment": "green", **spec.request})
        cells, both = [], []
        for kind in ("current", "sequential"):
            outcomes = [rollout(kind, spec, request, args.seed, run) for run in range(args.runs)]
            both.append(outcomes)
            cells.append(" ".join(f"{c:>6}" if i < 3 else f"{c:>7}" for i, c in enumerate(summarize(spec, outcomes))))
        results.append((spec, both[0], both[1]))
        print(f"{spec.name:50} | {cells[0]} | {cells[1]}", flush=True)
    print("\n".join(targets(results)))
    print(f"({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
