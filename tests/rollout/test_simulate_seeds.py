"""``simulate --seed`` and ``--runs``: noisy metrics reproduce by seed, and many runs count outcomes."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from emulator.scenario import load_scenario
from emulator.simulate import main, run_simulation

ROOT = Path(__file__).parent.parent.parent
EXAMPLES = ROOT / "examples"


def checks(seed):
    scenario = replace(load_scenario(EXAMPLES / "regression-caught.yaml"), seed=seed)
    return [e["new"] for e in run_simulation(scenario).timeline if e["kind"] == "health_check"]


def test_a_seed_reproduces_a_run_and_another_seed_changes_the_counts():
    assert checks(5) == checks(5)
    assert checks(5) != checks(6)


def test_runs_count_outcomes_over_seeds(capsys, tmp_path):
    """6 requests a minute at 10%: waiting for the 223 the first window needs takes about as long as an extension
    may last (30 minutes): the noise decides, seed by seed."""
    example = (EXAMPLES / "too-little-traffic.yaml").read_text().replace("requests_per_minute: 30", "requests_per_minute: 60")
    (tmp_path / "edge.yaml").write_text(example)
    code = main([str(tmp_path / "edge.yaml"), "--runs", "3", "--seed", "10", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["outcomes"] == {"promoted": 2, "rolled_back": 1}      # seeds 10-12: both outcomes happen
    assert [r["seed"] for r in summary["results"]] == [10, 11, 12]
    assert code == 1, "not every run was promoted"


@pytest.mark.parametrize("args", [
    pytest.param(["--runs", "0"], id="zero"),
    pytest.param(["--runs", "2", "--azure", "--real-clock"], id="azure"),
    pytest.param(["--runs", "2", "--real-clock"], id="real-clock"),
])
def test_runs_refuses_what_it_cannot_do(args, capsys):
    assert main([str(EXAMPLES / "healthy-promotion.yaml"), *args]) == 2
    out, err = capsys.readouterr()
    assert "--runs: must be at least 1" in err and out == ""
