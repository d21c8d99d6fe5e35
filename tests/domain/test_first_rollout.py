"""A first rollout (no old deployment): its plan, judge, notes, next move and capacity. Named rows."""

from __future__ import annotations

import pytest

from rollout.capacity import CapacitySpec, QuotaUsage, VmSize, check_quota, quota_refusal
from rollout.judge import JudgeConfig
from rollout.lifecycle_plan import (
    FirstRolloutStep,
    first_rollout_baseline,
    first_rollout_capacity,
    first_rollout_judge,
    first_rollout_next,
    first_rollout_notes,
    first_rollout_plan,
    first_rollout_record_plan,
)
from rollout.safety import ended_unsafe
from rollout.traffic import rollback_traffic, same_traffic, step_traffic

NEW = "green-v2"
KEPT = "green-v2 kept for inspection"
BEFORE = "traffic returned to 0% everywhere, as before the rollout"


# --- the plan: one step to 100%, a rollback to 0% everywhere ---------------------------------------


@pytest.mark.parametrize("step, expected", [
    pytest.param(100, {"green-v2": 100}, id="the-step-gives-new-everything"),
    pytest.param(0, {}, id="the-rollback-is-zero-everywhere"),
    pytest.param(40, {"green-v2": 40}, id="a-partial-share-names-only-new"),
])
def test_the_plan_names_only_the_new_deployment(step: int, expected: dict[str, int]) -> None:
    assert step_traffic(first_rollout_plan("Green-V2"), step) == expected


def test_the_rollback_target_is_the_traffic_before_a_first_rollout() -> None:
    plan = first_rollout_plan("Green-V2")
    assert (plan.new, plan.steps, plan.shared, dict(plan.others)) == ("green-v2", (100,), 100, {})
    assert rollback_traffic(plan) == {}
    assert same_traffic(rollback_traffic(plan), {"green-v2": 0})      # what a first rollout finds: nothing served


def test_the_record_plan_has_no_old_deployment_and_a_later_alert_rolls_an_unsafe_end_back() -> None:
    plan = first_rollout_record_plan("Green-V2")
    assert plan == {"old": None, "new": "green-v2", "steps": [100], "shared": 100, "first_rollout": True}
    # a rollback-only run takes new's share away, to 0% everywhere (tests/domain/test_lifecycle_ends.py)
    assert ended_unsafe({"outcome": "failed", "plan": plan, "final_traffic": {"green-v2": 100}}) is True


# --- the judge: absolute thresholds only --------------------------------------------------------


@pytest.mark.parametrize("config, tests", [
    pytest.param(JudgeConfig(), ("errors",), id="default-error-threshold"),
    pytest.param(JudgeConfig(latency_p99_threshold_ms=300), ("errors", "latency"), id="with-latency"),
    pytest.param(JudgeConfig(max_error_rate_increase=0.01, max_latency_ratio=1.5), ("errors",),
                 id="relative-thresholds-dropped"),
    pytest.param(JudgeConfig(relative_only=True, latency_p99_threshold_ms=300), ("errors", "latency"),
                 id="relative-only-undone"),
])
def test_the_judge_keeps_the_absolute_thresholds_only(config: JudgeConfig, tests: tuple[str, ...]) -> None:
    judged = first_rollout_judge(config)
    assert judged.tests() == tests
    assert judged == JudgeConfig(error_threshold=config.error_threshold, confidence=config.confidence,
                                 latency_p99_threshold_ms=config.latency_p99_threshold_ms,
                                 min_requests=config.min_requests, relative_only=False)


@pytest.mark.parametrize("config, relative, judged", [
    pytest.param(JudgeConfig(error_threshold=0.02), False,
                 "on the absolute thresholds only: error rate above error_threshold 0.02", id="errors"),
    pytest.param(JudgeConfig(latency_p99_threshold_ms=300), True,
                 "on the absolute thresholds only: error rate above error_threshold 0.01; p99 above "
                 "latency_p99_threshold_ms 300 (max_error_rate_increase and max_latency_ratio not applied: no old "
                 "deployment to compare with)", id="errors-latency-relative-asked"),
    pytest.param(JudgeConfig(error_threshold=1.0), False,
                 "on the absolute thresholds only: none is on (no verdict can fail)", id="nothing-on"),
])
def test_the_baseline_says_what_the_new_deployment_is_judged_on(config: JudgeConfig, relative: bool,
                                                                 judged: str) -> None:
    assert first_rollout_baseline(first_rollout_judge(config), relative) == {
        "verdict": "none", "reason": "no old deployment: the endpoint's first rollout", "judged": judged}


