"""An in-process Durable Functions task hub: runs the functions a ``df.DFApp`` registered.

Orchestrators run through the real ``azure-functions-durable`` replay engine: each episode the
registered orchestrator callable (``Orchestrator.create(fn)``'s ``handle``) gets the
orchestration-context JSON the Functions host sends and returns its state JSON; the instance
records what it decided as the Durable extension does (``emulator.instance``), activities run in
process (``emulator.functions``), timers fire on the hub's clock (``emulator.scheduler``), and
status reads have the host's shape (``emulator.status_views``). The wire format lives in
``emulator.history``, action matching in ``emulator.replay``; applying effects and running work
items in ``emulator.hub_work`` (``HubWork``, which ``TaskHub`` extends with the instance API).

Driving: ``start``, ``raise_event``, ``terminate`` never run user code; they queue work. Work
is driven by the thread that calls ``run_until_idle`` / ``run``, or by the worker thread of
``start_background``. Without ``concurrency`` (the default; a simulation on a virtual clock) one
work item runs at a time on that thread; with it (``serve``, real clock) activities and
orchestrator episodes run on a thread pool within host.json's limits, as on the host
(``emulator.scheduler``). Either way an instance runs one episode at a time, an activity's result
joins its instance's history when the activity ends (so results arrive in completion order), and
no work runs while the hub's lock is held, so callbacks, activities and observers may call back
into the hub (also from other threads, e.g. through the management API).
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import azure.durable_functions as df

from emulator import history as h
from emulator.clock import Clock, as_utc
from emulator.functions import FunctionRegistry, UnknownFunction
from emulator.history import ACTIVE_STATUSES, RUNNING, SUSPENDED, Record, dotnet_timestamp, invoke_orchestrator
from emulator.hub_work import HubWork, Observer
from emulator.instance import Instance
from emulator.queue_polling import QueuePolling
from emulator.replay import flatten_actions
from emulator.scheduler import Concurrency, Scheduler
from emulator.status_views import DEFAULT_PAGE_SIZE, matching, page_of, readable_history, status_json
from emulator.store import SqliteStore

__all__ = ["TaskHub", "UnknownFunction", "InstanceAlreadyExists", "flatten_actions", "invoke_orchestrator",
           "readable_history", "dotnet_timestamp", "ACTIVE_STATUSES"]


class InstanceAlreadyExists(RuntimeError):
    """``start`` refused: an instance with that id is still running (``NonRunningStates`` overriding)."""


class TaskHub(HubWork):
    """Runs the orchestrators and activities ``app`` registered, on ``clock``.

    ``overridable_existing_instance_states`` is the host setting of that name: with
    ``"NonRunningStates"`` (the Durable extension's default) ``start`` refuses an id whose instance
    is still Pending/Running/Suspended; with ``"AnyState"`` it replaces it.

    ``queue_polling`` models the Azure Storage provider's queue polling delay for orchestrator
    messages (one poller per control queue) and activity messages (``emulator.queue_polling``);
    None (the default) runs work as soon as it is queued.

    ``concurrency`` (real clocks only) runs activities and episodes concurrently within its limits,
    as the host does (``Concurrency.from_host_json``); None (the default) runs one work item at a
    time, in the order queued, which keeps a virtual-clock simulation reproducible.

    ``store`` keeps instances in a SQLite file (``emulator.store``): the hub loads what it holds
    and carries on - timers not fired are set again, activities not completed run again, waiting
    messages are delivered - and saves every change. None (the default) keeps them in memory.
    """

    def __init__(self, app: df.DFApp, clock: Clock, overridable_existing_instance_states: str = "NonRunningStates",
                 queue_polling: QueuePolling | None = None, store: SqliteStore | None = None,
                 concurrency: Concurrency | None = None) -> None:
        if overridable_existing_instance_states not in ("NonRunningStates", "AnyState"):
            raise ValueError(f"unknown overridable_existing_instance_states {overridable_existing_instance_states!r}")
        self.registry = FunctionRegistry.from_app(app)
        self._clock = clock
        self._replace_running = overridable_existing_instance_states == "AnyState"
        self._lock = threading.RLock()
        self._scheduler = Scheduler(clock, self._lock, self._emit, queue_polling, concurrency)
        self._instances: dict[str, Instance] = {}
        self._observers: list[Observer] = []
        self._store = store
        if store is not None:
            with self._lock:
                for instance in store.load():
                    self._instances[instance.instance_id] = instance
                    self._apply(instance, instance.outstanding())

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
        self.registry.orchestrator(orchestrator_name)
        instance_id = instance_id or uuid.uuid4().hex
        _check_instance_id(instance_id)
        h.host_json(input)  # refuse what the host could not store
        with self._lock:
            existing = self._instances.get(instance_id)
            if existing is not None and existing.active and not self._replace_running:
                raise InstanceAlreadyExists(f"An Orchestration instance with the status {existing.status} already exists.")
            now = self._clock.now()
            instance = self._instances[instance_id] = Instance.create(instance_id, orchestrator_name, input, now)
            self._save(instance)
            self._queue_episode(instance)
            records = [instance.record("started", now, name=orchestrator_name, input=input)]
        self._emit(records)
        return instance_id

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> bool:
        """Deliver external event ``name`` with ``data`` (a JSON value); False when the instance is unknown or done.

        Events raised before the orchestrator waits for them are kept in history; the SDK hands
        them to the first matching ``wait_for_external_event``.
        """
        payload = h.host_json(data)

        def deliver(instance: Instance, now: datetime) -> list[Record]:
            instance.inbox.append(h.event_raised(now, name, payload))
            self._queue_episode(instance)
            return [instance.record("event_raised", now, name=name, input=data)]

        return self._change(instance_id, deliver)

    def terminate(self, instance_id: str, reason: str | None = None) -> bool:
        """Terminate an active instance at once (status Terminated, output ``reason``); False otherwise.

        Pending events, timers and activity results of the instance are dropped.
        """
        def terminate(instance: Instance, now: datetime) -> list[Record]:
            instance.terminate(now, reason)
            return [instance.record("terminated", now, reason=reason)]

        return self._change(instance_id, terminate)

    def suspend(self, instance_id: str, reason: str | None = None) -> bool:
        """Hold an active instance: events keep arriving but no episode runs until ``resume``."""
        def suspend(instance: Instance, now: datetime) -> list[Record]:
            if instance.status != SUSPENDED:
                instance.suspended_from, instance.status, instance.last_updated_at = instance.status, SUSPENDED, now
            return [instance.record("suspended", now, reason=reason)]

        return self._change(instance_id, suspend)

    def resume(self, instance_id: str, reason: str | None = None) -> bool:
        """Let a suspended instance run again; True for any active instance, False otherwise."""
        def resume(instance: Instance, now: datetime) -> list[Record]:
            if instance.status == SUSPENDED:
                instance.status, instance.last_updated_at = instance.suspended_from or RUNNING, now
                self._queue_episode(instance)
            return [instance.record("resumed", now, reason=reason)]

        return self._change(instance_id, resume)

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
            if self._store is not None:
                self._store.delete(instance_id)
            return self._instances.pop(instance_id, None) is not None

    def purge_by(self, created_from: datetime, created_to: datetime | None = None,
                 runtime_status: Iterable[str] | None = None) -> int:
        """Forget every instance created in [``created_from``, ``created_to``] with one of the statuses; the count."""
        with self._lock:
            doomed = matching(self._instances.values(), created_from, created_to, runtime_status, None)
            for instance in doomed:
                del self._instances[instance.instance_id]
                if self._store is not None:
                    self._store.delete(instance.instance_id)
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
            return None if instance is None else status_json(instance, show_history, show_input, show_history_output)

    def list_instances(self, created_from: datetime | None = None, created_to: datetime | None = None,
                       runtime_status: Iterable[str] | None = None, instance_id_prefix: str | None = None,
                       show_input: bool = True) -> list[Record]:
        """Statuses (as ``get_status``) of the instances matching every filter given, oldest first."""
        with self._lock:
            found = matching(self._instances.values(), created_from, created_to, runtime_status, instance_id_prefix)
            return [status_json(i, False, show_input, False) for i in found]

    def query_instances(self, created_from: datetime | None = None, created_to: datetime | None = None,
                        runtime_status: Iterable[str] | None = None, instance_id_prefix: str | None = None,
                        show_input: bool = True, page_size: int = DEFAULT_PAGE_SIZE,
                        continuation_token: str | None = None) -> tuple[list[Record], str | None]:
        """One page of ``list_instances``: at most ``page_size`` statuses after ``continuation_token``, and
        the token of the next page (None after the last), as the host's instance query pages them."""
        with self._lock:
            found = matching(self._instances.values(), created_from, created_to, runtime_status, instance_id_prefix)
            page, token = page_of(found, page_size, continuation_token)
            return [status_json(i, False, show_input, False) for i in page], token

    def history(self, instance_id: str) -> list[Record]:
        """The history JSON the orchestrator was last fed (a copy); ``KeyError`` for an unknown instance."""
        with self._lock:
            return copy.deepcopy(self._instances[instance_id].fed_history())

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
            self._scheduler.callback_at(as_utc(when), callback)

    # --- driving (see emulator.scheduler) ---------------------------------------------------------

    def run_until_idle(self) -> int:
        """Run everything ready at the current clock time, without moving the clock; the number of items run
        on this thread (with concurrency only callbacks run here; it also waits until the pool is idle)."""
        return self._scheduler.run_until_idle()

    def run(self, until: Callable[[], bool] | None = None, max_virtual_seconds: float | None = None) -> bool:
        """Run work, moving the clock to each next due time, until ``until()`` is true or nothing is left
        (``Scheduler.run``: a virtual clock jumps, a real one is waited for)."""
        return self._scheduler.run(until, max_virtual_seconds)

    def start_background(self) -> None:
        """Drive the hub on a daemon worker thread until ``stop()`` (``Scheduler.start_background``)."""
        self._scheduler.start_background()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background worker (after the item it runs itself) and wait up to ``timeout`` seconds.

        With concurrency, activities and episodes still running on the pool are not waited for:
        they keep nothing of what they did and are queued again (``Scheduler.stop``).
        """
        self._scheduler.stop(timeout)


def _check_instance_id(instance_id: str) -> None:
    """Refuse ids the host refuses: leading ``@``, ``/ \\ ? #`` or control characters, over 256 characters."""
    if instance_id.startswith("@"):
        raise ValueError("Orchestration instance ids must not start with @.")
    if any(c in "/\\?#" or ord(c) < 32 or 127 <= ord(c) < 160 for c in instance_id):
        raise ValueError("Orchestration instance ids must not contain /, \\, #, ?, or control characters.")
    if len(instance_id) > 256:
        raise ValueError("Instance ID lengths must not exceed 256 characters.")
