"""The host's replay of an out-of-process orchestrator's actions, and the framework's determinism check.

The SDK answers each episode with every action since the start (replay schema V2/V3: one list,
``WhenAny``/``WhenAll`` as compound actions). The host does not diff that list against history.
``OutOfProcOrchestrationShim.ProcessAsyncActionsV2`` (azure-functions-durable-extension 2.13.7,
src/WebJobs.Extensions.DurableTask/Listener/OutOfProcOrchestrationShim.cs) runs it as an
orchestration of its own inside the Durable Task Framework (DTFx): for each action in turn it calls
the matching context API and *awaits the task* before it looks at the next action. DTFx
(``TaskOrchestrationExecutor.Execute`` and ``TaskOrchestrationContext``, Azure/durabletask,
DurableTask.Core 2.17) plays the history events into that context one by one; each completion
resumes the shim synchronously, and the APIs it calls take sequence ids from one counter.

``replay`` does the same, event by event:

- ``CallActivity``: a task with the next id; ``TaskCompleted``/``TaskFailed`` complete it.
- ``CallActivityWithRetry``: DTFx's ``RetryInterceptor``: attempt, and after a failure a timer at
  the context's time + first interval x backoff^attempt (capped); after the last failure a timer
  at the context's time ("Dummy timer for back-compat"), then the failure.
- ``CreateTimer``: a task with the next id, completed by ``TimerFired``. With ``isCanceled`` the
  shim cancels its ``CancellationTokenSource`` at once: the timer is still created (and will
  fire), but its task completes - cancelled - immediately and is no longer an open task.
- ``WaitForExternalEvent``: the extension's waiter stack for that name (the newest waiter gets
  the next ``EventRaised``; events with no waiter are buffered for the next waiter). No id.
- ``WhenAny`` / ``WhenAll``: all children are invoked, then the shim awaits any / all of them.
- ``ContinueAsNew``: recorded; completes at once. ``EventRaised`` events played after it are not
  raised but kept for the next execution (``TaskOrchestrationContext.HandleEventRaisedEvent`` ->
  ``AddEventToNextIteration``; ``TaskOrchestrationDispatcher`` adds these ``CarryoverEvents`` after
  the new ``ExecutionStarted``; Azure Storage's ``EventBehaviourForContinueAsNew`` is ``Carryover``).
  Events raised before it that found no waiter stay buffered in the extension and are dropped: the
  shim calls ``ContinueAsNew(input)``, whose ``preserveUnprocessedEvents`` defaults to false.

So an action after an await that history has not completed is *not* carried out, whatever the
SDK sent: after the first wait of a ``task_any`` window the SDK sends the next ``WhenAny`` with
only the new timer in it (the event waiter is already scheduled), and unless that timer is
cancelled the host does not look past it until it fires.

Determinism (DTFx ``TaskOrchestrationContext.HandleTaskScheduledEvent`` /
``HandleTimerCreatedEvent``): a ``TaskScheduled`` in history must meet a scheduled activity with
that id and the same name ignoring case, a ``TimerCreated`` a timer with that id; nothing else
is compared (event waiters, compound actions, inputs, fire times, versions). Events completing
ids nobody waits on are ignored (``LogDuplicateEvent``).

The orchestration completes (or fails, or continues as new) only when the shim got through every
action and no DTFx task is open (``if (!this.context.HasOpenTasks)`` in ``Execute``): an activity
still running or a timer neither fired nor cancelled keeps it Running.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from azure.durable_functions.models.actions.ActionType import ActionType
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as T

from emulator.history import Record, parse_timestamp

COMPOUND_ACTIONS = frozenset({ActionType.WHEN_ANY, ActionType.WHEN_ALL})
_NON_DETERMINISTIC = "Non-Deterministic workflow detected: "
_CHANGED = "Was a change made to the orchestrator code after this instance had already started running?"


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


@dataclass(frozen=True)
class NewTask:
    """An activity or timer the replay scheduled that history does not hold yet."""

    event_id: int
    name: str | None = None  # activity name; None for a timer
    input_json: str | None = None
    fire_at: datetime | None = None  # timers only
    attempt: int = 1
    retry_of: str | None = None  # the activity a retry timer belongs to


@dataclass
class ReplayResult:
    """What the host's replay of one episode decided."""

    new_tasks: list[NewTask] = field(default_factory=list)
    shim_finished: bool = False  # got through every action (no await left blocking)
    open_tasks: bool = False
    continue_as_new: Record | None = None
    carryover: list[Record] = field(default_factory=list)  # EventRaised played after ContinueAsNew
    non_deterministic: str | None = None  # DTFx's NonDeterministicOrchestrationException message
    unsupported: str | None = None  # an action the emulator cannot carry out

    @property
    def can_complete(self) -> bool:
        """Whether DTFx would complete the orchestration now: shim through, no task open."""
        return self.shim_finished and not self.open_tasks


