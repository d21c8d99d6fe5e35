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


@pytest.mark.parametrize("step", [pytest.param(61, id="over-shared"), pytest.param(-1, id="negative")])
def test_step_outside_shared_share_is_refused(step):
    with pytest.raises(ValueError, match=rf"^step {step} is outside 0\.\.60$"):
        step_traffic(THREE, step)


def test_step_zero_and_the_whole_share_are_steps():
    assert step_traffic(THREE, 0) == {"blue": 60, "red": 40}
    assert step_traffic(THREE, 60) == {"green": 60, "red": 40}


NEW_LEADS = Plan(old="blue", new="green", steps=(70, 100), shared=100)


def test_a_new_deployment_already_holding_the_most_traffic_is_stepped_like_any_other():
    assert step_traffic(NEW_LEADS, 70) == {"blue": 30, "green": 70}
    assert rollback_traffic(NEW_LEADS) == {"blue": 100}


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


@pytest.mark.parametrize("traffic, text", [
    pytest.param({"green": 10, "blue": 90, "red": 0}, "blue=90 green=10", id="largest-first-zeros-dropped"),
    pytest.param({"alpha": 10, "zulu": 90}, "zulu=90 alpha=10", id="by-share-not-name"),
    pytest.param({"b": 50, "A": 50}, "a=50 b=50", id="ties-by-name"),
    pytest.param({}, "(no traffic)", id="empty"),
])
def test_describe_orders_largest_first(traffic, text):
    assert describe(traffic) == text
