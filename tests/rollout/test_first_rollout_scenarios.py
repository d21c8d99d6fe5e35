"""A first rollout (a new endpoint, no old deployment) end to end: the registered orchestrator on the emulator's
replay engine against the simulated Azure ML. Created, given 100%, judged in its window and bake on the absolute
thresholds, then promoted, or rolled back to 0% everywhere with the deployment kept."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.clock import VirtualClock
from emulator.simulate import SIMULATION_START, build_workspace, run_simulation
from emulator.simulated_lifecycle import SimulatedLifecycle
from tests.rollout.test_lifecycle_scenarios import BLUE, GREEN, SPEC, phases, scenario, simulate, traffic

# --- the first rollout on a new endpoint ---------------------------------------------------------

NEW_ENDPOINT = {"name": "fraud-detection-endpoint", "exists": False}
ENDPOINT_SPEC = {"auth_mode": "aad_token", "description": "fraud scoring, created by aml-rollout"}
GREEN_HEALTH = {GREEN: [{"from": "PT0S", "error_rate": 0.002, "latency_p99_ms": 140}]}


def first_rollout(rollout: dict[str, Any] | None = None, **top: Any) -> tuple[Any, SimulatedLifecycle, Any]:
    """The endpoint does not exist; the request creates it (ENDPOINT_SPEC) with green-v2 from SPEC."""
    return simulate({"endpoint": ENDPOINT_SPEC, **(rollout or {})},
                    **{"endpoint": NEW_ENDPOINT, "health": GREEN_HEALTH, **top})


def test_a_first_rollout_creates_the_endpoint_and_the_deployment_and_gives_it_everything() -> None:
    result, life, backend = first_rollout({"autoscale": True})
    assert result.outcome == "promoted" and "the endpoint's first deployment: green-v2 serving 100%" in result.record["reason"]
    endpoint = backend.workspace.endpoint("fraud-detection-endpoint")
    assert (endpoint.auth_mode, endpoint.description) == ("aad_token", "fraud scoring, created by aml-rollout")
    assert endpoint.provisioning_state == "Succeeded" and endpoint.traffic == {GREEN: 100}
    assert endpoint.deployments[GREEN].provisioning_state == "Succeeded"
    assert life.writes == [("create_endpoint", "fraud-detection-endpoint", ""),
                           ("create", "fraud-detection-endpoint", GREEN)]
    creating = result.record["phases"][0]
    assert creating["decision"] == {"create_endpoint": True, "create_deployment": True, "refusal": None}
    assert [(op["kind"], op["target"], op["result"]) for op in creating["operations"]] == [
        ("create_endpoint", "fraud-detection-endpoint", "succeeded"), ("create", GREEN, "succeeded")]
    assert creating["operations"][0]["detail"] == "creating endpoint 'fraud-detection-endpoint': Succeeded"
    assert phases(result) == ["creating", "autoscaling"]
    assert [e["phase"] for e in result.timeline if e["kind"] == "phase"] == ["creating", "autoscaling"]
    assert list(backend.autoscale(None).settings) == [f"aml-rollout-fraud-detection-endpoint-{GREEN}"]
    # the endpoint takes 2 virtual minutes, then the deployment 12 (it cannot start before); then 100% at once
    assert traffic(result) == [(840.0, {GREEN: 100})] and result.record["final_traffic"] == {GREEN: 100}


@pytest.mark.parametrize("rollout, says", [
    pytest.param({"endpoint": None}, "the endpoint does not exist; give 'endpoint' to create it", id="no-endpoint-spec"),
    pytest.param({"endpoint": None, "deployment": None}, "not found", id="todays-request"),
])
def test_a_first_rollout_without_the_endpoint_spec_is_refused_before_anything(rollout: dict[str, Any],
                                                                             says: str) -> None:
    result, life, backend = first_rollout(rollout, health={} if rollout.get("deployment", 1) is None else GREEN_HEALTH)
    assert result.outcome == "failed" and says in result.record["reason"] and result.elapsed_seconds == 0
    assert life.writes == [] and traffic(result) == [] and "fraud-detection-endpoint" not in backend.workspace.endpoints


def test_an_endpoint_spec_without_a_deployment_spec_is_a_bad_request() -> None:
    from rollout.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as caught:
        scenario({"endpoint": ENDPOINT_SPEC, "deployment": None}, endpoint=NEW_ENDPOINT, health={})
    assert [(p.field, p.message) for p in caught.value.problems] == [
        ("rollout.endpoint", "needs 'deployment': a new endpoint is created with the new deployment")]


@pytest.mark.parametrize("top, outcome", [
    pytest.param({"controls": [{"at": "PT1M", "action": "abort", "reason": "wrong model"}]}, "aborted", id="abort"),
    pytest.param({"alerts": [{"at": "PT1M", "payload": "alerts/endpoint-5xx-fired.json"}]}, "rolled_back", id="alert"),
])
def test_an_ending_action_while_the_endpoint_is_created_leaves_nothing_serving(top: dict[str, Any],
                                                                               outcome: str) -> None:
    result, life, backend = first_rollout(**top)
    assert result.outcome == outcome and "no traffic was changed" in result.record["reason"]
    assert result.elapsed_seconds == 60 and traffic(result) == []
    assert life.writes == [("create_endpoint", "fraud-detection-endpoint", "")]    # the deployment never started
    creating = result.record["phases"][0]
    assert creating["outcome"] == "interrupted" and "create_endpoint of 'fraud-detection-endpoint'" in creating["reason"]
    endpoint = backend.workspace.endpoint("fraud-detection-endpoint")
    assert endpoint.traffic == {} and endpoint.deployments == {}


def test_a_failed_deployment_on_a_new_endpoint_ends_failed_with_logs_and_no_traffic() -> None:
    result, life, backend = first_rollout(lifecycle={"failures": {GREEN: "image_build"}})
    assert result.outcome == "failed" and "ImageBuildFailure" in result.record["reason"]
    assert result.elapsed_seconds == (2 + 8) * 60 and traffic(result) == []
    creating = result.record["phases"][0]
    assert [op["result"] for op in creating["operations"]] == ["succeeded", "failed"]
    assert any("image build failed" in line for line in creating["logs"]["inference-server"])
    endpoint = backend.workspace.endpoint("fraud-detection-endpoint")
    assert endpoint.traffic == {} and endpoint.deployments[GREEN].provisioning_state == "Failed"


def test_a_mirror_on_a_first_rollout_is_not_applied_and_the_reason_says_so() -> None:
    result, _, backend = first_rollout({"mirror": {"percent": 20, "window": "PT10M"}})
    assert result.outcome == "promoted" and "mirror not applied: the endpoint had no live traffic" in result.record["reason"]
    assert phases(result) == ["creating"] and backend.workspace.endpoint("fraud-detection-endpoint").mirror_traffic == {}


def test_a_retry_after_an_interrupted_first_rollout_is_a_first_rollout_too() -> None:
    """An abort while the endpoint is created leaves it with no deployment; the retry creates the deployment on
    it and gives it 100% (before the fix: created it, then failed pre-flight "name old_deployment")."""
    from datetime import timedelta

    world = scenario({"endpoint": ENDPOINT_SPEC}, endpoint=NEW_ENDPOINT, health=GREEN_HEALTH,
                     controls=[{"at": "PT1M", "action": "abort"}])
    clock = VirtualClock(SIMULATION_START)
    backend = build_workspace(world, clock.now)
    assert run_simulation(world, backend, clock).outcome == "aborted"
    clock.advance(timedelta(minutes=5))
    retry = scenario({"endpoint": ENDPOINT_SPEC}, endpoint=NEW_ENDPOINT, health=GREEN_HEALTH)
    result = run_simulation(retry, backend, clock)
    assert result.outcome == "promoted", result.record["reason"]
    assert result.record["phases"][0]["decision"] == {"create_endpoint": False, "create_deployment": True,
                                                      "refusal": None}
    assert backend.workspace.endpoint("fraud-detection-endpoint").traffic == {GREEN: 100}
    assert [w[0] for w in backend.lifecycle(None).writes] == ["create_endpoint", "create"]



@pytest.mark.parametrize("endpoint, field", [
    pytest.param({**NEW_ENDPOINT, "exists": "no"}, "endpoint.exists", id="exists-not-a-bool"),
    pytest.param({**NEW_ENDPOINT, "deployments": {BLUE: {"traffic": 100}}}, "endpoint.deployments",
                 id="deployments-of-a-missing-endpoint"),
])
def test_a_bad_missing_endpoint_scenario_names_the_field(endpoint: dict[str, Any], field: str) -> None:
    from rollout.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as caught:
        scenario({"endpoint": ENDPOINT_SPEC}, endpoint=endpoint, health=GREEN_HEALTH)
    assert [p.field for p in caught.value.problems] == [field]


# --- a first rollout is judged after it gets 100% -------------------------------------------------

WINDOWED = {"observation_window": "PT5M", "bake_time": "PT10M"}
AT_100 = 840.0        # the endpoint takes 2 virtual minutes, the deployment 12: green-v2 gets 100% at +14 min
KEPT = "green-v2 kept for inspection"


def checks(result: Any) -> list[dict[str, Any]]:
    return [e for e in result.timeline if e["kind"] == "health_check"]


def endpoint_after(backend: Any) -> Any:
    return backend.workspace.endpoint("fraud-detection-endpoint")


def test_a_first_rollout_is_promoted_only_after_its_window_and_bake() -> None:
    result, life, backend = first_rollout({**WINDOWED, "autoscale": True, "max_error_rate_increase": 0.001,
                                           "traffic_steps": None})
    assert result.outcome == "promoted", result.record["reason"]
    assert result.record["reason"] == ("the endpoint's first deployment: green-v2 serving 100%, healthy in its window "
                                       "and its bake")
    assert traffic(result) == [(AT_100, {GREEN: 100})] and result.elapsed_seconds == AT_100 + 15 * 60
    judged = checks(result)
    assert [c["at_seconds"] for c in judged] == [AT_100 + 60 * k for k in range(1, 16)]
    assert all(c["verdict"] == "pass" and c["old"] is None for c in judged)
    assert result.record["steps_completed"] == [100] and result.record["plan"]["old"] is None
    assert result.record["baseline"]["judged"].startswith("on the absolute thresholds only: error rate above")
    assert "max_error_rate_increase and max_latency_ratio not applied" in result.record["baseline"]["judged"]
    autoscaling = result.record["phases"][-1]
    assert autoscaling["phase"] == "autoscaling" and autoscaling["started_at"].endswith("T00:29:00+00:00")
    assert endpoint_after(backend).traffic == {GREEN: 100}


@pytest.mark.parametrize("health, rollout, at_most, completed, says", [
    pytest.param({"from": "PT16M", "error_rate": 0.2, "latency_p99_ms": 140}, {}, 17 * 60, [],
                 "regression detected", id="errors-in-the-window"),
    pytest.param({"from": "PT22M", "error_rate": 0.2, "latency_p99_ms": 140}, {}, 23 * 60, [100],
                 "regression detected", id="errors-in-the-bake"),
    # the sign test needs about 10 minutes of p99 over the limit: caught in the bake
    pytest.param({"from": "PT16M", "error_rate": 0.002, "latency_p99_ms": 900}, {"latency_p99_threshold_ms": 300},
                 27 * 60, [100], "p99 latency", id="latency-after-100"),
])
def test_a_first_rollout_failing_after_100_percent_is_rolled_back_to_zero(health: dict[str, Any],
                                                                          rollout: dict[str, Any], at_most: int,
                                                                          completed: list[int], says: str) -> None:
    sick = {GREEN: [{"from": "PT0S", "error_rate": 0.002, "latency_p99_ms": 140}, health]}
    result, life, backend = first_rollout({**WINDOWED, **rollout}, health=sick)
    assert result.outcome == "rolled_back", result.record["reason"]
    reason = result.record["reason"]
    assert reason.startswith("the endpoint's first deployment green-v2: ") and says in reason and KEPT in reason
    assert "traffic returned to 0% everywhere, as before the rollout" in reason
    (first_at, first), (back_at, back) = traffic(result)
    assert (first_at, first, back) == (AT_100, {GREEN: 100}, {}) and back_at <= at_most
    assert result.record["final_traffic"] == {} and result.record["steps_completed"] == completed
    endpoint = endpoint_after(backend)
    assert endpoint.traffic == {} and endpoint.deployments[GREEN].provisioning_state == "Succeeded"
    assert [w[0] for w in life.writes] == ["create_endpoint", "create"]     # nothing deleted
    assert "autoscaling" not in phases(result)


def test_an_alert_after_100_percent_rolls_a_first_rollout_back_to_zero() -> None:
    result, life, backend = first_rollout({**WINDOWED, "autoscale": True},
                                          alerts=[{"at": "PT16M30S", "payload": "alerts/endpoint-5xx-fired.json"}])
    assert result.outcome == "rolled_back"
    assert "fraud-detection-green-5xx" in result.record["reason"] and KEPT in result.record["reason"]
    assert traffic(result) == [(AT_100, {GREEN: 100}), (990.0, {})] and result.elapsed_seconds == 990
    assert endpoint_after(backend).traffic == {} and GREEN in endpoint_after(backend).deployments
    assert list(backend.autoscale(None).settings) == []


@pytest.mark.parametrize("controls, outcome, ended_at, says", [
    pytest.param([{"at": "PT16M", "action": "abort", "reason": "wrong model"}], "aborted", 16 * 60,
                 "the endpoint's first deployment green-v2: wrong model", id="abort-in-the-window"),
    pytest.param([{"at": "PT22M", "action": "abort", "reason": "wrong model"}], "aborted", 22 * 60,
                 "wrong model", id="abort-in-the-bake"),
    pytest.param([{"at": "PT16M", "action": "rollback", "reason": "dashboards"}], "rolled_back", 16 * 60,
                 "dashboards", id="rollback-in-the-window"),
    pytest.param([{"at": "PT16M", "action": "promote", "reason": "ship it"}], "promoted", 16 * 60,
                 "promoted on request before its window ended (ship it)", id="promote-skips-the-window"),
    pytest.param([{"at": "PT16M", "action": "pause", "reason": "look"}, {"at": "PT40M", "action": "resume"}],
                 "promoted", (40 + 5 + 10) * 60, "healthy in its window and its bake", id="pause-holds-the-window"),
    pytest.param([{"at": "PT16M", "action": "pause"}, {"at": "PT20M", "action": "abort", "reason": "no"}],
                 "aborted", 20 * 60, "no", id="abort-while-paused"),
])
def test_control_events_in_a_first_rollouts_window(controls: list[dict[str, str]], outcome: str, ended_at: int,
                                                    says: str) -> None:
    result, _, backend = first_rollout(WINDOWED, controls=controls)
    assert result.outcome == outcome and says in result.record["reason"]
    assert result.elapsed_seconds == ended_at
    final = {GREEN: 100} if outcome == "promoted" else {}
    assert traffic(result)[0] == (AT_100, {GREEN: 100}) and endpoint_after(backend).traffic == final
    if outcome != "promoted":
        assert traffic(result)[1:] == [(float(ended_at), {})] and KEPT in result.record["reason"]


def test_a_first_rollout_paused_in_its_window_still_rolls_back_on_its_judge() -> None:
    sick = {GREEN: [{"from": "PT0S", "error_rate": 0.002, "latency_p99_ms": 140},
                    {"from": "PT20M", "error_rate": 0.2, "latency_p99_ms": 140}]}
    result, _, backend = first_rollout(WINDOWED, health=sick, controls=[{"at": "PT16M", "action": "pause"}])
    assert result.outcome == "rolled_back" and "regression detected" in result.record["reason"]
    assert endpoint_after(backend).traffic == {} and result.elapsed_seconds <= 21 * 60


def test_a_first_rollouts_rollback_is_retried_until_traffic_is_back_at_zero() -> None:
    sick = {GREEN: [{"from": "PT0S", "error_rate": 0.002, "latency_p99_ms": 140},
                    {"from": "PT16M", "error_rate": 0.2, "latency_p99_ms": 140}]}
    result, _, backend = first_rollout(WINDOWED, health=sick, faults=[
        {"operation": "set_traffic", "error": "service", "from": "PT16M", "until": "PT25M"}])
    assert result.outcome == "rolled_back" and endpoint_after(backend).traffic == {}
    assert result.record["rollback"]["attempts"] > 1 and traffic(result)[-1][1] == {}
    assert traffic(result)[-1][0] >= 25 * 60


def test_capacity_on_a_first_rollout_serves_at_instance_count_and_says_why() -> None:
    result, life, backend = first_rollout({"capacity": {"max_instances": 6}, "autoscale": True,
                                           "traffic_steps": [10, 50, 100], "cleanup": "delete"})
    assert result.outcome == "promoted", result.record["reason"]
    capacity = result.record["phases"][0]["capacity"]
    assert (capacity["instances"], capacity["needed_cores"], capacity["old_instances"]) == ([1], 8, None)
    assert "no old deployment to size from: the new deployment serves 100% at 1 instance(s)" in capacity["note"]
    assert "autoscale takes over after promotion" in capacity["note"]
    assert [w[0] for w in life.writes] == ["create_endpoint", "create"]       # no scale, no delete
    assert endpoint_after(backend).deployments[GREEN].instance_count == 1
    assert phases(result) == ["creating", "autoscaling"]
    assert "traffic_steps [10, 50, 100] not applied" in result.record["reason"]
    assert "cleanup delete not applied" in result.record["reason"]


def test_a_first_rollout_whose_instance_count_the_quota_cannot_cover_fails_before_anything() -> None:
    result, life, backend = first_rollout({"capacity": {"max_instances": 6},
                                           "deployment": {**SPEC, "instance_count": 3}},
                                          lifecycle={"quota": {"Standard_DS3_v2": 12}})
    assert result.outcome == "failed" and result.elapsed_seconds == 0
    assert "not enough quota for 3 x Standard_DS3_v2: needs 16 more cores" in result.record["reason"]
    assert result.record["reason"].endswith("or lower deployment.instance_count")
    assert life.writes == [] and "fraud-detection-endpoint" not in backend.workspace.endpoints


LONG_BAKE = {"observation_window": "PT5M", "bake_time": "PT1H", "max_error_rate_increase": 0.01,
             "max_latency_ratio": 2, "traffic_steps": None}


def test_a_long_first_rollout_window_continues_as_new_with_its_plan_and_judge() -> None:
    result, _, backend = first_rollout(LONG_BAKE)
    assert result.outcome == "promoted" and result.record["reason"].endswith("healthy in its window and its bake")
    assert result.elapsed_seconds == AT_100 + 65 * 60 and len(checks(result)) == 65
    assert len(result.history) < 60, "the last execution holds at most 5 checks (674 events in one execution before)"
    assert set(result.record["last_health"]["evidence"]) == {"errors"}, "absolute thresholds only after a handover"
    assert result.record["plan"]["old"] is None and result.record["steps_completed"] == [100]
    assert endpoint_after(backend).traffic == {GREEN: 100}


@pytest.mark.parametrize("top, outcome, says", [
    pytest.param({"controls": [{"at": "PT60M", "action": "abort", "reason": "wrong model"}]}, "aborted", "wrong model",
                 id="abort-after-handovers"),
    pytest.param({"health": {GREEN: [{"from": "PT0S", "error_rate": 0.002, "latency_p99_ms": 140},
                                     {"from": "PT50M", "error_rate": 0.2, "latency_p99_ms": 140}]}},
                 "rolled_back", "regression detected", id="judge-after-handovers"),
])
def test_a_first_rollout_continued_as_new_still_rolls_back_to_zero(top: dict[str, Any], outcome: str, says: str) -> None:
    result, life, backend = first_rollout(LONG_BAKE, **top)
    assert result.outcome == outcome and says in result.record["reason"] and KEPT in result.record["reason"]
    assert endpoint_after(backend).traffic == {} and GREEN in endpoint_after(backend).deployments
    assert [t for _, t in traffic(result)] == [{GREEN: 100}, {}] and [w[0] for w in life.writes] == [
        "create_endpoint", "create"]
    assert len(result.history) < 60, "it ended in an execution continued as new"


@pytest.mark.parametrize("top, outcome, final", [
    pytest.param({}, "promoted", {GREEN: 100}, id="promoted"),
    pytest.param({"alerts": [{"at": "PT16M30S", "payload": "alerts/endpoint-5xx-fired.json"}]}, "rolled_back", {},
                 id="rolled-back-by-an-alert"),
])
def test_a_first_rollout_tells_started_and_its_step_then_its_outcome(top: dict[str, Any], outcome: str,
                                                                     final: dict[str, int]) -> None:
    from rollout.notify import CLOUDEVENT_TYPE_PREFIX
    from tests.notify.receiver import Receiver

    receiver = Receiver()
    try:
        result, _, _ = first_rollout({**WINDOWED, "notify": [{"url": receiver.url()}]}, **top)
    finally:
        receiver.close()
    assert result.outcome == outcome
    bodies = [r.json() for r in receiver.received]
    assert [b["type"].removeprefix(CLOUDEVENT_TYPE_PREFIX) for b in bodies] == ["started", "step", outcome]
    assert bodies[0]["data"]["traffic"] == {} and bodies[1]["data"]["traffic"] == {GREEN: 100}
    assert bodies[1]["data"]["current_step"] == 100 and bodies[-1]["data"]["traffic"] == final


def test_a_first_rollout_whose_100_percent_write_fails_ends_failed_with_traffic_at_zero() -> None:
    result, _, backend = first_rollout(WINDOWED, faults=[
        {"operation": "set_traffic", "error": "service", "from": "PT13M", "until": "PT20M"}])
    assert result.outcome == "failed" and "giving green-v2 100% failed" in result.record["reason"]
    assert KEPT in result.record["reason"] and endpoint_after(backend).traffic == {}
    assert checks(result) == [] and result.record["final_traffic"] == {}
    # Azure refused the write (a non-retryable 5xx here): nothing moved, so the rollback to 0% is in place
    assert [(h["kind"], h["traffic"]) for h in result.record["history"]] == [("step", {}), ("rollback", {})]
