"""Autoscale profile, cleanup, revert window and the long-operation poll state machine: named rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Callable

import pytest

from rollout.autoscale import AutoscaleSpec, autoscale_setting, parse_autoscale, setting_name
from rollout.capacity import CapacitySpec, QuotaUsage, VmSize
from rollout.cleanup import CleanupSpec, cleanup_decision, parse_cleanup, revert_deadline, revert_refusal
from rollout.errors import InvalidRequest
from rollout.lifecycle_plan import (
    CapacityDecision,
    CreationDecision,
    capacity_decision,
    creation_decision,
    is_first_rollout,
)
from rollout.operation import LOG_LINES, Observed, OperationStart, last_lines, next_step, watch

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DEP = ("/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"
       "/onlineEndpoints/ep/deployments/green")
EP = DEP.rsplit("/deployments/", 1)[0]


# --- autoscale ---------------------------------------------------------------------------------


def rules_of(body: dict) -> list[tuple[str, str, str, str, float]]:
    return [(r["metricTrigger"]["metricName"], r["metricTrigger"]["operator"], r["scaleAction"]["direction"],
             r["scaleAction"]["cooldown"], r["metricTrigger"]["threshold"]) for r in body["properties"]["profiles"][0]["rules"]]


def test_default_profile_scales_out_fast_and_in_slowly() -> None:
    body = autoscale_setting(parse_autoscale(True), DEP, EP, "eastus", instance_count=3)
    assert body["properties"]["targetResourceUri"] == DEP and body["properties"]["enabled"] is True
    assert body["properties"]["profiles"][0]["capacity"] == {"minimum": "1", "maximum": "10", "default": "3"}
    assert rules_of(body) == [("CpuUtilizationPercentage", "GreaterThan", "Increase", "PT5M", 70.0),
                              ("CpuUtilizationPercentage", "LessThan", "Decrease", "PT30M", 25.0)]


def test_every_rule_kind_with_its_metric_source() -> None:
    spec = parse_autoscale({"min_instances": 2, "max_instances": 8, "default_instances": 4, "memory_out_percent": 80,
                            "requests_out_per_minute": 600, "latency_out_ms": 250, "scale_in_cooldown": "PT1H"})
    body = autoscale_setting(spec, DEP, EP, "eastus", instance_count=1)
    rules = body["properties"]["profiles"][0]["rules"]
    sources = {r["metricTrigger"]["metricName"]: r["metricTrigger"]["metricResourceUri"] for r in rules}
    assert sources == {"CpuUtilizationPercentage": DEP, "MemoryUtilizationPercentage": DEP,
                       "RequestsPerMinute": EP, "RequestLatency": EP}
    assert [r["scaleAction"]["direction"] for r in rules if r["metricTrigger"]["operator"] == "LessThan"] == ["Decrease"]
    assert body["properties"]["profiles"][0]["capacity"] == {"minimum": "2", "maximum": "8", "default": "4"}
    assert rules[-1]["scaleAction"]["cooldown"] == "PT1H"


@pytest.mark.parametrize("count, default", [
    pytest.param(0, "1", id="below-min"), pytest.param(5, "5", id="inside"), pytest.param(40, "10", id="above-max")])
def test_default_capacity_is_current_count_clamped(count: int, default: str) -> None:
    body = autoscale_setting(AutoscaleSpec(), DEP, EP, "eastus", instance_count=count)
    assert body["properties"]["profiles"][0]["capacity"]["default"] == default


@pytest.mark.parametrize("data, field", [
    pytest.param({"min_instances": 0}, "autoscale.min_instances", id="min-zero"),
    pytest.param({"max_instances": 60}, "autoscale.max_instances", id="max-above-azure-limit"),
    pytest.param({"min_instances": 5, "max_instances": 3}, "autoscale.min_instances", id="min-above-max"),
    pytest.param({"default_instances": 20}, "autoscale.default_instances", id="default-above-max"),
    pytest.param({"cpu_in_percent": 80}, "autoscale.cpu_in_percent", id="in-above-out-flaps"),
    pytest.param({"cpu_out_percent": 101}, "autoscale.cpu_out_percent", id="percent-above-100"),
    pytest.param({"latency_out_ms": 0}, "autoscale.latency_out_ms", id="latency-zero"),
    pytest.param({"scale_out_cooldown": "PT10S"}, "autoscale.scale_out_cooldown", id="cooldown-below-azure-min"),
    pytest.param({"cpu_out_percent": None}, "autoscale", id="no-scale-out-rule"),
    pytest.param({"predictive": True}, "autoscale.predictive", id="unknown-field"),
    pytest.param("yes", "autoscale", id="not-an-object"),
])
def test_parse_autoscale_names_the_field(data: object, field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_autoscale(data)
    assert field in [p.field for p in caught.value.problems]


def test_setting_name_is_per_deployment() -> None:
    assert setting_name("Fraud-EP", "Green") == "aml-rollout-fraud-ep-green"


# --- cleanup and revert ------------------------------------------------------------------------


@pytest.mark.parametrize("mode, traffic, mirror, instances, action, target", [
    pytest.param("keep", {"green": 100}, {}, 3, "none", None, id="keep"),
    pytest.param("delete", {"green": 100}, {}, 3, "delete", None, id="delete-idle-old"),
    pytest.param("delete", {"green": 90, "blue": 10}, {}, 3, "none", None, id="never-delete-with-live-traffic"),
    pytest.param("delete", {"green": 100}, {"BLUE": 10}, 3, "none", None, id="never-delete-with-mirror-traffic"),
    pytest.param("delete", {"green": 100}, {}, None, "none", None, id="already-gone"),
    pytest.param("scale_down", {"green": 100}, {}, 4, "scale", 1, id="scale-down-to-one"),
    pytest.param("scale_down", {"green": 100}, {}, 1, "none", None, id="already-at-minimum"),
    pytest.param("scale_down", {"green": 50, "Blue": 50}, {}, 4, "none", None, id="never-scale-down-with-traffic"),
])
def test_cleanup_decision(mode: str, traffic: dict[str, int], mirror: dict[str, int], instances: int | None,
                          action: str, target: int | None) -> None:
    decision = cleanup_decision(CleanupSpec(mode), "blue", traffic, mirror, instances)
    assert (decision.action, decision.instances) == (action, target)


@pytest.mark.parametrize("mode, window, field", [
    pytest.param("remove", None, "cleanup", id="unknown-mode"),
    pytest.param(None, "P2D", "revert_window", id="window-too-long"),
    pytest.param(None, "half an hour", "revert_window", id="window-not-duration"),
])
def test_parse_cleanup_names_the_field(mode: object, window: object, field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_cleanup(mode, window)
    assert [p.field for p in caught.value.problems] == [field]


def test_parse_cleanup_defaults() -> None:
    assert parse_cleanup(None, None) == CleanupSpec("keep", timedelta(minutes=30))


@pytest.mark.parametrize("now, deadline, refused", [
    pytest.param(T0, None, "only after promotion", id="before-promotion"),
    pytest.param(T0 + timedelta(minutes=29), T0 + timedelta(minutes=30), None, id="inside-window"),
    pytest.param(T0 + timedelta(minutes=30), T0 + timedelta(minutes=30), "ended", id="window-over"),
])
def test_revert_refusal(now: datetime, deadline: datetime | None, refused: str | None) -> None:
    found = revert_refusal(now, deadline)
    assert (found is None) if refused is None else (found is not None and refused in found)


def test_revert_deadline_adds_bake_and_window() -> None:
    assert revert_deadline(T0, timedelta(minutes=10), CleanupSpec()) == T0 + timedelta(minutes=40)


# --- long operations ----------------------------------------------------------------------------


CREATE = watch("create", "green", T0)
SCALE = watch("scale", "green", T0, instances=3)
DELETE = watch("delete", "blue", T0)


@pytest.mark.parametrize("operation, observed, minutes, action, logs, says", [
    pytest.param(CREATE, Observed("Creating"), 1, "wait", False, "Creating", id="create-in-progress"),
    pytest.param(CREATE, Observed("Succeeded", 1), 12, "succeeded", False, "Succeeded", id="create-done"),
    pytest.param(CREATE, Observed("Failed", 0, "ImageBuildFailure", "Image build failed."), 20, "failed", True,
                 "ImageBuildFailure: Image build failed.", id="create-image-build-fails-with-logs"),
    pytest.param(CREATE, Observed("Failed", 0, "BadRequest", "Not enough quota available for Standard_F4s_v2"), 1,
                 "failed", True, "Not enough quota", id="create-out-of-quota-in-operation"),
    pytest.param(CREATE, Observed("Canceled"), 3, "failed", True, "without a message", id="create-canceled"),
    pytest.param(CREATE, Observed("Creating"), 45, "failed", True, "timed out after 45 minutes", id="create-timeout"),
    pytest.param(CREATE, Observed("NotFound"), 5, "failed", False, "no longer exists", id="create-deleted-meanwhile"),
    pytest.param(SCALE, Observed("Updating", 2), 5, "wait", False, "Updating", id="scale-in-progress"),
    pytest.param(SCALE, Observed("Succeeded", 3), 5, "succeeded", False, "", id="scale-done"),
    pytest.param(SCALE, Observed("Succeeded", 5), 5, "failed", False, "reports 5 instances, not 3",
                 id="scale-overridden"),
    pytest.param(SCALE, Observed("Scaling", 2), 20, "failed", False, "timed out after 20 minutes", id="scale-timeout"),
    pytest.param(DELETE, Observed("Deleting"), 2, "wait", False, "Deleting", id="delete-in-progress"),
    pytest.param(DELETE, Observed("NotFound"), 2, "succeeded", False, "deleted", id="delete-done"),
    pytest.param(DELETE, Observed("Failed", None, "BadRequest", "has live traffic"), 2, "failed", False,
                 "has live traffic", id="delete-refused"),
])
def test_next_step(operation, observed: Observed, minutes: int, action: str, logs: bool, says: str) -> None:
    step = next_step(operation, observed, T0 + timedelta(minutes=minutes))
    assert (step.action, step.fetch_logs) == (action, logs)
    assert says in step.reason


def test_wait_never_polls_past_the_deadline() -> None:
    step = next_step(CREATE, Observed("Creating"), T0 + timedelta(minutes=44, seconds=30))
    assert step.poll_at == CREATE.deadline


def test_observed_round_trips() -> None:
    seen = Observed("Failed", 0, "ResourceNotReady", "User container has crashed")
    assert Observed.from_dict(seen.to_dict()) == seen


def test_last_lines_keeps_the_tail() -> None:
    text = "".join(f"line {n}\n" for n in range(250)) + "\n\n"
    kept = last_lines(text)
    assert len(kept) == LOG_LINES and kept[0] == "line 150" and kept[-1] == "line 249"


# --- creation and capacity decisions -------------------------------------------------------------



@pytest.mark.parametrize("endpoint, new, has_spec, differences, expected, refused", [
    pytest.param("NotFound", "NotFound", True, [], (True, True), None, id="new-endpoint-creates-both"),
    pytest.param("NotFound", "NotFound", False, [], (False, False), "give 'deployment' to create it",
                 id="new-endpoint-no-spec"),
    pytest.param("Updating", "NotFound", True, [], (False, False), "Updating, not Succeeded", id="endpoint-busy"),
    pytest.param("Succeeded", "NotFound", True, [], (False, True), None, id="creates-deployment"),
    pytest.param("Succeeded", "NotFound", False, [], (False, False), "give 'deployment'", id="missing-without-spec"),
    pytest.param("Succeeded", "Succeeded", True, [], (False, False), None, id="same-spec-used-as-is"),
    pytest.param("Succeeded", "Succeeded", True, ["model: wanted x"], (False, False), "never rebuilt",
                 id="different-spec-refused"),
    pytest.param("Succeeded", "Failed", True, [], (False, False), "is Failed", id="failed-deployment-refused"),
    pytest.param("Succeeded", "Succeeded", False, [], (False, False), None, id="todays-request-unchanged"),
])
def test_creation_decision(endpoint: str, new: str, has_spec: bool, differences: list[str],
                           expected: tuple[bool, bool], refused: str | None) -> None:
    decision = creation_decision(endpoint, new, "green", has_spec, differences, has_endpoint_spec=True)
    assert (decision.create_endpoint, decision.create_deployment) == expected
    assert (decision.refusal is None) if refused is None else (refused in (decision.refusal or ""))


@pytest.mark.parametrize("has_spec, has_endpoint_spec, refused", [
    pytest.param(True, True, None, id="both-creates"),
    pytest.param(True, False, "give 'endpoint' to create it", id="no-endpoint-spec-refused"),
    pytest.param(False, True, "give 'deployment' to create it", id="no-deployment-spec-refused"),
    pytest.param(False, False, "give 'endpoint' and 'deployment'", id="neither-refused"),
])
def test_a_missing_endpoint_needs_both_specs(has_spec: bool, has_endpoint_spec: bool, refused: str | None) -> None:
    decision = creation_decision("NotFound", "NotFound", "green", has_spec, [], has_endpoint_spec)
    assert decision.create_endpoint is (refused is None) and decision.create_deployment is (refused is None)
    assert (decision.refusal is None) if refused is None else (refused in (decision.refusal or ""))


DS3 = VmSize("Standard_DS3_v2", "standardDSv2Family", 4)
FAMILY = [QuotaUsage("Standard DSv2 Family Cluster Dedicated vCPUs", 16, 48)]


@pytest.mark.parametrize("spec, held, size, instances, needed, refused", [
    pytest.param(None, 0, DS3, (1, 1, 1), 8, None, id="no-capacity-keeps-instance-count"),
    pytest.param(CapacitySpec(), 0, DS3, (1, 2, 4), 20, None, id="prescale-fits"),
    pytest.param(CapacitySpec(headroom=3.0), 0, DS3, (1, 5, 9), 44, "needs 44 more cores", id="prescale-beyond-quota"),
    pytest.param(CapacitySpec(), 1, DS3, (1, 2, 4), 12, None, id="held-instances-counted"),
    pytest.param(CapacitySpec(), 0, None, (1, 2, 4), 0, "not offered", id="unknown-vm-size"),
])
def test_capacity_decision(spec: CapacitySpec | None, held: int, size: VmSize | None, instances: tuple[int, ...],
                           needed: int, refused: str | None) -> None:
    decision = capacity_decision(spec, (10, 50, 100), 3, 100, 1, held, size, FAMILY)
    assert (decision.instances, decision.needed_cores) == (instances, needed)
    assert (decision.refusal is None) if refused is None else (refused in (decision.refusal or ""))


@pytest.mark.parametrize("endpoint_state, traffic, deployments, old, first", [
    pytest.param("NotFound", {}, [], None, True, id="no-endpoint"),
    pytest.param("Succeeded", {}, [], None, True, id="empty-endpoint"),
    pytest.param("Succeeded", {}, ["Green-V2"], None, True, id="only-the-new-one-no-traffic"),
    pytest.param("Succeeded", {"blue-v1": 0}, ["blue-v1", "green-v2"], None, False, id="another-deployment-exists"),
    pytest.param("Succeeded", {"blue-v1": 100}, ["blue-v1"], None, False, id="another-serves"),
    pytest.param("NotFound", {}, [], "blue-v1", False, id="old-named"),
])
def test_is_first_rollout(endpoint_state: str, traffic: dict[str, int], deployments: list[str], old: str | None,
                          first: bool) -> None:
    assert is_first_rollout(endpoint_state, traffic, deployments, "green-v2", old) is first


@pytest.mark.parametrize("decide, wire", [     # decided in the test, not at collection (docs/mutation.md)
    pytest.param(lambda: creation_decision("Succeeded", "NotFound", "green", True, []),
                 {"create_endpoint": False, "create_deployment": True, "refusal": None}, id="creation-creates"),
    pytest.param(lambda: creation_decision("Updating", "NotFound", "green", True, []),
                 {"create_endpoint": False, "create_deployment": False,
                  "refusal": "the endpoint is Updating, not Succeeded"}, id="creation-refused"),
    pytest.param(lambda: capacity_decision(CapacitySpec(), (10, 50, 100), 3, 100, 1, 0, DS3, FAMILY),
                 {"instances": [1, 2, 4], "needed_cores": 20, "free_cores": 32, "refusal": None}, id="capacity-fits"),
    pytest.param(lambda: capacity_decision(None, (10,), 3, 100, 1, 0, DS3, []),
                 {"instances": [1], "needed_cores": 8, "free_cores": None, "refusal": None}, id="capacity-no-quota-line"),
])
def test_decisions_wire_form(decide: Callable[[], CreationDecision | CapacityDecision], wire: dict[str, object]) -> None:
    assert decide().to_dict() == wire


@pytest.mark.parametrize("endpoint, new, has_spec, differences, refusal", [
    pytest.param("NotFound", "NotFound", True, [], "the endpoint does not exist; give 'endpoint' to create it with "
                 "the new deployment (or check endpoint_name)", id="endpoint-spec-defaults-to-absent"),
    pytest.param("Succeeded", "Succeeded", True, ["model: wanted x", "environment: wanted y"],
                 "new_deployment 'green' exists with a different spec (model: wanted x; environment: wanted y); "
                 "it is never rebuilt in place: use a new deployment name", id="every-difference-listed"),
    pytest.param("Succeeded", "NotFound", False, [], "new_deployment 'green' does not exist; give 'deployment' to "
                 "create it", id="missing-deployment-named"),
    pytest.param("Succeeded", "Failed", True, [], "new_deployment 'green' exists but is Failed; delete it or use a "
                 "new name", id="failed-deployment-named"),
    pytest.param("Succeeded", "Failed", False, [], None, id="failed-without-spec-left-to-the-rollout"),
])
def test_creation_refusal_text(endpoint: str, new: str, has_spec: bool, differences: list[str],
                               refusal: str | None) -> None:
    assert creation_decision(endpoint, new, "green", has_spec, differences).refusal == refusal


@pytest.mark.parametrize("steps, size, usages, refusal", [
    pytest.param((), DS3, FAMILY, None, id="no-steps-checks-instance-count"),
    pytest.param((10, 50, 100), None, FAMILY, "the instance type is not offered for managed online endpoints in the "
                 "workspace's region", id="size-not-offered"),
    pytest.param((10, 50, 100), DS3, [QuotaUsage("Standard DSv2 Family Cluster Dedicated vCPUs", 40, 48)],
                 "not enough quota for 4 x Standard_DS3_v2: needs 20 more cores (ceil(1.2 x 4) x 4 vCPUs, Azure's 20% "
                 "upgrade reserve included), 8 free in 'Standard DSv2 Family Cluster Dedicated vCPUs'. Request more "
                 "quota for the family or lower capacity.max_instances", id="quota-refusal-names-the-peak"),
])
def test_capacity_decision_refusal_text(steps: tuple[int, ...], size: VmSize | None, usages: list[QuotaUsage],
                                        refusal: str | None) -> None:
    decision = capacity_decision(CapacitySpec(), steps, 3, 100, 1, 0, size, usages)
    assert decision.refusal == refusal
    if not steps:
        assert (decision.instances, decision.needed_cores, decision.free_cores) == ((), 8, 32)


@pytest.mark.parametrize("mode, traffic, mirror, instances, wire", [
    pytest.param("keep", {"green": 100}, {}, 3, {"action": "none", "reason": "cleanup is keep: 'Blue' stays as it is",
                                                 "instances": None, "remove_autoscale": False}, id="keep"),
    pytest.param("delete", {"green": 100}, {}, None, {"action": "none", "reason": "'Blue' no longer exists",
                                                      "instances": None, "remove_autoscale": False}, id="already-gone"),
    pytest.param("delete", {"green": 90, "BLUE": 10}, {"blue": 5}, 3,
                 {"action": "none", "reason": "'Blue' still holds 10% live traffic: it is neither scaled down nor deleted",
                  "instances": None, "remove_autoscale": False}, id="live-traffic-named-first"),
    pytest.param("scale_down", {"green": 100}, {"Blue": 10}, 3,
                 {"action": "none", "reason": "'Blue' still holds 10% mirror traffic: it is neither scaled down nor "
                  "deleted", "instances": None, "remove_autoscale": False}, id="mirror-traffic-named"),
    pytest.param("delete", {"green": 100}, {}, 3, {"action": "delete", "reason": "cleanup is delete: deleting 'Blue'",
                                                   "instances": None, "remove_autoscale": True}, id="delete"),
    pytest.param("scale_down", {"green": 100}, {}, 1,
                 {"action": "none", "reason": "'Blue' already runs 1 instance(s)", "instances": None,
                  "remove_autoscale": True}, id="at-minimum-still-removes-autoscale"),
    pytest.param("scale_down", {"green": 100}, {}, 2,
                 {"action": "scale", "reason": "cleanup is scale_down: 'Blue' from 2 to 1 instance", "instances": 1,
                  "remove_autoscale": True}, id="scale-down-from-two"),
])
def test_cleanup_decision_wire_form(mode: str, traffic: dict[str, int], mirror: dict[str, int], instances: int | None,
                                    wire: dict[str, object]) -> None:
    assert cleanup_decision(CleanupSpec(mode), "Blue", traffic, mirror, instances).to_dict() == wire


@pytest.mark.parametrize("mode, window, spec, problems", [
    pytest.param("scale_down", "PT1H", CleanupSpec("scale_down", timedelta(hours=1)), None, id="both-given"),
    pytest.param("delete", "P1D", CleanupSpec("delete", timedelta(days=1)), None, id="window-at-one-day"),
    pytest.param("drop", "P2D", None, [("x.cleanup", "must be one of keep, scale_down, delete"),
                                       ("x.revert_window", "must be at most P1D")], id="both-bad-prefixed"),
])
def test_parse_cleanup_values_and_text(mode: object, window: object, spec: CleanupSpec | None,
                                       problems: list[tuple[str, str]] | None) -> None:
    if problems is None:
        assert parse_cleanup(mode, window, "x.") == spec
        assert spec is not None and parse_cleanup(spec.to_dict()["mode"], spec.to_dict()["revert_window"]) == spec
        return
    with pytest.raises(InvalidRequest) as caught:
        parse_cleanup(mode, window, "x.")
    assert [(p.field, p.message) for p in caught.value.problems] == problems


@pytest.mark.parametrize("now, deadline, refusal", [
    pytest.param(T0, None, "a revert is possible only after promotion, within the revert window", id="before-promotion"),
    pytest.param(T0 + timedelta(seconds=1), T0, "the revert window ended at 2026-01-01T12:00:00+00:00", id="after"),
])
def test_revert_refusal_text(now: datetime, deadline: datetime | None, refusal: str) -> None:
    assert revert_refusal(now, deadline) == refusal


ENDPOINT_CREATE = watch("create_endpoint", "ep", T0)


@pytest.mark.parametrize("operation, observed, seconds, action, reason, poll_in", [
    pytest.param(ENDPOINT_CREATE, Observed("Creating"), 0, "wait", "creating endpoint 'ep': Creating", 30,
                 id="endpoint-polls-every-30s"),
    pytest.param(ENDPOINT_CREATE, Observed("Succeeded"), 60, "succeeded", "creating endpoint 'ep': Succeeded", None,
                 id="endpoint-created"),
    pytest.param(ENDPOINT_CREATE, Observed("Creating"), 20 * 60, "failed",
                 "creating endpoint 'ep' timed out after 20 minutes; Azure still reports it Creating", None,
                 id="endpoint-timeout-20-minutes"),
    pytest.param(CREATE, Observed("Creating"), 0, "wait", "creating deployment 'green': Creating", 60,
                 id="create-polls-every-minute"),
    pytest.param(CREATE, Observed("Creating", None, "Retrying", "pulling image"), 45 * 60, "failed",
                 "creating deployment 'green' timed out after 45 minutes; Azure still reports it Creating "
                 "(Retrying: pulling image)", None, id="timeout-quotes-azure-error"),
    pytest.param(CREATE, Observed("Creating", None, None, "pulling image"), 45 * 60, "failed",
                 "creating deployment 'green' timed out after 45 minutes; Azure still reports it Creating", None,
                 id="timeout-without-code-quotes-nothing"),
    pytest.param(CREATE, Observed("NotFound"), 0, "failed",
                 "creating deployment 'green' failed: it no longer exists (deleted by someone else?)", None,
                 id="create-gone"),
    pytest.param(CREATE, Observed("Failed", None, "ImageBuildFailure"), 0, "failed",
                 "creating deployment 'green' failed: ImageBuildFailure", None, id="code-only"),
    pytest.param(CREATE, Observed("Failed", None, None, "Image build failed."), 0, "failed",
                 "creating deployment 'green' failed: Image build failed.", None, id="message-only"),
    pytest.param(CREATE, Observed("Canceled"), 0, "failed",
                 "creating deployment 'green' failed: Azure reports it Canceled without a message", None, id="neither"),
    pytest.param(SCALE, Observed("Updating", 2), 0, "wait", "scaling deployment 'green': Updating", 30,
                 id="scale-polls-every-30s"),
    pytest.param(SCALE, Observed("Succeeded", 3), 0, "succeeded", "scaling deployment 'green': Succeeded", None,
                 id="scale-done"),
    pytest.param(SCALE, Observed("Succeeded", 5), 0, "failed", "scaling deployment 'green' failed: Azure reports 5 "
                 "instances, not 3 (changed by someone else, or by autoscale)", None, id="scale-overridden"),
    pytest.param(SCALE, Observed("Updating", 2), 20 * 60 - 1, "wait", "scaling deployment 'green': Updating", 1,
                 id="scale-last-poll-at-the-deadline"),
    pytest.param(DELETE, Observed("Deleting"), 0, "wait", "deleting deployment 'blue': Deleting", 30,
                 id="delete-polls-every-30s"),
    pytest.param(DELETE, Observed("Succeeded"), 0, "wait", "deleting deployment 'blue': Succeeded", 30,
                 id="delete-succeeded-is-not-gone-yet"),
    pytest.param(DELETE, Observed("NotFound"), 0, "succeeded", "deleting deployment 'blue': deleted", None,
                 id="delete-done"),
    pytest.param(DELETE, Observed("Deleting"), 20 * 60, "failed",
                 "deleting deployment 'blue' timed out after 20 minutes; Azure still reports it Deleting", None,
                 id="delete-timeout-20-minutes"),
])
def test_next_step_reason_and_poll(operation, observed: Observed, seconds: int, action: str, reason: str,
                                   poll_in: int | None) -> None:
    now = T0 + timedelta(seconds=seconds)
    step = next_step(operation, observed, now)
    logs = operation.kind == "create" and action == "failed" and observed.state != "NotFound"
    assert (step.action, step.reason, step.fetch_logs) == (action, reason, logs)
    assert step.poll_at == (None if poll_in is None else now + timedelta(seconds=poll_in))


@pytest.mark.parametrize("args, wire", [
    pytest.param(("scale", "green", T0, timedelta(minutes=5), 4),
                 {"kind": "scale", "target": "green", "started_at": "2026-01-01T12:00:00+00:00", "timeout_s": 300.0,
                  "instances": 4}, id="scale-with-timeout"),
    pytest.param(("delete", "blue", T0),
                 {"kind": "delete", "target": "blue", "started_at": "2026-01-01T12:00:00+00:00", "timeout_s": 1200.0,
                  "instances": None}, id="delete-default-timeout"),
    pytest.param(("create", "green", T0, None, None),
                 {"kind": "create", "target": "green", "started_at": "2026-01-01T12:00:00+00:00", "timeout_s": 2700.0,
                  "instances": None}, id="create-none-timeout-is-the-default"),
])
def test_watch_wire_form(args: tuple[Any, ...], wire: dict[str, object]) -> None:
    assert watch(*args).to_dict() == wire


def test_unknown_operation_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown operation kind 'resize'"):
        watch("resize", "green", T0)


@pytest.mark.parametrize("data, start", [
    pytest.param({"started": True, "operation_url": "https://x/op", "detail": "scaling"},
                 OperationStart(True, "https://x/op", "scaling"), id="started"),
    pytest.param({"started": False}, OperationStart(False, None, ""), id="nothing-to-do-defaults"),
])
def test_operation_start_round_trips(data: dict[str, object], start: OperationStart) -> None:
    assert OperationStart.from_dict(data) == start
    assert OperationStart.from_dict(start.to_dict()) == start


@pytest.mark.parametrize("data, seen", [
    pytest.param({"state": "Succeeded", "instance_count": "3"}, Observed("Succeeded", 3), id="count-as-int"),
    pytest.param({"state": "NotFound"}, Observed("NotFound"), id="optional-fields-none"),
])
def test_observed_from_dict(data: dict[str, object], seen: Observed) -> None:
    assert Observed.from_dict(data) == seen


@pytest.mark.parametrize("lines, kept", [
    pytest.param(2, ["b", "cX "], id="tail"), pytest.param(1, ["cX "], id="one"), pytest.param(0, [], id="none"),
    pytest.param(5, ["a", "b", "cX "], id="all")])
def test_last_lines_count(lines: int, kept: list[str]) -> None:
    assert last_lines("a\nb\ncX \n\n", lines) == kept  # only blank lines are dropped: spaces stay
    assert last_lines("aX\nX\n\n", lines)[-1:] == (["X"] if lines else [])


# --- autoscale: the whole setting body, and every parse rule with its text ------------------------


def expected_rule(metric: str, resource: str, operator: str, threshold: float, window: str, direction: str,
                  cooldown: str, per_instance: bool = False) -> dict[str, object]:
    trigger: dict[str, object] = {"metricName": metric, "metricResourceUri": resource, "timeGrain": "PT1M",
                                  "statistic": "Average", "timeWindow": window, "timeAggregation": "Average",
                                  "operator": operator, "threshold": threshold}
    if per_instance:
        trigger["dividePerInstance"] = True
    return {"metricTrigger": trigger,
            "scaleAction": {"direction": direction, "type": "ChangeCount", "value": "1", "cooldown": cooldown}}


def test_autoscale_setting_whole_body_with_every_rule() -> None:
    spec = parse_autoscale({"min_instances": 2, "max_instances": 8, "memory_out_percent": 80,
                            "requests_out_per_minute": 600, "latency_out_ms": 250, "scale_out_cooldown": "PT2M",
                            "scale_in_cooldown": "PT1H"})
    assert autoscale_setting(spec, DEP, EP, "eastus", instance_count=5) == {
        "location": "eastus",
        "properties": {"enabled": True, "targetResourceUri": DEP, "profiles": [{
            "name": "aml-rollout",
            "capacity": {"minimum": "2", "maximum": "8", "default": "5"},
            "rules": [
                expected_rule("CpuUtilizationPercentage", DEP, "GreaterThan", 70.0, "PT5M", "Increase", "PT2M"),
                expected_rule("MemoryUtilizationPercentage", DEP, "GreaterThan", 80.0, "PT5M", "Increase", "PT2M"),
                expected_rule("RequestsPerMinute", EP, "GreaterThan", 600.0, "PT5M", "Increase", "PT2M",
                              per_instance=True),
                expected_rule("RequestLatency", EP, "GreaterThan", 250.0, "PT5M", "Increase", "PT2M"),
                expected_rule("CpuUtilizationPercentage", DEP, "LessThan", 25.0, "PT30M", "Decrease", "PT1H"),
            ],
        }]},
    }


@pytest.mark.parametrize("spec, rules", [
    pytest.param(AutoscaleSpec(cpu_in_percent=None), [("CpuUtilizationPercentage", "GreaterThan")], id="no-scale-in"),
    pytest.param(AutoscaleSpec(cpu_out_percent=None, latency_out_ms=100.0),
                 [("RequestLatency", "GreaterThan"), ("CpuUtilizationPercentage", "LessThan")], id="latency-only-out"),
])
def test_autoscale_rules_only_for_given_thresholds(spec: AutoscaleSpec, rules: list[tuple[str, str]]) -> None:
    body = autoscale_setting(spec, DEP, EP, "eastus", instance_count=1)
    assert [(r[0], r[1]) for r in rules_of(body)] == rules


@pytest.mark.parametrize("data, spec", [
    pytest.param({}, AutoscaleSpec(), id="empty-is-the-default"),
    pytest.param({"min_instances": 50, "max_instances": 50, "default_instances": 50}, AutoscaleSpec(50, 50, 50),
                 id="counts-at-azure-limit"),
    pytest.param({"min_instances": 1, "max_instances": 1}, AutoscaleSpec(1, 1), id="min-equals-max"),
    pytest.param({"default_instances": 1}, AutoscaleSpec(default_instances=1), id="default-at-min"),
    pytest.param({"default_instances": 10}, AutoscaleSpec(default_instances=10), id="default-at-max"),
    pytest.param({"cpu_out_percent": 100, "cpu_in_percent": 1, "memory_out_percent": 1},
                 AutoscaleSpec(cpu_out_percent=100.0, cpu_in_percent=1.0, memory_out_percent=1.0), id="percent-bounds"),
    pytest.param({"cpu_in_percent": None, "default_instances": None, "scale_in_cooldown": None},
                 AutoscaleSpec(cpu_in_percent=None), id="null-drops-a-rule-or-keeps-a-default"),
    pytest.param({"cpu_out_percent": None, "requests_out_per_minute": 0.5}, AutoscaleSpec(
        cpu_out_percent=None, requests_out_per_minute=0.5), id="request-rate-alone"),
    pytest.param({"scale_out_cooldown": "PT1M", "scale_in_cooldown": "P7D"},
                 AutoscaleSpec(scale_out_cooldown=timedelta(minutes=1), scale_in_cooldown=timedelta(days=7)),
                 id="cooldown-bounds"),
])
def test_parse_autoscale_accepts(data: dict[str, object], spec: AutoscaleSpec) -> None:
    parsed = parse_autoscale(data)
    assert parsed == spec
    assert parse_autoscale(parsed.to_dict()) == parsed


@pytest.mark.parametrize("data, problems", [
    pytest.param("yes", [("a", "must be an object (or true for the default profile)")], id="not-an-object"),
    pytest.param({"zones": 2}, [("a.zones", "is not a known field")], id="unknown-field"),
    pytest.param({"max_instances": 51}, [("a.max_instances", "must be an integer from 1 to 50")], id="count-above-50"),
    pytest.param({"min_instances": True}, [("a.min_instances", "must be an integer from 1 to 50")], id="count-bool"),
    pytest.param({"min_instances": 2.0}, [("a.min_instances", "must be an integer from 1 to 50")], id="count-float"),
    pytest.param({"cpu_out_percent": "70"}, [("a.cpu_out_percent", "must be a number")], id="percent-string"),
    pytest.param({"cpu_out_percent": True}, [("a.cpu_out_percent", "must be a number")], id="percent-bool"),
    pytest.param({"memory_out_percent": 0.5}, [("a.memory_out_percent", "must be a percentage from 1 to 100")],
                 id="percent-below-1"),
    pytest.param({"memory_out_percent": 100.5}, [("a.memory_out_percent", "must be a percentage from 1 to 100")],
                 id="percent-above-100"),
    pytest.param({"requests_out_per_minute": 0}, [("a.requests_out_per_minute", "must be above 0")], id="rate-zero"),
    pytest.param({"scale_in_cooldown": "PT59S"}, [("a.scale_in_cooldown", "must be between PT1M and P7D")],
                 id="cooldown-under-a-minute"),
    pytest.param({"scale_in_cooldown": "P8D"}, [("a.scale_in_cooldown", "must be at most P7D")],
                 id="cooldown-over-a-week"),
    pytest.param({"min_instances": 4, "max_instances": 3}, [("a.min_instances", "must not be above max_instances")],
                 id="min-above-max"),
    pytest.param({"default_instances": 11}, [("a.default_instances", "must be between min_instances and max_instances")],
                 id="default-above-max"),
    pytest.param({"min_instances": 3, "default_instances": 2},
                 [("a.default_instances", "must be between min_instances and max_instances")], id="default-below-min"),
    pytest.param({"cpu_in_percent": 70}, [("a.cpu_in_percent", "must be below cpu_out_percent (else it flaps)")],
                 id="in-equal-to-out-flaps"),
    pytest.param({"cpu_out_percent": None, "cpu_in_percent": 90}, [("a", "needs at least one scale-out rule")],
                 id="in-alone-is-no-rule"),
    pytest.param({"zones": 2, "max_instances": 0}, [("a.zones", "is not a known field"),
                                                    ("a.max_instances", "must be an integer from 1 to 50")],
                 id="every-field-problem-at-once"),
])
def test_parse_autoscale_problem_text(data: object, problems: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_autoscale(data, "a.")
    assert [(p.field, p.message) for p in caught.value.problems] == problems


def test_parse_autoscale_default_prefix() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_autoscale({"max_instances": 0})
    assert [p.field for p in caught.value.problems] == ["autoscale.max_instances"]
