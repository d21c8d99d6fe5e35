"""The rollout record as a pure object: its whole status form, snapshots, clipping and every bound (named rows)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rollout.record import (
    MAX_ALERTS_KEPT,
    MAX_CHECKS_KEPT,
    MAX_HOLDS_KEPT,
    MAX_NOTIFICATIONS_KEPT,
    MAX_PHASES_KEPT,
    MAX_TEXT_CHARS,
    MIN_CHECKS_SHOWN,
    STATUS_BUDGET_CHARS,
    RolloutRecord,
    clip,
    compact_check,
    status_size_bytes,
)

T = datetime(2026, 1, 1, tzinfo=UTC)
TRAFFIC = {"blue": 90, "green": 10}
HEALTH = {"at": "t1", "step": 10, "verdict": "pass", "new": {"requests": 5, "errors": 1, "latency_p99_ms": 9.0},
          "old": {"requests": 50, "errors": None}}


def at(minute: int) -> datetime:
    return T + timedelta(minutes=minute)


def sample() -> RolloutRecord:
    """A record after one of each thing the orchestrator records."""
    record = RolloutRecord({"endpoint_name": "ep", "new_deployment": "green", "other": 1}, "rollout-ep", T)
    record.plan = {"old": "blue", "new": "green", "steps": [10, 100]}
    record.step_index, record.phase = 0, "shifting"
    record.traffic_change(at(1), "step", {"Blue": 90, "GREEN": 10}, {"BLUE": 90, "green": 10}, "step 1")
    record.last_health = HEALTH
    record.hold_change(at(2), "pause", "operator")
    record.note_alert(at(3), {"rule": "cpu", "monitor_condition": "Fired"}, "recorded", count=3)
    record.rollback_attempt_failed(at(4), 1, "boom", at(5))
    record.rollback_attempt_failed(at(5), 2, "boom again", at(6))
    record.rollback_succeeded()
    record.note_notifications({"sent": [{"at": "t", "event": "step", "target": "https://h/…", "format": "slack",
                                         "delivered": True, "attempts": 1, "error": None}]})
    record.steps_completed.append(10)
    record.phases.append({"phase": "creating", "logs": {"green": ["a", "b"]}})
    return record


STATUS: dict[str, Any] = {
    "instance_id": "rollout-ep", "endpoint_name": "ep", "new_deployment": "green", "phase": "shifting", "paused": True,
    "plan": {"old": "blue", "new": "green", "steps": [10, 100]}, "step_index": 0, "current_step": 10, "traffic": TRAFFIC,
    "last_health": HEALTH,
    "history": [{"at": "2026-01-01T00:01:00+00:00", "kind": "step", "reason": "step 1", "requested": TRAFFIC,
                 "traffic": TRAFFIC},
                {"at": "2026-01-01T00:02:00+00:00", "kind": "pause", "reason": "operator", "requested": None,
                 "traffic": TRAFFIC}],
    "history_dropped": 0,
    "alerts": [{"at": "2026-01-01T00:03:00+00:00", "action": "recorded", "rule": "cpu", "monitor_condition": "Fired"}],
    "alerts_received": 3,
    "checks": [{"at": "t1", "step": 10, "verdict": "pass", "new": [5, 1, 9.0], "old": [50, None, None]}],
    "step_summaries": [{"step": 10, "phase": "shifting", "from": "t1", "checks": 1, "verdicts": {"pass": 1},
                        "new": [5, 1], "old": [50, 0]}],
    "summaries_dropped": 0, "baseline": None,
    "notifications": [{"at": "t", "event": "step", "target": "https://h/…", "format": "slack", "delivered": True,
                       "attempts": 1, "error": None}],
    "rollback": {"attempts": 2, "failing_since": "2026-01-01T00:04:00+00:00"},
    "steps_completed": [10], "phases": [{"phase": "creating", "logs": {"green": "2 lines, in the output"}}],
    "phases_dropped": 0, "revert_until": None, "started_at": "2026-01-01T00:00:00+00:00", "ended_at": None,
    "outcome": None, "reason": None, "final_traffic": None,
}


def test_status_whole_form() -> None:
    assert sample().to_dict() == STATUS


def test_a_fresh_record() -> None:
    status = RolloutRecord({}, "i", T).to_dict()
    assert {k: status[k] for k in ("phase", "paused", "plan", "step_index", "current_step", "traffic", "last_health",
                                   "history", "rollback", "alerts_received", "phases", "outcome")} == {
        "phase": "preflight", "paused": False, "plan": None, "step_index": None, "current_step": None, "traffic": {},
        "last_health": None, "history": [], "rollback": None, "alerts_received": 0, "phases": [], "outcome": None}


def test_finish_gives_the_output_with_the_logs_in_full() -> None:
    record = sample()
    output = record.finish(at(9), "rolled_back", "x" * 1200)
    assert output == {**STATUS, "phase": "done", "ended_at": "2026-01-01T00:09:00+00:00", "outcome": "rolled_back",
                      "reason": "x" * 997 + "...", "final_traffic": TRAFFIC,
                      "phases": [{"phase": "creating", "logs": {"green": ["a", "b"]}}]}
    assert record.to_dict()["phases"] == STATUS["phases"]   # the status still counts the lines only


def test_finish_refuses_an_unknown_outcome() -> None:
    with pytest.raises(AssertionError):
        RolloutRecord({}, "i", T).finish(T, "won", "?")


def test_snapshot_restores_the_same_record_independently() -> None:
    record = sample()
    record.baseline = {"error_rate": 0.01}
    snapshot = record.snapshot()
    restored = RolloutRecord.restore(snapshot)
    assert restored.to_dict() == record.to_dict() and restored.snapshot() == snapshot
    assert restored.last_health == HEALTH and restored.started_at == "2026-01-01T00:00:00+00:00"
    snapshot["history"].clear()
    restored.history.append({"kind": "x"})
    assert len(record.history) == 2 and len(record.snapshot()["history"]) == 2


@pytest.mark.parametrize("text, limit, clipped", [
    pytest.param(None, 10, None, id="none"),
    pytest.param("abcdefghij", 10, "abcdefghij", id="at-the-limit"),
    pytest.param("abcdefghijk", 10, "abcdefg...", id="over-the-limit"),
    pytest.param("é" * 3, 18, "é" * 3, id="escaped-at-the-limit"),
    pytest.param("é" * 4, 18, "é" * 2 + "...", id="non-ascii-counts-escaped"),
    pytest.param('a"b"c"d', 10, 'a"b"c"d', id="quotes-count-twice-at-the-limit"),
    pytest.param('a"b"c"de', 10, 'a"b"c...', id="quotes-count-twice-over"),
])
def test_clip(text: str | None, limit: int, clipped: str | None) -> None:
    assert clip(text, limit) == clipped


def test_clip_default_limit() -> None:
    assert clip("y" * MAX_TEXT_CHARS) == "y" * MAX_TEXT_CHARS
    assert clip("y" * (MAX_TEXT_CHARS + 1)) == "y" * (MAX_TEXT_CHARS - 3) + "..."


def test_status_size_is_utf16_json() -> None:
    assert status_size_bytes({"a": "é"}) == 2 * len('{"a": "\\u00e9"}')
    assert status_size_bytes({"at": T}) == 2 * len(json.dumps({"at": str(T)}))


@pytest.mark.parametrize("requested, observed, entry, traffic", [
    pytest.param({"Blue": 50, "green": 50}, None, {"requested": {"blue": 50, "green": 50}, "traffic": None}, {"blue": 100},
                 id="failed-attempt-keeps-traffic"),
    pytest.param(None, {"Green": 100}, {"requested": None, "traffic": {"green": 100}}, {"green": 100},
                 id="read-back-only"),
])
def test_traffic_change(requested: dict[str, int] | None, observed: dict[str, int] | None, entry: dict[str, Any],
                        traffic: dict[str, int]) -> None:
    record = RolloutRecord({}, "i", T)
    record.observe({"BLUE": 100})
    record.traffic_change(at(1), "rollback", requested, observed, "r" * 400)
    assert record.history == [{"at": "2026-01-01T00:01:00+00:00", "kind": "rollback", "reason": "r" * 297 + "...",
                               **entry}]
    assert record.traffic == traffic


def test_holds_keep_the_newest_and_count_the_rest() -> None:
    record = RolloutRecord({}, "i", T)
    record.traffic_change(at(0), "step", None, {"blue": 100}, "first")
    for n in range(MAX_HOLDS_KEPT + 2):
        record.hold_change(at(n + 1), "pause" if n % 2 == 0 else "resume", f"hold {n}")
    record.traffic_change(at(20), "step", None, {"blue": 100}, "last")
    assert [e["reason"] for e in record.history] == ["first"] + [f"hold {n}" for n in range(2, MAX_HOLDS_KEPT + 2)] + ["last"]
    assert record.history_dropped == 2 and record.paused is False
    record.hold_change(at(30), "pause", "again")
    assert record.paused is True and record.history_dropped == 3 and record.history[-1]["traffic"] == {"blue": 100}


@pytest.mark.parametrize("alert, count, shown, received", [
    pytest.param({"rule": "r" * 200, "monitor_condition": "c" * 30}, 1,
                 {"rule": "r" * 117 + "...", "monitor_condition": "c" * 17 + "..."}, 1, id="clipped"),
    pytest.param({"rule": 5}, 0, {"rule": "5", "monitor_condition": None}, 1, id="zero-count-is-one"),
    pytest.param({}, 4, {"rule": None, "monitor_condition": None}, 4, id="counted"),
])
def test_note_alert(alert: dict[str, Any], count: int, shown: dict[str, Any], received: int) -> None:
    record = RolloutRecord({}, "i", T)
    record.note_alert(at(1), alert, "recorded", count)
    assert record.alerts == [{"at": "2026-01-01T00:01:00+00:00", "action": "recorded", **shown}]
    assert record.alerts_received == received


def test_alerts_keep_the_newest() -> None:
    record = RolloutRecord({}, "i", T)
    for n in range(MAX_ALERTS_KEPT + 3):
        record.note_alert(at(n), {"rule": str(n)}, "recorded")
    assert [a["rule"] for a in record.alerts] == [str(n) for n in range(3, MAX_ALERTS_KEPT + 3)]
    assert record.alerts_received == MAX_ALERTS_KEPT + 3


def test_rollback_attempts_keep_when_failing_began() -> None:
    record = RolloutRecord({}, "i", T)
    record.rollback_succeeded()
    assert record.rollback is None
    record.rollback_attempt_failed(at(1), 1, "e" * 400, at(2))
    record.rollback_attempt_failed(at(2), 2, "second", at(4))
    assert record.rollback == {"attempts": 2, "failing_since": "2026-01-01T00:01:00+00:00", "last_error": "second",
                               "next_attempt_at": "2026-01-01T00:04:00+00:00"}
    record.rollback_succeeded()
    assert record.rollback == {"attempts": 2, "failing_since": "2026-01-01T00:01:00+00:00"}


def test_notifications_clip_text_and_keep_the_newest() -> None:
    record = RolloutRecord({}, "i", T)
    record.note_notifications({})
    assert record.notifications == []
    for n in range(MAX_NOTIFICATIONS_KEPT + 1):
        record.note_notifications({"sent": [{"event": str(n), "error": "x" * 400, "attempts": 3}]})
    assert len(record.notifications) == MAX_NOTIFICATIONS_KEPT
    assert record.notifications[0] == {"at": None, "event": "1", "target": None, "format": None, "delivered": None,
                                       "attempts": 3, "error": "x" * 297 + "..."}


@pytest.mark.parametrize("plan, index, step", [
    pytest.param(None, 0, None, id="no-plan"), pytest.param({"steps": [10, 50]}, None, None, id="no-step-yet"),
    pytest.param({"steps": [10, "50"]}, 1, 50, id="second-step")])
def test_current_step(plan: dict[str, Any] | None, index: int | None, step: int | None) -> None:
    record = RolloutRecord({}, "i", T)
    record.plan, record.step_index = plan, index
    assert record.current_step() == step


@pytest.mark.parametrize("count, shown, dropped", [
    pytest.param(MAX_PHASES_KEPT, list(range(MAX_PHASES_KEPT)), 0, id="all-up-to-the-bound"),
    pytest.param(MAX_PHASES_KEPT + 2, [0, 3, 4, 5, 6, 7], 2, id="first-and-newest"),
])
def test_phases_shown(count: int, shown: list[int], dropped: int) -> None:
    record = RolloutRecord({}, "i", T)
    record.phases = [{"n": n, "logs": "not a mapping"} for n in range(count)]
    status = record.to_dict()
    assert [p["n"] for p in status["phases"]] == shown and status["phases_dropped"] == dropped
    assert status["phases"][0]["logs"] == "not a mapping"


def test_checks_are_summarised_per_step_and_phase() -> None:
    record = RolloutRecord({}, "i", T)
    record.phase = "shifting"
    for verdict, step in (("pass", 10), ("fail", 10), ("pass", 50)):
        record.last_health = {**HEALTH, "verdict": verdict, "step": step}
    record.phase = "baking"
    record.last_health = {**HEALTH, "step": 50, "new": "n/a"}
    record.last_health = {**HEALTH, "step": 50, "new": {"requests": None, "errors": 0}}
    record.last_health = None
    assert record.last_health is None and len(record.checks) == 5
    assert [(s["step"], s["phase"], s["checks"], s["verdicts"], s["new"], s["old"]) for s in record.step_summaries] == [
        (10, "shifting", 2, {"pass": 1, "fail": 1}, [10, 2], [100, 0]),
        (50, "shifting", 1, {"pass": 1}, [5, 1], [50, 0]),
        (50, "baking", 2, {"pass": 2}, [0, 0], [100, 0])]
    shown = record.to_dict()["step_summaries"]
    shown[0]["verdicts"]["pass"] = 99
    assert record.step_summaries[0]["verdicts"]["pass"] == 1      # the status is a copy


def test_compact_check() -> None:
    assert compact_check({"at": "t", "new": {"requests": 1}, "old": 3}) == {
        "at": "t", "step": None, "verdict": None, "new": [1, None, None], "old": None}


# --- the status budget: what goes first when the status would be too long ---------------------------


def size(status: dict[str, Any]) -> int:
    return len(json.dumps(status, default=str))


def with_checks(count: int, step_of: Any = lambda n: 10) -> RolloutRecord:
    record = RolloutRecord({"endpoint_name": "ep"}, "i", T)
    for n in range(count):
        record.last_health = {**HEALTH, "at": f"t{n:03d}", "step": step_of(n)}
    return record


def pad_to(record: RolloutRecord, over: int, shown: Any = lambda status: status) -> None:
    """Pad ``baseline`` so that the status (as ``shown`` trims it) is ``over`` characters beyond the
    budget's edge (0: exactly ``STATUS_BUDGET_CHARS``, which is already too long)."""
    record.baseline = None
    untrimmed = size(shown(record.to_dict()))
    assert untrimmed < STATUS_BUDGET_CHARS
    record.baseline = {"pad": "x" * (STATUS_BUDGET_CHARS - untrimmed - len('{"pad": ""}') + len("null") + over)}


