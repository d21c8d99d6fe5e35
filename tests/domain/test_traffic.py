"""Absolute traffic weights per step."""

import pytest

from rollout.plan import Plan
from rollout.traffic import describe, mirror_without, rollback_traffic, same_traffic, step_traffic

TWO = Plan(old="blue", new="green", steps=(10, 50, 100), shared=100)
THREE = Plan(old="blue", new="green", steps=(20, 60), shared=60, others={"red": 40})


@pytest.mark.parametrize("plan, step, expected", [
    pytest.param(TWO, 10, {"blue": 90, "green": 10}, id="first-step"),
    pytest.param(TWO, 100, {"green": 100}, id="last-step-drops-zero-old"),
    pytest.param(THREE, 20, {"blue": 40, "green": 20, "red": 40}, id="third-keeps-share"),
    pytest.param(THREE, 60, {"green": 60, "red": 40}, id="third-at-last-step"),
])
def test_step_traffic(plan, step, expected):
    assert step_traffic(plan, step) == expected
    assert sum(step_traffic(plan, step).values()) == 100


@pytest.mark.parametrize("plan, expected", [
    pytest.param(TWO, {"blue": 100}, id="two-deployments"),
    pytest.param(THREE, {"blue": 60, "red": 40}, id="third-untouched"),
])
def test_rollback_traffic(plan, expected):
    assert rollback_traffic(plan) == expected


def test_step_outside_shared_share_is_refused():
    with pytest.raises(ValueError):
        step_traffic(THREE, 61)


@pytest.mark.parametrize("a, b, same", [
    pytest.param({"Blue": 90, "green": 10}, {"blue": 90, "GREEN": 10}, True, id="case"),
    pytest.param({"blue": 100, "green": 0}, {"blue": 100}, True, id="zero-entries"),
    pytest.param({"blue": 90, "green": 10}, {"blue": 80, "green": 20}, False, id="different"),
])
def test_same_traffic(a, b, same):
    assert same_traffic(a, b) is same


@pytest.mark.parametrize("mirror, expected", [
    pytest.param({"green": 20}, {}, id="new-mirrored"),
    pytest.param({"other": 10}, None, id="other-mirrored"),
    pytest.param({}, None, id="no-mirror"),
])
def test_mirror_without(mirror, expected):
    assert mirror_without(mirror, "Green") == expected


def test_describe_orders_largest_first():
    assert describe({"green": 10, "blue": 90, "red": 0}) == "blue=90 green=10"
    assert describe({}) == "(no traffic)"
