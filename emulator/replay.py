"""Replay and action matching: which of an orchestrator's actions are new, and whether it replayed faithfully.

The SDK returns every action since the start on each replay. The host replays them against
history by sequence number; here the k-th action of the flattened list is the k-th action carried
out so far, checked for the same type and name (otherwise the orchestration fails as
non-deterministic), and only actions past those are carried out. ``RetryPolicy`` is DTFx's
``RetryOptions`` for ``CallActivityWithRetry``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from azure.durable_functions.models.actions.ActionType import ActionType

from emulator.history import Record

SCHEDULING_ACTIONS = frozenset({ActionType.CALL_ACTIVITY, ActionType.CALL_ACTIVITY_WITH_RETRY})
COMPOUND_ACTIONS = frozenset({ActionType.WHEN_ANY, ActionType.WHEN_ALL})
SUPPORTED_ACTIONS = SCHEDULING_ACTIONS | {ActionType.CREATE_TIMER, ActionType.WAIT_FOR_EXTERNAL_EVENT,
                                          ActionType.CONTINUE_AS_NEW}

Signature = tuple[int, str | None]


def flatten_actions(state: Record) -> list[Record]:
    """The atomic actions of an orchestrator state, in order, compound actions replaced by their children.

    Accepts both replay schemas: V1 (``actions`` a list of per-yield lists) and V2/V3 (one list).
    """
    flat: list[Record] = []

    def add(action: Record) -> None:
        if action.get("actionType") in COMPOUND_ACTIONS:
            for child in action.get("compoundActions") or []:
                add(child)
        else:
            flat.append(action)

    for group in state.get("actions") or []:
        for action in group if isinstance(group, list) else [group]:
            add(action)
    return flat


def action_signature(action: Record) -> Signature:
    """What must match between replays: the action type and the function or event name."""
    return action.get("actionType", -1), action.get("functionName") or action.get("externalEventName")


def nondeterminism(carried_out: list[Signature], actions: list[Record]) -> str | None:
    """Why ``actions`` do not replay what was carried out before, or None when they do."""
    for index, done in enumerate(carried_out):
        if index >= len(actions) or action_signature(actions[index]) != done:
            now = action_signature(actions[index]) if index < len(actions) else None
            return (f"Non-Deterministic workflow detected: action {index} was {ActionType(done[0]).name} "
                    f"{done[1]!r} in an earlier episode but is {now} on replay")
    return None


def unsupported(actions: list[Record]) -> str | None:
    """Why the emulator cannot carry out one of ``actions`` (sub-orchestrations, entities, HTTP), or None."""
    for action in actions:
        action_type = action.get("actionType")
        if action_type not in SUPPORTED_ACTIONS:
            try:
                name = ActionType(action_type).name
            except ValueError:
                name = repr(action_type)
            return f"the emulator's task hub does not support the {name} action"
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """DTFx ``RetryOptions`` from an action's ``retryOptions`` JSON (backoff 1 and no cap unless given)."""

    first_interval: timedelta
    max_attempts: int
    backoff_coefficient: float = 1.0
    max_interval: timedelta | None = None

    @classmethod
    def from_json(cls, options: Record) -> RetryPolicy:
        max_interval_ms = options.get("maxRetryIntervalInMilliseconds")
        return cls(timedelta(milliseconds=options["firstRetryIntervalInMilliseconds"]),
                   int(options["maxNumberOfAttempts"]), float(options.get("backoffCoefficient") or 1.0),
                   None if max_interval_ms is None else timedelta(milliseconds=max_interval_ms))

    def delay(self, failed_attempt_index: int) -> timedelta:
        """The wait after the attempt with this 0-based index failed: first interval x backoff^index, capped."""
        delay = self.first_interval * (self.backoff_coefficient ** failed_attempt_index)
        return min(delay, self.max_interval) if self.max_interval is not None else delay
