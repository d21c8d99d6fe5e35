"""The pure rules behind the orchestrator's safety: event precedence, the rollback's backoff,
which actions fit a rollback, input versions, rollback targets and unsafe endings."""

from __future__ import annotations

import pytest

from rollout.control import Intent, action_refusal, control_action, merge_intent
from rollout.retry import MAX_ROLLBACK_DELAY_SECONDS, rollback_retry_delay
from rollout.safety import (
    ORCHESTRATION_VERSION,
    can_replay,
    carried_of,
    ended_unsafe,
    holds_traffic,
    is_first_rollout_plan,
    rollback_from,
    split_input,
    versioned_input,
)

ROLLBACK, ABORT, PROMOTE = Intent("rollback", "r"), Intent("abort", "a"), Intent("promote", "p")


@pytest.mark.parametrize("current, action, expected", [
    pytest.param(None, "promote", Intent("promote", "new"), id="first-promote"),
    pytest.param(None, "rollback", Intent("rollback", "new"), id="first-rollback"),
    pytest.param(PROMOTE, "rollback", Intent("rollback", "new"), id="rollback-outranks-promote"),
    pytest.param(PROMOTE, "abort", Intent("abort", "new"), id="abort-outranks-promote"),
    pytest.param(ROLLBACK, "promote", ROLLBACK, id="promote-never-replaces-rollback"),
    pytest.param(ABORT, "promote", ABORT, id="promote-never-replaces-abort"),
    pytest.param(ROLLBACK, "abort", ROLLBACK, id="first-of-same-rank-stands"),
    pytest.param(ABORT, "rollback", ABORT, id="first-of-same-rank-stands-abort"),
    pytest.param(PROMOTE, "promote", PROMOTE, id="second-promote-keeps-first-reason"),
    pytest.param(ROLLBACK, "pause", ROLLBACK, id="not-an-ending-action"),
    pytest.param(None, "resolve", None, id="resolve-is-no-intent"),
])
def test_merge_intent(current, action, expected):
    assert merge_intent(current, action, "new") == expected


@pytest.mark.parametrize("event, expected", [
    pytest.param("resolve", ("resolve", "resolve requested"), id="resolve"),
    pytest.param("alert", ("note", "alert requested"), id="alert-is-a-note"),
])
def test_control_action_of_new_events(event, expected):
    assert control_action(event, {}, False) == expected


@pytest.mark.parametrize("attempt, error, delay", [
    pytest.param(1, {"retryable": False}, 5.0, id="non-retryable-still-retried"),
    pytest.param(2, {"retryable": True}, 10.0, id="doubles"),
    pytest.param(6, {}, 160.0, id="sixth"),
    pytest.param(7, {}, MAX_ROLLBACK_DELAY_SECONDS, id="capped"),
    pytest.param(10_000, {}, MAX_ROLLBACK_DELAY_SECONDS, id="never-gives-up-never-overflows"),
    pytest.param(1, {"retry_after": 42}, 42.0, id="retry-after-longer"),
    pytest.param(1, {"retry_after": 10_000}, 300.0, id="retry-after-capped"),
    pytest.param(1, {"retry_after": float("nan")}, 5.0, id="retry-after-nan-ignored"),
    pytest.param(1, {"retry_after": -5}, 5.0, id="retry-after-negative-ignored"),
])
def test_rollback_retry_delay(attempt, error, delay):
    assert rollback_retry_delay(attempt, error) == delay


@pytest.mark.parametrize("action, phase, refused", [
    pytest.param("resolve", "rolling_back", None, id="resolve-while-rolling-back"),
    pytest.param("resolve", "observing", "resolve only stops a rollback", id="resolve-while-observing"),
    pytest.param("resolve", "done", "resolve only stops a rollback", id="resolve-when-done"),
    pytest.param("pause", "rolling_back", "does not apply", id="pause-while-rolling-back"),
    pytest.param("promote", "rolling_back", "does not apply", id="promote-while-rolling-back"),
])
def test_which_actions_fit_a_rollback(action, phase, refused):
    result = action_refusal(action, {"phase": phase})
    assert result is None if refused is None else refused in result


@pytest.mark.parametrize("raw, expected", [
    pytest.param({"endpoint_name": "e"}, (1, {"endpoint_name": "e"}, None), id="before-versioning"),
    pytest.param(versioned_input({"endpoint_name": "e"}), (ORCHESTRATION_VERSION, {"endpoint_name": "e"}, None),
                 id="this-version"),
    pytest.param(versioned_input({"endpoint_name": "e"}, {"plan": {}}),
                 (ORCHESTRATION_VERSION, {"endpoint_name": "e"}, {"plan": {}}), id="rollback-only"),
    pytest.param({"endpoint_name": "e", "orchestration_version": True}, (0, {"endpoint_name": "e"}, None),
                 id="bool-is-no-version"),
    pytest.param("not a dict", (1, {}, None), id="not-a-dict"),
])
def test_split_input(raw, expected):
    assert split_input(raw) == expected


@pytest.mark.parametrize("version, replayable", [
    pytest.param(ORCHESTRATION_VERSION, True, id="same"),
    pytest.param(1, False, id="older"),
    pytest.param(ORCHESTRATION_VERSION + 1, False, id="newer"),
])
def test_can_replay(version, replayable):
    assert can_replay(version) is replayable


@pytest.mark.parametrize("traffic, expected", [
    pytest.param({"blue": 50, "green": 50}, {"blue": 100}, id="two"),
    pytest.param({"Blue": 40, "GREEN": 30, "shadow": 30}, {"blue": 70, "shadow": 30}, id="third-keeps-its-share"),
    pytest.param({"green": 100}, {"blue": 100}, id="new-holds-all"),
    pytest.param({"blue": 100}, {"blue": 100}, id="already-safe"),
])
def test_rollback_from(traffic, expected):
    assert rollback_from(traffic, "blue", "green") == expected


