"""The rollout record keeps recent health checks and notification results, compactly and bounded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from rollout.notify import NotifyTarget, notification_payload
from rollout.record import MAX_CHECKS_KEPT, MAX_NOTIFICATIONS_KEPT, STATUS_BUDGET_CHARS, RolloutRecord

START = datetime(2026, 1, 1, tzinfo=UTC)


def health(minute: int) -> dict:
    return {"at": (START + timedelta(minutes=minute)).isoformat(), "window_start": START.isoformat(), "step": 10,
            "new": {"requests": 100 * minute, "errors": minute, "latency_p99_ms": 140.0},
            "old": {"requests": 900 * minute, "errors": 0, "latency_p99_ms": None},
            "verdict": "pass", "reason": "fine", "error_rate": 0.01, "baseline_error_rate": None}


def test_each_health_check_set_is_kept_compactly_newest_last_and_bounded() -> None:
    record = RolloutRecord({"endpoint_name": "ep1", "new_deployment": "green"}, "rollout-ep1", START)
    for minute in range(1, MAX_CHECKS_KEPT + 6):
        record.last_health = health(minute)
    out = record.to_dict()
    assert out["last_health"] == health(MAX_CHECKS_KEPT + 5)
    assert len(out["checks"]) == MAX_CHECKS_KEPT
    assert out["checks"][-1] == {"at": "2026-01-01T00:29:00+00:00", "step": 10, "verdict": "pass",
                                 "new": [2900, 29, 140.0], "old": [26100, 0, None]}
    assert out["checks"][0]["at"] == "2026-01-01T00:06:00+00:00"
    assert len(json.dumps(out["checks"])) < STATUS_BUDGET_CHARS / 2


def test_an_error_checking_is_kept_as_a_check_without_numbers() -> None:
    record = RolloutRecord({}, "rollout-ep1", START)
    record.last_health = {"at": START.isoformat(), "verdict": "error", "reason": "metrics unavailable"}
    assert record.to_dict()["checks"] == [{"at": START.isoformat(), "step": None, "verdict": "error", "new": None,
                                           "old": None}]


def test_notification_results_are_kept_bounded() -> None:
    record = RolloutRecord({}, "rollout-ep1", START)
    sent = {"at": "t", "event": "step", "target": "https://hooks.slack.com/services/…", "format": "slack",
            "delivered": False, "attempts": 3, "error": "HTTP 500", "extra": "dropped"}
    for _ in range(MAX_NOTIFICATIONS_KEPT + 3):
        record.note_notifications({"ok": True, "sent": [sent]})
    kept = record.to_dict()["notifications"]
    assert len(kept) == MAX_NOTIFICATIONS_KEPT and "extra" not in kept[0] and kept[0]["error"] == "HTTP 500"


@pytest.mark.parametrize("kind, targets, wanted", [
    pytest.param("rolled_back", (), None, id="no-targets"),
    pytest.param("step", (NotifyTarget("https://a/x", "slack", ("rolled_back",)),), None, id="nobody-wants-it"),
    pytest.param("rolled_back", (NotifyTarget("https://a/x", "slack", ("rolled_back",)), NotifyTarget("https://b/y")),
                 ["https://a/x", "https://b/y"], id="two-want-it"),
])
def test_a_notification_is_asked_for_only_when_a_target_wants_it(kind: str, targets: tuple, wanted: list | None) -> None:
    record = RolloutRecord({"endpoint_name": "ep1", "new_deployment": "green"}, "rollout-ep1", START).to_dict()
    payload = notification_payload(kind, record, targets, START.isoformat())
    assert (None if payload is None else [t["url"] for t in payload["targets"]]) == wanted
    if payload is not None:
        assert payload["event"]["kind"] == kind and payload["event"]["endpoint_name"] == "ep1"


def test_the_oldest_checks_give_way_when_the_status_would_pass_its_budget() -> None:
    record = RolloutRecord({"endpoint_name": "ep1", "new_deployment": "green"}, "rollout-ep1", START)
    for minute in range(25):      # traffic changes are kept (pauses and resumes are bounded on their own)
        record.traffic_change(START + timedelta(minutes=minute), "step", {"blue": 100 - minute, "green": minute},
                              {"blue": 100 - minute, "green": minute},
                              f"a reason long enough to fill the history of a busy rollout, minute {minute}")
    for minute in range(1, MAX_CHECKS_KEPT + 1):
        record.last_health = health(minute)
    out = record.to_dict()
    assert len(json.dumps(out)) < STATUS_BUDGET_CHARS
    assert 0 < len(out["checks"]) < MAX_CHECKS_KEPT
    assert out["checks"][-1]["at"] == health(MAX_CHECKS_KEPT)["at"]           # the newest stay
    assert len(out["history"]) == 25 and out["history_dropped"] == 0            # history goes only after checks


def summarised_record(steps: int, checks_per_step: int) -> RolloutRecord:
    record = RolloutRecord({"endpoint_name": "ep1", "new_deployment": "green"}, "rollout-ep1", START)
    record.phase = "observing"
    minute = 0
    for step in range(1, steps + 1):
        record.traffic_change(START + timedelta(minutes=minute), "step", {"green": step}, {"green": step}, "step")
        for _ in range(checks_per_step):
            minute += 1
            check = health(minute)
            check["step"] = step
            record.last_health = check
    return record


def test_checks_older_than_the_kept_ones_stay_counted_in_per_step_summaries() -> None:
    out = summarised_record(steps=12, checks_per_step=8).to_dict()      # 96 checks, 24 kept in full
    assert len(out["checks"]) == MAX_CHECKS_KEPT and out["summaries_dropped"] == 0
    assert [s["step"] for s in out["step_summaries"]] == list(range(1, 13))
    assert sum(s["checks"] for s in out["step_summaries"]) == 96
    assert out["step_summaries"][0] == {"step": 1, "phase": "observing", "from": "2026-01-01T00:01:00+00:00",
                                        "checks": 8, "verdicts": {"pass": 8},
                                        "new": [sum(100 * m for m in range(1, 9)), sum(range(1, 9))],
                                        "old": [sum(900 * m for m in range(1, 9)), 0]}


def test_summaries_give_way_to_traffic_history_but_the_newest_checks_stay() -> None:
    out = summarised_record(steps=100, checks_per_step=1).to_dict()
    assert len(json.dumps(out)) < STATUS_BUDGET_CHARS
    assert out["summaries_dropped"] + len(out["step_summaries"]) == 100
    assert [c["step"] for c in out["checks"]][-4:] == [97, 98, 99, 100], "the newest checks are shown in full"
