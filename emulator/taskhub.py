"""An in-process Durable Functions task hub: runs the functions a ``df.DFApp`` registered.

Orchestrators run through the real ``azure-functions-durable`` replay engine: each episode the
registered orchestrator callable (``Orchestrator.create(fn)``'s ``handle``) gets the
orchestration-context JSON the Functions host sends - the whole history, earlier episodes'
events marked ``IsPlayed`` - and returns its state JSON (``isDone``, ``actions``, ``output``,
``error``, ``customStatus``). The hub carries out the actions that are new, the way the Durable
extension's out-of-process shim does, and records the history events the extension records:

- ``CallActivity`` / ``CallActivityWithRetry``: ``TaskScheduled``, then the activity runs in
  process with its decoded input and ``TaskCompleted`` (result as JSON text) or ``TaskFailed``
  arrives; with retry, each failure is followed by a ``TimerCreated`` at the retry delay and,
  when it fires, a new ``TaskScheduled`` - up to ``maxNumberOfAttempts`` - as DTFx's
  ``RetryInterceptor`` does (one extra timer after the last failure, as the SDK expects).
- ``CreateTimer``: ``TimerCreated``; ``TimerFired`` when the clock reaches ``fireAt``. Timers a
  ``task_any`` abandoned still fire into history, as on the host.
- ``WaitForExternalEvent``: nothing; ``EventRaised`` is delivered whenever an event is raised.
- ``WhenAny`` / ``WhenAll``: their children, depth first.
- ``ContinueAsNew``: a fresh history with the new input.

Which actions are new: the SDK returns every action from the start on each replay; the host
replays them against history by sequence number. The hub does the same: the k-th action of the
flattened list is the k-th action carried out so far, checked for the same type and name
(otherwise the orchestration fails as non-deterministic), and only actions past those are
carried out. Event ids are allocated in the order the SDK allocates its sequence numbers.

One new event is delivered per episode - a schedule the host also produces - which keeps event
ids and the SDK's sequence numbers in step even for retries.

Driving: ``start``, ``raise_event``, ``terminate`` never run user code; they queue work. Work
runs on the thread that calls ``run_until_idle`` / ``run``, or on the worker thread of
``start_background``. One work item runs at a time, and never while the hub's lock is held, so
callbacks, activities and observers may call back into the hub (also from other threads, e.g.
through the management API).
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import threading
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from heapq import heappop, heappush
from typing import Any

import azure.durable_functions as df
from azure.durable_functions.models.actions.ActionType import ActionType
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from emulator.clock import Clock, VirtualClock, as_utc
from emulator.worker import registered_functions

logger = logging.getLogger(__name__)

PENDING, RUNNING, COMPLETED, FAILED = "Pending", "Running", "Completed", "Failed"
TERMINATED, CONTINUED_AS_NEW, SUSPENDED = "Terminated", "ContinuedAsNew", "Suspended"
ACTIVE_STATUSES = frozenset({PENDING, RUNNING, CONTINUED_AS_NEW, SUSPENDED})
"""Runtime statuses of an instance that still takes events."""

# What the Durable extension sends in the orchestration context (OrchestrationTriggerAttributeBindingProvider):
# upperSchemaVersion V2 for SDKs 1.1.0-1.1.3, upperSchemaVersionNew V3 for newer ones; long timers per the
# Azure Storage provider (MaximumDelayTime 6 days, LongRunningTimerIntervalLength 3 days), as .NET TimeSpans.
UPPER_SCHEMA_VERSION = 1
UPPER_SCHEMA_VERSION_NEW = 2
MAXIMUM_SHORT_TIMER_DURATION = "6.00:00:00"
LONG_RUNNING_TIMER_INTERVAL_DURATION = "3.00:00:00"
DEFAULT_HTTP_ASYNC_SLEEP_MS = 30000

# DTFx OrchestrationStatus values, as ExecutionCompleted records them.
_ORCHESTRATION_STATUS_CODE = {COMPLETED: 1, CONTINUED_AS_NEW: 2, FAILED: 3, TERMINATED: 5}

_STATUS_BY_CODE = {code: status for status, code in _ORCHESTRATION_STATUS_CODE.items()}

_OUT_OF_PROC_LABEL = "$OutOfProcData$:"
_SCHEDULING_ACTIONS = frozenset({ActionType.CALL_ACTIVITY, ActionType.CALL_ACTIVITY_WITH_RETRY})
_COMPOUND_ACTIONS = frozenset({ActionType.WHEN_ANY, ActionType.WHEN_ALL})
_SUPPORTED_ACTIONS = _SCHEDULING_ACTIONS | {ActionType.CREATE_TIMER, ActionType.WAIT_FOR_EXTERNAL_EVENT,
                                            ActionType.CONTINUE_AS_NEW}

Record = dict[str, Any]
Observer = Callable[[Record], None]


class UnknownFunction(LookupError):
    """No orchestrator (or activity) of that name is registered."""


class InstanceAlreadyExists(RuntimeError):
    """``start`` refused: an instance with that id is still running (``NonRunningStates`` overriding)."""


# --- wire formats -----------------------------------------------------------------------------


def dotnet_timestamp(moment: datetime) -> str:
    """``moment`` as Newtonsoft.Json writes a UTC ``DateTime``: ISO 8601, trailing zero fractions dropped, ``Z``."""
    moment = as_utc(moment)
    fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def status_timestamp(moment: datetime) -> str:
    """``moment`` as the HTTP API writes ``createdTime`` / ``lastUpdatedTime`` (``ToString("s") + "Z"``)."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def host_json(value: Any) -> str:
    """``value`` serialised the way the host does (Newtonsoft, no indentation, non-ASCII kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _event(event_type: HistoryEventType, at: datetime, event_id: int = -1, **fields: Any) -> Record:
    """A history event as the host serialises a DTFx ``HistoryEvent`` (``IsPlayed`` false)."""
    return {"EventType": int(event_type), "EventId": event_id, "IsPlayed": False,
            "Timestamp": dotnet_timestamp(at), **fields}


def _execution_started(at: datetime, name: str, input_value: Any, instance_id: str, execution_id: str) -> Record:
    return _event(HistoryEventType.EXECUTION_STARTED, at,
                  OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
                  ParentInstance=None, Name=name, Version="", Input=host_json(input_value), Tags=None)


def _task_scheduled(at: datetime, event_id: int, name: str, input_json: str | None) -> Record:
    # DTFx serialises the ``params object[]`` of ScheduleTask: a one-element array of the action's input.
    return _event(HistoryEventType.TASK_SCHEDULED, at, event_id, Name=name, Version="", Input=host_json([input_json]))


def _timer_created(at: datetime, event_id: int, fire_at: datetime) -> Record:
    return _event(HistoryEventType.TIMER_CREATED, at, event_id, FireAt=dotnet_timestamp(fire_at))


def _execution_completed(at: datetime, status: str, result: str | None) -> Record:
    return _event(HistoryEventType.EXECUTION_COMPLETED, at, OrchestrationStatus=_ORCHESTRATION_STATUS_CODE[status],
                  Result=result)


def flatten_actions(state: Record) -> list[Record]:
    """The atomic actions of an orchestrator state, in order, compound actions replaced by their children.

    Accepts both replay schemas: V1 (``actions`` a list of per-yield lists) and V2/V3 (one list).
    """
    flat: list[Record] = []

    def add(action: Record) -> None:
        if action.get("actionType") in _COMPOUND_ACTIONS:
            for child in action.get("compoundActions") or []:
                add(child)
        else:
            flat.append(action)

    for group in state.get("actions") or []:
        for action in group if isinstance(group, list) else [group]:
            add(action)
    return flat


def _action_signature(action: Record) -> tuple[int, str | None]:
    """What must match between replays: the action type and the function or event name."""
    return action.get("actionType", -1), action.get("functionName") or action.get("externalEventName")


def _parse_fire_at(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def orchestrator_state_from_exception(exc: BaseException) -> Record:
    """The state JSON an orchestrator exception carries after ``$OutOfProcData$:``.

    Exceptions without it (SDK-internal errors) become a failed, action-less state.
    """
    message = str(exc)
    index = message.find(_OUT_OF_PROC_LABEL)
    if index >= 0:
        try:
            state = json.loads(message[index + len(_OUT_OF_PROC_LABEL):])
            if isinstance(state, dict):
                return state
        except json.JSONDecodeError:
            pass
    return {"isDone": False, "actions": [], "error": message or type(exc).__name__}


# --- registry and retry policy -------------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredActivity:
    """An activity function and the name of its ``activityTrigger`` parameter."""

    function: Callable[..., Any]
    input_name: str


@dataclass(frozen=True)
class FunctionRegistry:
    """The orchestrators and activities a ``DFApp`` registered, by the name the host knows them by."""

    orchestrators: dict[str, Callable[[str], str]]
    activities: dict[str, RegisteredActivity]

    @classmethod
    def from_app(cls, app: df.DFApp) -> FunctionRegistry:
        """Find triggers in ``app.get_functions()``: ``orchestrationTrigger`` and ``activityTrigger`` bindings."""
        orchestrators: dict[str, Callable[[str], str]] = {}
        activities: dict[str, RegisteredActivity] = {}
        for function in registered_functions(app):
            for binding in function.get_bindings():
                if binding.type == "orchestrationTrigger":
                    name = getattr(binding, "orchestration", None) or function.get_function_name()
                    orchestrators[name] = function.get_user_function()
                elif binding.type == "activityTrigger":
                    name = getattr(binding, "activity", None) or function.get_function_name()
                    activities[name] = RegisteredActivity(function.get_user_function(), binding.name)
        return cls(orchestrators, activities)


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


# --- instance state and work items ---------------------------------------------------------------


@dataclass
class _Retry:
    """A ``CallActivityWithRetry`` in progress."""

    name: str
    input_json: str | None
    policy: RetryPolicy
    attempts: int = 1


@dataclass
class _Instance:
    """One orchestration instance; every field is guarded by the hub's lock."""

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
    carried_out: list[tuple[int, str | None]] = field(default_factory=list)
    next_event_id: int = 0
    retry_by_task: dict[int, _Retry] = field(default_factory=dict)
    retry_by_timer: dict[int, _Retry] = field(default_factory=dict)
    episode_queued: bool = False
    busy: bool = False
    suspended_from: str | None = None

    def allocate_event_id(self) -> int:
        event_id = self.next_event_id
        self.next_event_id += 1
        return event_id