PLAN = {"old": "blue", "new": "green", "steps": [10, 100], "shared": 100}


@pytest.mark.parametrize("record, unsafe", [
    pytest.param({"outcome": "failed", "plan": PLAN, "final_traffic": {"blue": 90, "green": 10}}, True,
                 id="failed-new-holds-traffic"),
    pytest.param({"outcome": "failed", "plan": PLAN, "final_traffic": {"blue": 100}}, False, id="failed-but-safe"),
    pytest.param({"outcome": "promoted", "plan": PLAN, "final_traffic": {"green": 100}}, False, id="promoted"),
    pytest.param({"phase": "done", "outcome": "failed", "plan": PLAN, "traffic": {"GREEN": 50, "blue": 50}}, True,
                 id="crashed-last-status-traffic-case-insensitive"),
    pytest.param({"outcome": "failed", "plan": None, "final_traffic": {"green": 10}}, False, id="no-plan"),
    pytest.param(None, False, id="no-record"),
])
def test_ended_unsafe(record, unsafe):
    assert ended_unsafe(record) is unsafe


@pytest.mark.parametrize("rollback_only, carried, expected", [
    pytest.param(None, None, {"endpoint_name": "e", "orchestration_version": ORCHESTRATION_VERSION}, id="request-only"),
    pytest.param({"plan": {"old": "b"}, "reason": "r"}, None,
                 {"endpoint_name": "e", "orchestration_version": ORCHESTRATION_VERSION,
                  "rollback_only": {"plan": {"old": "b"}, "reason": "r"}}, id="rollback-only"),
    pytest.param(None, {"record": {}}, {"endpoint_name": "e", "orchestration_version": ORCHESTRATION_VERSION,
                                        "carried": {"record": {}}}, id="carried"),
])
def test_versioned_input(rollback_only, carried, expected):
    value = versioned_input({"endpoint_name": "e"}, rollback_only, carried)
    assert value == expected
    assert split_input(value) == (ORCHESTRATION_VERSION, {"endpoint_name": "e"}, rollback_only)
    assert carried_of(value) == carried


@pytest.mark.parametrize("raw, carried", [
    pytest.param({"carried": {"step": 2}}, {"step": 2}, id="carried"),
    pytest.param({"carried": "x"}, None, id="not-a-mapping"),
    pytest.param({"endpoint_name": "e"}, None, id="first-execution"),
    pytest.param(["carried"], None, id="input-not-a-mapping"),
])
def test_carried_of(raw, carried):
    assert carried_of(raw) == carried


@pytest.mark.parametrize("raw, expected", [
    pytest.param({"orchestration_version": "3"}, (0, {}, None), id="version-not-an-int-is-0"),
    pytest.param({"orchestration_version": 2, "rollback_only": "x", "carried": {}}, (2, {}, None),
                 id="rollback-only-not-a-mapping"),
])
def test_split_input_odd_values(raw, expected):
    assert split_input(raw) == expected


@pytest.mark.parametrize("traffic, holds", [
    pytest.param({"Green": 1}, True, id="any-share-case-insensitive"),
    pytest.param({"green": 0.5}, True, id="fraction"),
    pytest.param({"green": 0}, False, id="zero"),
    pytest.param({"green": -5}, False, id="negative"),
    pytest.param({"green": True}, False, id="bool-is-not-a-share"),
    pytest.param({"green": "50"}, False, id="string-is-not-a-share"),
    pytest.param({"blue": 100}, False, id="another"),
    pytest.param(None, False, id="none"),
])
def test_holds_traffic(traffic, holds):
    assert holds_traffic(traffic, "GREEN") is holds


@pytest.mark.parametrize("record, unsafe", [
    pytest.param({"outcome": None, "plan": PLAN, "traffic": {"green": 10}}, True, id="still-running-status"),
    pytest.param({"outcome": "failed", "plan": {"new": "green"}, "final_traffic": {"green": 10}}, False,
                 id="plan-without-old"),
    pytest.param({"outcome": "failed", "plan": {"old": "blue", "new": 5}, "final_traffic": {"green": 10}}, False,
                 id="plan-new-not-a-name"),
    pytest.param({"outcome": "failed", "plan": PLAN, "final_traffic": {}, "traffic": {"green": 10}}, True,
                 id="empty-final-traffic-falls-back-to-traffic"),
    pytest.param({"outcome": "failed", "plan": PLAN, "final_traffic": {"blue": 100}, "traffic": {"green": 10}}, False,
                 id="final-traffic-wins"),
])
def test_ended_unsafe_edges(record, unsafe):
    assert ended_unsafe(record) is unsafe


def test_rollback_from_names_are_normalised() -> None:
    assert rollback_from({"GREEN": 30, "Blue": 70}, "BLUE", "Green") == {"blue": 100}
    assert rollback_from({"green": 100}, "Blue", "green") == {"blue": 100}


@pytest.mark.parametrize("plan, first", [
    pytest.param({"old": None, "new": "green-v2", "first_rollout": True}, True, id="first-rollout"),
    pytest.param({"new": "green-v2", "first_rollout": True}, True, id="old-absent"),
    pytest.param({"old": "blue", "new": "green-v2", "first_rollout": True}, False, id="old-named"),
    pytest.param({"old": None, "new": "green-v2", "first_rollout": 1}, False, id="flag-must-be-true"),
    pytest.param({"old": None, "new": "green-v2"}, False, id="no-flag"),
    pytest.param({"old": None, "new": None, "first_rollout": True}, False, id="no-new"),
])
def test_is_first_rollout_plan(plan, first):
    assert is_first_rollout_plan(plan) is first