class _Future:
    """A task in the replay: completes once; callbacks run synchronously, as DTFx's scheduler runs them."""

    def __init__(self) -> None:
        self.done = False
        self._callbacks: list[Callable[[], None]] = []

    def resolve(self) -> None:
        if not self.done:
            self.done = True
            callbacks, self._callbacks = self._callbacks, []
            for callback in callbacks:
                callback()

    def then(self, callback: Callable[[], None]) -> None:
        if self.done:
            callback()
        else:
            self._callbacks.append(callback)


def _resolved() -> _Future:
    future = _Future()
    future.resolve()
    return future


class _Replay:
    """One episode's replay: the DTFx context, the extension's event waiters and the shim's loop."""

    def __init__(self, actions: list[Record]) -> None:
        self.actions = actions
        self.index = 0
        self.now: datetime | None = None
        self.next_id = 0
        self.pending: dict[int, NewTask] = {}  # DTFx orchestratorActionsMap
        self.open: dict[int, _Future] = {}  # DTFx openTasks
        self.failed: dict[int, bool] = {}  # completed ids: whether TaskFailed completed them
        self.waiters: dict[str, list[_Future]] = {}
        self.buffered: dict[str, deque[str]] = {}
        self.result = ReplayResult()

    # --- the shim ------------------------------------------------------------------------------------

    def run_shim(self) -> None:
        while self.index < len(self.actions):
            future = self.invoke(self.actions[self.index])
            self.index += 1
            if not future.done:
                future.then(self.run_shim)
                return
        self.result.shim_finished = True

    def invoke(self, action: Record) -> _Future:
        kind = action.get("actionType")
        if kind == ActionType.CALL_ACTIVITY:
            return self.schedule_task(action["functionName"], action.get("input"))[0]
        if kind == ActionType.CALL_ACTIVITY_WITH_RETRY:
            return self.with_retry(action["functionName"], action.get("input"),
                                   RetryPolicy.from_json(action["retryOptions"]))
        if kind == ActionType.CREATE_TIMER:
            timer, timer_id = self.create_timer(parse_timestamp(action["fireAt"]))
            if action.get("isCanceled"):  # cts.Cancel(): TrySetCanceled, openTasks.Remove(id)
                del self.open[timer_id]
                timer.resolve()
            return timer
        if kind == ActionType.WAIT_FOR_EXTERNAL_EVENT:
            return self.wait_for_event(action["externalEventName"])
        if kind in COMPOUND_ACTIONS:
            children = [self.invoke(child) for child in action.get("compoundActions") or []]
            return _when(children, any_of=kind == ActionType.WHEN_ANY)
        if kind == ActionType.CONTINUE_AS_NEW:
            self.result.continue_as_new = action
            return _resolved()
        try:
            name = ActionType(kind).name
        except ValueError:
            name = repr(kind)
        self.result.unsupported = self.result.unsupported or f"the emulator's task hub does not support the {name} action"
        return _Future()

    # --- the DTFx context -----------------------------------------------------------------------------

    def schedule_task(self, name: str, input_json: str | None, attempt: int = 1) -> tuple[_Future, int]:
        event_id = self.next_id
        self.next_id += 1
        self.pending[event_id] = NewTask(event_id, name, input_json, attempt=attempt)
        future = self.open[event_id] = _Future()
        return future, event_id

    def create_timer(self, fire_at: datetime, retry_of: str | None = None) -> tuple[_Future, int]:
        event_id = self.next_id
        self.next_id += 1
        self.pending[event_id] = NewTask(event_id, fire_at=fire_at, retry_of=retry_of)
        future = self.open[event_id] = _Future()
        return future, event_id

    def with_retry(self, name: str, input_json: str | None, policy: RetryPolicy) -> _Future:
        """DTFx ``RetryInterceptor.Invoke``."""
        outcome = _Future()

        def attempt(number: int) -> None:
            task, event_id = self.schedule_task(name, input_json, number)
            task.then(lambda: settled(number, event_id))

        def settled(number: int, event_id: int) -> None:
            if not self.failed.get(event_id):
                outcome.resolve()
            elif number == policy.max_attempts:  # "Dummy timer for back-compat", due at once
                self.create_timer(self.clock(), retry_of=name)[0].then(outcome.resolve)
            else:
                self.create_timer(self.clock() + policy.delay(number - 1), retry_of=name)[0].then(
                    lambda: attempt(number + 1))

        attempt(1)
        return outcome

    def wait_for_event(self, name: str) -> _Future:
        """``DurableOrchestrationContext.WaitForExternalEvent``: push a waiter; a buffered event completes it."""
        future = _Future()
        self.waiters.setdefault(name, []).append(future)
        buffered = self.buffered.get(name)
        if buffered:
            buffered.popleft()
            self.raise_event(name)
        return future

    def raise_event(self, name: str) -> None:
        """``DurableOrchestrationContext.RaiseEvent``: complete the newest waiter, else buffer the event."""
        waiters = self.waiters.get(name)
        if waiters:
            waiters.pop().resolve()
        else:
            self.buffered.setdefault(name, deque()).append(name)

    def clock(self) -> datetime:
        assert self.now is not None, "history starts with OrchestratorStarted"
        return self.now

    # --- history --------------------------------------------------------------------------------------

    def play(self, event: Record) -> None:
        kind = event["EventType"]
        if kind == T.ORCHESTRATOR_STARTED:
            self.now = parse_timestamp(event["Timestamp"])
        elif kind == T.EXECUTION_STARTED:
            self.run_shim()
        elif kind == T.TASK_SCHEDULED:
            self.match_task(event)
        elif kind == T.TIMER_CREATED:
            self.match_timer(event)
        elif kind in (T.TASK_COMPLETED, T.TASK_FAILED):
            self.complete(int(event["TaskScheduledId"]), failed=kind == T.TASK_FAILED)
        elif kind == T.TIMER_FIRED:
            self.complete(int(event["TimerId"]), failed=False)
        elif kind == T.EVENT_RAISED:
            if self.result.continue_as_new is not None:
                self.result.carryover.append(event)
            else:
                self.raise_event(str(event["Name"]))

    def match_task(self, event: Record) -> None:
        """``HandleTaskScheduledEvent``, with its messages."""
        event_id, name = int(event["EventId"]), event.get("Name")
        task = self.pending.pop(event_id, None)
        if task is None:
            raise _NonDeterminism(
                f"A previous execution of this orchestration scheduled an activity task with sequence ID {event_id} "
                f"and name '{name}' (version '{event.get('Version') or ''}'), but the current replay execution "
                f"hasn't (yet?) scheduled this task. {_CHANGED}")
        if task.name is None:
            raise _NonDeterminism(
                f"A previous execution of this orchestration scheduled an activity task with sequence number "
                f"{event_id} named '{name}', but the current orchestration replay instead produced a "
                f"CreateTimerOrchestratorAction action with this sequence number. {_CHANGED}")
        if task.name.upper() != str(name).upper():  # StringComparison.OrdinalIgnoreCase
            raise _NonDeterminism(
                f"A previous execution of this orchestration scheduled an activity task with sequence number "
                f"{event_id} named '{name}', but the current orchestration replay instead scheduled an activity "
                f"task named '{task.name}' with this sequence number.  {_CHANGED}")

    def match_timer(self, event: Record) -> None:
        """``HandleTimerCreatedEvent``, with its messages."""
        event_id = int(event["EventId"])
        task = self.pending.pop(event_id, None)
        if task is None:
            raise _NonDeterminism(
                f"A previous execution of this orchestration scheduled a timer task with sequence number {event_id} "
                f"but the current replay execution hasn't (yet?) scheduled this task. {_CHANGED}")
        if task.name is not None:
            raise _NonDeterminism(
                f"A previous execution of this orchestration scheduled a timer task with sequence number {event_id} "
                f"named but the current orchestration replay instead produced a ScheduleTaskOrchestratorAction "
                f"action with this sequence number. {_CHANGED}")

    def complete(self, event_id: int, failed: bool) -> None:
        entry = self.open.pop(event_id, None)
        if entry is not None:  # else DTFx's LogDuplicateEvent: ignored
            self.failed[event_id] = failed
            entry.resolve()


