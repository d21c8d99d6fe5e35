"""``simulate --seed`` and ``--runs``: noisy metrics reproduce by seed, and many runs count outcomes."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent


def simulate(*args):
    return subprocess.run([sys.executable, "-m", "emulator", "simulate", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def checks(done):
    return [e["new"] for e in json.loads(done.stdout)["timeline"] if e["kind"] == "health_check"]


def test_a_seed_reproduces_a_run_and_another_seed_changes_the_counts():
    first = simulate("examples/regression-caught.yaml", "--json", "--seed", "5")
    again = simulate("examples/regression-caught.yaml", "--json", "--seed", "5")
    other = simulate("examples/regression-caught.yaml", "--json", "--seed", "6")
    assert checks(first) == checks(again)
    assert checks(first) != checks(other)


def test_runs_count_outcomes_over_seeds():
    """90 requests expected in 15 minutes against min_requests 100: the noise decides, seed by seed."""
    done = simulate("examples/too-little-traffic.yaml", "--runs", "3", "--seed", "10", "--json")
    summary = json.loads(done.stdout)
    assert summary["outcomes"] == {"promoted": 1, "rolled_back": 2}
    assert [r["seed"] for r in summary["results"]] == [10, 11, 12]
    assert done.returncode == 1, "not every run was promoted"
