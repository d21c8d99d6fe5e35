"""``python -m emulator simulate``: the README's run command, as a user runs it."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent


def simulate(*args):
    return subprocess.run([sys.executable, "-m", "emulator", "simulate", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("example, code, outcome, final", [
    pytest.param("healthy-promotion.yaml", 0, "promoted", {"green-v2": 100}, id="healthy"),
    pytest.param("regression-caught.yaml", 1, "rolled_back", {"blue-v1": 100}, id="regression"),
    pytest.param("alert-rollback.yaml", 1, "rolled_back", {"blue-v1": 100}, id="alert"),
    pytest.param("too-little-traffic.yaml", 1, "rolled_back", {"blue-v1": 100}, id="too-little-traffic"),
    pytest.param("backtest-late-regression.yaml", 1, "rolled_back", {"blue-v1": 100}, id="backtest-late-regression"),
])
def test_examples_json(example, code, outcome, final):
    done = simulate(f"examples/{example}", "--json")
    assert done.returncode == code, done.stderr
    result = json.loads(done.stdout)
    assert (result["outcome"], result["final_traffic"]) == (outcome, final)
    assert set(result) == {"outcome", "reason", "final_traffic", "steps_completed", "elapsed_seconds", "timeline",
                           "phases"}
    assert all({"at_seconds", "kind"} <= set(event) for event in result["timeline"])
    assert result["timeline"][-1]["kind"] == "outcome"


def test_alert_example_reverts_at_the_alerts_time():
    result = json.loads(simulate("examples/alert-rollback.yaml", "--json").stdout)
    reverts = [e for e in result["timeline"] if e["kind"] == "traffic" and e["traffic"] == {"blue-v1": 100}]
    assert [e["at_seconds"] for e in reverts] == [420.0]
    assert result["elapsed_seconds"] == 420.0


def test_human_output_is_a_readable_timeline():
    done = simulate("examples/regression-caught.yaml")
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Rollout of green-v2 on fraud-detection-endpoint (steps 10% -> 50% -> 100%")
    assert any(re.search(r"check +green-v2: 1[0-9]{2} req", line) for line in lines)     # ~120 a minute, noisy
    assert any(line.strip().startswith("+0:13:00  traffic   blue-v1=100") for line in lines), done.stdout
    assert lines[-2].startswith("Outcome: rolled_back - health check failed: regression detected at 95% confidence: "
                                "error rate (")


def test_bad_scenario_exits_2_naming_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("endpoint: {name: ep-one, deployments: {blue: {traffic: 100}, green: {}}}\n"
                   "rollout: {new_deployment: green, error_threshold: 7}\n")
    done = simulate(str(bad))
    assert done.returncode == 2
    assert "rollout.error_threshold: must be between 0 and 1" in done.stderr
    assert done.stdout == ""


def test_usage_without_a_command():
    done = subprocess.run([sys.executable, "-m", "emulator"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "usage" in done.stderr
