"""Control events an operator (or an alert) sends a running rollout, and what each means now.

Events: ``rollback`` and ``abort`` (return all traffic to the old deployment; outcomes
``rolled_back`` and ``aborted``), ``promote`` (give the new deployment its whole share now),
``pause`` / ``resume`` (hold the current step; health checks go on while paused, and a resume
restarts the step's observation window), and ``alert`` (a record-only alert note).
"""

from __future__ import annotations

from typing import Any, Mapping

# Checked in this order when several are waiting: the safe ones first.
CONTROL_EVENTS = ("rollback", "abort", "promote", "pause", "resume", "alert")
OPERATOR_ACTIONS = ("pause", "resume", "promote", "abort")
ACTIVE_PHASES = ("preflight", "shifting", "observing", "baking")


def control_action(event: str, payload: Any, paused: bool) -> tuple[str, str]:
    """Map an event to (action, reason): action is one of rollback, abort, promote, pause,
    resume, note or ignore."""
    reason = _reason(event, payload)
    if event == "pause" and paused:
        return "ignore", "pause ignored: already paused"
    if event == "resume" and not paused:
        return "ignore", "resume ignored: not paused"
    if event == "alert":
        return "note", reason
    if event in CONTROL_EVENTS:
        return event, reason
    return "ignore", f"unknown event {event!r}"


def _reason(event: str, payload: Any) -> str:
    reason = payload.get("reason") if isinstance(payload, Mapping) else None
    if isinstance(reason, str) and reason:
        return reason
    return f"{event} requested"


def action_refusal(action: str, status: Mapping[str, Any] | None) -> str | None:
    """Why an operator action does not fit the rollout's phase now, or None when it does.

    ``status`` is the rollout's custom status (``RolloutRecord.to_dict``) or None before the
    orchestrator first reported one.
    """
    if action not in OPERATOR_ACTIONS:
        return f"unknown action {action!r}; use one of {', '.join(OPERATOR_ACTIONS)}"
    phase = (status or {}).get("phase", "preflight")
    paused = bool((status or {}).get("paused"))
    if phase not in ACTIVE_PHASES:
        return f"the rollout is {phase}; {action} needs a running rollout"
    if action == "pause" and paused:
        return "the rollout is already paused"
    if action == "resume" and not paused:
        return "the rollout is not paused"
    if action in ("pause", "resume", "promote") and phase == "preflight":
        return f"the rollout is still in pre-flight; {action} fits once traffic starts shifting"
    return None
