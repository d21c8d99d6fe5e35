"""Replay cost of a long rollout: flat per wake, linear in total (issue 11, "Replay without limit").

Runs the registered rollout orchestrator on the emulator over rollouts of 125 to 1,000 health
checks (steps 10 % and 100 %, 5-minute windows, then a bake of one check a minute), timing every
call of the orchestrator (one wake: the SDK's replay of the execution's history). Prints:

- the per-wake replay cost around check 10 and around check 1,000 (median of the wakes whose
  check count is within 10 of it: whole executions, since the cost rises within each one as its
  history grows to ``CHECKS_PER_EXECUTION`` checks), and their ratio (target: at most 1.5);
- the wall time of each whole rollout and the growth exponent of wall time against checks
  (least squares on the log-log points; target: below 1.2, linear).

Each size runs ``--repeat`` times (default 3) and the smallest figure of each column is printed:
the machine is shared, and the least disturbed run is the best estimate of the cost.

The orchestrator continues as new at each step boundary and every ``CHECKS_PER_EXECUTION`` checks,
so no execution's history grows with the rollout. Not a test: figures for the README.

    python bench/bench_long.py [--max-checks 1000]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import emulator.simulate as simulate_module  # noqa: E402
from emulator.scenario import parse_scenario  # noqa: E402
from emulator.taskhub import TaskHub  # noqa: E402
from orchestrators.rollout import CHECKS_PER_EXECUTION  # noqa: E402

TASK_SCHEDULED, TASK_COMPLETED = 4, 5


class Wakes:
    """Wraps the orchestrator function: (checks completed so far, events in the history, seconds) per wake."""

    def __init__(self, function: Callable[[str], str]) -> None:
        self.function = function
        self.checks = 0
        self.wakes: list[tuple[int, int, float]] = []

    def __call__(self, context_json: str) -> str:
        history = json.loads(context_json)["history"]
        names = {e["EventId"]: e.get("Name") for e in history if e["EventType"] == TASK_SCHEDULED}
        self.checks += sum(1 for e in history if e["EventType"] == TASK_COMPLETED and not e.get("IsPlayed")
                           and names.get(e["TaskScheduledId"]) == "check_health")
        began = time.perf_counter()
        try:
            return self.function(context_json)
        finally:
            self.wakes.append((self.checks, len(history), time.perf_counter() - began))


class TimedHub(TaskHub):
    """The emulator's task hub with the rollout orchestrator wrapped in ``Wakes``."""

    last: Wakes | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        orchestrators = self.registry.orchestrators
        TimedHub.last = orchestrators["rollout_orchestrator"] = Wakes(orchestrators["rollout_orchestrator"])


def scenario(checks: int):
    return parse_scenario({
        "seed": None,
        "endpoint": {"name": "long-ep", "deployments": {"blue": {"traffic": 100}, "green": {}}},
        "rollout": {"new_deployment": "green", "traffic_steps": [10, 100], "observation_window": "PT5M",
                    "bake_time": f"PT{checks - 10}M"},
        "load": {"requests_per_minute": 1200},
        "health": {"blue": [{"from": "PT0S", "error_rate": 0.001, "latency_p99_ms": 120}],
                   "green": [{"from": "PT0S", "error_rate": 0.001, "latency_p99_ms": 130}]},
    }, ROOT)


def run(checks: int) -> tuple[float, Wakes, Any]:
    simulate_module.TaskHub = TimedHub      # type: ignore[misc]
    began = time.perf_counter()
    result = simulate_module.run_simulation(scenario(checks))
    wall = time.perf_counter() - began
    assert TimedHub.last is not None
    return wall, TimedHub.last, result


def cost_around(wakes: Wakes, check: int) -> float:
    near = [seconds for done, _, seconds in wakes.wakes if abs(done - check) <= 10]
    return statistics.median(near)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-checks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [n for n in (125, 250, 500, 1000) if n <= args.max_checks]
    print(f"checks per execution: {CHECKS_PER_EXECUTION}")
    print(f"{'checks':>6} {'outcome':>9} {'wall s':>7} {'wakes':>6} {'max events':>10} {'us/wake @10':>11} "
          f"{'us/wake @last':>13} {'ratio':>6}")
    points = []
    for size in sizes:
        runs = [run(size) for _ in range(max(1, args.repeat))]
        wall, wakes, result = min(runs, key=lambda r: r[0])
        checks = sum(1 for e in result.timeline if e["kind"] == "health_check")
        at_10 = min(cost_around(w, 10) for _, w, _ in runs)
        at_last = min(cost_around(w, checks) for _, w, _ in runs)
        print(f"{checks:>6} {result.outcome:>9} {wall:>7.2f} {len(wakes.wakes):>6} "
              f"{max(events for _, events, _ in wakes.wakes):>10} {at_10 * 1e6:>11.0f} {at_last * 1e6:>13.0f} "
              f"{at_last / at_10:>6.2f}")
        points.append((math.log(checks), math.log(wall)))
    if len(points) >= 2:
        mean_x = statistics.mean(x for x, _ in points)
        mean_y = statistics.mean(y for _, y in points)
        slope = (sum((x - mean_x) * (y - mean_y) for x, y in points)
                 / sum((x - mean_x) ** 2 for x, _ in points))
        print(f"growth exponent of wall time against checks: {slope:.2f} (target < 1.2; 2 would be quadratic)")
    print("ratio: per-wake replay cost around the last check / around check 10 (target <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
