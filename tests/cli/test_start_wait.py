"""``aml-rollout start FILE --wait`` against ``serve``: the CI step. Every example ends with the outcome
the simulation of the same example reaches, and the exit code documented for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cli.errors import OUTCOME_EXIT_CODES
from emulator.scenario import load_scenario
from emulator.serve import LocalServer
from emulator.simulate import run_simulation
from rollout.durations import parse_duration
from rollout.plan import MAX_DURATION
from tests.cli.helpers import EXAMPLES, KEY, cli, deliver_later, faster_example

# Examples replaying recorded per-minute metrics (``recorded_metrics``) are tied to real minutes (the
# backtest bakes 30 of them); they cannot be sped up like synthetic health, so they are not run on serve.
# Nor are the lifecycle examples (a ``lifecycle`` world): their provisioning minutes are not sped up, and
# some never reach a step; tests/rollout/test_lifecycle_scenarios.py runs them.
EXAMPLE_FILES = sorted(path for path in EXAMPLES.glob("*.yaml")
                       if not {"recorded_metrics", "lifecycle"} & set(yaml.safe_load(path.read_text())))


def test_every_example_but_the_recorded_backtests_is_run() -> None:
    left_out = sorted(path.name for path in EXAMPLES.glob("*.yaml") if path not in EXAMPLE_FILES)
    assert left_out == ["backtest-late-regression.yaml", "create-and-roll-out.yaml", "creation-fails.yaml",
                        "first-rollout-rolled-back.yaml", "first-rollout.yaml", "out-of-quota.yaml"] and len(EXAMPLE_FILES) == 4


@pytest.mark.parametrize("example", [pytest.param(path, id=path.stem) for path in EXAMPLE_FILES])
def test_start_wait_exits_with_the_outcome_the_simulation_reaches(example: Path, tmp_path: Path) -> None:
    expected = run_simulation(load_scenario(example)).outcome          # the virtual-clock oracle
    fast = faster_example(example)
    scenario_file = tmp_path / example.name
    scenario_file.write_text(yaml.safe_dump(fast))
    with LocalServer(load_scenario(scenario_file, require_rollout=False), key=KEY) as server:
        timers = [deliver_later(server.url, json.loads(Path(alert["payload"]).read_text()),
                                parse_duration(alert["at"], MAX_DURATION)) for alert in fast.get("alerts", [])]
        try:
            run = cli("start", str(scenario_file), "--wait", "--interval", "0.5", url=server.url)
        finally:
            for timer in timers:
                timer.cancel()
        final_traffic = dict(server.endpoint.traffic)
    assert run.err == ""
    lines = run.out.splitlines()
    assert lines[0] == "started rollout-fraud-detection-endpoint: green-v2 on fraud-detection-endpoint"
    assert lines[-1].startswith(f"{expected}: ")
    assert run.code == OUTCOME_EXIT_CODES[expected] and (run.code == 0) == (expected == "promoted")
    assert final_traffic == ({"green-v2": 100} if expected == "promoted" else {"blue-v1": 100})
    # not a terminal: plain lines, one per change, then the final line
    assert any("observing step 1/3 (10%); traffic blue-v1 90% / green-v2 10%" in line for line in lines[1:-1])
    assert not any("\x1b[" in line for line in lines)
