"""One orchestration instance: its history, inbox and status, and what an episode does to them.

An ``Instance`` never runs code and never touches the hub: ``begin_episode`` takes the next
message from the inbox and builds the context JSON the host would send; ``commit`` records the
orchestrator's answer the way the extension records it and returns the ``Effects`` - activity runs
and timers to schedule, records for observers - that the task hub carries out. Every method is
called under the hub's lock.

What ``commit`` records per action (and the retry interceptor's own reactions to events):

- ``CallActivity`` / ``CallActivityWithRetry``: ``TaskScheduled`` and an activity run; with retry,
  each failure is followed by a ``TimerCreated`` at the retry delay and, when it fires, a new
  ``TaskScheduled`` - up to ``maxNumberOfAttempts`` - as DTFx's ``RetryInterceptor`` does.
- ``CreateTimer``: ``TimerCreated`` and a timer. ``WaitForExternalEvent``: nothing.
- ``WhenAny`` / ``WhenAll``: their children, depth first. ``ContinueAsNew``: a fresh history.
"""

from __future__ import annotations

import copy
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.durable_functions.models.actions.ActionType import ActionType
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType

from emulator import history as h
from emulator.history import ACTIVE_STATUSES, COMPLETED, CONTINUED_AS_NEW, FAILED, PENDING, RUNNING, SUSPENDED, TERMINATED, Record
from emulator.replay import (
    SCHEDULING_ACTIONS,
    RetryPolicy,
    Signature,
    action_signature,
    flatten_actions,
    nondeterminism,
    unsupported,
)


def record(instance_id: str, kind: str, at: datetime, **details: Any) -> Record:
    """What observers get: ``at``, ``instance_id``, ``kind`` and details."""
    return {"at": at, "instance_id": instance_id, "kind": kind, **details}


@dataclass(frozen=True)
class ActivityJob:
    instance_id: str
    execution_id: str
    event_id: int
    name: str
    input_json: str | None


@dataclass(frozen=True)
class TimerJob:
    instance_id: str
    execution_id: str
    timer_id: int
    fire_at: datetime


@dataclass
class Effects:
    """What the hub must do after a change to an instance."""

    records: list[Record] = field(default_factory=list)
    activities: list[ActivityJob] = field(default_factory=list)
    timers: list[TimerJob] = field(default_factory=list)


@dataclass(frozen=True)
class Episode:
    """What an episode needs outside the lock, and what its commit checks."""

    execution_id: str
    at: datetime
    started: Record
    event: Record
    context_json: str


@dataclass
class _Retry:
    """A ``CallActivityWithRetry`` in progress."""

    name: str
    input_json: str | None
    policy: RetryPolicy
    attempts: int = 1