@dataclass(frozen=True)
class _ActivityJob:
    instance_id: str
    execution_id: str
    event_id: int
    name: str
    input_json: str | None


@dataclass(frozen=True)
class _TimerJob:
    instance_id: str
    execution_id: str
    timer_id: int
    fire_at: datetime


@dataclass(frozen=True)
class _Episode:
    """What an episode needs outside the lock, and what its commit checks."""

    instance_id: str
    execution_id: str
    name: str
    function: Callable[[str], str]
    at: datetime
    started: Record
    event: Record
    fed: list[Record]
    context_json: str


@dataclass
class _Work:
    """A ready work item: an episode, an activity run or a scheduled callback."""

    kind: str
    instance_id: str = ""
    activity: _ActivityJob | None = None
    callback: Callable[[], Any] | None = None


# --- the hub -------------------------------------------------------------------------------------


class TaskHub:
    """Runs the orchestrators and activities ``app`` registered, on ``clock``.

    ``overridable_existing_instance_states`` is the host setting of that name: with
    ``"NonRunningStates"`` (the Durable extension's default) ``start`` refuses an id whose instance
    is still Pending/Running/Suspended; with ``"AnyState"`` it replaces it.
    """

    def __init__(self, app: df.DFApp, clock: Clock, overridable_existing_instance_states: str = "NonRunningStates") -> None:
        if overridable_existing_instance_states not in ("NonRunningStates", "AnyState"):
            raise ValueError(f"unknown overridable_existing_instance_states {overridable_existing_instance_states!r}")
        self.registry = FunctionRegistry.from_app(app)
        self._clock = clock
        self._replace_running = overridable_existing_instance_states == "AnyState"
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(self._lock)
        self._drive_lock = threading.RLock()
        self._instances: dict[str, _Instance] = {}
        self._ready: deque[_Work] = deque()
        self._scheduled: list[tuple[datetime, int, _TimerJob | Callable[[], Any]]] = []
        self._sequence = 0
        self._observers: list[Observer] = []
        self._worker: threading.Thread | None = None
        self._stopping = False

    @property
    def clock(self) -> Clock:
        """The clock the hub runs on."""
        return self._clock

    # --- instance API ---------------------------------------------------------------------------

    def start(self, orchestrator_name: str, instance_id: str | None = None, input: Any = None) -> str:
        """Create an instance (Pending until its first episode runs) and return its id.

        ``input`` is the orchestration input as a JSON value (what the host deserialised from the
        start request). A missing ``instance_id`` gets a new GUID (32 hex digits). Raises
        ``UnknownFunction`` for an unregistered orchestrator, ``ValueError`` for an id the host
        refuses, and ``InstanceAlreadyExists`` when an active instance has the id and running
        instances are not overridable (see the class docstring); otherwise an existing instance
        with the id is replaced.
        """
        if orchestrator_name not in self.registry.orchestrators:
            raise UnknownFunction(f"The function '{orchestrator_name}' doesn't exist, is disabled, or is not an "
                                  "orchestrator function.")
        instance_id = instance_id or uuid.uuid4().hex
        _check_instance_id(instance_id)
        host_json(input)  # refuse what the host could not store
        with self._lock:
            existing = self._instances.get(instance_id)
            if existing is not None and existing.status in ACTIVE_STATUSES and not self._replace_running:
                raise InstanceAlreadyExists(f"An Orchestration instance with the status {existing.status} already exists.")
            now = self._clock.now()
            instance = _Instance(instance_id, orchestrator_name, input, now, uuid.uuid4().hex, now)
            instance.inbox.append(_execution_started(now, orchestrator_name, input, instance_id, instance.execution_id))
            self._instances[instance_id] = instance
            self._queue_episode(instance)
            records = [self._record(instance_id, "started", name=orchestrator_name, input=input)]
        self._emit(records)
        return instance_id

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> bool:
        """Deliver external event ``name`` with ``data`` (a JSON value); False when the instance is unknown or done.

        Events raised before the orchestrator waits for them are kept in history; the SDK hands
        them to the first matching ``wait_for_external_event``.
        """
        payload = host_json(data)
        with self._lock:
            instance = self._instances.get(instance_id)
            if instance is None or instance.status not in ACTIVE_STATUSES:
                return False
            now = self._clock.now()
            instance.inbox.append(_event(HistoryEventType.EVENT_RAISED, now, Name=name, Input=payload))
            self._queue_episode(instance)
            records = [self._record(instance_id, "event_raised", name=name, input=data)]
        self._emit(records)
        return True

    def terminate(self, instance_id: str, reason: str | None = None) -> bool:
        """Terminate an active instance at once (status Terminated, output ``reason``); False otherwise.

        Pending events, timers and activity results of the instance are dropped.
        """
        with self._lock:
            instance = self._instances.get(instance_id)
            if instance is None or instance.status not in ACTIVE_STATUSES:
                return False
            now = self._clock.now()
            instance.history += [
                _event(HistoryEventType.ORCHESTRATOR_STARTED, now),
                _event(HistoryEventType.EXECUTION_TERMINATED, now, Input=host_json(reason)),
                _execution_completed(now, TERMINATED, reason),
                _event(HistoryEventType.ORCHESTRATOR_COMPLETED, now),
            ]
            self._finish(instance, TERMINATED, reason, now)
            records = [self._record(instance_id, "terminated", reason=reason)]
        self._emit(records)
        return True

    def suspend(self, instance_id: str, reason: str | None = None) -> bool:
        """Hold an active instance: events keep arriving but no episode runs until ``resume``."""
        with self._lock:
            instance = self._instances.get(instance_id)
            if instance is None or instance.status not in ACTIVE_STATUSES:
                return False
            if instance.status != SUSPENDED:
                instance.suspended_from, instance.status = instance.status, SUSPENDED
                instance.last_updated_at = self._clock.now()
            records = [self._record(instance_id, "suspended", reason=reason)]
        self._emit(records)
        return True

    def resume(self, instance_id: str, reason: str | None = None) -> bool:
        """Let a suspended instance run again; True for any active instance, False otherwise."""
        with self._lock:
            instance = self._instances.get(instance_id)
            if instance is None or instance.status not in ACTIVE_STATUSES:
                return False
            if instance.status == SUSPENDED:
                instance.status = instance.suspended_from or RUNNING
                instance.last_updated_at = self._clock.now()
                self._queue_episode(instance)
            records = [self._record(instance_id, "resumed", reason=reason)]
        self._emit(records)
        return True

    def restart(self, instance_id: str, new_instance_id: bool = True) -> str:
        """Start the instance's orchestrator again with the input its status shows; returns the id used.

        With ``new_instance_id`` (the default) under a new GUID, otherwise under the same id.
        Raises ``KeyError`` for an unknown instance (and what ``start`` raises).
        """
        with self._lock:
            instance = self._instances.get(instance_id)
            if instance is None:
                raise KeyError(instance_id)
            name, original_input = instance.name, instance.input
        return self.start(name, None if new_instance_id else instance_id, original_input)

    def purge(self, instance_id: str) -> bool:
        """Forget an instance and its history; False when there is none."""
        with self._lock:
            return self._instances.pop(instance_id, None) is not None

    def purge_by(self, created_from: datetime, created_to: datetime | None = None,
                 runtime_status: Iterable[str] | None = None) -> int:
        """Forget every instance created in [``created_from``, ``created_to``] with one of the statuses; the count."""
        with self._lock:
            doomed = [i.instance_id for i in self._matching(created_from, created_to, runtime_status, None)]
            for instance_id in doomed:
                del self._instances[instance_id]
            return len(doomed)

    def get_status(self, instance_id: str, show_history: bool = False, show_input: bool = True,
                   show_history_output: bool = False) -> Record | None:
        """The instance's status in the host's JSON shape, or None when it does not exist.

        Keys: ``name``, ``instanceId``, ``runtimeStatus``, ``input`` (null unless ``show_input``),
        ``customStatus``, ``output``, ``createdTime``, ``lastUpdatedTime``, and with
        ``show_history`` ``historyEvents`` (the host's readable history: string event types,
        ``FunctionName``, ``ScheduledTime``, results only with ``show_history_output``).
        """
        with self._lock:
            instance = self._instances.get(instance_id)
            if instance is None:
                return None
            return self._status(instance, show_history, show_input, show_history_output)

    def list_instances(self, created_from: datetime | None = None, created_to: datetime | None = None,
                       runtime_status: Iterable[str] | None = None, instance_id_prefix: str | None = None,
                       show_input: bool = True) -> list[Record]:
        """Statuses (as ``get_status``) of the instances matching every filter given, oldest first."""
        with self._lock:
            matching = self._matching(created_from, created_to, runtime_status, instance_id_prefix)
            return [self._status(i, False, show_input, False) for i in matching]

    def history(self, instance_id: str) -> list[Record]:
        """The history JSON the orchestrator was last fed (a copy); ``KeyError`` for an unknown instance."""
        with self._lock:
            return copy.deepcopy(self._instances[instance_id].fed_history)

    def stored_history(self, instance_id: str) -> list[Record]:
        """Every event recorded for the current execution, including the last episode's decisions; a copy."""
        with self._lock:
            return copy.deepcopy(self._instances[instance_id].history)

    def observe(self, callback: Observer) -> Callable[[], None]:
        """Call ``callback`` with a record for everything that happens; returns a function that stops it.

        A record is a plain dict: ``at`` (clock time), ``instance_id``, ``kind`` - one of
        ``started``, ``activity_scheduled``, ``activity_completed``, ``activity_failed``,
        ``timer_created``, ``timer_fired``, ``event_raised``, ``custom_status``, ``completed``,
        ``failed``, ``terminated``, ``continued_as_new``, ``suspended``, ``resumed`` - and details
        (``name``, ``input``, ``result``, ``error``, ``fire_at``, ``event_id``, ``custom_status``,
        ``output``, ``reason``). Called outside the hub's lock, on the thread that caused it.
        """
        with self._lock:
            self._observers.append(callback)

        def stop() -> None:
            with self._lock:
                if callback in self._observers:
                    self._observers.remove(callback)

        return stop

    def call_at(self, when: datetime, callback: Callable[[], Any]) -> None:
        """Run ``callback()`` on the driving thread once the clock reaches ``when`` (outside the hub's lock)."""
        with self._lock:
            self._schedule(as_utc(when), callback)

    # --- driving --------------------------------------------------------------------------------

    def run_until_idle(self) -> int:
        """Run everything ready at the current clock time, without moving the clock; the number of items run."""
        count = 0
        while self._step():
            count += 1
        return count

    def run(self, until: Callable[[], bool] | None = None, max_virtual_seconds: float | None = None) -> bool:
        """Run work, moving the clock to each next due time, until ``until()`` is true or nothing is left.

        A virtual clock jumps; a real clock is waited for. Returns True when ``until()`` became true
        (or, without ``until``, once nothing is left to run); False when nothing is left while
        ``until()`` is still false, or when the next due time lies beyond ``max_virtual_seconds``
        (default: no limit) from the start - the clock is then left where it was.
        """
        deadline = None if max_virtual_seconds is None else self._clock.now() + timedelta(seconds=max_virtual_seconds)
        while True:
            if until is not None and until():
                return True
            if self._step():
                continue
            due = self._next_due()
            if due is None:
                return until is None
            if deadline is not None and due > deadline:
                return False
            self._wait_until(due)

    def start_background(self) -> None:
        """Drive the hub on a daemon worker thread until ``stop()``: it sleeps until the next due time
        or new work (a virtual clock is moved forward instead of slept on)."""
        with self._lock:
            if self._worker is not None:
                return
            self._stopping = False
            self._worker = threading.Thread(target=self._background_loop, name="taskhub-worker", daemon=True)
            self._worker.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background worker (after the item it is running) and wait up to ``timeout`` seconds."""
        with self._lock:
            worker, self._worker = self._worker, None
            self._stopping = True
            self._wakeup.notify_all()
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)

    # --- the work loop ----------------------------------------------------------------------------

    def _step(self) -> bool:
        """Run one ready work item (releasing due timers and callbacks first); False when none is ready."""
        with self._drive_lock:
            with self._lock:
                records = self._release_due(self._clock.now())
                work = self._ready.popleft() if self._ready else None
            self._emit(records)
            if work is None:
                return False
            if work.kind == "episode":
                self._run_episode(work.instance_id)
            elif work.kind == "activity" and work.activity is not None:
                self._run_activity(work.activity)
            elif work.callback is not None:
                work.callback()
            return True

    def _background_loop(self) -> None:
        while True:
            try:
                if self._step():
                    continue
            except Exception:
                logger.exception("task hub work item failed")
                continue
            with self._wakeup:
                if self._stopping:
                    return
                if self._ready:
                    continue
                due = self._next_due_locked()
                now = self._clock.now()
                if due is not None and due <= now:
                    continue
                if due is not None and isinstance(self._clock, VirtualClock):
                    self._clock.advance_to(due)
                    continue
                self._wakeup.wait(None if due is None else (due - now).total_seconds())

    def _next_due(self) -> datetime | None:
        with self._lock:
            return self._next_due_locked()

    def _next_due_locked(self) -> datetime | None:
        """The earliest due time, after dropping timers of instances that are gone or done.

        The host would deliver and discard those; dropping them early keeps a virtual clock
        from jumping to times nothing happens at.
        """
        while self._scheduled:
            due, _, job = self._scheduled[0]
            if not isinstance(job, _TimerJob) or self._live_instance(job.instance_id, job.execution_id) is not None:
                return due
            heappop(self._scheduled)
        return None

    def _wait_until(self, due: datetime) -> None:
        """Move a virtual clock to ``due``; on a real clock, sleep until then or until new work arrives."""
        if isinstance(self._clock, VirtualClock):
            self._clock.advance_to(due)
            return
        with self._wakeup:
            remaining = (due - self._clock.now()).total_seconds()
            if remaining > 0 and not self._ready:
                self._wakeup.wait(remaining)

    def _schedule(self, due: datetime, job: _TimerJob | Callable[[], Any]) -> None:
        self._sequence += 1
        heappush(self._scheduled, (due, self._sequence, job))
        self._wakeup.notify_all()

    def _release_due(self, now: datetime) -> list[Record]:
        """Move due timers into their instances' inboxes and due callbacks to the ready queue."""
        records: list[Record] = []
        while self._scheduled and self._scheduled[0][0] <= now:
            _, _, job = heappop(self._scheduled)
            if isinstance(job, _TimerJob):
                records += self._fire_timer(job, now)
            else:
                self._ready.append(_Work("callback", callback=job))
        return records

    def _fire_timer(self, job: _TimerJob, now: datetime) -> list[Record]:
        instance = self._live_instance(job.instance_id, job.execution_id)
        if instance is None:
            return []  # the host drops messages for instances that are gone or done
        instance.inbox.append(_event(HistoryEventType.TIMER_FIRED, now, TimerId=job.timer_id,
                                     FireAt=dotnet_timestamp(job.fire_at)))
        self._queue_episode(instance)
        return [self._record(job.instance_id, "timer_fired", event_id=job.timer_id, fire_at=job.fire_at)]

    def _queue_episode(self, instance: _Instance) -> None:
        if instance.inbox and not instance.episode_queued and instance.status != SUSPENDED:
            instance.episode_queued = True
            self._ready.append(_Work("episode", instance_id=instance.instance_id))
            self._wakeup.notify_all()

    def _live_instance(self, instance_id: str, execution_id: str) -> _Instance | None:
        instance = self._instances.get(instance_id)
        if instance is None or instance.execution_id != execution_id or instance.status not in ACTIVE_STATUSES:
            return None
        return instance

    # --- episodes -------------------------------------------------------------------------------

    def _run_episode(self, instance_id: str) -> None:
        """Feed the instance's next event to its orchestrator and commit what it decided."""
        with self._lock:
            episode = self._prepare_episode(instance_id)
        if episode is None:
            return
        try:
            state = invoke_orchestrator(episode.function, episode.context_json)
        except BaseException:  # interrupted: give the event back so a later episode can deliver it
            with self._lock:
                self._abandon_episode(episode)
            raise
        with self._lock:
            records = self._commit_episode(episode, state)
        self._emit(records)

    def _abandon_episode(self, episode: _Episode) -> None:
        instance = self._live_instance(episode.instance_id, episode.execution_id)
        if instance is not None:
            instance.busy = False
            instance.inbox.appendleft(episode.event)
            self._queue_episode(instance)

    def _prepare_episode(self, instance_id: str) -> _Episode | None:
        instance = self._instances.get(instance_id)
        if instance is None:
            return None
        instance.episode_queued = False
        if instance.busy or instance.status not in ACTIVE_STATUSES - {SUSPENDED} or not instance.inbox:
            return None
        instance.busy = True
        at = self._clock.now()
        started = _event(HistoryEventType.ORCHESTRATOR_STARTED, at)
        event = instance.inbox.popleft()
        fed = [{**past, "IsPlayed": True} for past in instance.history] + [started, event]
        context = {
            "history": fed,
            "input": instance.input,
            "instanceId": instance.instance_id,
            "isReplaying": bool(instance.history),
            "parentInstanceId": None,
            "upperSchemaVersion": UPPER_SCHEMA_VERSION,
            "upperSchemaVersionNew": UPPER_SCHEMA_VERSION_NEW,
            "longRunningTimerIntervalDuration": LONG_RUNNING_TIMER_INTERVAL_DURATION,
            "maximumShortTimerDuration": MAXIMUM_SHORT_TIMER_DURATION,
            "defaultHttpAsyncRequestSleepTimeMillseconds": DEFAULT_HTTP_ASYNC_SLEEP_MS,
        }
        return _Episode(instance.instance_id, instance.execution_id, instance.name,
                        self.registry.orchestrators[instance.name], at, started, event, fed,
                        json.dumps(context, ensure_ascii=False))

    def _commit_episode(self, episode: _Episode, state: Record) -> list[Record]:
        instance = self._live_instance(episode.instance_id, episode.execution_id)
        if instance is None:
            return []  # terminated, replaced or purged while the orchestrator ran
        instance.busy = False
        at = episode.at
        instance.history += [episode.started, episode.event]
        instance.fed_history = episode.fed
        if instance.status in (PENDING, CONTINUED_AS_NEW):
            instance.status = RUNNING
        records = self._update_custom_status(instance, state, at)
        continue_as_new: Record | None = None
        if state.get("error"):
            self._fail(instance, at, str(state["error"]), records)
        else:
            records += self._after_event(instance, episode.event, at)
            continue_as_new = self._decide(instance, state, at, records)
        instance.history.append(_event(HistoryEventType.ORCHESTRATOR_COMPLETED, at))
        instance.last_updated_at = at
        if continue_as_new is not None:
            self._continue_as_new(instance, continue_as_new.get("input"), at, records)
        if instance.status in ACTIVE_STATUSES:
            self._queue_episode(instance)
        return records

    def _update_custom_status(self, instance: _Instance, state: Record, at: datetime) -> list[Record]:
        """Adopt ``customStatus`` when the state has one (the SDK omits falsy ones; the host keeps the old)."""
        if "customStatus" not in state or state["customStatus"] == instance.custom_status:
            return []
        instance.custom_status = state["customStatus"]
        return [self._record(instance.instance_id, "custom_status", at, custom_status=copy.deepcopy(instance.custom_status))]

    def _decide(self, instance: _Instance, state: Record, at: datetime, records: list[Record]) -> Record | None:
        """Carry out the new actions and complete the instance when the orchestrator is done.

        Returns the ``ContinueAsNew`` action when there is one (carried out after the episode closes).
        """
        actions = flatten_actions(state)
        problem = self._nondeterminism(instance, actions) or _unsupported(actions[len(instance.carried_out):])
        if problem:
            self._fail(instance, at, problem, records)
            return None
        continue_as_new: Record | None = None
        for action in actions[len(instance.carried_out):]:
            instance.carried_out.append(_action_signature(action))
            if action.get("actionType") == ActionType.CONTINUE_AS_NEW:
                continue_as_new = action
            else:
                records += self._carry_out(instance, action, at)
        if continue_as_new is None and state.get("isDone"):
            output = state.get("output")
            instance.history.append(_execution_completed(at, COMPLETED, host_json(output)))
            self._finish(instance, COMPLETED, output, at)
            records.append(self._record(instance.instance_id, "completed", at, output=output))
        return continue_as_new

    @staticmethod
    def _nondeterminism(instance: _Instance, actions: list[Record]) -> str | None:
        """Why the actions do not replay what was carried out before, or None when they do (DTFx's check)."""
        for index, done in enumerate(instance.carried_out):
            if index >= len(actions) or _action_signature(actions[index]) != done:
                now = _action_signature(actions[index]) if index < len(actions) else None
                return (f"Non-Deterministic workflow detected: action {index} was {ActionType(done[0]).name} "
                        f"{done[1]!r} in an earlier episode but is {now} on replay")
        return None

    def _carry_out(self, instance: _Instance, action: Record, at: datetime) -> list[Record]:
        """Schedule one new atomic action; returns the records of what was scheduled."""
        action_type = action.get("actionType")
        if action_type in _SCHEDULING_ACTIONS:
            retry = None
            if action_type == ActionType.CALL_ACTIVITY_WITH_RETRY:
                retry = _Retry(action["functionName"], action.get("input"), RetryPolicy.from_json(action["retryOptions"]))
            return [self._schedule_activity(instance, action["functionName"], action.get("input"), at, retry)]
        if action_type == ActionType.CREATE_TIMER:
            return [self._create_timer(instance, _parse_fire_at(action["fireAt"]), at)]
        return []  # WaitForExternalEvent: events are delivered when raised

    def _schedule_activity(self, instance: _Instance, name: str, input_json: str | None, at: datetime,
                           retry: _Retry | None) -> Record:
        event_id = instance.allocate_event_id()
        instance.history.append(_task_scheduled(at, event_id, name, input_json))
        if retry is not None:
            instance.retry_by_task[event_id] = retry
        job = _ActivityJob(instance.instance_id, instance.execution_id, event_id, name, input_json)
        self._ready.append(_Work("activity", activity=job))
        self._wakeup.notify_all()
        return self._record(instance.instance_id, "activity_scheduled", at, name=name, input=_loads_or_text(input_json),
                            event_id=event_id, attempt=retry.attempts if retry else 1)

    def _create_timer(self, instance: _Instance, fire_at: datetime, at: datetime, retry: _Retry | None = None) -> Record:
        event_id = instance.allocate_event_id()
        instance.history.append(_timer_created(at, event_id, fire_at))
        if retry is not None:
            instance.retry_by_timer[event_id] = retry
        self._schedule(fire_at, _TimerJob(instance.instance_id, instance.execution_id, event_id, fire_at))
        return self._record(instance.instance_id, "timer_created", at, event_id=event_id, fire_at=fire_at,
                            retry_of=retry.name if retry else None)

    def _after_event(self, instance: _Instance, event: Record, at: datetime) -> list[Record]:
        """The host's own reaction to the delivered event: the retry interceptor's timers and attempts.

        Runs before new actions are carried out, as the SDK numbers its internal retry tasks
        while processing the event, before the orchestrator code resumes.
        """
        event_type = event["EventType"]
        if event_type == HistoryEventType.TASK_COMPLETED:
            instance.retry_by_task.pop(event["TaskScheduledId"], None)
        elif event_type == HistoryEventType.TASK_FAILED and event["TaskScheduledId"] in instance.retry_by_task:
            retry = instance.retry_by_task.pop(event["TaskScheduledId"])
            return [self._create_timer(instance, at + retry.policy.delay(retry.attempts - 1), at, retry)]
        elif event_type == HistoryEventType.TIMER_FIRED and event["TimerId"] in instance.retry_by_timer:
            retry = instance.retry_by_timer.pop(event["TimerId"])
            if retry.attempts < retry.policy.max_attempts:
                retry.attempts += 1
                return [self._schedule_activity(instance, retry.name, retry.input_json, at, retry)]
        return []

    def _continue_as_new(self, instance: _Instance, new_input: Any, at: datetime, records: list[Record]) -> None:
        """Start a new execution with ``new_input`` and a fresh history; undelivered events carry over."""
        instance.status = CONTINUED_AS_NEW
        instance.execution_id = uuid.uuid4().hex
        instance.input = new_input
        instance.history, instance.carried_out, instance.next_event_id = [], [], 0
        instance.retry_by_task, instance.retry_by_timer = {}, {}
        instance.inbox.appendleft(_execution_started(at, instance.name, new_input, instance.instance_id,
                                                     instance.execution_id))
        records.append(self._record(instance.instance_id, "continued_as_new", at, input=new_input))

    def _fail(self, instance: _Instance, at: datetime, error: str, records: list[Record]) -> None:
        """Fail the instance the way the out-of-process shim reports an orchestrator error."""
        output = f"Orchestrator function '{instance.name}' failed: {error}"
        instance.history.append(_execution_completed(at, FAILED, output))
        self._finish(instance, FAILED, output, at)
        records.append(self._record(instance.instance_id, "failed", at, error=error, output=output))

    def _finish(self, instance: _Instance, status: str, output: Any, at: datetime) -> None:
        instance.status, instance.output, instance.last_updated_at = status, output, at
        instance.inbox.clear()
        instance.busy = False

    # --- activities ------------------------------------------------------------------------------

    def _run_activity(self, job: _ActivityJob) -> None:
        """Run the activity outside the lock and deliver ``TaskCompleted`` or ``TaskFailed``."""
        with self._lock:
            if self._live_instance(job.instance_id, job.execution_id) is None:
                return
        result_json, failure = self._call_activity(job.name, job.input_json)
        with self._lock:
            instance = self._live_instance(job.instance_id, job.execution_id)
            if instance is None:
                return
            now = self._clock.now()
            if failure is None:
                instance.inbox.append(_event(HistoryEventType.TASK_COMPLETED, now, TaskScheduledId=job.event_id,
                                             Result=result_json))
                record = self._record(job.instance_id, "activity_completed", now, name=job.name, event_id=job.event_id,
                                      result=_loads_or_text(result_json))
            else:
                reason, details = failure
                instance.inbox.append(_event(HistoryEventType.TASK_FAILED, now, TaskScheduledId=job.event_id,
                                             Reason=reason, Details=details))
                record = self._record(job.instance_id, "activity_failed", now, name=job.name, event_id=job.event_id,
                                      error=reason)
            self._queue_episode(instance)
        self._emit([record])

    def _call_activity(self, name: str, input_json: str | None) -> tuple[str | None, tuple[str, str] | None]:
        """Call the activity as the Python worker does; (result JSON, None) or (None, (reason, details)).

        Input is decoded and the result encoded by the worker's own ``ActivityTriggerConverter``.
        The reason is what the extension reports: ``Activity function '<name>' failed:  <Type>: <message>``.
        """
        activity = self.registry.activities.get(name)
        if activity is None:
            return None, (f"The activity function '{name}' doesn't exist.", "")
        try:
            argument = ActivityTriggerConverter.decode(meta.Datum(input_json, "json"), trigger_metadata=None)
            result = activity.function(**{activity.input_name: argument})
            if inspect.isawaitable(result):
                result = _run_coroutine(result)
            return ActivityTriggerConverter.encode(result, expected_type=None).value, None
        except Exception as exc:
            return None, (f"Activity function '{name}' failed:  {type(exc).__name__}: {exc}", _user_traceback(exc))

    # --- status and records -----------------------------------------------------------------------

    def _status(self, instance: _Instance, show_history: bool, show_input: bool, show_history_output: bool) -> Record:
        status = {
            "name": instance.name,
            "instanceId": instance.instance_id,
            "runtimeStatus": instance.status,
            "input": copy.deepcopy(instance.input) if show_input else None,
            "customStatus": copy.deepcopy(instance.custom_status),
            "output": copy.deepcopy(instance.output),
            "createdTime": status_timestamp(instance.created_at),
            "lastUpdatedTime": status_timestamp(instance.last_updated_at),
        }
        if show_history:
            status["historyEvents"] = (None if instance.status == PENDING
                                       else readable_history(instance.history, show_input, show_history_output))
        return status

    def _matching(self, created_from: datetime | None, created_to: datetime | None,
                  runtime_status: Iterable[str] | None, prefix: str | None) -> list[_Instance]:
        statuses = None if runtime_status is None else set(runtime_status)
        found = [
            i for i in self._instances.values()
            if (created_from is None or i.created_at >= as_utc(created_from))
            and (created_to is None or i.created_at <= as_utc(created_to))
            and (statuses is None or not statuses or i.status in statuses)
            and (prefix is None or i.instance_id.startswith(prefix))
        ]
        return sorted(found, key=lambda i: (i.created_at, i.instance_id))

    def _record(self, instance_id: str, kind: str, at: datetime | None = None, **details: Any) -> Record:
        return {"at": at or self._clock.now(), "instance_id": instance_id, "kind": kind, **details}

    def _emit(self, records: list[Record]) -> None:
        if not records:
            return
        with self._lock:
            observers = list(self._observers)
        for record in records:
            for observer in observers:
                observer(record)