@pytest.mark.parametrize("count, over, kept", [
    pytest.param(MAX_CHECKS_KEPT, 0, MAX_CHECKS_KEPT - MAX_CHECKS_KEPT // 4, id="exactly-the-budget-drops-a-quarter"),
    pytest.param(MAX_CHECKS_KEPT, -1, MAX_CHECKS_KEPT, id="one-under-the-budget-drops-nothing"),
    pytest.param(6, 0, 5, id="a-quarter-of-few-is-one"),
])
def test_oldest_checks_go_first_by_quarters(count: int, over: int, kept: int) -> None:
    record = with_checks(count)
    pad_to(record, over)
    status = record.to_dict()
    assert [c["at"] for c in status["checks"]] == [f"t{n:03d}" for n in range(count - kept, count)]
    assert status["step_summaries"] == record.to_dict()["step_summaries"] and len(status["step_summaries"]) == 1
    assert len(record.checks) == count                 # the record keeps them all


def test_then_summaries_then_history_then_the_last_checks() -> None:
    record = with_checks(MIN_CHECKS_SHOWN + 2, step_of=lambda n: 10 * n)
    for n in range(30):
        record.traffic_change(at(n), "step", None, {"green": 100}, f"{n:03d} " + "r" * 250)
    record.history_dropped = 5
    status = record.to_dict()
    kept = len(status["history"])
    assert 0 < kept < 30 and size(status) < STATUS_BUDGET_CHARS
    assert status["history"] == record.history[-kept:] and status["history_dropped"] == 5 + 30 - kept
    assert size({**status, "history": record.history[-kept - 1:]}) >= STATUS_BUDGET_CHARS   # no more left out than needed
    assert len(status["checks"]) == MIN_CHECKS_SHOWN and status["step_summaries"] == []
    assert status["summaries_dropped"] == MIN_CHECKS_SHOWN + 2

    record.history.clear()
    pad_to(record, 0, lambda status: {**status, "checks": status["checks"][-MIN_CHECKS_SHOWN:], "step_summaries": [],
                                      "summaries_dropped": MIN_CHECKS_SHOWN + 2})
    status = record.to_dict()
    assert [c["at"] for c in status["checks"]] == [f"t{n:03d}" for n in range(3, MIN_CHECKS_SHOWN + 2)]
