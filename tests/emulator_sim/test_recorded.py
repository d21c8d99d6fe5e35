"""Recorded metrics for backtesting: three formats in, a MetricsPort out, and a replay through the judge."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from emulator.recorded import RecordedMetrics, RecordedMinute, load_recording
from emulator.scenario import load_scenario, parse_scenario
from emulator.simulate import run_simulation
from emulator.simulated_azure import Fault, SimulatedWorkspace
from rollout.errors import InvalidRequest, Throttled
from rollout.judge import Increment, JudgeConfig, JudgeState, judge_increment, new_window
from rollout.model import DeploymentMetrics, DeploymentState, WorkspaceRef
from rollout.policy import Verdict

ROOT = Path(__file__).parent.parent.parent
FIXTURES = ROOT / "tests" / "azure" / "fixtures"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)

LOG_ANALYTICS = {"tables": [{"name": "PrimaryResult", "columns": [
    {"name": "TimeGenerated", "type": "datetime"}, {"name": "DeploymentName", "type": "string"},
    {"name": "Requests", "type": "long"}, {"name": "Errors5xx", "type": "long"},
    {"name": "ModelErrors", "type": "long"}, {"name": "P99Ms", "type": "real"}], "rows": [
    ["2025-01-01T12:00:00Z", "green", 100, 2, 1, 150.0],
    ["2025-01-01T12:01:00Z", "green", 110, 0, 0, None],
    ["2025-01-01T12:01:00Z", "Blue", 900, 1, 0, 120.0]]}]}


@pytest.mark.parametrize("name, content, expected", [
    pytest.param("offsets.csv", "# a comment\nminute,deployment,requests,errors,p99_ms\n0,green,100,3,150\n1,Green,110,0,\n",
                 {"green": {0: RecordedMinute(100, 3, 150.0), 1: RecordedMinute(110, 0, None)}}, id="csv-offsets"),
    pytest.param("stamps.csv", "minute,deployment,requests,errors,p99_ms\n2025-01-01T12:05:00Z,green,100,3,150\n"
                 "2025-01-01T12:07:00Z,green,50,1,140\n",
                 {"green": {0: RecordedMinute(100, 3, 150.0), 2: RecordedMinute(50, 1, 140.0)}}, id="csv-timestamps"),
    pytest.param("la.json", json.dumps(LOG_ANALYTICS),
                 {"green": {0: RecordedMinute(100, 3, 150.0), 1: RecordedMinute(110, 0, None)},
                  "blue": {1: RecordedMinute(900, 1, 120.0)}}, id="log-analytics"),
])
def test_formats(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content)
    assert load_recording(path) == expected


def test_azure_monitor_metrics_response():
    """The REST shape the platform adapter asks for: 5xx and 424 are errors, 404 and 429 are not,
    a minute without a value is not zero."""
    found = load_recording(FIXTURES / "metrics_list_RequestsPerMinute_RequestLatency_P99_by_deployment_statusCode"
                                      ".SYNTHETIC.json")
    assert found["green"][0] == RecordedMinute(95 + 3 + 1 + 2, 3 + 1, 180.2)
    assert found["green"][2] == RecordedMinute(90 + 9 + 2 + 0 + 3, 9 + 2, 199.3)
    assert found["green"][4] == RecordedMinute(96 + 1 + 1, 1, None)
    assert found["blue"][1] == RecordedMinute(911, 1, 118.0)


@pytest.mark.parametrize("content, message", [
    pytest.param("minute,deployment,requests\n0,green,1\n", "CSV header must be", id="bad-header"),
    pytest.param("minute,deployment,requests,errors,p99_ms\n0,green,ten,0,\n", "CSV row 2", id="bad-number"),
    pytest.param("minute,deployment,requests,errors,p99_ms\n0,green,10,11,\n", "between 0 and requests",
                 id="more-errors-than-requests"),
    pytest.param('{"rows": []}', "neither Azure Monitor", id="unknown-json"),
    pytest.param('{"tables": [{"columns": [{"name": "Requests"}], "rows": []}]}', "lacks column(s) TimeGenerated",
                 id="log-analytics-missing-columns"),
    pytest.param("minute,deployment,requests,errors,p99_ms\n0,green,1,0,\n2025-01-01T12:00:00Z,green,1,0,\n",
                 "all offsets or all timestamps", id="mixed-minutes"),
])
def test_bad_recordings_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_recording(path)


def port(recording, faults=()):
    workspace = SimulatedWorkspace(WorkspaceRef("s", "r", "w"), lambda: T0)
    workspace.add_endpoint("ep", [DeploymentState("green", "Succeeded", 1)], {"green": 100})
    workspace.faults.extend(faults)
    return RecordedMetrics(workspace, recording)


@pytest.mark.parametrize("start, end, expected", [
    pytest.param(T0, T0 + 2 * MIN, DeploymentMetrics(210, 3, 150.0), id="two-whole-minutes"),
    pytest.param(T0 + timedelta(seconds=5), T0 + timedelta(seconds=65), DeploymentMetrics(100, 3, 150.0),
                 id="off-the-minute-reads-the-minute-it-starts-in"),
    pytest.param(T0 + 5 * MIN, T0 + 6 * MIN, DeploymentMetrics(0, 0, None), id="after-the-recording"),
])
def test_recorded_metrics_read_whole_minutes(start, end, expected):
    recording = {"green": {0: RecordedMinute(100, 3, 150.0), 1: RecordedMinute(110, 0, None)}}
    assert port(recording).deployment_metrics("ep", ["Green"], start, end) == {"Green": expected}


def test_metrics_faults_apply_to_recordings():
    with pytest.raises(Throttled):
        port({}, [Fault("metrics", Throttled("simulated"))]).deployment_metrics("ep", ["green"], T0, T0 + MIN)


def test_a_scenario_cannot_have_both_a_recording_and_health(tmp_path):
    (tmp_path / "r.csv").write_text("minute,deployment,requests,errors,p99_ms\n0,blue,1,0,\n")
    data = {"endpoint": {"name": "ep-one", "deployments": {"blue": {"traffic": 100}}},
            "recorded_metrics": "r.csv", "load": {"requests_per_minute": 5}}
    with pytest.raises(InvalidRequest) as caught:
        parse_scenario(data, tmp_path, require_rollout=False)
    assert [p.field for p in caught.value.problems] == ["recorded_metrics"]
    assert "replaces load and health" in caught.value.problems[0].message
    data["recorded_metrics"] = "missing.csv"
    del data["load"]
    with pytest.raises(InvalidRequest, match="missing.csv: cannot be read"):
        parse_scenario(data, tmp_path, require_rollout=False)


EXAMPLE = ROOT / "examples" / "backtest-late-regression.yaml"


def test_simulate_reads_the_recording():
    """The shipped example's health checks see the recorded counts (first minute: green 132 requests)."""
    result = run_simulation(load_scenario(EXAMPLE))
    checks = [e for e in result.timeline if e["kind"] == "health_check"]
    assert checks[0]["new"] == {"requests": 132, "errors": 0, "latency_p99_ms": 143.0}
    # the orchestrator's judge (rollout.judge) catches the late 1.5% (onset at minute 29 of 45) at the
    # check ending minute 37, as judging the recording alone does (next test): no longer promoted
    assert result.outcome == "rolled_back" and checks[-1]["at_seconds"] == 37 * 60
    assert checks[-1]["verdict"] == "fail" and result.record["steps_completed"] == [10, 50, 100]


def test_the_sequential_judge_rolls_the_recording_back_after_onset():
    """Backtest the shipped recording through rollout.judge, window by window as the rollout ran."""
    recording = load_scenario(EXAMPLE).recorded
    state, config = JudgeState(), JudgeConfig()
    windows = [range(0, 5), range(5, 10), range(10, 45)]
    for window in windows:
        state = new_window(state)
        for minute in window:
            new = recording["green-v2"].get(minute, RecordedMinute(0, 0))
            old = recording["blue-v1"].get(minute, RecordedMinute(0, 0))
            state, judgement = judge_increment(state, Increment(
                DeploymentMetrics(new.requests, new.errors, new.p99_ms),
                DeploymentMetrics(old.requests, old.errors, old.p99_ms)), config)
            if judgement.verdict is Verdict.FAIL:
                assert minute == 36, "caught at the check ending minute 37: 8 minutes after the onset at 29"
                return
    pytest.fail("the late regression was promoted")