# --- helpers ---------------------------------------------------------------------------------------


def invoke_orchestrator(function: Callable[[str], str], context_json: str) -> Record:
    """Call a registered orchestrator with the context JSON; its state, also when it raised."""
    try:
        return json.loads(function(context_json))
    except Exception as exc:
        return orchestrator_state_from_exception(exc)


_HISTORY_EVENT_NAMES = (
    "ExecutionStarted", "ExecutionCompleted", "ExecutionFailed", "ExecutionTerminated", "TaskScheduled",
    "TaskCompleted", "TaskFailed", "SubOrchestrationInstanceCreated", "SubOrchestrationInstanceCompleted",
    "SubOrchestrationInstanceFailed", "TimerCreated", "TimerFired", "OrchestratorStarted", "OrchestratorCompleted",
    "EventSent", "EventRaised", "ContinueAsNew", "GenericEvent", "HistoryState", "ExecutionSuspended",
    "ExecutionResumed",
)


def readable_history(events: list[Record], show_input: bool, show_output: bool) -> list[Record]:
    """History as the HTTP status API shows it (``DurableClient.GetDurableOrchestrationStatusAsync``).

    Event types become names; episode markers and the ``TaskScheduled`` events that a completion
    names are dropped; completions gain ``FunctionName`` and ``ScheduledTime``; ``EventId`` and
    ``IsPlayed`` go; results are kept (parsed) only with ``show_output``.
    """
    scheduled: dict[int, tuple[int, Record]] = {}
    dropped: set[int] = set()
    readable: list[Record] = []
    for index, source in enumerate(events):
        item = dict(source)
        event_type = item["EventType"]
        item["EventType"] = _HISTORY_EVENT_NAMES[event_type]
        if event_type in (HistoryEventType.ORCHESTRATOR_STARTED, HistoryEventType.ORCHESTRATOR_COMPLETED):
            dropped.add(index)
        elif event_type == HistoryEventType.TASK_SCHEDULED:
            scheduled[item["EventId"]] = (index, item)
            item.pop("Version", None)
        elif event_type in (HistoryEventType.TASK_COMPLETED, HistoryEventType.TASK_FAILED):
            _merge_scheduled(item, scheduled, dropped, show_input)
            _result_for_status(item, show_output and event_type == HistoryEventType.TASK_COMPLETED)
        elif event_type == HistoryEventType.EXECUTION_STARTED:
            item["FunctionName"] = item.pop("Name", None)
            for key in ("OrchestrationInstance", "ParentInstance", "Version", "Tags"):
                item.pop(key, None)
        elif event_type == HistoryEventType.EXECUTION_COMPLETED:
            code = item.get("OrchestrationStatus")
            item["OrchestrationStatus"] = _STATUS_BY_CODE.get(code, code) if isinstance(code, int) else code
            _result_for_status(item, show_output)
        elif event_type == HistoryEventType.TIMER_FIRED:
            item.pop("TimerId", None)
        if not show_input:
            item.pop("Input", None)
        item.pop("EventId", None)
        item.pop("IsPlayed", None)
        readable.append(item)
    return [item for index, item in enumerate(readable) if index not in dropped]


