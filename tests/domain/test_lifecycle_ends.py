"""Pure rules behind the lifecycle's loose ends: a first rollout's unsafe end and its rollback target."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.lifecycle_plan import first_rollout_plan, first_rollout_record_plan
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