# --- what cannot apply without an old deployment ------------------------------------------------


@pytest.mark.parametrize("mirror, steps, cleanup, notes", [
    pytest.param(False, None, "keep", (), id="nothing-asked"),
    pytest.param(False, [100], "keep", (), id="steps-of-just-100"),
    pytest.param(True, None, "keep", ("mirror not applied: the endpoint had no live traffic to copy",), id="mirror"),
    pytest.param(False, [10, 50, 100], "keep", ("traffic_steps [10, 50, 100] not applied: no old deployment to "
                                                "shift from, the new deployment got 100% at once and was judged in "
                                                "its window",), id="steps"),
    pytest.param(False, None, "delete", ("cleanup delete not applied: no old deployment to clean up (nor a revert "
                                         "window)",), id="cleanup"),
    pytest.param(True, None, "scale_down", ("mirror not applied: the endpoint had no live traffic to copy",
                                            "cleanup scale_down not applied: no old deployment to clean up (nor a "
                                            "revert window)"), id="mirror-and-cleanup"),
])
def test_notes_say_what_was_not_applied(mirror: bool, steps: list[int] | None, cleanup: str,
                                        notes: tuple[str, ...]) -> None:
    assert first_rollout_notes(mirror, steps, cleanup) == notes


# --- the next move -----------------------------------------------------------------------------


@pytest.mark.parametrize("stage, ended, reason, bake, action, outcome, says", [
    pytest.param("shift", "passed", "", False, "observe", None, "", id="written-observe"),
    pytest.param("shift", "passed", "", True, "observe", None, "", id="written-observe-even-with-bake"),
    pytest.param("shift", "failed", "409 Conflict", False, "roll_back", "failed",
                 f"the endpoint's first deployment green-v2: giving green-v2 100% failed: 409 Conflict; {BEFORE}; "
                 f"{KEPT}", id="write-failed-rolls-back-failed"),
    pytest.param("shift", "abort", "wrong model", False, "roll_back", "aborted", "wrong model", id="abort-in-write"),
    pytest.param("shift", "promote", "ship it", False, "promote", None, "promoted on request before its window ended",
                 id="promote-in-write-skips-the-window"),
    pytest.param("window", "passed", "", False, "promote", None,
                 "the endpoint's first deployment: green-v2 serving 100%, healthy in its window", id="window-passed"),
    pytest.param("window", "passed", "", True, "bake", None, "", id="window-passed-then-bake"),
    pytest.param("window", "rollback", "regression detected: error rate 0.2000", False, "roll_back", "rolled_back",
                 f"the endpoint's first deployment green-v2: regression detected: error rate 0.2000; {BEFORE}; {KEPT}",
                 id="judge-fails-rolls-back"),
    pytest.param("window", "rollback", "alert 'green-5xx' fired", True, "roll_back", "rolled_back",
                 "alert 'green-5xx' fired", id="alert-rolls-back"),
    pytest.param("window", "revert", "dashboards", False, "roll_back", "rolled_back", "dashboards",
                 id="revert-rolls-back"),
    pytest.param("window", "abort", "wrong model", True, "roll_back", "aborted", f"wrong model; {BEFORE}; {KEPT}",
                 id="abort-aborts"),
    pytest.param("window", "promote", "ship it", True, "promote", None,
                 "green-v2 serving 100%, promoted on request before its window ended (ship it)", id="promote-skips"),
    pytest.param("bake", "passed", "", True, "promote", None,
                 "the endpoint's first deployment: green-v2 serving 100%, healthy in its window and its bake",
                 id="bake-passed"),
    pytest.param("bake", "rollback", "p99 above 300 ms", True, "roll_back", "rolled_back", "p99 above 300 ms",
                 id="bake-fails"),
    pytest.param("bake", "promote", "now", True, "promote", None, "before its bake ended (now)", id="promote-in-bake"),
])
def test_first_rollout_next(stage: str, ended: str, reason: str, bake: bool, action: str, outcome: str | None,
                            says: str) -> None:
    step = first_rollout_next(stage, ended, reason, NEW, bake)
    assert (step.action, step.outcome) == (action, outcome)
    assert says in step.reason
    if action == "roll_back":
        assert KEPT in step.reason and BEFORE in step.reason
    if action in ("observe", "bake"):
        assert step == FirstRolloutStep(action)