def _merge_scheduled(item: Record, scheduled: dict[int, tuple[int, Record]], dropped: set[int], show_input: bool) -> None:
    found = scheduled.get(int(item.pop("TaskScheduledId", -1)))
    if found is None:
        return
    index, task = found
    item["ScheduledTime"] = task["Timestamp"]
    item["FunctionName"] = task.get("Name")
    if show_input:
        item["Input"] = task.get("Input")
    dropped.add(index)


def _result_for_status(item: Record, show_output: bool) -> None:
    if not show_output:
        item.pop("Result", None)
    elif isinstance(item.get("Result"), str):
        item["Result"] = _loads_or_text(item["Result"])


def _unsupported(actions: list[Record]) -> str | None:
    for action in actions:
        action_type = action.get("actionType")
        if action_type not in _SUPPORTED_ACTIONS:
            try:
                name = ActionType(action_type).name
            except ValueError:
                name = repr(action_type)
            return f"the emulator's task hub does not support the {name} action"
    return None


def _check_instance_id(instance_id: str) -> None:
    """Refuse ids the host refuses: leading ``@``, ``/ \\ ? #`` or control characters, over 256 characters."""
    if instance_id.startswith("@"):
        raise ValueError("Orchestration instance ids must not start with @.")
    if any(c in "/\\?#" or ord(c) < 32 or 127 <= ord(c) < 160 for c in instance_id):
        raise ValueError("Orchestration instance ids must not contain /, \\, #, ?, or control characters.")
    if len(instance_id) > 256:
        raise ValueError("Instance ID lengths must not exceed 256 characters.")


def _user_traceback(exc: BaseException) -> str:
    """The traceback of an activity exception without the hub's own calling frame."""
    tb = exc.__traceback__
    frames = tb.tb_next if tb is not None and tb.tb_frame.f_code.co_filename == __file__ else tb
    return "".join(traceback.format_exception(type(exc), exc, frames))


def _loads_or_text(text: str | None) -> Any:
    """A JSON text decoded, or the text itself when it is not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, json.JSONDecodeError):
        return text


def _run_coroutine(awaitable: Any) -> Any:
    import asyncio

    async def wait() -> Any:
        return await awaitable

    return asyncio.run(wait())
