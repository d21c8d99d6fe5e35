"""What every part of a rollout's walk shares: its state, activity calls, waits, control events, status.

``RunState`` is the state one orchestration episode's replay of a rollout carries (the request,
the record, the plan, the traffic expected, the intent received, the judge's evidence...) and
the primitives the rest is built on: ``call`` and ``call_with_retry`` (activities, retried on
durable timers), ``wait`` (every wait raced against the control events,
``orchestrators.waiting``), ``receive`` (one control event taken), ``publish`` and ``finish``
(the custom status and the final record). ``orchestrators.rollout.RolloutRun`` composes it with
the walk (``orchestrators.steps``), health (``orchestrators.health``), traffic
(``orchestrators.traffic``), notifications (``orchestrators.notifications``) and the handover
(``orchestrators.handover``); the abstract methods below are what those parts call on each
other. ``orchestrators.lifecycle.LifecyclePhases`` calls its host (this object) by these names too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Generator, Mapping

import azure.durable_functions as df

from orchestrators.lifecycle import LifecyclePhases
from orchestrators.waiting import EventInbox, wait_for
from rollout.control import ENDING_ACTIONS, Intent, control_action, merge_intent
from rollout.judge import JudgeConfig, JudgeState
from rollout.notes import notes_in
from rollout.plan import Plan, RolloutRequest
from rollout.record import RolloutRecord, clip
from rollout.retry import retry_delay
from rollout.window import WindowState

Gen = Generator[Any, Any, Any]
HANDOVER = "handover"           # a step or window handed to the next execution (continue_as_new)


@dataclass(frozen=True)
class StepEnd:
    """How an observation window ended: passed, or an action (rollback, abort, promote) with why."""

    action: str
    reason: str = ""


def failure_text(failure: object) -> str:
    """The first line of a failed activity's error (``TaskFailed``), or its type's name when it says nothing."""
    text = str(failure).strip()
    return text.splitlines()[0] if text else type(failure).__name__


class RunState(ABC):
    """The state of one orchestration episode's replay of a rollout."""

    def __init__(self, context: df.DurableOrchestrationContext, request: RolloutRequest,
                 inbox: EventInbox | None = None) -> None:
        self.context = context
        self.request = request
        self.record = RolloutRecord(self.request.to_dict(), context.instance_id, self.now)
        self.inbox = inbox or EventInbox(context)
        self.plan: Plan | None = None
        self.expected: dict[str, int] = {}      # traffic this rollout last set (or found at pre-flight)
        self.mirror: dict[str, int] = {}        # mirror traffic as last known
        self.intent: Intent | None = None       # an ending action received, not yet carried out
        self.resolution: str | None = None      # a person's resolve, while a rollback is retried
        self.holds = 0                          # pause/resume changes received (a window re-plans on each)
        self.restart_window = False
        self.life = LifecyclePhases(self)
        self.judge_config = JudgeConfig.from_request(request)
        self.judge_state = JudgeState()         # the judge's evidence, carried over the whole rollout
        self.last_check_at: datetime | None = None   # where the next check's increment starts
        self.raw_request: Mapping[str, Any] = request.to_dict()   # the input's request, as given
        self.checks_this_execution = 0
        self.window: WindowState | None = None  # the window being observed (carried on a handover)
        self.notices: list[dict[str, Any]] = []  # notifications due (pause, resume), not sent yet

    @property
    def now(self) -> datetime:
        now: datetime = self.context.current_utc_datetime
        return now

    # --- activities and waits --------------------------------------------------------------------

    def endpoint_input(self) -> dict[str, Any]:
        """The endpoint, both deployments and the workspace: the part of every activity input that names them."""
        workspace = self.request.workspace
        return {"endpoint_name": self.request.endpoint_name, "new_deployment": self.request.new_deployment,
                "old_deployment": self.request.old_deployment,
                "workspace": None if workspace is None else workspace.to_dict()}

    def wait(self, task: Any, stop: Callable[[], bool] | None = None, abandonable: bool = False) -> Gen:
        """``orchestrators.waiting.wait_for`` with this run's inbox and ``receive``."""
        return (yield from wait_for(self.context, self.inbox, task, self.receive, stop, abandonable))

    def call(self, name: str, payload: Mapping[str, Any]) -> Gen:
        """Call an activity once, racing the control events; an unexpected exception becomes a
        retryable ``{"ok": false}``."""
        task = self.context.call_activity(name, dict(payload))
        yield from self.wait(task)
        result = task.result
        if isinstance(result, Exception):   # TaskFailed: the activity raised something unexpected
            return {"ok": False, "error": {"kind": "ActivityFailed", "message": f"{name} raised: {failure_text(result)}",
                                           "retryable": True, "retry_after": None}}
        return result

    def call_with_retry(self, name: str, payload: Mapping[str, Any], interruptible: bool = False) -> Gen:
        """Call an activity, retrying retryable failures on durable timers (``rollout.retry``).

        Each retry wait races the control events. ``interruptible``: once a rollback, abort or
        promote has been received, no further try is made and the last failure is returned.
        """
        attempt = 0
        while True:
            result = yield from self.call(name, payload)
            attempt += 1
            delay = None if result["ok"] else retry_delay(attempt, result["error"])
            if delay is None or (interruptible and self.intent is not None):
                return result
            timer = self.context.create_timer(self.now + timedelta(seconds=delay))
            stop = (lambda: self.intent is not None) if interruptible else None
            if not (yield from self.wait(timer, stop)):
                timer.cancel()
                return result

    # --- control events ----------------------------------------------------------------------------

    def receive(self, name: str, payload: Any) -> None:
        """Take one control event: record notes and holds now, keep an ending action as the intent."""
        action, reason = control_action(name, payload, self.record.paused)
        rolling_back = self.record.phase in ("rolling_back", "done")     # done: only the final notification left
        for alert, count in notes_in(payload):
            acted = action == "rollback" and not rolling_back
            self.record.note_alert(self.now, alert, "rolled back" if acted else "recorded", count)
        if action in ENDING_ACTIONS and not rolling_back:
            self.intent = merge_intent(self.intent, action, reason)
        elif action == "resolve" and rolling_back:
            self.resolution = clip(reason)
        elif action in ("pause", "resume") and not rolling_back:
            self.record.hold_change(self.now, action, reason)
            self.holds += 1
            self.restart_window = self.restart_window or action == "resume"
            self.due("paused" if action == "pause" else "resumed")
        self.publish()

    def state_changed_since(self, holds: int) -> Callable[[], bool]:
        """A ``stop`` for a window timer: an ending action arrived, or the rollout was paused or resumed."""
        return lambda: self.intent is not None or self.holds != holds

    # --- status --------------------------------------------------------------------------------

    def publish(self) -> None:
        """Set the custom status to the current record."""
        self.context.set_custom_status(self.record.to_dict())

    def finish(self, outcome: str, reason: str) -> dict[str, Any]:
        """End: the custom status is the bounded record, the output the full one (container logs included)."""
        output = self.record.finish(self.now, outcome, reason)
        self.context.set_custom_status(self.record.to_dict())
        return output

    # --- what the other parts provide (``orchestrators.rollout.RolloutRun`` composes them) ---------

    @abstractmethod
    def execute(self, carried: Mapping[str, Any] | None = None) -> Gen:
        """The walk (``orchestrators.steps``)."""

    @abstractmethod
    def abandon(self, reason: str) -> Gen:
        """Return traffic to the old deployment and end as failed (``orchestrators.steps``)."""

    @abstractmethod
    def observe(self, length: timedelta, resume: WindowState | None = None) -> Gen:
        """Watch health for a window; returns a ``StepEnd`` (``orchestrators.health``)."""

    @abstractmethod
    def check_baseline(self) -> Gen:
        """Measure the old deployment before any traffic moves (``orchestrators.health``)."""

    @abstractmethod
    def check_drift(self) -> Gen:
        """Fail without touching traffic when someone else changed it (``orchestrators.traffic``)."""

    @abstractmethod
    def apply(self, target: Mapping[str, int], kind: str, reason: str, interruptible: bool = False,
              expected: Mapping[str, int] | None = None) -> Gen:
        """Set absolute traffic and read it back (``orchestrators.traffic``)."""

    @abstractmethod
    def roll_back(self, outcome: str, reason: str, from_current: bool = False) -> Gen:
        """Give the old deployment its share back, retrying until it is (``orchestrators.traffic``)."""

    @abstractmethod
    def due(self, kind: str) -> None:
        """Queue event ``kind``'s notification (``orchestrators.notifications``)."""

    @abstractmethod
    def notify(self, kind: str) -> Gen:
        """Send event ``kind`` now (``orchestrators.notifications``)."""

    @abstractmethod
    def send_notices(self) -> Gen:
        """Send the queued notifications (``orchestrators.notifications``)."""

    @abstractmethod
    def may_hand_over(self) -> bool:
        """Whether this execution may continue as new now (``orchestrators.handover``)."""

    @abstractmethod
    def hand_over(self, step_index: int, window: WindowState | None) -> None:
        """Continue as new at ``step_index`` (``orchestrators.handover``)."""

    @abstractmethod
    def restore(self, carried: Mapping[str, Any]) -> tuple[int, WindowState | None]:
        """Take up what ``hand_over`` carried (``orchestrators.handover``)."""
