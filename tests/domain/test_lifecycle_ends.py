"""Pure rules behind the lifecycle's loose ends: a first rollout's unsafe end and its rollback target; the quota
check of autoscale's ceiling."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.capacity import CapacitySpec, QuotaUsage, VmSize
from rollout.lifecycle_plan import capacity_decision, first_rollout_capacity, first_rollout_plan, first_rollout_record_plan
from rollout.plan import Plan
from rollout.safety import ended_unsafe, rollback_from, rollback_plan
from rollout.traffic import rollback_traffic

FIRST = first_rollout_record_plan("Green-V2")       # {"old": None, "new": "green-v2", ..., "first_rollout": True}
ORDINARY = {"old": "blue", "new": "green-v2", "steps": [10, 100], "shared": 100}


@pytest.mark.parametrize("record, unsafe", [
    pytest.param({"outcome": "failed", "plan": FIRST, "final_traffic": {"green-v2": 100}}, True,
                 id="first-rollout-failed-new-holds-everything"),
    pytest.param({"outcome": "rolled_back", "plan": FIRST, "final_traffic": {"green-v2": 60, "red": 40}}, True,
                 id="first-rollout-rolled-back-new-still-holds-a-share"),
    pytest.param({"outcome": "rolled_back", "plan": FIRST, "final_traffic": {}}, False,
                 id="first-rollout-back-at-zero"),
    pytest.param({"outcome": "promoted", "plan": FIRST, "final_traffic": {"green-v2": 100}}, False,
                 id="first-rollout-promoted"),
    pytest.param({"phase": "done", "outcome": None, "plan": FIRST, "traffic": {"GREEN-V2": 100}}, True,
                 id="first-rollout-crashed-last-status"),
    pytest.param({"outcome": "failed", "plan": {**FIRST, "first_rollout": False}, "final_traffic": {"green-v2": 100}},
                 False, id="old-null-without-first-rollout-is-no-plan"),
    pytest.param({"outcome": "failed", "plan": {**FIRST, "first_rollout": "yes"}, "final_traffic": {"green-v2": 100}},
                 False, id="first-rollout-must-be-true-not-truthy"),
    pytest.param({"outcome": "failed", "plan": {**FIRST, "old": "blue"}, "final_traffic": {"green-v2": 100}}, True,
                 id="an-old-named-is-an-ordinary-plan"),
    pytest.param({"outcome": "failed", "plan": {**FIRST, "new": None}, "final_traffic": {"green-v2": 100}}, False,
                 id="no-new-deployment"),
])
def test_a_first_rollouts_unsafe_end(record: dict[str, Any], unsafe: bool) -> None:
    assert ended_unsafe(record) is unsafe


@pytest.mark.parametrize("traffic, expected", [
    pytest.param({"green-v2": 100}, {}, id="new-holds-all-back-to-zero"),
    pytest.param({"GREEN-V2": 100}, {}, id="case-insensitive"),
    pytest.param({}, {}, id="already-zero"),
    pytest.param({"green-v2": 60, "red": 40}, {"red": 100}, id="another-holds-traffic-gets-the-share"),
    pytest.param({"green-v2": 40, "red": 30, "amber": 30}, {"amber": 70, "red": 30}, id="tie-first-name"),
    pytest.param({"green-v2": 20, "red": 50, "amber": 30}, {"amber": 30, "red": 70}, id="largest-other"),
    pytest.param({"red": 100}, {"red": 100}, id="new-holds-none-unchanged"),
])
def test_a_first_rollouts_rollback_from_traffic_as_found(traffic: dict[str, int], expected: dict[str, int]) -> None:
    assert rollback_from(traffic, "green-v2", "green-v2") == expected
    assert sum(expected.values()) in (0, 100), "what Azure accepts"


@pytest.mark.parametrize("plan, expected", [
    pytest.param(FIRST, Plan("green-v2", "green-v2", (100,), 100), id="first-rollout-old-is-new"),
    pytest.param(ORDINARY, Plan("blue", "green-v2", (10, 100), 100), id="ordinary"),
    pytest.param({"old": "Blue", "new": "Green-V2", "steps": [], "shared": 80}, Plan("blue", "green-v2", (), 80),
                 id="ordinary-names-lowered-shared-kept"),
    pytest.param({"old": "blue", "new": "green-v2", "steps": [10, 100]}, Plan("blue", "green-v2", (10, 100), 100),
                 id="shared-missing-is-100"),
    pytest.param({**FIRST, "old": "Blue"}, Plan("blue", "green-v2", (100,), 100),
                 id="first-rollout-flag-with-an-old-named-rolls-back-to-old"),
])
def test_the_plan_of_a_rollback_only_run(plan: dict[str, Any], expected: Plan) -> None:
    built = rollback_plan(plan)
    assert built == expected
    if plan is FIRST:
        assert built == first_rollout_plan("Green-V2") and rollback_traffic(built) == {}


@pytest.mark.parametrize("plan", [
    pytest.param({"old": None, "new": "green-v2", "steps": [100], "shared": 100}, id="old-null-not-first-rollout"),
    pytest.param({"old": "green-v2", "new": "green-v2", "steps": [100], "shared": 100}, id="old-is-new"),
    pytest.param({"old": "", "new": "green-v2", "steps": [100], "shared": 100}, id="old-empty"),
])
def test_a_rollback_only_plan_without_an_old_deployment_is_refused(plan: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="needs an old and a new deployment"):
        rollback_plan(plan)


# --- the quota check and autoscale's ceiling ---------------------------------------------------------

DS3 = VmSize("Standard_DS3_v2", "standardDSv2Family", 4)
FAMILY = "Standard DSv2 Family Cluster Dedicated vCPUs"


def free(cores: int) -> list[QuotaUsage]:
    """The family's line with ``cores`` free (20 in use: blue's 4 instances, ceil(1.2 x 4) x 4)."""
    return [QuotaUsage(FAMILY, 20, 20 + cores)]


@pytest.mark.parametrize("usages, ceiling, refused, warned", [
    pytest.param(free(24), None, None, None, id="no-autoscale-no-warning"),
    pytest.param(free(24), 1, None, None, id="ceiling-not-above-the-plan"),
    pytest.param(free(24), 5, None, None, id="ceiling-covered-exactly-24-of-24"),
    pytest.param(free(24), 6, None, ("needs 32 more cores (ceil(1.2 x 6) x 4 vCPUs), 24 free", "beyond 5 instance(s)"),
                 id="ceiling-one-over-warns-with-the-reachable-count"),
    pytest.param(free(8), 10, None, ("autoscale.max_instances 10 x Standard_DS3_v2 is not covered by the quota: "
                                     "needs 48 more cores", "beyond 1 instance(s)"),
                 id="only-the-plan-fits-warns-beyond-the-plan"),
    pytest.param(free(4), 10, "not enough quota for 1 x Standard_DS3_v2: needs 8 more cores", None,
                 id="the-plan-does-not-fit-refused-no-warning"),
    pytest.param([], 50, None, None, id="no-quota-line-azure-has-the-last-word"),
    pytest.param([QuotaUsage(FAMILY, 20, -1)], 50, None, None, id="no-limit"),
    pytest.param(free(24) + [QuotaUsage("Total Cluster Dedicated Regional vCPUs", 90, 100)], 3, None,
                 ("needs 16 more cores", "10 free in 'Total Cluster Dedicated Regional vCPUs'", "beyond 1 instance(s)"),
                 id="the-regional-total-is-tighter"),
])
def test_autoscales_ceiling_is_checked_against_the_quota_and_only_warned_about(
        usages: list[QuotaUsage], ceiling: int | None, refused: str | None, warned: tuple[str, ...] | None) -> None:
    decision = capacity_decision(None, (10, 50, 100), 4, 100, 1, 0, DS3, usages, ceiling)
    assert decision.instances == (1, 1, 1) and decision.needed_cores == 8
    assert (decision.refusal is None) is (refused is None) and (refused is None or refused in decision.refusal)
    if warned is None:
        assert decision.autoscale_warning is None and "autoscale_warning" not in decision.to_dict()
    else:
        assert decision.autoscale_warning is not None
        assert all(part in decision.autoscale_warning for part in warned), decision.autoscale_warning
        assert decision.to_dict()["autoscale_warning"] == decision.autoscale_warning
        assert decision.autoscale_warning.endswith("lower autoscale.max_instances")


@pytest.mark.parametrize("usages, wire", [
    pytest.param(free(4), {"instances": [1, 1, 1], "needed_cores": 8, "free_cores": 4, "refusal": (
        "not enough quota for 1 x Standard_DS3_v2: needs 8 more cores (ceil(1.2 x 1) x 4 vCPUs, Azure's 20% upgrade "
        "reserve included), 4 free in 'Standard DSv2 Family Cluster Dedicated vCPUs'. Request more quota for the "
        "family or lower capacity.max_instances")}, id="quota-refused-records-the-free-cores"),
    pytest.param(free(8), {"instances": [1, 1, 1], "needed_cores": 8, "free_cores": 8, "refusal": None},
                 id="fits-exactly"),
])
def test_a_capacity_decisions_wire_form(usages: list[QuotaUsage], wire: dict[str, Any]) -> None:
    assert capacity_decision(None, (10, 50, 100), 4, 100, 1, 0, DS3, usages).to_dict() == wire


@pytest.mark.parametrize("spec, held, usages, ceiling, warned", [
    pytest.param(None, 0, free(24), 3, None, id="first-rollout-ceiling-covered"),
    pytest.param(None, 1, free(4), 3, ("needs 8 more cores (ceil(1.2 x 3) x 4 vCPUs), 4 free", "beyond 2 instance(s)"),
                 id="first-rollout-existing-deployment-counts-what-it-holds"),
    pytest.param(CapacitySpec(max_instances=6), 0, free(8), 10, ("needs 48 more cores", "beyond 1 instance(s)"),
                 id="first-rollout-capacity-formula-not-applied-autoscale-checked"),
    pytest.param(None, 0, free(8), None, None, id="first-rollout-no-autoscale"),
])
def test_autoscales_ceiling_on_a_first_rollout(spec: CapacitySpec | None, held: int, usages: list[QuotaUsage],
                                               ceiling: int | None, warned: tuple[str, ...] | None) -> None:
    decision = first_rollout_capacity(spec, 1, held, DS3, usages, ceiling is not None, ceiling)
    assert decision.refusal is None and decision.instances == (1,)
    if warned is None:
        assert decision.autoscale_warning is None
    else:
        assert all(part in (decision.autoscale_warning or "") for part in warned), decision.autoscale_warning
