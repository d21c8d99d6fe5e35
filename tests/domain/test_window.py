"""The observation window's state machine: one named row per case."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from rollout.policy import Verdict
from rollout.window import (
    MAX_HEALTH_CHECK_FAULTS,
    Action,
    CheckResult,
    ControlEvent,
    WindowState,
    next_action,
    next_wake,
    open_window,
    window_from_dict,
    window_to_dict,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)
WINDOW = open_window(T0, 5 * MIN)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def state(**changes) -> WindowState:
    fields = {"start": T0, "deadline": at(5), "length": 5 * MIN, **changes}
    return WindowState(**fields)


@pytest.mark.parametrize("before, now, observed, action, after, reason", [
    pytest.param(state(), at(1), CheckResult(Verdict.PASS), Action.CONTINUE, state(), "",
                 id="pass-before-deadline-keeps-watching"),
    pytest.param(state(), at(5), CheckResult(Verdict.PASS), Action.PASS, state(), "", id="pass-at-deadline"),
    pytest.param(state(), at(2), CheckResult(Verdict.FAIL, "error rate 0.08"), Action.ROLLBACK, state(),
                 "health check failed: error rate 0.08", id="fail-rolls-back-at-once"),
    pytest.param(state(), at(5), CheckResult(Verdict.INCONCLUSIVE, "need 40 more"), Action.EXTEND,
                 state(extensions=1, deadline=at(10)), "need 40 more", id="inconclusive-at-deadline-extends"),
    pytest.param(state(extensions=1, deadline=at(10)), at(10), CheckResult(Verdict.INCONCLUSIVE, "need 40 more"),
                 Action.EXTEND, state(extensions=2, deadline=at(15)), "need 40 more", id="second-extension"),
    pytest.param(state(extensions=2, deadline=at(15)), at(15), CheckResult(Verdict.INCONCLUSIVE, "need 40 more"),
                 Action.ROLLBACK, state(extensions=2, deadline=at(15)),
                 "still inconclusive after 2 extra window(s): need 40 more", id="extensions-exhausted"),
    pytest.param(state(), at(3), CheckResult(Verdict.INCONCLUSIVE), Action.CONTINUE, state(), "",
                 id="inconclusive-before-deadline"),
    pytest.param(state(), at(5), CheckResult(Verdict.INCONCLUSIVE, "needs 173 more", 17.3), Action.EXTEND,
                 state(extensions=1, deadline=at(22.3)), "needs 173 more", id="extends-by-what-the-verdict-needs"),
    pytest.param(state(), at(5), CheckResult(Verdict.INCONCLUSIVE, "needs 20 more", 2.4), Action.EXTEND,
                 state(extensions=1, deadline=at(10)), "needs 20 more", id="extends-by-a-window-at-least"),
    pytest.param(state(), at(5), CheckResult(Verdict.INCONCLUSIVE, "needs 300 more", 30.0), Action.EXTEND,
                 state(extensions=1, deadline=at(35)), "needs 300 more", id="need-at-the-cap-extends"),
    pytest.param(state(), at(5), CheckResult(Verdict.INCONCLUSIVE, "needs 301 more", 30.1), Action.ROLLBACK, state(),
                 "too little traffic for a verdict: it would take longer than an extension may last "
                 "(6 windows, 30 minutes): needs 301 more", id="need-over-the-cap-rolls-back-at-once"),
    pytest.param(state(extensions=1, deadline=at(22.3)), at(30), CheckResult(Verdict.INCONCLUSIVE, "needs 9 more", 0.9),
                 Action.EXTEND, state(extensions=2, deadline=at(35)), "needs 9 more",
                 id="second-extension-by-a-window-at-least"),
    pytest.param(state(extensions=2, deadline=at(15)), at(15), CheckResult(Verdict.INCONCLUSIVE, "x", 300.0),
                 Action.ROLLBACK, state(extensions=2, deadline=at(15)), "still inconclusive after 2 extra window(s): x",
                 id="extensions-exhausted-before-the-cap-is-asked"),
    pytest.param(state(extensions=1, deadline=at(22)), at(12), CheckResult(Verdict.PASS), Action.PASS,
                 state(extensions=1, deadline=at(22)), "", id="extended-window-passes-at-its-first-pass"),
    pytest.param(state(extensions=1, deadline=at(22), paused=True), at(12), CheckResult(Verdict.PASS), Action.CONTINUE,
                 state(extensions=1, deadline=at(22), paused=True), "", id="paused-extended-window-does-not-pass"),
    pytest.param(state(extensions=1, deadline=at(22)), at(12), CheckResult(Verdict.INCONCLUSIVE, "x", 1.0),
                 Action.CONTINUE, state(extensions=1, deadline=at(22)), "", id="extended-window-inconclusive-waits"),
    pytest.param(state(), at(2), CheckResult(None, "503"), Action.CONTINUE, state(faults=1), "",
                 id="one-fault-continues"),
    pytest.param(state(faults=1), at(5), CheckResult(None, "503"), Action.CONTINUE, state(faults=2), "",
                 id="fault-at-deadline-rechecks"),
    pytest.param(state(faults=MAX_HEALTH_CHECK_FAULTS - 1), at(3), CheckResult(None, "503"), Action.ROLLBACK,
                 state(faults=MAX_HEALTH_CHECK_FAULTS), "health checks failed 3 times in a row: 503",
                 id="faults-in-a-row-roll-back"),
    pytest.param(state(faults=2), at(3), CheckResult(Verdict.PASS), Action.CONTINUE, state(), "",
                 id="good-check-resets-faults"),
    pytest.param(state(paused=True), at(5), CheckResult(Verdict.PASS), Action.CONTINUE, state(paused=True), "",
                 id="paused-window-does-not-pass"),
    pytest.param(state(paused=True), at(9), CheckResult(Verdict.INCONCLUSIVE), Action.CONTINUE,
                 state(paused=True), "", id="paused-window-does-not-extend"),
    pytest.param(state(paused=True), at(9), CheckResult(Verdict.FAIL, "bad"), Action.ROLLBACK, state(paused=True),
                 "health check failed: bad", id="paused-window-still-fails"),
    pytest.param(state(), at(2), ControlEvent("rollback", "alert fired"), Action.ROLLBACK, state(), "alert fired",
                 id="rollback-event"),
    pytest.param(state(), at(2), ControlEvent("abort", "operator"), Action.ABORT, state(), "operator",
                 id="abort-event"),
    pytest.param(state(), at(2), ControlEvent("promote", "looks fine"), Action.PROMOTE, state(), "looks fine",
                 id="promote-event"),
    pytest.param(state(), at(2), ControlEvent("pause", "hold"), Action.CONTINUE, state(paused=True), "hold",
                 id="pause-holds"),
    pytest.param(state(paused=True, extensions=1, faults=1, deadline=at(10)), at(12), ControlEvent("resume", "go"),
                 Action.CONTINUE, state(start=at(12), deadline=at(17), faults=1), "go",
                 id="resume-restarts-window-keeps-faults"),
    pytest.param(state(), at(2), ControlEvent("note", "alert noted"), Action.CONTINUE, state(), "alert noted",
                 id="note-changes-nothing"),
    pytest.param(state(), at(2), ControlEvent("ignore", "resume ignored"), Action.CONTINUE, state(),
                 "resume ignored", id="ignored-event"),
])
def test_next_action(before, now, observed, action, after, reason):
    decision = next_action(before, now, observed, max_inconclusive_windows=2)
    assert decision.action is action
    assert decision.state == after
    assert decision.reason == reason


@pytest.mark.parametrize("before, now, wake", [
    pytest.param(state(), at(1), at(2), id="one-interval-on"),
    pytest.param(state(deadline=at(4.5)), at(4), at(4.5), id="not-past-deadline"),
    pytest.param(state(paused=True), at(4.5), at(5.5), id="paused-is-open-ended"),
    pytest.param(state(), at(5), at(6), id="past-deadline-rechecks-an-interval-on"),
])
def test_next_wake(before, now, wake):
    assert next_wake(before, now, MIN) == wake


def test_open_window_carries_a_pause():
    assert open_window(at(3), 5 * MIN, paused=True) == state(start=at(3), deadline=at(8), paused=True)
    assert state() == WINDOW


def test_a_window_opens_unpaused_by_default():
    assert open_window(at(3), 5 * MIN).paused is False


@pytest.mark.parametrize("window, wire", [
    pytest.param(state(), {"start": "2026-01-01T00:00:00+00:00", "deadline": "2026-01-01T00:05:00+00:00",
                           "length_seconds": 300.0, "extensions": 0, "faults": 0, "paused": False}, id="fresh"),
    pytest.param(state(deadline=at(22.5), extensions=1, faults=2, paused=True),
                 {"start": "2026-01-01T00:00:00+00:00", "deadline": "2026-01-01T00:22:30+00:00",
                  "length_seconds": 300.0, "extensions": 1, "faults": 2, "paused": True}, id="extended-paused"),
])
def test_window_wire_form(window, wire):
    assert window_to_dict(window) == wire
    assert window_from_dict(json.loads(json.dumps(wire))) == window
