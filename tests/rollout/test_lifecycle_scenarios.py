"""The lifecycle phases end to end: the registered orchestrator on the emulator's replay engine against
the simulated Azure ML (creation in virtual minutes, quota, failures, logs, autoscale, deletion)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emulator.clock import VirtualClock
from emulator.scenario import parse_scenario
from emulator.simulate import SIMULATION_START, build_workspace, run_simulation
from emulator.simulated_lifecycle import SimulatedLifecycle
from rollout.operation import LOG_LINES

ROOT = Path(__file__).parent.parent.parent
BLUE, GREEN = "blue-v1", "green-v2"
SPEC = {"model": "azureml:fraud-model:2", "environment": "azureml:fraud-env:3", "instance_type": "Standard_DS3_v2",
        "instance_count": 1}


def scenario(rollout: dict[str, Any] | None = None, **top: Any) -> Any:
    """blue-v1 100% on 4 x DS3_v2; green-v2 created from SPEC; steps 10/50/100 of PT5M; 1200 rpm; no noise."""
    data: dict[str, Any] = {
        "seed": None,
        "endpoint": {"name": "fraud-detection-endpoint",
                     "deployments": {BLUE: {"traffic": 100, "instance_count": 4, "instance_type": "Standard_DS3_v2"}}},
        "rollout": {"new_deployment": GREEN, "traffic_steps": [10, 50, 100], "observation_window": "PT5M",
                    "deployment": SPEC, **(rollout or {})},
        "load": {"requests_per_minute": 1200},
        "health": {BLUE: [{"from": "PT0S", "error_rate": 0.001, "latency_p99_ms": 120}],
                   GREEN: [{"from": "PT0S", "error_rate": 0.002, "latency_p99_ms": 140}]},
        **top,
    }
    return parse_scenario(data, ROOT / "examples")


def simulate(rollout: dict[str, Any] | None = None, **top: Any) -> tuple[Any, SimulatedLifecycle, Any]:
    """Run the scenario; returns the result, the simulated lifecycle (its writes) and the backend (its world)."""
    world = scenario(rollout, **top)
    clock = VirtualClock(SIMULATION_START)
    backend = build_workspace(world, clock.now)
    result = run_simulation(world, backend, clock)
    return result, backend.lifecycle(None), backend


def phases(result: Any) -> list[str]:
    return [entry["phase"] for entry in result.record["phases"]]


def traffic(result: Any) -> list[tuple[float, dict[str, int]]]:
    return [(e["at_seconds"], e["traffic"]) for e in result.timeline if e["kind"] == "traffic"]


def test_create_mirror_prescale_promote_autoscale_and_delete() -> None:
    result, life, backend = simulate(
        {"mirror": {"percent": 20, "window": "PT10M"}, "capacity": {"max_instances": 6}, "autoscale": True,
         "cleanup": "delete", "revert_window": "PT30M"},
        lifecycle={"mirror_in_metrics": True})
    assert result.outcome == "promoted"
    assert phases(result) == ["creating", "mirroring", "scaling", "scaling", "autoscaling", "cleaning_up"]
    assert [w[0] for w in life.writes] == ["create", "scale", "scale", "delete"]
    endpoint = backend.workspace.endpoint("fraud-detection-endpoint")
    assert BLUE not in endpoint.deployments and endpoint.deployments[GREEN].instance_count == 5
    assert endpoint.mirror_traffic == {} and endpoint.traffic == {GREEN: 100}
    assert list(backend.autoscale(None).settings) == [f"aml-rollout-fraud-detection-endpoint-{GREEN}"]
    creating = result.record["phases"][0]
    assert creating["capacity"]["instances"] == [1, 3, 5] and creating["operations"][0]["result"] == "succeeded"
    # creation takes 12 virtual minutes; the mirror is on for 10; blue is deleted after the 30-minute window
    assert traffic(result)[0] == (720.0, {BLUE: 100}) and traffic(result)[2] == (1320.0, {BLUE: 90, GREEN: 10})


def test_an_existing_deployment_with_the_same_spec_is_used_as_is() -> None:
    first, life, backend = simulate()
    assert first.outcome == "promoted" and [w[0] for w in life.writes] == ["create"]


def test_an_existing_deployment_with_another_spec_is_refused_before_anything() -> None:
    result, life, _ = simulate(endpoint={
        "name": "fraud-detection-endpoint",
        "deployments": {BLUE: {"traffic": 100, "instance_count": 4, "instance_type": "Standard_DS3_v2"},
                        GREEN: {"traffic": 0, "instance_count": 1, "instance_type": "Standard_DS3_v2"}}})
    assert result.outcome == "failed" and "exists with a different spec" in result.record["reason"]
    assert life.writes == [] and traffic(result) == []


@pytest.mark.parametrize("kind, code, minutes, says", [
    pytest.param("image_build", "ImageBuildFailure", 8, "image build failed", id="image-build"),
    pytest.param("crash_loop", "ResourceNotReady", 12, "FileNotFoundError", id="crash-loop"),
])
def test_a_failed_creation_ends_failed_with_azures_error_and_the_logs(kind: str, code: str, minutes: int,
                                                                       says: str) -> None:
    result, _, _ = simulate(lifecycle={"failures": {GREEN: kind}})
    assert result.outcome == "failed" and code in result.record["reason"]
    assert result.elapsed_seconds == minutes * 60 and traffic(result) == []
    logs = result.record["phases"][0]["logs"]["inference-server"]
    assert any(says in line for line in logs) and len(logs) <= LOG_LINES
    if kind == "crash_loop":
        assert len(logs) == LOG_LINES


def test_out_of_quota_ends_failed_before_anything_is_created() -> None:
    result, life, _ = simulate({"capacity": {"max_instances": 8}}, lifecycle={"quota": {"Standard_DS3_v2": 32}})
    assert result.outcome == "failed"
    assert "needs 24 more cores" in result.record["reason"] and "12 free" in result.record["reason"]
    assert life.writes == [] and traffic(result) == [] and result.elapsed_seconds == 0


@pytest.mark.parametrize("control", [
    pytest.param({"at": "PT5M", "action": "abort", "reason": "wrong model"}, id="abort"),
    pytest.param({"at": "PT5M", "action": "rollback", "reason": "alert"}, id="rollback"),
])
def test_an_ending_action_during_creation_ends_before_any_traffic_moves(control: dict[str, str]) -> None:
    result, life, _ = simulate(controls=[control])
    assert result.outcome in ("aborted", "rolled_back") and "no traffic was changed" in result.record["reason"]
    assert result.elapsed_seconds == 300 and traffic(result) == [] and [w[0] for w in life.writes] == ["create"]


def test_an_alert_during_creation_ends_before_any_traffic_moves() -> None:
    result, _, _ = simulate(alerts=[{"at": "PT3M", "payload": "alerts/endpoint-5xx-fired.json"}])
    assert result.outcome == "rolled_back" and traffic(result) == [] and result.elapsed_seconds == 180


def test_pause_during_creation_holds_before_the_first_step_until_resume() -> None:
    # PT5M: the very moment a poll timer fires, so the pause arrives while the poll activity runs.
    result, _, _ = simulate(controls=[{"at": "PT5M", "action": "pause"}, {"at": "PT30M", "action": "resume"}])
    assert result.outcome == "promoted"
    assert traffic(result)[0] == (1800.0, {BLUE: 90, GREEN: 10})


def test_mirrored_requests_not_in_the_metrics_roll_back_before_any_user_traffic() -> None:
    result, _, backend = simulate({"mirror": {"percent": 10, "window": "PT5M"}})
    assert result.outcome == "rolled_back" and "no user request was served" in result.record["reason"]
    assert all(GREEN not in t for _, t in traffic(result))
    assert backend.workspace.endpoint("fraud-detection-endpoint").mirror_traffic == {}


def test_an_alert_during_mirroring_rolls_back_and_removes_the_mirror() -> None:
    result, _, backend = simulate({"mirror": {"percent": 10, "window": "PT10M"}}, lifecycle={"mirror_in_metrics": True},
                                  alerts=[{"at": "PT15M30S", "payload": "alerts/endpoint-5xx-fired.json"}])
    assert result.outcome == "rolled_back"
    assert all(GREEN not in t for _, t in traffic(result))
    assert backend.workspace.endpoint("fraud-detection-endpoint").mirror_traffic == {}


def test_a_failed_scale_rolls_traffic_back_to_the_old_deployment() -> None:
    result, life, backend = simulate({"capacity": {"max_instances": 6}, "scale_timeout": "PT20M"},
                                     lifecycle={"scale_minutes": 30})
    assert result.outcome == "failed" and "scaling green-v2 before step 2 failed" in result.record["reason"]
    assert "timed out after 20 minutes" in result.record["reason"]
    assert backend.workspace.endpoint("fraud-detection-endpoint").traffic == {BLUE: 100}


def test_revert_within_the_window_gives_the_old_deployment_its_traffic_back() -> None:
    result, life, backend = simulate({"cleanup": "delete", "revert_window": "PT30M"},
                                     controls=[{"at": "PT40M", "action": "revert", "reason": "latency on the dashboard"}])
    assert result.outcome == "reverted" and "latency on the dashboard" in result.record["reason"]
    assert backend.workspace.endpoint("fraud-detection-endpoint").traffic == {BLUE: 100}
    assert [w[0] for w in life.writes] == ["create"]      # blue was not deleted


def test_scale_down_cleanup_keeps_one_instance_of_the_old_deployment() -> None:
    result, life, backend = simulate({"cleanup": "scale_down", "revert_window": "PT10M"})
    assert result.outcome == "promoted" and phases(result)[-1] == "cleaning_up"
    assert backend.workspace.endpoint("fraud-detection-endpoint").deployments[BLUE].instance_count == 1
    assert [w[0] for w in life.writes] == ["create", "scale"]


def test_todays_request_has_no_lifecycle_phase() -> None:
    world = parse_scenario({
        "seed": None,
        "endpoint": {"name": "fraud-detection-endpoint",
                     "deployments": {BLUE: {"traffic": 100, "instance_count": 3}, GREEN: {"traffic": 0}}},
        "rollout": {"new_deployment": GREEN, "traffic_steps": [10, 100], "observation_window": "PT5M"},
        "load": {"requests_per_minute": 1200},
    }, ROOT / "examples")
    result = run_simulation(world)
    assert result.outcome == "promoted" and result.record["phases"] == [] and result.elapsed_seconds == 600


def test_an_alert_in_the_revert_window_reverts() -> None:
    result, life, backend = simulate({"cleanup": "delete", "revert_window": "PT30M"},
                                     alerts=[{"at": "PT50M30S", "payload": "alerts/endpoint-5xx-fired.json"}])
    assert result.outcome == "reverted" and "fraud-detection-green-5xx" in result.record["reason"]
    assert backend.workspace.endpoint("fraud-detection-endpoint").traffic == {BLUE: 100}
    assert [w[0] for w in life.writes] == ["create"]


def test_a_revert_after_the_window_is_too_late_and_the_old_deployment_is_deleted() -> None:
    result, life, backend = simulate({"cleanup": "delete", "revert_window": "PT10M"},
                                     controls=[{"at": "PT50M30S", "action": "revert"}])
    assert result.outcome == "promoted" and result.elapsed_seconds == 39 * 60   # 12 + 3 x 5 + 10 + 2 minutes
    assert BLUE not in backend.workspace.endpoint("fraud-detection-endpoint").deployments


@pytest.mark.parametrize("example, outcome, says", [
    pytest.param("create-and-roll-out", "promoted", "healthy at every step", id="create-and-roll-out"),
    pytest.param("creation-fails", "failed", "ImageBuildFailure", id="creation-fails"),
    pytest.param("out-of-quota", "failed", "needs 24 more cores", id="out-of-quota"),
    pytest.param("first-rollout", "promoted", "the endpoint's first deployment: green-v2 serving 100%, healthy in its "
                 "window and its bake", id="first-rollout"),
    pytest.param("first-rollout-rolled-back", "rolled_back", "green-v2 kept for inspection",
                 id="first-rollout-rolled-back"),
])
def test_the_lifecycle_examples(example: str, outcome: str, says: str) -> None:
    from emulator.scenario import load_scenario

    result = run_simulation(load_scenario(ROOT / "examples" / f"{example}.yaml"))
    assert result.outcome == outcome and says in result.record["reason"]
    if example == "create-and-roll-out":
        assert phases(result) == ["creating", "mirroring", "scaling", "scaling", "autoscaling", "cleaning_up"]
    if example == "creation-fails":
        assert result.record["phases"][0]["logs"]["inference-server"]
    if example == "first-rollout":
        assert phases(result) == ["creating", "autoscaling"] and result.elapsed_seconds == 29 * 60   # 14 + 5 + 10
        assert result.record["phases"][0]["decision"]["create_endpoint"] is True
    if example == "first-rollout-rolled-back":
        assert result.elapsed_seconds == 17 * 60 and result.record["final_traffic"] == {}
        assert [t for _, t in traffic(result)] == [{GREEN: 100}, {}] and phases(result) == ["creating"]
