"""One orchestration instance: its history, inbox and status, and what an episode does to them.

An ``Instance`` never runs code and never touches the hub: ``begin_episode`` takes the next
message from the inbox and builds the context JSON the host would send; ``commit`` records the
orchestrator's answer the way the extension records it - the custom status first (refused over
16 KB), then the host's replay of the actions (``emulator.replay``): ``TaskScheduled`` /
``TimerCreated`` for what it newly scheduled, and completion only when the replay got through
every action with no task open - and returns the ``Effects`` (activity runs and timers to
schedule, records for observers) that the task hub carries out. Every method is called under the
hub's lock.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.durable_functions.models.history.HistoryEventType import HistoryEventType

from emulator import history as h
from emulator.history import ACTIVE_STATUSES, COMPLETED, CONTINUED_AS_NEW, FAILED, PENDING, RUNNING, SUSPENDED, TERMINATED, Record
from emulator.replay import NewTask, replay, top_level_actions

MAX_BATCH = 256
"""The most messages one episode takes (the Azure Storage provider's ``ControlQueueBufferThreshold``)."""


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
    messages: list[Record]
    context_json: str


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
    fed: int = 0  # how many events of ``history`` the last episode fed
    encoded: list[str] = field(default_factory=list)  # ``history[:len(encoded)]`` as ``encode_played`` wrote it
    inbox: deque[Record] = field(default_factory=deque)
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
        """An episode should be queued: something in the inbox, none queued or running, not suspended.

        One episode runs at a time per instance, as on the host; messages that arrive meanwhile
        wait for the next one, which the running episode's commit (or ``abandon``) queues."""
        return bool(self.inbox) and not self.episode_queued and not self.busy and self.status != SUSPENDED

    def record(self, kind: str, at: datetime, **details: Any) -> Record:
        return record(self.instance_id, kind, at, **details)

    # --- episodes ----------------------------------------------------------------------------------

    def begin_episode(self, at: datetime) -> Episode | None:
        """Take the messages waiting (at most ``MAX_BATCH``) and build the context JSON; None when no
        episode may run now.

        The host's orchestration work item carries every message its session holds for the instance
        (``NewMessages = session.CurrentMessageBatch``, ``AzureStorageOrchestrationService
        .LockNextTaskOrchestrationWorkItemAsync``; messages fetched while an episode runs join the
        instance's next batch in ``OrchestrationSessionManager``); polling stops once a partition
        buffers ``ControlQueueBufferThreshold`` (256) messages, which bounds a batch.
        """
        self.episode_queued = False
        if self.busy or self.status not in ACTIVE_STATUSES - {SUSPENDED} or not self.inbox:
            return None
        self.busy = True
        started = h.event(HistoryEventType.ORCHESTRATOR_STARTED, at)
        messages = [self.inbox.popleft() for _ in range(min(len(self.inbox), MAX_BATCH))]
        self.encoded += [h.encode_played(e) for e in self.history[len(self.encoded):]]
        context = h.context_json(self.encoded, [started, *messages], self.instance_id, self.input)
        return Episode(self.execution_id, at, started, messages, context)

    def abandon(self, episode: Episode) -> None:
        """Give the episode's messages back (the orchestrator call was interrupted)."""
        self.busy = False
        self.inbox.extendleft(reversed(episode.messages))

    def commit(self, episode: Episode, state: Record) -> Effects:
        """Record the orchestrator's answer ``state`` to ``episode``; what the hub must do next."""
        effects = Effects()
        at = self.last_updated_at = episode.at
        self.busy = False
        self.history += [episode.started, *episode.messages]
        self.fed = len(self.history)
        if self.status in (PENDING, CONTINUED_AS_NEW):
            self.status = RUNNING
        too_large = h.custom_status_too_large(state.get("customStatus"))
        if too_large is not None:
            # OutOfProcOrchestrationShim.ScheduleDurableTaskEvents sets the custom status before it replays
            # any action, so the ArgumentException fails the orchestration with none of this episode's
            # actions carried out, and the status the host stores for this episode is null. With an
            # orchestrator error as well, that ArgumentException escapes TaskOrchestrationShim unwrapped.
            self.custom_status = None
            self._fail(at, too_large, effects, prefixed=not state.get("error"))
        else:
            self._adopt_custom_status(state, at, effects)
            self._replay(state, at, effects)
        self.history.append(h.event(HistoryEventType.ORCHESTRATOR_COMPLETED, at))
        return effects

    def fed_history(self) -> list[Record]:
        """The history the last episode fed the orchestrator: earlier events played, that episode's new."""
        new_from = max((i for i, e in enumerate(self.history[:self.fed])
                        if e["EventType"] == HistoryEventType.ORCHESTRATOR_STARTED), default=0)
        return [{**e, "IsPlayed": i < new_from} for i, e in enumerate(self.history[:self.fed])]

    def outstanding(self) -> Effects:
        """What the host's queues would still hold for this execution: an activity run for every
        ``TaskScheduled`` not completed, a timer for every ``TimerCreated`` not fired (in history or inbox)."""
        effects = Effects()
        if not self.active:
            return effects
        events = [*self.history, *self.inbox]
        done = {int(e["TaskScheduledId"]) for e in events
                if e["EventType"] in (HistoryEventType.TASK_COMPLETED, HistoryEventType.TASK_FAILED)}
        fired = {int(e["TimerId"]) for e in events if e["EventType"] == HistoryEventType.TIMER_FIRED}
        for e in self.history:
            if e["EventType"] == HistoryEventType.TASK_SCHEDULED and e["EventId"] not in done:
                input_json = json.loads(e["Input"])[0]
                effects.activities.append(ActivityJob(self.instance_id, self.execution_id, e["EventId"], e["Name"],
                                                      input_json))
            elif e["EventType"] == HistoryEventType.TIMER_CREATED and e["EventId"] not in fired:
                effects.timers.append(TimerJob(self.instance_id, self.execution_id, e["EventId"],
                                               h.parse_timestamp(e["FireAt"])))
        return effects

    def terminate(self, at: datetime, reason: str | None) -> None:
        self.history += h.execution_terminated(at, reason)
        self._finish(TERMINATED, reason, at)

    def _adopt_custom_status(self, state: Record, at: datetime, effects: Effects) -> None:
        """Adopt ``customStatus`` when the state has one (the SDK omits falsy ones; the host keeps the old)."""
        if "customStatus" in state and state["customStatus"] != self.custom_status:
            self.custom_status = state["customStatus"]
            effects.records.append(self.record("custom_status", at, custom_status=copy.deepcopy(self.custom_status)))

    def _replay(self, state: Record, at: datetime, effects: Effects) -> None:
        """Replay the state's actions as the host does; record what is new; complete if DTFx would."""
        actions, refusal = top_level_actions(state)
        result = replay(self.history, actions)
        if refusal or result.unsupported:
            self._fail(at, str(refusal or result.unsupported), effects)
            return
        if result.non_deterministic:  # DTFx fails with the exception's message, not the shim's prefix
            self._fail(at, result.non_deterministic, effects, prefixed=False)
            return
        for task in result.new_tasks:
            self._schedule(task, at, effects)
        if not result.can_complete:
            return
        if state.get("error"):
            self._fail(at, str(state["error"]), effects)
        elif result.continue_as_new is not None:
            self._continue_as_new(result.continue_as_new.get("input"), at, effects, result.carryover)
        elif state.get("isDone"):
            output = state.get("output")
            self.history.append(h.execution_completed(at, COMPLETED, h.host_json(output)))
            self._finish(COMPLETED, output, at)
            effects.records.append(self.record("completed", at, output=output))

    def _schedule(self, task: NewTask, at: datetime, effects: Effects) -> None:
        """Record a task the replay newly scheduled and hand it to the hub."""
        if task.fire_at is None:
            self.history.append(h.task_scheduled(at, task.event_id, str(task.name), task.input_json))
            effects.activities.append(ActivityJob(self.instance_id, self.execution_id, task.event_id, str(task.name),
                                                  task.input_json))
            effects.records.append(self.record("activity_scheduled", at, name=task.name, event_id=task.event_id,
                                               input=h.loads_or_text(task.input_json), attempt=task.attempt))
        else:
            self.history.append(h.timer_created(at, task.event_id, task.fire_at))
            effects.timers.append(TimerJob(self.instance_id, self.execution_id, task.event_id, task.fire_at))
            effects.records.append(self.record("timer_created", at, event_id=task.event_id, fire_at=task.fire_at,
                                               retry_of=task.retry_of))

    def _continue_as_new(self, new_input: Any, at: datetime, effects: Effects,
                         carryover: list[Record] | None = None) -> None:
        """Start a new execution with ``new_input`` and a fresh history. The events the replay played
        after the ``ContinueAsNew`` action (``carryover``) follow the new ``ExecutionStarted``, as DTFx
        adds them; events not yet delivered stay queued for the new execution (a raised event names
        the instance, not the execution)."""
        self.status = CONTINUED_AS_NEW
        self.execution_id = uuid.uuid4().hex
        self.input = new_input
        self.history, self.encoded, self.fed = [], [], 0
        self.inbox.extendleft(reversed([h.execution_started(at, self.name, new_input, self.instance_id,
                                                            self.execution_id), *(carryover or [])]))
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
