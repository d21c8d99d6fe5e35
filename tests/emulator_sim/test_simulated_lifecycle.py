"""The simulated lifecycle: provisioning in virtual minutes, failure kinds, quota, logs, deletion rules, autoscale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emulator.simulated_autoscale import SimulatedAutoscale
from emulator.simulated_azure import SimulatedWorkspace
from emulator.simulated_lifecycle import SimulatedLifecycle
from rollout.autoscale import AutoscaleSpec, autoscale_setting
from rollout.deployment_spec import EndpointSpec, parse_deployment_spec, spec_differences
from rollout.errors import ServiceError, UpdateConflict
from rollout.model import DeploymentState, WorkspaceRef
from rollout.operation import NOT_FOUND, Observed, next_step, watch

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WS = WorkspaceRef("s", "r", "w")
SPEC = parse_deployment_spec({"model": "azureml:fraud:2", "environment": "azureml:env:1",
                              "instance_type": "Standard_DS3_v2", "instance_count": 2})


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at

    def advance(self, minutes: float) -> None:
        self.at += timedelta(minutes=minutes)


def world(update_seconds: float = 0.0, **options: object) -> tuple[SimulatedLifecycle, Clock]:
    clock = Clock()
    ws = SimulatedWorkspace(WS, clock, update_seconds)
    ws.add_endpoint("ep", [DeploymentState("blue", "Succeeded", 3, "Standard_DS3_v2")], {"blue": 100})
    return SimulatedLifecycle(ws, **options), clock  # type: ignore[arg-type]


def test_creation_takes_virtual_minutes_and_is_written_once() -> None:
    life, clock = world()
    started = life.begin_create_deployment("ep", "green", SPEC)
    assert started.started and life.deployment_status("ep", "green") == Observed("Creating", 2)
    clock.advance(11)
    assert life.deployment_status("ep", "green").state == "Creating"
    assert not life.begin_create_deployment("ep", "green", SPEC).started
    clock.advance(1)
    assert life.deployment_status("ep", "green", started.operation_url) == Observed("Succeeded", 2)
    assert [w[0] for w in life.writes] == ["create"]
    observed = life.read_deployment("ep", "green")
    assert observed is not None and spec_differences(SPEC, observed) == []


@pytest.mark.parametrize("kind, minutes, code, log_says", [
    pytest.param("image_build", 8, "ImageBuildFailure", "image build failed", id="image-build"),
    pytest.param("crash_loop", 12, "ResourceNotReady", "FileNotFoundError", id="crash-loop"),
])
def test_failure_kinds_end_failed_with_azures_code_and_telling_logs(kind: str, minutes: int, code: str,
                                                                     log_says: str) -> None:
    life, clock = world()
    life.failures["green"] = kind
    started = life.begin_create_deployment("ep", "green", SPEC)
    clock.advance(minutes - 1)
    assert life.deployment_status("ep", "green").state == "Creating"
    clock.advance(1)
    seen = life.deployment_status("ep", "green", started.operation_url)
    assert (seen.state, seen.error_code) == ("Failed", code)
    step = next_step(watch("create", "green", T0), seen, clock.at)
    assert step.action == "failed" and step.fetch_logs and code in step.reason
    assert log_says in life.get_logs("ep", "green", 100)
    assert len(life.get_logs("ep", "green", 100).splitlines()) <= 100


def test_out_of_quota_on_the_put_by_default() -> None:
    life, _ = world(quota_limits={"standardDSv2Family": 24})
    # blue holds ceil(1.2 x 3) x 4 = 16 of 24; green at 2 needs 12 more.
    with pytest.raises(ServiceError, match="Current usage/limit: 16/24. Additional needed: 12"):
        life.begin_create_deployment("ep", "green", SPEC)
    assert life.writes == [] and "green" not in life.workspace.endpoint("ep").deployments


def test_out_of_quota_in_the_operation_when_asked() -> None:
    life, clock = world(quota_limits={"standardDSv2Family": 24}, quota_failure_on="operation")
    started = life.begin_create_deployment("ep", "green", SPEC)
    clock.advance(1)
    seen = life.deployment_status("ep", "green", started.operation_url)
    assert (seen.state, seen.error_code) == ("Failed", "BadRequest") and "Not enough quota" in (seen.error_message or "")


def test_quota_usages_count_both_deployments() -> None:
    life, clock = world()
    before = {u.name: u.current for u in life.quota_usages()}
    life.begin_create_deployment("ep", "green", SPEC)
    after = {u.name: u.current for u in life.quota_usages()}
    family = "Standard DSv2 Family Cluster Dedicated vCPUs"
    assert (before[family], after[family]) == (16, 28)


def test_no_create_while_the_endpoint_is_updating() -> None:
    life, _ = world(update_seconds=60)
    life.workspace.update_traffic("ep", {"blue": 100}, {}, by="someone")
    life.workspace.endpoint("ep").traffic = {"blue": 100}
    with pytest.raises(ServiceError, match="Updating provisioning state"):
        life.begin_create_deployment("ep", "green", SPEC)


def test_scale_holds_quota_at_once_and_reads_back_after_minutes() -> None:
    life, clock = world()
    life.begin_create_deployment("ep", "green", SPEC)
    clock.advance(12)
    assert life.begin_scale("ep", "green", 4).started
    assert life.deployment_status("ep", "green") == Observed("Updating", 2)
    clock.advance(4)
    assert life.deployment_status("ep", "green") == Observed("Succeeded", 4)
    assert not life.begin_scale("ep", "green", 4).started
    assert [w[0] for w in life.writes] == ["create", "scale"]


def test_scale_beyond_quota_is_refused() -> None:
    life, _ = world(quota_limits={"standardDSv2Family": 24})
    with pytest.raises(ServiceError, match="Not enough quota"):
        life.begin_scale("ep", "blue", 6)  # ceil(1.2 x 6) x 4 = 32 cores > 24


def test_deployment_with_traffic_is_never_deleted() -> None:
    life, clock = world()
    with pytest.raises(ServiceError, match="has 100% of the traffic"):
        life.begin_delete("ep", "blue")
    life.workspace.endpoint("ep").deployments["old"] = DeploymentState("old", "Succeeded", 1, "Standard_DS3_v2")
    life.workspace.endpoint("ep").mirror_traffic = {"old": 10}
    with pytest.raises(ServiceError, match="has 10% of the traffic"):
        life.begin_delete("ep", "old")
    assert life.writes == []


def test_delete_takes_minutes_then_not_found_and_is_idempotent() -> None:
    life, clock = world()
    life.workspace.endpoint("ep").deployments["old"] = DeploymentState("old", "Succeeded", 1, "Standard_DS3_v2")
    assert life.begin_delete("ep", "old").started
    assert not life.begin_delete("ep", "old").started
    assert life.deployment_status("ep", "old").state == "Deleting"
    clock.advance(2)
    assert life.deployment_status("ep", "old").state == NOT_FOUND
    assert not life.begin_delete("ep", "old").started
    assert [w[0] for w in life.writes] == ["delete"]


def test_endpoint_creation() -> None:
    life, clock = world()
    assert life.begin_create_endpoint("new-ep", EndpointSpec()).started
    assert life.endpoint_status("new-ep").state == "Creating"
    with pytest.raises(ServiceError, match="Creating provisioning state"):
        life.begin_create_deployment("new-ep", "green", SPEC)
    clock.advance(2)
    assert life.endpoint_status("new-ep").state == "Succeeded"
    assert not life.begin_create_endpoint("new-ep", EndpointSpec()).started
    assert life.begin_create_deployment("new-ep", "green", SPEC).started


def test_logs_refuse_the_rest_spelling() -> None:
    life, _ = world()
    with pytest.raises(ServiceError, match="Invalid container type 'InferenceServer'"):
        life.get_logs("ep", "blue", 10, container_type="InferenceServer")
    assert "Listening" in life.get_logs("ep", "blue", 10)


DEP = f"{WS.endpoint_id('ep')}/deployments/blue"


@pytest.mark.parametrize("change, problem", [
    pytest.param(lambda b: b["properties"].update(profiles=[]), "1 to 20 profiles", id="no-profiles"),
    pytest.param(lambda b: b["properties"].update(targetResourceUri=DEP.replace("blue", "ghost")), "does not exist",
                 id="target-missing"),
    pytest.param(lambda b: b["properties"]["profiles"][0]["capacity"].update(minimum=1), "strings",
                 id="capacity-not-string"),
    pytest.param(lambda b: b["properties"]["profiles"][0]["capacity"].update(default="20"), "minimum <= default",
                 id="default-above-max"),
    pytest.param(lambda b: b["properties"]["profiles"][0]["rules"][1]["scaleAction"].update(direction="Down"),
                 "Increase or Decrease", id="bad-direction"),
])
def test_autoscale_setting_rules(change, problem: str) -> None:
    life, _ = world()
    port = SimulatedAutoscale(life.workspace)
    body = autoscale_setting(AutoscaleSpec(), DEP, WS.endpoint_id("ep"), "eastus", 3)
    assert port.put_setting("s1", body)["properties"]["enabled"] is True
    change(body)
    with pytest.raises(ServiceError, match=problem):
        port.put_setting("s2", body)
    assert port.get_setting("s2") is None
    port.delete_setting("s1")
    port.delete_setting("s1")
    assert port.get_setting("s1") is None


def test_a_scenario_world_configures_the_simulation() -> None:
    from emulator.lifecycle_world import LifecycleWorld, parse_world
    from emulator.simulated_lifecycle import configure

    parsed, problems = parse_world({"create_minutes": 20, "quota": {"Standard_DS3_v2": 24}, "failures": {"Green": "crash_loop"}})
    assert problems == [] and parsed == LifecycleWorld(create_minutes=20.0, quota={"standardDSv2Family": 24},
                                                      failures={"green": "crash_loop"})
    life, _ = world()
    configure(life, parsed)
    with pytest.raises(ServiceError, match="usage/limit: 16/24"):
        life.begin_create_deployment("ep", "green", SPEC)
    assert life.durations["create"] == timedelta(minutes=20) and life.failures == {"green": "crash_loop"}


@pytest.mark.parametrize("data, field", [
    pytest.param({"create_minutes": 0}, "lifecycle.create_minutes", id="zero-minutes"),
    pytest.param({"quota": {"x": -1}}, "lifecycle.quota", id="negative-quota"),
    pytest.param({"failures": {"green": "meteor"}}, "lifecycle.failures", id="unknown-failure"),
    pytest.param({"quota_failure_on": "later"}, "lifecycle.quota_failure_on", id="bad-failure-point"),
    pytest.param({"regions": 2}, "lifecycle.regions", id="unknown-field"),
])
def test_a_bad_world_names_the_field(data: dict[str, object], field: str) -> None:
    from emulator.lifecycle_world import parse_world

    assert field in [name for name, _ in parse_world(data)[1]]


@pytest.mark.parametrize("count_mirrored, green_requests", [
    pytest.param(False, 0, id="mirrored-not-counted-by-default"),
    pytest.param(True, 200, id="counted-when-the-scenario-says-so"),
])
def test_mirrored_requests_in_metrics(count_mirrored: bool, green_requests: int) -> None:
    from emulator.simulated_azure import SyntheticMetrics

    life, clock = world()
    ws = life.workspace
    ws.endpoint("ep").deployments["green"] = DeploymentState("green", "Succeeded", 1, "Standard_DS3_v2")
    ws.update_traffic("ep", {"blue": 100}, {"green": 20}, by="test")
    metrics = SyntheticMetrics(ws, 100, {})
    metrics.count_mirrored = count_mirrored
    found = metrics.deployment_metrics("ep", ["green", "blue"], T0, T0 + timedelta(minutes=10))
    assert (found["green"].requests, found["blue"].requests) == (green_requests, 1000)


def test_no_traffic_while_the_endpoint_is_being_created_and_no_delete_of_a_deployment_being_created() -> None:
    life, clock = world()
    assert life.begin_create_endpoint("new", EndpointSpec("key", None)).started
    with pytest.raises(UpdateConflict, match="endpoint 'new' is Creating"):
        life.workspace.update_traffic("new", {}, {}, by="test")
    assert life.begin_create_deployment("ep", "green", SPEC).started
    with pytest.raises(UpdateConflict, match="deployment 'green' is Creating"):
        life.begin_delete("ep", "green")
    assert [w[0] for w in life.writes] == ["create_endpoint", "create"]
    assert life.workspace.endpoint("new").changes[-1].by == "setup"
    clock.advance(12)
    assert life.begin_delete("ep", "green").started
