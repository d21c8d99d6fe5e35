"""Control events an operator (or an alert) sends a running rollout, and what each means now.

Events: ``rollback`` and ``abort`` (return all traffic to the old deployment; outcomes
``rolled_back`` and ``aborted``), ``promote`` (give the new deployment its whole share now),
``revert`` (after promotion, within the revert window: the old deployment gets its traffic back,
outcome ``reverted``), ``pause`` / ``resume`` (hold the current step; health checks go on while paused, and a resume
restarts the step's observation window), ``alert`` (record-only alert notes, possibly several
coalesced into one event) and ``resolve`` (a person takes over a rollback that keeps failing:
the rollout stops retrying, reads traffic once and ends).

An ending action (rollback, abort, promote) received while the orchestrator waits for
something else is kept as the rollout's *intent* and carried out at the next decision point,
before any further traffic change: ``merge_intent`` says which one stands when several arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

# Taken in this order when several are waiting at once: the safe ones first.
CONTROL_EVENTS = ("rollback", "abort", "revert", "resolve", "promote", "pause", "resume", "alert")
OPERATOR_ACTIONS = ("pause", "resume", "promote", "abort", "resolve", "revert")
ACTIVE_PHASES = ("preflight", "creating", "mirroring", "scaling", "shifting", "observing", "baking", "autoscaling",
                 "cleaning_up")
BEFORE_TRAFFIC = ("preflight", "creating", "mirroring")
ENDING_ACTIONS = ("rollback", "abort", "promote", "revert")
# Rank of each ending action: a safer one replaces a less safe one, never the reverse.
_RANK = {"promote": 1, "rollback": 2, "abort": 2, "revert": 2}


@dataclass(frozen=True)
class Intent:
    """An ending action received and not yet carried out, with its reason."""

    action: str
    reason: str


def control_action(event: str, payload: Any, paused: bool) -> tuple[str, str]:
    """Map an event to (action, reason): action is one of rollback, abort, promote, pause,
    resume, resolve, note or ignore."""
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


def merge_intent(current: Intent | None, action: str, reason: str) -> Intent | None:
    """The ending action that stands after ``action`` arrives while ``current`` is pending.

    Rollback and abort outrank promote (a rollout never moves towards the new deployment once
    someone asked to go back); between two of the same rank the first received stands. An
    action that is not an ending action changes nothing.
    """
    if action not in _RANK:
        return current
    if current is None or _RANK[action] > _RANK[current.action]:
        return Intent(action, reason)
    return current


def _reason(event: str, payload: Any) -> str:
    reason = payload.get("reason") if isinstance(payload, Mapping) else None
    return reason if isinstance(reason, str) and reason else f"{event} requested"


def action_refusal(action: str, status: Mapping[str, Any] | None) -> str | None:
    """Why an operator action does not fit the rollout's phase now, or None when it does.

    ``status`` is the rollout's custom status (``RolloutRecord.to_dict``) or None before the
    orchestrator first reported one. ``resolve`` fits only while a rollback is being retried
    (phase ``rolling_back``); every other action needs an active phase.
    """
    if action not in OPERATOR_ACTIONS:
        return f"unknown action {action!r}; use one of {', '.join(OPERATOR_ACTIONS)}"
    phase = (status or {}).get("phase", "preflight")
    paused = bool((status or {}).get("paused"))
    if action == "resolve":
        if phase != "rolling_back":
            return f"the rollout is {phase}; resolve only stops a rollback that is being retried"
        return None
    if phase == "rolling_back":
        return (f"the rollout is rolling back; {action} does not apply. If the rollback keeps failing, fix the "
                "cause (the status shows the last error) or send resolve once traffic is safe")
    if phase not in ACTIVE_PHASES:
        return f"the rollout is {phase}; {action} needs a running rollout"
    if action == "pause" and paused:
        return "the rollout is already paused"
    if action == "resume" and not paused:
        return "the rollout is not paused"
    if action == "revert":
        if phase != "cleaning_up" or not (status or {}).get("revert_until"):
            return (f"the rollout is {phase}; revert fits only after promotion, within the revert window "
                    "(cleanup scale_down or delete)")
        return None
    if phase in ("autoscaling", "cleaning_up"):
        return f"the rollout is {phase}: the new deployment is promoted; use revert within the revert window"
    if action == "promote" and phase in BEFORE_TRAFFIC:
        shown = "pre-flight" if phase == "preflight" else phase
        return f"the rollout is still in {shown}; promote fits once traffic starts shifting"
    if action in ("pause", "resume") and phase == "preflight":
        return f"the rollout is still in pre-flight; {action} fits once traffic starts shifting"
    return None
