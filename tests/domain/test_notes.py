"""Coalescing record-only alert notes into one event, and reading them back: named rows."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.notes import MAX_NOTES_PER_EVENT, coalesce, notes_in


def note(alert_id: str, condition: str = "Fired", rule: str = "r") -> dict[str, Any]:
    return {"alert_id": alert_id, "monitor_condition": condition, "rule": rule}


@pytest.mark.parametrize("notes, reason, alerts", [
    pytest.param([(note("a"), "recorded a")], "recorded a", [(note("a"), 1)], id="one-note-keeps-its-reason"),
    pytest.param([(note("a"), "x"), (note("a"), "y")], "2 alert notes (1 distinct)", [(note("a"), 2)],
                 id="duplicates-counted"),
    pytest.param([(note("a"), "x"), (note("a", "Resolved"), "y")], "2 alert notes (2 distinct)",
                 [(note("a"), 1), (note("a", "Resolved"), 1)], id="condition-is-part-of-the-key"),
    pytest.param([(note("a"), "x"), (note("b"), "y"), (note("a", rule="r2"), "z")], "3 alert notes (2 distinct)",
                 [(note("b"), 1), (note("a", rule="r2"), 2)], id="repeat-moves-last-with-newest-summary"),
    pytest.param([(note("", rule="r1"), "x"), (note("", rule="r2"), "y"), (note("", rule="r1"), "z")],
                 "3 alert notes (2 distinct)", [(note("", rule="r2"), 1), (note("", rule="r1"), 2)],
                 id="without-id-the-rule-is-the-key"),
    pytest.param([({"rule": "r"}, "x"), ({"rule": "r", "alert_id": None}, "y")], "2 alert notes (1 distinct)",
                 [({"rule": "r", "alert_id": None}, 2)], id="missing-and-null-id-alike"),
    pytest.param([(note(str(n)), "x") for n in range(4)] + [(note(str(n)), "x") for n in range(3, MAX_NOTES_PER_EVENT + 2)],
                 "13 alert notes (12 distinct)",
                 [(note("2"), 3), (note("3"), 2)] + [(note(str(n)), 1) for n in range(4, 12)],
                 id="overflow-counted-into-oldest-kept"),
])
def test_coalesce(notes: list[tuple[dict[str, Any], str]], reason: str, alerts: list[tuple[dict[str, Any], int]]) -> None:
    payload = coalesce(notes)
    assert payload == {"reason": reason, "alerts": [{"alert": a, "count": c} for a, c in alerts]}
    assert sum(item["count"] for item in payload["alerts"]) == len(notes)


def test_coalesce_copies_the_summary() -> None:
    summary = note("a")
    payload = coalesce([(summary, "x")])
    summary["rule"] = "changed"
    assert payload["alerts"][0]["alert"]["rule"] == "r"


@pytest.mark.parametrize("payload, notes", [
    pytest.param(None, [], id="not-a-mapping"),
    pytest.param({}, [], id="empty"),
    pytest.param({"alert": note("a")}, [(note("a"), 1)], id="single-alert"),
    pytest.param({"alert": "a"}, [], id="single-alert-not-a-mapping"),
    pytest.param({"alerts": [{"alert": note("a"), "count": 3}, {"alert": note("b")}]}, [(note("a"), 3), (note("b"), 1)],
                 id="coalesced-with-counts"),
    pytest.param({"alerts": [{"alert": note("a"), "count": 0}, {"alert": note("b"), "count": "2"},
                             {"alert": note("c"), "count": -1}]},
                 [(note("a"), 1), (note("b"), 1), (note("c"), 1)], id="bad-counts-are-one"),
    pytest.param({"alerts": [{"alert": note("a"), "count": 1}, "x", {"alert": "y"}, {"count": 2}]}, [(note("a"), 1)],
                 id="bad-items-skipped"),
    pytest.param({"alerts": {"alert": note("a")}}, [], id="alerts-not-a-list"),
    pytest.param({"alerts": None}, [], id="alerts-null"),
    pytest.param({"alerts": ({"alert": note("a")},)}, [], id="alerts-tuple-is-not-the-wire-list"),
    pytest.param({"alert": note("a"), "alerts": [{"alert": note("b"), "count": 2}]}, [(note("a"), 1), (note("b"), 2)],
                 id="both-forms"),
])
def test_notes_in(payload: Any, notes: list[tuple[dict[str, Any], int]]) -> None:
    assert notes_in(payload) == notes


def test_notes_in_reads_back_what_coalesce_builds() -> None:
    notes = [(note("a"), "x"), (note("b"), "y"), (note("a"), "z")]
    assert notes_in(coalesce(notes)) == [(note("b"), 1), (note("a"), 2)]
