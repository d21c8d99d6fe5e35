"""How long a simulated rollout takes, in wall time, against the virtual time it covers.

Runs each shipped example and a long rollout (10 steps x 30-minute windows, checks every
minute) several times and prints the median wall time, the virtual time simulated, and the
ratio; then ``bench_long``: a rollout of up to 1,000 checks, its per-wake replay cost at check 10
and at the last check, and the growth exponent of wall time against checks (issue 11's targets).
Not a test: figures for the README and the notes.
"""

from __future__ import annotations

import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.scenario import load_scenario, parse_scenario  # noqa: E402
from emulator.simulate import run_simulation  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import bench_long  # noqa: E402

RUNS = 5


def long_rollout():
    return parse_scenario({
        "endpoint": {"name": "long-ep", "deployments": {"blue": {"traffic": 100}, "green": {}}},
        "rollout": {"new_deployment": "green", "traffic_steps": list(range(10, 101, 10)),
                    "observation_window": "PT30M", "check_interval": "PT1M"},
        "load": {"requests_per_minute": 1200},
    }, ROOT)


def measure(name, scenario, runs=RUNS):
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        result = run_simulation(scenario)
        walls.append(time.perf_counter() - started)
    tracemalloc.start()
    result = run_simulation(scenario)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    wall = statistics.median(walls)
    virtual = result.elapsed_seconds
    checks = sum(1 for e in result.timeline if e["kind"] == "health_check")
    print(f"{name:<28} {result.outcome:<12} virtual {virtual/60:7.1f} min  wall {wall*1000:8.1f} ms"
          f"  speed-up {virtual / wall:9.0f}x  checks {checks:4d}  peak {peak / 2**20:6.1f} MiB")


def main():
    print(f"median of {RUNS} runs each")
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        measure(path.name, load_scenario(path))
    measure("10 steps x 30 min (1 run)", long_rollout(), runs=1)
    print()
    bench_long.main([])


if __name__ == "__main__":
    main()
