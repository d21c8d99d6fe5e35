"""Coalescing record-only alert notes into one control event.

A burst of alerts that only need recording (Resolved, or Fired for another deployment) must not
become one orchestration event each: every event replays the whole history, so thousands of
them delay a rollback queued behind them by minutes. The webhook holds notes that arrive while
one ``alert`` event for the same rollout is being raised and sends them together as the next
one (``api.alert_delivery``); this module decides what that event carries.

``coalesce`` de-duplicates by (alert id, monitor condition), counting duplicates, keeps the
newest ``MAX_NOTES_PER_EVENT`` distinct alerts in arrival order, and counts the older ones it
drops into the oldest kept one, so the event stays small and ``alerts_received`` stays exact. ``notes_in`` reads the
notes back out of an event (a single ``alert`` or a coalesced ``alerts`` list).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

MAX_NOTES_PER_EVENT = 10


def coalesce(notes: Sequence[tuple[Mapping[str, Any], str]]) -> dict[str, Any]:
    """The payload of one ``alert`` event for ``notes``, each an (alert summary, reason) pair in arrival order.

    Returns ``{"reason": str, "alerts": [{"alert": summary, "count": n}, ...]}``; the counts add up
    to ``len(notes)``.
    """
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for alert, reason in notes:
        key = (str(alert.get("alert_id") or ""), str(alert.get("monitor_condition") or ""),
               "" if alert.get("alert_id") else str(alert.get("rule") or ""))
        entry = merged.pop(key, None)
        count = entry["count"] + 1 if entry else 1
        merged[key] = {"alert": dict(alert), "count": count, "reason": reason}  # re-inserted: newest last
    entries = list(merged.values())
    kept, dropped = entries[-MAX_NOTES_PER_EVENT:], entries[:-MAX_NOTES_PER_EVENT]
    if dropped and kept:
        kept[0] = {**kept[0], "count": kept[0]["count"] + sum(e["count"] for e in dropped)}
    reason = kept[-1]["reason"] if len(notes) == 1 else f"{len(notes)} alert notes ({len(entries)} distinct)"
    return {"reason": reason, "alerts": [{"alert": e["alert"], "count": e["count"]} for e in kept]}


def notes_in(payload: Any) -> list[tuple[Mapping[str, Any], int]]:
    """The alert notes an event carries: one ``alert``, or ``alerts`` coalesced by the webhook, each
    with how many deliveries it stands for."""
    if not isinstance(payload, Mapping):
        return []
    notes: list[tuple[Mapping[str, Any], int]] = []
    if isinstance(payload.get("alert"), Mapping):
        notes.append((payload["alert"], 1))
    for item in payload.get("alerts") or [] if isinstance(payload.get("alerts"), list) else []:
        if isinstance(item, Mapping) and isinstance(item.get("alert"), Mapping):
            count = item.get("count")
            notes.append((item["alert"], count if isinstance(count, int) and count > 0 else 1))
    return notes