@dataclass
class Instance:
    """One orchestration instance."""

    instance_id: str
    name: str
    input: Any
    created_at: datetime
    execution_id: str
    last_updated_at: datetime
    status: str = PENDING
    custom_status: Any = None
    output: Any = None
    history: list[Record] = field(default_factory=list)
    fed_history: list[Record] = field(default_factory=list)
    inbox: deque[Record] = field(default_factory=deque)
    carried_out: list[Signature] = field(default_factory=list)
    next_event_id: int = 0
    retry_by_task: dict[int, _Retry] = field(default_factory=dict)
    retry_by_timer: dict[int, _Retry] = field(default_factory=dict)
    episode_queued: bool = False
    busy: bool = False
    suspended_from: str | None = None

    @classmethod
    def create(cls, instance_id: str, name: str, input_value: Any, now: datetime) -> Instance:
        """A Pending instance with ``ExecutionStarted`` in its inbox."""
        instance = cls(instance_id, name, input_value, now, uuid.uuid4().hex, now)
        instance.inbox.append(h.execution_started(now, name, input_value, instance_id, instance.execution_id))
        return instance

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def is_execution(self, execution_id: str) -> bool:
        """Whether this is still the live execution ``execution_id`` (messages to others are dropped)."""
        return self.execution_id == execution_id and self.active

    def wants_episode(self) -> bool:
        """An episode should be queued: something in the inbox, none queued, not suspended."""
        return bool(self.inbox) and not self.episode_queued and self.status != SUSPENDED

    def record(self, kind: str, at: datetime, **details: Any) -> Record:
        return record(self.instance_id, kind, at, **details)

    # --- episodes ----------------------------------------------------------------------------------

    def begin_episode(self, at: datetime) -> Episode | None:
        """Take the next message and build the context JSON; None when no episode may run now."""
        self.episode_queued = False
        if self.busy or self.status not in ACTIVE_STATUSES - {SUSPENDED} or not self.inbox:
            return None
        self.busy = True
        started = h.event(HistoryEventType.ORCHESTRATOR_STARTED, at)
        message = self.inbox.popleft()
        context = h.context_json(self.history, [started, message], self.instance_id, self.input)
        return Episode(self.execution_id, at, started, message, context)

    def abandon(self, episode: Episode) -> None:
        """Give the episode's message back (the orchestrator call was interrupted)."""
        self.busy = False
        self.inbox.appendleft(episode.event)

    def commit(self, episode: Episode, state: Record) -> Effects:
        """Record the orchestrator's answer ``state`` to ``episode``; what the hub must do next."""
        effects = Effects()
        at = self.last_updated_at = episode.at
        self.busy = False
        self.fed_history = [{**past, "IsPlayed": True} for past in self.history] + [episode.started, episode.event]
        self.history += [episode.started, episode.event]
        if self.status in (PENDING, CONTINUED_AS_NEW):
            self.status = RUNNING
        continue_as_new: Record | None = None
        too_large = h.custom_status_too_large(state.get("customStatus"))
        if too_large is not None:
            # OutOfProcOrchestrationShim.ScheduleDurableTaskEvents sets the custom status before it replays
            # any action, so the ArgumentException fails the orchestration with none of this episode's
            # actions carried out, and the status the host stores for this episode is null. With an
            # orchestrator error as well, that ArgumentException escapes TaskOrchestrationShim unwrapped.
            self.custom_status = None
            self._fail(at, too_large, effects, prefixed=not state.get("error"))
        elif state.get("error"):
            self._adopt_custom_status(state, at, effects)
            self._fail(at, str(state["error"]), effects)
        else:
            self._adopt_custom_status(state, at, effects)
            self._after_event(episode.event, at, effects)
            continue_as_new = self._decide(state, at, effects)
        self.history.append(h.event(HistoryEventType.ORCHESTRATOR_COMPLETED, at))
        if continue_as_new is not None:
            self._continue_as_new(continue_as_new.get("input"), at, effects)
        return effects

    def terminate(self, at: datetime, reason: str | None) -> None:
        self.history += h.execution_terminated(at, reason)
        self._finish(TERMINATED, reason, at)

    def _adopt_custom_status(self, state: Record, at: datetime, effects: Effects) -> None:
        """Adopt ``customStatus`` when the state has one (the SDK omits falsy ones; the host keeps the old)."""
        if "customStatus" in state and state["customStatus"] != self.custom_status:
            self.custom_status = state["customStatus"]
            effects.records.append(self.record("custom_status", at, custom_status=copy.deepcopy(self.custom_status)))

    def _decide(self, state: Record, at: datetime, effects: Effects) -> Record | None:
        """Carry out the new actions and complete when the orchestrator is done; the ``ContinueAsNew`` action if any."""
        actions = flatten_actions(state)
        problem = nondeterminism(self.carried_out, actions) or unsupported(actions[len(self.carried_out):])
        if problem:
            self._fail(at, problem, effects)
            return None
        continue_as_new: Record | None = None
        for action in actions[len(self.carried_out):]:
            self.carried_out.append(action_signature(action))
            action_type = action.get("actionType")
            if action_type == ActionType.CONTINUE_AS_NEW:
                continue_as_new = action
            elif action_type in SCHEDULING_ACTIONS:
                retry = None
                if action_type == ActionType.CALL_ACTIVITY_WITH_RETRY:
                    retry = _Retry(action["functionName"], action.get("input"),
                                   RetryPolicy.from_json(action["retryOptions"]))
                self._schedule_activity(action["functionName"], action.get("input"), at, retry, effects)
            elif action_type == ActionType.CREATE_TIMER:
                self._create_timer(h.parse_timestamp(action["fireAt"]), at, None, effects)
        if continue_as_new is None and state.get("isDone"):
            output = state.get("output")
            self.history.append(h.execution_completed(at, COMPLETED, h.host_json(output)))
            self._finish(COMPLETED, output, at)
            effects.records.append(self.record("completed", at, output=output))
        return continue_as_new

    def _allocate_event_id(self) -> int:
        event_id = self.next_event_id
        self.next_event_id += 1
        return event_id

    def _schedule_activity(self, name: str, input_json: str | None, at: datetime, retry: _Retry | None,
                           effects: Effects) -> None:
        event_id = self._allocate_event_id()
        self.history.append(h.task_scheduled(at, event_id, name, input_json))
        if retry is not None:
            self.retry_by_task[event_id] = retry
        effects.activities.append(ActivityJob(self.instance_id, self.execution_id, event_id, name, input_json))
        effects.records.append(self.record("activity_scheduled", at, name=name, input=h.loads_or_text(input_json),
                                           event_id=event_id, attempt=retry.attempts if retry else 1))

    def _create_timer(self, fire_at: datetime, at: datetime, retry: _Retry | None, effects: Effects) -> None:
        event_id = self._allocate_event_id()
        self.history.append(h.timer_created(at, event_id, fire_at))
        if retry is not None:
            self.retry_by_timer[event_id] = retry
        effects.timers.append(TimerJob(self.instance_id, self.execution_id, event_id, fire_at))
        effects.records.append(self.record("timer_created", at, event_id=event_id, fire_at=fire_at,
                                           retry_of=retry.name if retry else None))

    def _after_event(self, message: Record, at: datetime, effects: Effects) -> None:
        """The retry interceptor's reaction to the delivered event, before new actions are carried out
        (the SDK numbers its internal retry tasks while processing the event)."""
        event_type = message["EventType"]
        if event_type == HistoryEventType.TASK_COMPLETED:
            self.retry_by_task.pop(message["TaskScheduledId"], None)
        elif event_type == HistoryEventType.TASK_FAILED and message["TaskScheduledId"] in self.retry_by_task:
            retry = self.retry_by_task.pop(message["TaskScheduledId"])
            self._create_timer(at + retry.policy.delay(retry.attempts - 1), at, retry, effects)
        elif event_type == HistoryEventType.TIMER_FIRED and message["TimerId"] in self.retry_by_timer:
            retry = self.retry_by_timer.pop(message["TimerId"])
            if retry.attempts < retry.policy.max_attempts:
                retry.attempts += 1
                self._schedule_activity(retry.name, retry.input_json, at, retry, effects)

    def _continue_as_new(self, new_input: Any, at: datetime, effects: Effects) -> None:
        """Start a new execution with ``new_input`` and a fresh history; undelivered events carry over."""
        self.status = CONTINUED_AS_NEW
        self.execution_id = uuid.uuid4().hex
        self.input = new_input
        self.history, self.carried_out, self.next_event_id = [], [], 0
        self.retry_by_task, self.retry_by_timer = {}, {}
        self.inbox.appendleft(h.execution_started(at, self.name, new_input, self.instance_id, self.execution_id))
        effects.records.append(self.record("continued_as_new", at, input=new_input))

    def _fail(self, at: datetime, error: str, effects: Effects, prefixed: bool = True) -> None:
        """Fail the instance the way the out-of-process shim reports an orchestrator error
        (``OrchestrationFailureException``: the message prefixed with the function's name)."""
        output = f"Orchestrator function '{self.name}' failed: {error}" if prefixed else error
        self.history.append(h.execution_completed(at, FAILED, output))
        self._finish(FAILED, output, at)
        effects.records.append(self.record("failed", at, error=error, output=output))

    def _finish(self, status: str, output: Any, at: datetime) -> None:
        self.status, self.output, self.last_updated_at = status, output, at
        self.inbox.clear()
        self.busy = False


Change = Callable[[Instance, datetime], list[Record]]
"""A change to an active instance at a clock time, returning records for the observers."""
