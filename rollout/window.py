"""The observation window's state machine: when to check, when a window ends and how.

This is the logic of ``observe`` in ``orchestrators/rollout.py``, moved out to be pure:

- health is checked every ``check_interval``; the window ends at its deadline, except while
  paused (checks go on, the window does not end) and after a failed check (re-check first);
- a FAIL verdict rolls back at once; ``MAX_HEALTH_CHECK_FAULTS`` failed checks in a row roll
  back; a PASS at or after the deadline passes the window, and so does the first PASS of an
  extended window (it was extended only to gather the data a verdict needs);
- an INCONCLUSIVE verdict at the deadline extends the window, at most
  ``max_inconclusive_windows`` times, then rolls back. An extension lasts as long as the check
  said a verdict still needs at the current rate (``CheckResult.needed_minutes``), and at least
  the window's length (the whole length when the need is unknown). When that is more than
  ``MAX_EXTENSION_WINDOWS`` window lengths, waiting is hopeless: it rolls back at once, saying so;
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
MAX_EXTENSION_WINDOWS = 6       # an extension never lasts longer than this many window lengths


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
    """A health check's outcome: a verdict, or None when the check itself failed (a fault).

    ``needed_minutes``: for an INCONCLUSIVE verdict, how long a verdict still needs at the
    current rate (``rollout.judge.Judgement.needed_minutes``); None when unknown (no traffic).
    """

    verdict: Verdict | None
    message: str = ""
    needed_minutes: float | None = None


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
    if state.paused or observed.verdict is None:
        return Decision(Action.CONTINUE, state)
    if observed.verdict is Verdict.PASS:
        ended = now >= state.deadline or state.extensions > 0
        return Decision(Action.PASS if ended else Action.CONTINUE, state)
    if now < state.deadline:
        return Decision(Action.CONTINUE, state)
    return _extend(state, now, observed, max_inconclusive_windows)


def _extend(state: WindowState, now: datetime, observed: CheckResult, max_inconclusive_windows: int) -> Decision:
    """INCONCLUSIVE at the deadline: extend by what the verdict needs (at least the window's
    length), unless the extensions are used up or the need is over ``MAX_EXTENSION_WINDOWS``."""
    if state.extensions >= max_inconclusive_windows:
        return Decision(Action.ROLLBACK, state,
                        f"still inconclusive after {state.extensions} extra window(s): {observed.message}")
    needed = None if observed.needed_minutes is None else timedelta(minutes=observed.needed_minutes)
    cap = MAX_EXTENSION_WINDOWS * state.length
    if needed is not None and needed > cap:
        return Decision(Action.ROLLBACK, state,
                        f"too little traffic for a verdict: it would take longer than an extension may last "
                        f"({MAX_EXTENSION_WINDOWS} windows, {cap.total_seconds() / 60:g} minutes): {observed.message}")
    wait = state.length if needed is None else max(state.length, needed)
    extended = replace(state, extensions=state.extensions + 1, deadline=now + wait)
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