@pytest.mark.parametrize("stage, ended, says", [
    pytest.param("steps", "passed", "unknown stage 'steps'", id="unknown-stage"),
    pytest.param("window", "resume", "unknown action 'resume'", id="unknown-action"),
])
def test_first_rollout_next_refuses_what_it_does_not_know(stage: str, ended: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        first_rollout_next(stage, ended, "", NEW, False)


@pytest.mark.parametrize("stage, ended, reason, bake, says", [
    pytest.param("window", "passed", "", False, "the endpoint's first deployment: green-v2 serving 100%, healthy in "
                 "its window", id="window-passed-without-bake-in-full"),
    pytest.param("window", "rollback", "regression detected", False, "the endpoint's first deployment green-v2: "
                 "regression detected; traffic returned to 0% everywhere, as before the rollout; green-v2 kept for "
                 "inspection (its logs, metrics), delete it or roll out a fix", id="rollback-in-full"),
])
def test_first_rollout_next_reason_in_full(stage: str, ended: str, reason: str, bake: bool, says: str) -> None:
    assert first_rollout_next(stage, ended, reason, NEW, bake).reason == says


# --- capacity: no old deployment to size from ------------------------------------------------------

DS3 = VmSize("Standard_DS3_v2", "standardDSv2Family", 4)
FAMILY = [QuotaUsage("Standard DSv2 Family Cluster Dedicated vCPUs", 16, 48)]   # 32 free


@pytest.mark.parametrize("spec, count, held, size, autoscale, instances, needed, free, refused, says", [
    pytest.param(None, 2, 0, DS3, False, (2,), 12, 32, None, "serves 100% at 2 instance(s) (its instance_count); "
                 "no autoscale: it stays at that count", id="no-capacity"),
    pytest.param(CapacitySpec(max_instances=6), 2, 0, DS3, True, (2,), 12, 32, None,
                 "capacity's formula, ceil(old instances x step / old's share x headroom), needs an old deployment "
                 "and is not applied); autoscale takes over after promotion", id="capacity-not-applied"),
    pytest.param(CapacitySpec(max_instances=2), 4, 0, DS3, False, (4,), 20, 32, None, "at 4 instance(s)",
                 id="instance-count-over-max-instances-still-served"),
    pytest.param(CapacitySpec(), 3, 2, DS3, False, (2,), 0, 32, None, "at 2 instance(s)",
                 id="existing-deployment-serves-what-it-has"),
    pytest.param(CapacitySpec(), 7, 0, DS3, False, (7,), 36, 32,
                 "not enough quota for 7 x Standard_DS3_v2: needs 36 more cores", "at 7 instance(s)",
                 id="quota-refused-for-instance-count"),
    pytest.param(CapacitySpec(), 2, 0, None, False, (2,), 0, None, "not offered", "at 2 instance(s)",
                 id="unknown-vm-size"),
])
def test_first_rollout_capacity(spec: CapacitySpec | None, count: int, held: int, size: VmSize | None,
                                autoscale: bool, instances: tuple[int, ...], needed: int, free: int | None,
                                refused: str | None, says: str) -> None:
    decision = first_rollout_capacity(spec, count, held, size, FAMILY, autoscale)
    assert (decision.instances, decision.needed_cores, decision.free_cores) == (instances, needed, free)
    assert (decision.refusal is None) if refused is None else (refused in (decision.refusal or ""))
    assert decision.note is not None and "no old deployment to size from" in decision.note and says in decision.note
    assert decision.to_dict()["note"] == decision.note


def test_an_unknown_vm_size_is_refused_in_full() -> None:
    decision = first_rollout_capacity(CapacitySpec(), 2, 0, None, FAMILY, False)
    assert decision.refusal == ("the instance type is not offered for managed online endpoints in the workspace's "
                                "region")


def test_a_quota_refusal_on_a_first_rollout_names_instance_count() -> None:
    decision = first_rollout_capacity(CapacitySpec(), 7, 0, DS3, FAMILY, False)
    assert decision.refusal == quota_refusal(DS3, 7, check_quota(DS3, 7, 0, FAMILY), "deployment.instance_count")
    assert decision.refusal is not None and decision.refusal.endswith("or lower deployment.instance_count")
    assert "capacity.max_instances" not in decision.refusal


def test_a_rollout_with_an_old_deployment_keeps_its_capacity_record_without_a_note() -> None:
    from rollout.lifecycle_plan import capacity_decision

    decision = capacity_decision(CapacitySpec(), (10, 50, 100), 3, 100, 1, 0, DS3, FAMILY)
    assert decision.note is None and set(decision.to_dict()) == {"instances", "needed_cores", "free_cores", "refusal"}
