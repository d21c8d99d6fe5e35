"""Control events at any moment: the real SDK replay engine over histories built event by event.

``tests.rollout.sdk_history.Driver`` is a minimal host: it puts events exactly where a test
wants them (turn 0: while pre-flight runs; 1: while pre-flight measures the old deployment's
baseline; 2: while the first step's traffic update runs (its own read is the drift check); 3:
during the first window's timer, or the retry wait when that update failed), checks the Durable
Task Framework's replay rule on every episode, and answers activities from ``SimpleEndpoint``.
Without the racing design (azure-functions-durable 1.7.0, #507) most rows end in
``RecursionError`` or apply a step after a rollback was asked for.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from rollout.safety import ORCHESTRATION_VERSION
from tests.rollout.sdk_history import (
    DEPLOYMENTS,
    ENDPOINT,
    PREFLIGHT_OK,
    REQUEST,
    START,
    Driver,
    History,
    SimpleEndpoint,
    transient,
)

RESOLVED = {"alert": {"rule": "green-5xx", "monitor_condition": "Resolved"}, "reason": "alert 'green-5xx' resolved"}
FIRED = {"alert": {"rule": "green-5xx", "monitor_condition": "Fired"}, "reason": "alert 'green-5xx' fired"}
PERMISSION = {"kind": "PermissionDenied", "message": "the app's identity needs AzureML Data Scientist",
              "retryable": False, "retry_after": None}
PREFLIGHT, BASELINE, STEP_UPDATE, FIRST_WAIT = 0, 1, 2, 3


def ev(name, payload=None):
    return (name, payload)


@pytest.mark.parametrize("inject, faults, outcome, max_green, holds", [
    pytest.param({PREFLIGHT: [ev("pause"), ev("pause")], 12: [ev("resume")]}, {}, "promoted", 100, ["pause", "resume"],
                 id="pause-twice-in-preflight"),
    pytest.param({PREFLIGHT: [ev("alert", RESOLVED)] * 3}, {}, "promoted", 100, [], id="three-notes-in-preflight"),
    pytest.param({PREFLIGHT: [ev("resume")]}, {}, "promoted", 100, [], id="resume-in-preflight-ignored"),
    pytest.param({PREFLIGHT: [ev("rollback", FIRED)]}, {}, "rolled_back", 0, [], id="rollback-in-preflight"),
    pytest.param({PREFLIGHT: [ev("abort"), ev("abort")]}, {}, "aborted", 0, [], id="abort-twice-in-preflight"),
    pytest.param({PREFLIGHT: [ev("promote")]}, {}, "promoted", 100, [], id="promote-in-preflight"),
    pytest.param({PREFLIGHT: [ev("abort")]}, {"preflight": [transient()]}, "aborted", 0, [],
                 id="abort-while-preflight-fails"),
    pytest.param({PREFLIGHT + 1: [ev("pause"), ev("pause"), ev("alert", RESOLVED)], 12: [ev("resume")]},
                 {"preflight": [transient()]}, "promoted", 100, ["pause", "resume"], id="events-during-preflight-retry-wait"),
    pytest.param({BASELINE: [ev("rollback", FIRED)]}, {}, "rolled_back", 0, [], id="rollback-before-first-step"),
    pytest.param({STEP_UPDATE: [ev("rollback", FIRED)]}, {}, "rolled_back", 10, [], id="rollback-during-step-update"),
    pytest.param({STEP_UPDATE: [ev("pause"), ev("resume"), ev("pause")], 12: [ev("resume")]}, {}, "promoted", 100,
                 ["pause", "resume", "pause", "resume"], id="hold-changes-during-an-activity"),
    pytest.param({FIRST_WAIT: [ev("abort")]}, {"set_traffic": [transient(retry_after=15)]}, "aborted", 0, [],
                 id="abort-during-retry-wait-step-never-applied"),
    pytest.param({FIRST_WAIT: [ev("alert", RESOLVED)] * 5}, {"set_traffic": [transient()]}, "promoted", 100, [],
                 id="same-note-five-times-during-retry-wait"),
    pytest.param({FIRST_WAIT: [ev("pause"), ev("alert", RESOLVED), ev("promote"), ev("rollback", FIRED), ev("pause")]},
                 {}, "rolled_back", 10, ["pause"], id="several-at-once-rollback-wins"),
    pytest.param({FIRST_WAIT: [ev("rollback", FIRED), ev("promote")]}, {}, "rolled_back", 10, [],
                 id="promote-after-rollback-does-not-win"),
    pytest.param({FIRST_WAIT: [ev("promote")], FIRST_WAIT + 1: [ev("abort")]},
                 {"set_traffic": [None, transient(), transient()]}, "aborted", 10, [],
                 id="abort-during-promote-retry-wait"),
])
def test_control_events_at_any_moment(inject, faults, outcome, max_green, holds):
    endpoint = SimpleEndpoint(faults)
    state = Driver(endpoint).run(inject)
    record = state["output"]
    assert record["outcome"] == outcome and record["reason"]
    assert max((t.get("green-v2", 0) for t in endpoint.seen), default=0) == max_green
    if record["plan"] is not None:
        assert record["final_traffic"] == endpoint.traffic, "the record shows the traffic as it is"
    else:
        assert record["final_traffic"] == {} and "set_traffic" not in endpoint.calls, "never read, never changed"
    assert [h["kind"] for h in record["history"] if h["kind"] in ("pause", "resume")] == holds


def test_rollback_received_in_preflight_changes_no_traffic_and_says_so():
    endpoint = SimpleEndpoint()
    record = Driver(endpoint).run({PREFLIGHT: [ev("rollback", FIRED)]})["output"]
    assert "set_traffic" not in endpoint.calls
    assert record["reason"] == "alert 'green-5xx' fired; no traffic was changed"
    assert record["alerts"][0]["action"] == "rolled back" and record["alerts_received"] == 1


# --- a rollback never gives up -----------------------------------------------------------------


def test_rollback_retries_every_failure_until_it_succeeds_publishing_the_last_error():
    failures = [PERMISSION] * 6 + [transient("conflict", retry_after=30)] * 2
    endpoint = SimpleEndpoint({"set_traffic": [None, *failures]})
    driver = Driver(endpoint)
    record = driver.run({FIRST_WAIT: [ev("rollback", FIRED)]})["output"]
    assert record["outcome"] == "rolled_back" and endpoint.traffic == {"blue-v1": 100} == record["final_traffic"]
    assert record["rollback"]["attempts"] == 8
    rolling = [s for s in driver.statuses if isinstance(s, dict) and s.get("phase") == "rolling_back" and s["rollback"]]
    assert "AzureML Data Scientist" in rolling[0]["rollback"]["last_error"]
    assert rolling[-1]["rollback"]["last_error"] == "conflict"
    waited = [(s["rollback"]["next_attempt_at"], s["rollback"]["failing_since"]) for s in rolling]
    assert len({w for w, _ in waited}) == 8 and len({f for _, f in waited}) == 1


def test_resolve_stops_a_failing_rollback_and_records_the_traffic_as_read():
    endpoint = SimpleEndpoint({"set_traffic": [None, *[PERMISSION] * 50]})
    driver = Driver(endpoint)
    record = driver.run({FIRST_WAIT: [ev("rollback", FIRED)], 9: [ev("resolve", {"reason": "traffic moved by hand"})]})["output"]
    assert record["outcome"] == "failed"
    assert "rollback stopped by a person (traffic moved by hand)" in record["reason"]
    assert "green-v2 still holds traffic" in record["reason"]
    assert record["final_traffic"] == {"blue-v1": 90, "green-v2": 10} == endpoint.traffic
    assert record["history"][-1]["kind"] == "resolve"


def test_resolve_outside_a_rollback_changes_nothing():
    record = Driver(SimpleEndpoint()).run({FIRST_WAIT: [ev("resolve")]})["output"]
    assert record["outcome"] == "promoted"


# --- a redeploy never leaves traffic mid-step -------------------------------------------------------


def version_1_history() -> History:
    """An instance started before versioning (the input is the bare request) whose code scheduled
    pre-flight, a traffic update, a timer and a health check, and now waits on a second timer."""
    at = START
    history = History(orchestration_input=REQUEST)
    history.scheduled(0, "preflight").episode().completed(0, PREFLIGHT_OK)
    history.scheduled(1, "Set_Traffic").episode(2).completed(1, {"ok": True, "endpoint": {
        **ENDPOINT, "traffic": {"blue-v1": 50, "green-v2": 50}}})
    history.timer(2, at + timedelta(seconds=62)).episode(60).fired(2, at + timedelta(seconds=62))
    history.scheduled(3, "check_health").episode().completed(3, {"ok": True, "metrics": {}})
    history.timer(4, at + timedelta(seconds=122))
    return history


def test_a_redeploy_returns_traffic_of_an_instance_of_another_version_and_passes_the_replay_check():
    endpoint = SimpleEndpoint()
    endpoint.traffic = {"blue-v1": 50, "green-v2": 50}
    driver = Driver(endpoint, history=version_1_history())
    record = driver.run({1: [ev("pause"), ev("pause")]})["output"]
    assert record["outcome"] == "rolled_back"
    assert record["reason"].startswith(f"the app was redeployed with orchestration version {ORCHESTRATION_VERSION} "
                                       "while this rollout (version 1) ran")
    assert endpoint.calls == ["read_traffic", "set_traffic"] and endpoint.traffic == {"blue-v1": 100}
    assert record["final_traffic"] == endpoint.traffic
    assert record["plan"]["old"] == "blue-v1"


def test_a_redeploy_with_no_recorded_plan_changes_nothing_and_says_so():
    history = History(orchestration_input={**REQUEST, "orchestration_version": ORCHESTRATION_VERSION + 1})
    history.scheduled(0, "preflight").episode().completed(0, {"ok": False, "error": transient()})
    history.timer(1, START + timedelta(seconds=5))
    endpoint = SimpleEndpoint()
    record = Driver(endpoint, history=history).run()["output"]
    assert record["outcome"] == "failed" and "it had no plan, so traffic was not changed" in record["reason"]
    assert endpoint.calls == [], "nothing new was scheduled"


def test_a_redeploy_while_the_first_read_runs_waits_for_it_and_rolls_back():
    history = History(orchestration_input=REQUEST)
    history.scheduled(0, "preflight")
    endpoint = SimpleEndpoint()
    record = Driver(endpoint, history=history).run()["output"]
    assert record["outcome"] == "rolled_back" and record["reason"].endswith("green-v2 holds no traffic")
    assert endpoint.calls == ["preflight", "read_traffic"] and DEPLOYMENTS


def test_a_redeploy_rollback_retries_failed_reads_and_moves_only_the_new_deployments_share():
    endpoint = SimpleEndpoint({"read_traffic": [transient(), PERMISSION]})
    endpoint.traffic = {"blue-v1": 40, "green-v2": 40, "shadow": 20}
    record = Driver(endpoint, history=version_1_history()).run()["output"]
    assert record["outcome"] == "rolled_back" and record["rollback"]["attempts"] == 2
    assert endpoint.calls == ["read_traffic", "read_traffic", "read_traffic", "set_traffic"]
    assert endpoint.traffic == {"blue-v1": 80, "shadow": 20} == record["final_traffic"]


# --- issue 11: the history is bounded by continue_as_new; no event is lost in the handover -------------


def test_a_rollout_continues_as_new_at_step_boundaries_and_still_promotes():
    driver = Driver(SimpleEndpoint({}))
    record = driver.run()["output"]
    assert record["outcome"] == "promoted" and record["steps_completed"] == [10, 50, 100]
    assert len(driver.handovers) == 3, "one handover after each step (the last one into the bake)"
    assert [h["kind"] for h in record["history"]] == ["step", "step", "step"], "the record carried over"


@pytest.mark.parametrize("event, outcome, holds", [
    pytest.param(ev("pause"), "promoted", ["pause", "resume"], id="pause"),
    pytest.param(ev("rollback", FIRED), "rolled_back", [], id="alert-rollback"),
    pytest.param(ev("alert", RESOLVED), "promoted", [], id="alert-note"),
])
def test_an_event_arriving_in_the_handover_batch_is_not_lost(event, outcome, holds):
    """The event arrives in the same batch as, and after, the completion on which the execution decides
    to continue as new: the orchestrator never sees it in that execution; the host carries it over."""
    handover = Driver(SimpleEndpoint({}))
    handover.run()
    decided = handover.handovers[0] - 1        # the turn whose completions made the first execution hand over
    endpoint = SimpleEndpoint({})
    driver = Driver(endpoint)
    later = {decided + 12: [ev("resume")]} if holds else {}
    record = driver.run(later, inject_after={decided: [event]})["output"]
    assert record["outcome"] == outcome, record["reason"]
    assert [h["kind"] for h in record["history"] if h["kind"] in ("pause", "resume")] == holds
    if event[0] == "alert":
        assert record["alerts_received"] == 1 and record["alerts"][0]["action"] == "recorded"
    if outcome == "rolled_back":
        assert record["alerts"][0]["action"] == "rolled back" and record["steps_completed"] == [10]
