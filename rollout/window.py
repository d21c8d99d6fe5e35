"""The observation window's state machine: when to check, when a window ends and how.

This is the logic of ``observe`` in ``orchestrators/rollout.py``, moved out to be pure:

- health is checked every ``check_interval``; the window ends at its deadline, except while
  paused (checks go on, the window does not end) and after a failed check (re-check first);
- a FAIL verdict rolls back at once; ``MAX_HEALTH_CHECK_FAULTS`` failed checks in a row roll
  back; a PASS at or after the deadline passes the window;
- an INCONCLUSIVE verdict at the deadline extends the window by its length, at most
  ``max_inconclusive_windows`` times, then rolls back;
- ``rollback``, ``abort`` and ``promote`` end the window at once; ``pause`` holds it;
  ``resume`` restarts it (new start, deadline and extensions; the fault count is kept).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Mapping

from rollout.verdict import Verdict

MAX_HEALTH_CHECK_FAULTS = 3     # consecutive failed health checks before rolling back


class Action(enum.StrEnum):
    """What the orchestrator does next."""

    CONTINUE = "continue"   # wait for the next check (``next_wake``)
    EXTEND = "extend"       # inconclusive at the deadline: the window got longer; keep checking
    PASS = "passed"         # the window ended healthy
    ROLLBACK = "rollback"
    ABORT = "abort"
    PROMOTE = "promote"


@dataclass(frozen=True)
class WindowState:
    """One observation window. ``start`` is where its health measurement begins."""

    start: datetime
    deadline: datetime
    length: timedelta
    extensions: int = 0
    faults: int = 0
    paused: bool = False


@dataclass(frozen=True)
class CheckResult:
    """A health check's outcome: a verdict, or None when the check itself failed (a fault)."""

    verdict: Verdict | None
    message: str = ""


@dataclass(frozen=True)
class ControlEvent:
    """A control action already resolved by ``rollout.control.control_action``."""

    action: str      # rollback, abort, promote, pause, resume, note or ignore
    reason: str = ""


@dataclass(frozen=True)
class Decision:
    """The next action, why, and the window's state after it."""

    action: Action
    state: WindowState
    reason: str = ""


def window_to_dict(state: WindowState) -> dict[str, object]:
    """The wire form of a window (carried across ``continue_as_new``)."""
    return {"start": state.start.isoformat(), "deadline": state.deadline.isoformat(),
            "length_seconds": state.length.total_seconds(), "extensions": state.extensions,
            "faults": state.faults, "paused": state.paused}


def window_from_dict(data: Mapping[str, Any]) -> WindowState:
    """``window_to_dict`` read back."""
    return WindowState(datetime.fromisoformat(str(data["start"])), datetime.fromisoformat(str(data["deadline"])),
                       timedelta(seconds=float(data["length_seconds"])), int(data["extensions"]),
                       int(data["faults"]), bool(data["paused"]))


def open_window(now: datetime, length: timedelta, paused: bool = False) -> WindowState:
    """A window starting now; ``paused`` carries a hold over from the previous window."""
    return WindowState(start=now, deadline=now + length, length=length, paused=paused)


def next_wake(state: WindowState, now: datetime, check_interval: timedelta) -> datetime:
    """When to wake for the next check: one interval on, but not past the deadline unless the
    window is paused or already past it (re-checking after a fault)."""
    due = now + check_interval
    open_ended = state.paused or now >= state.deadline
    return due if open_ended else min(due, state.deadline)


def next_action(state: WindowState, now: datetime, observed: CheckResult | ControlEvent,
                max_inconclusive_windows: int) -> Decision:
    """Decide what follows a health check or a control event (see the module docstring)."""
    if isinstance(observed, ControlEvent):
        return _after_event(state, now, observed)
    faults = state.faults + 1 if observed.verdict is None else 0
    state = replace(state, faults=faults)
    if faults >= MAX_HEALTH_CHECK_FAULTS:
        return Decision(Action.ROLLBACK, state, f"health checks failed {faults} times in a row: {observed.message}")
    if observed.verdict is Verdict.FAIL:
        return Decision(Action.ROLLBACK, state, f"health check failed: {observed.message}")
    if state.paused or now < state.deadline or observed.verdict is None:
        return Decision(Action.CONTINUE, state)
    if observed.verdict is Verdict.PASS:
        return Decision(Action.PASS, state)
    if state.extensions >= max_inconclusive_windows:
        return Decision(Action.ROLLBACK, state,
                        f"still inconclusive after {state.extensions} extra window(s): {observed.message}")
    extended = replace(state, extensions=state.extensions + 1, deadline=now + state.length)
    return Decision(Action.EXTEND, extended, observed.message)


def _after_event(state: WindowState, now: datetime, event: ControlEvent) -> Decision:
    if event.action in ("rollback", "abort", "promote"):
        return Decision(Action(event.action), state, event.reason)
    if event.action == "pause":
        return Decision(Action.CONTINUE, replace(state, paused=True), event.reason)
    if event.action == "resume":
        restarted = replace(state, start=now, deadline=now + state.length, extensions=0, paused=False)
        return Decision(Action.CONTINUE, restarted, event.reason)
    return Decision(Action.CONTINUE, state, event.reason)
