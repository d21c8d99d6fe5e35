"""How orchestrator replay cost grows with history length, through the emulator's task hub.

An orchestrator runs ``steps`` x ``checks`` pairs of (activity, one-minute timer) - the shape of
a rollout: every check is an activity, every wait a timer - on a virtual clock. Each pair adds
8 history events, and every episode replays the whole history, so one episode costs O(events)
and a whole run O(events^2), as on the real host.

Printed per history length: episodes run, wall time of the whole run, the part spent inside the
orchestrator (the SDK's replay), the task hub's own time per episode (the rest: the host's replay
of the actions, recording, scheduling), the mean and the last episode's replay, a median of fresh
replays of the final history, and ratios to the previous row. Not a test: figures for the notes.
Most of a replay is the SDK parsing every event's ``Timestamp`` with ``dateutil``.

    python bench/bench_replay.py [--repeat 3] [--max-pairs 100]   (--max-pairs 200: ~1,600 events, ~40 s)

This is the cost of one execution's history growing. The rollout orchestrator bounds it: it
continues as new at step boundaries and every ``CHECKS_PER_EXECUTION`` checks; the last lines run
``bench_long`` to print its per-wake replay cost at check 10 and at check 1,000 and its growth
exponent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import azure.durable_functions as df  # noqa: E402

from emulator.clock import VirtualClock  # noqa: E402
from emulator.taskhub import TaskHub  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import bench_long  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)
SHAPES = [(1, 1), (2, 3), (3, 4), (5, 5), (5, 10), (10, 10), (10, 20)]
"""(steps, checks per step): 1 to 200 activity/timer pairs, about 12 to 1,600 history events."""

app = df.DFApp()


@app.activity_trigger(input_name="check")
def health_check(check: dict) -> dict:
    return {"step": check["step"], "check": check["check"], "verdict": "pass"}


@app.orchestration_trigger(context_name="context")
def stepper(context: df.DurableOrchestrationContext):
    shape = context.get_input()
    verdicts = 0
    for step in range(shape["steps"]):
        for check in range(shape["checks"]):
            result = yield context.call_activity("health_check", {"step": step, "check": check})
            verdicts += result["verdict"] == "pass"
            yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
    return verdicts


class TimedOrchestrator:
    """Wraps the registered orchestrator callable; records (history length, seconds) per call."""

    def __init__(self, function: Callable[[str], str]) -> None:
        self.function = function
        self.calls: list[tuple[int, float]] = []

    def __call__(self, context_json: str) -> str:
        began = time.perf_counter()
        try:
            return self.function(context_json)
        finally:
            self.calls.append((len(json.loads(context_json)["history"]), time.perf_counter() - began))


def run_once(steps: int, checks: int) -> dict:
    """One run of ``stepper``: its episodes' replay times, the whole run's time, the final history."""
    hub = TaskHub(app, VirtualClock(START))
    timed = TimedOrchestrator(hub.registry.orchestrators["stepper"])
    hub.registry.orchestrators["stepper"] = timed
    began = time.perf_counter()
    hub.start("stepper", "bench", {"steps": steps, "checks": checks})
    hub.run(until=lambda: hub.get_status("bench")["runtimeStatus"] == "Completed")
    total = time.perf_counter() - began
    status = hub.get_status("bench")
    assert status["output"] == steps * checks, status
    return {"total": total, "calls": timed.calls, "history": hub.history("bench"), "function": timed.function}


def replay_final(function: Callable[[str], str], history: list[dict], shape: dict, repeat: int) -> float:
    """Median seconds to replay the final history from scratch (every event played)."""
    context = json.dumps({"history": [{**e, "IsPlayed": True} for e in history], "input": shape, "instanceId": "bench",
                          "isReplaying": True, "parentInstanceId": None, "upperSchemaVersion": 1,
                          "upperSchemaVersionNew": 2})
    timings = []
    for _ in range(repeat):
        began = time.perf_counter()
        function(context)
        timings.append(time.perf_counter() - began)
    return statistics.median(timings)


def measure(steps: int, checks: int, repeat: int) -> dict:
    """Median figures over ``repeat`` runs of one shape."""
    runs = [run_once(steps, checks) for _ in range(repeat)]
    calls = runs[0]["calls"]
    return {
        "pairs": steps * checks,
        "events": len(runs[0]["history"]),
        "episodes": len(calls),
        "total_ms": statistics.median(r["total"] for r in runs) * 1000,
        "replay_ms": statistics.median(sum(s for _, s in r["calls"]) for r in runs) * 1000,
        "mean_episode_us": statistics.median(statistics.mean(s for _, s in r["calls"]) for r in runs) * 1e6,
        "last_episode_us": statistics.median(r["calls"][-1][1] for r in runs) * 1e6,
        "fresh_replay_us": replay_final(runs[0]["function"], runs[0]["history"], {"steps": steps, "checks": checks},
                                        max(repeat, 5)) * 1e6,
    }


def ratio(now: float, before: float | None) -> str:
    return "-" if not before else f"x{now / before:.1f}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per shape; medians are printed (default 3)")
    parser.add_argument("--max-pairs", type=int, default=100, help="largest shape to run, in pairs (default 100)")
    args = parser.parse_args(argv)
    print(f"{'pairs':>5} {'events':>6} {'episodes':>8} {'run ms':>8} {'in SDK ms':>9} {'hub us/ep':>9} "
          f"{'mean ep us':>10} {'last ep us':>10} {'fresh us':>9}   {'events':>6} {'run':>6} {'fresh':>6}")
    previous: dict | None = None
    for steps, checks in [shape for shape in SHAPES if shape[0] * shape[1] <= args.max_pairs]:
        row = measure(steps, checks, args.repeat)
        hub_us = (row["total_ms"] - row["replay_ms"]) * 1000 / row["episodes"]
        print(f"{row['pairs']:>5} {row['events']:>6} {row['episodes']:>8} {row['total_ms']:>8.1f} {row['replay_ms']:>9.1f} "
              f"{hub_us:>9.0f} "
              f"{row['mean_episode_us']:>10.0f} {row['last_episode_us']:>10.0f} {row['fresh_replay_us']:>9.0f}   "
              f"{ratio(row['events'], previous and previous['events']):>6} "
              f"{ratio(row['total_ms'], previous and previous['total_ms']):>6} "
              f"{ratio(row['fresh_replay_us'], previous and previous['fresh_replay_us']):>6}")
        previous = row
    print("ratios compare each row with the one above: one episode's replay grows with the events (linear),"
          " a whole run with their square.")
    print()
    bench_long.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