class _NonDeterminism(Exception):
    pass


def _when(children: Iterable[_Future], any_of: bool) -> _Future:
    children = list(children)
    combined = _Future()
    if not children:
        combined.resolve()
        return combined
    remaining = [len(children)]

    def one_done() -> None:
        remaining[0] -= 1
        if any_of or remaining[0] == 0:
            combined.resolve()

    for child in children:
        child.then(one_done)
    return combined


def top_level_actions(state: Record) -> tuple[list[Record], str | None]:
    """The action list of a V2/V3 state, or the host's refusal (``ReplayOOProcOrchestration``)."""
    actions = state.get("actions")
    if not actions:  # nothing to replay (also a state built from an exception without $OutOfProcData$)
        return [], None
    schema = state.get("schemaVersion", 0)
    if schema not in (1, 2, "V2", "V3"):
        return [], f"the emulator sends replay schema V3; the orchestrator answered with schema {schema!r}"
    if len(actions) != 1 or not isinstance(actions[0], list):
        return [], (f"With OOProc schema {schema}, expected actions array to be of length 1 in outer layer but got "
                    f"size: {len(actions)}")
    return actions[0], None


def replay(history: list[Record], actions: list[Record]) -> ReplayResult:
    """Replay ``actions`` against ``history`` (played and new events, in order) as the host does."""
    run = _Replay(actions)
    try:
        for event in history:
            run.play(event)
    except _NonDeterminism as exc:
        run.result.non_deterministic = _NON_DETERMINISTIC + str(exc)
        return run.result
    run.result.new_tasks = [run.pending[event_id] for event_id in sorted(run.pending)]
    run.result.open_tasks = bool(run.open)
    return run.result
