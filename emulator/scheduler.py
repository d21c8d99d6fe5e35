"""The task hub's driver: a queue of ready work items and a clock-ordered list of due ones.

A work item is a plain callable run outside the shared lock, of a kind: ``ACTIVITY`` (an activity
message), ``ORCHESTRATOR`` (an orchestrator episode) or none (a scheduled callback). A due item
has a time, a ``release`` called *under* the lock when the clock reaches it (it may queue work and
returns records for the observers) and an ``alive`` predicate: items no longer alive are dropped
when looking for the next due time, so a virtual clock never jumps to a time where nothing happens
(the host would deliver and discard such messages).

Work is driven by the thread that calls ``run_until_idle`` / ``run``, or by the daemon worker of
``start_background``. A ``VirtualClock`` is moved to the next due time instead of being waited
for; any other clock is slept on (woken early by new work).

Without ``concurrency`` (the default, and the only choice on a ``VirtualClock``) the driving thread
runs every item itself, one at a time, in the order they were queued: a simulation is then
reproducible from its seed. With a ``Concurrency`` (the real-clock ``serve``) activity and
orchestrator items are taken, as the Durable extension dispatches work items, by a pool of worker
threads as large as the Python worker's thread pool (``Concurrency.threads``), at most
``Concurrency.activities`` activities and ``Concurrency.orchestrators`` episodes at once (host.json
``maxConcurrentActivityFunctions`` / ``maxConcurrentOrchestratorFunctions``); an item whose kind has
no free slot waits in the queue while items of the other kind go ahead. Callbacks still run on the
driving thread. The workers are daemon threads (one that hangs never holds up the process's exit),
started when work is first driven and ended by ``stop``, which does not wait for them: an item
still running is *abandoned* (``abandoned()`` tells it, on its own thread, so that it keeps
nothing of what it did and queues its message again, as the host redelivers a message whose work
item never completed).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from heapq import heappop, heappush
from pathlib import Path
from typing import Any

from emulator.clock import Clock, VirtualClock
from emulator.queue_polling import QueuePoller, QueuePolling

logger = logging.getLogger(__name__)

Record = dict[str, Any]
Work = Callable[[], Any]


ACTIVITY = "activity"
ORCHESTRATOR = "orchestrator"
DEFAULT_MAX_CONCURRENT = 10
"""``maxConcurrentActivityFunctions`` / ``maxConcurrentOrchestratorFunctions`` when host.json sets
none: the Durable Functions performance docs give 10 on the Consumption plan and 10 times the
processor count on Premium and Dedicated plans; the smaller one is used so that the emulator never
runs more at once than Azure could."""


@dataclass(frozen=True)
class Concurrency:
    """How many work items of each kind the host runs at once on one instance.

    ``activities`` and ``orchestrators``: host.json's ``extensions.durableTask``
    ``maxConcurrentActivityFunctions`` and ``maxConcurrentOrchestratorFunctions`` (default
    ``DEFAULT_MAX_CONCURRENT``). ``worker_threads``: the size of the Python worker's thread pool
    for synchronous functions (the app setting ``PYTHON_THREADPOOL_THREAD_COUNT``); None, as when
    the setting is unset, is what the worker then uses, ``ThreadPoolExecutor``'s default
    (``min(32, os.cpu_count() + 4)``). Activities and episodes share that pool, as they do in the
    worker.
    """

    activities: int = DEFAULT_MAX_CONCURRENT
    orchestrators: int = DEFAULT_MAX_CONCURRENT
    worker_threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("activities", "orchestrators", "worker_threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, not {value}")

    def limit(self, kind: str) -> int:
        return self.activities if kind == ACTIVITY else self.orchestrators

    @property
    def threads(self) -> int:
        """How many items run at once at most: ``worker_threads``, or ``ThreadPoolExecutor``'s default."""
        return self.worker_threads or min(32, (os.cpu_count() or 1) + 4)

    @classmethod
    def from_host_json(cls, path: Path, worker_threads: int | None = None) -> Concurrency:
        """The limits ``host.json`` at ``path`` sets (defaults for those it leaves out)."""
        durable = json.loads(path.read_text()).get("extensions", {}).get("durableTask", {})
        return cls(int(durable.get("maxConcurrentActivityFunctions", DEFAULT_MAX_CONCURRENT)),
                   int(durable.get("maxConcurrentOrchestratorFunctions", DEFAULT_MAX_CONCURRENT)), worker_threads)


def _always() -> bool:
    return True


@dataclass(frozen=True)
class _Ready:
    work: Work
    kind: str | None


@dataclass(order=True)
class _Due:
    at: datetime
    sequence: int
    release: Callable[[], list[Record]] = field(compare=False)
    alive: Callable[[], bool] = field(compare=False, default=_always)


class Scheduler:
    """Ready and due work for one task hub, guarded by the hub's ``lock``; ``emit`` publishes records.

    ``concurrency`` None runs work items one at a time on the driving thread; a ``Concurrency``
    has worker threads take activities and episodes (module docstring; refused on a
    ``VirtualClock``, whose simulations must be reproducible).
    """

    def __init__(self, clock: Clock, lock: threading.RLock, emit: Callable[[list[Record]], None],
                 queue_polling: QueuePolling | None = None, concurrency: Concurrency | None = None) -> None:
        if concurrency is not None and isinstance(clock, VirtualClock):
            raise ValueError("a virtual clock runs work items one at a time (reproducible simulations): "
                             "concurrency needs a real clock")
        self.clock = clock
        self._polling = queue_polling
        self._pollers: dict[str, QueuePoller] = {}
        self._lock = lock
        self._wakeup = threading.Condition(lock)
        self._emit = emit
        self._drive_lock = threading.RLock()
        self._ready: deque[_Ready] = deque()
        self._due: list[_Due] = []
        self._sequence = 0
        self._worker: threading.Thread | None = None
        self._stopping = False
        self._concurrency = concurrency
        self._running = {ACTIVITY: 0, ORCHESTRATOR: 0}
        self._pool: list[threading.Thread] = []
        self._generation = 0           # bumped by ``stop``: the pool's threads end, their items are abandoned
        self._dispatched = threading.local()

    # --- queueing (callers hold the lock) -----------------------------------------------------------

    def push(self, work: Work, queue: str | None = None, kind: str | None = None) -> None:
        """Queue ``work`` (of ``kind``: ``ACTIVITY``, ``ORCHESTRATOR`` or None) after what is ready already.

        With a queue polling model, work sent through ``queue`` is ready only once that queue's
        poller picks it up (``emulator.queue_polling``).
        """
        if queue is not None and self._polling is not None:
            now = self.clock.now()
            poller = self._pollers.get(queue)
            if poller is None:
                poller = self._pollers[queue] = self._polling.poller(now)
            pickup = poller.pickup_time(now)
            if pickup > now:
                def release() -> list[Record]:
                    self.push(work, kind=kind)
                    return []
                self.at(pickup, release)
                return
        self._ready.append(_Ready(work, kind))
        self._wakeup.notify_all()

    def at(self, due: datetime, release: Callable[[], list[Record]], alive: Callable[[], bool] = _always) -> None:
        """Call ``release()`` under the lock once the clock reaches ``due`` (if ``alive()`` still holds)."""
        self._sequence += 1
        heappush(self._due, _Due(due, self._sequence, release, alive))
        self._wakeup.notify_all()

    def callback_at(self, due: datetime, callback: Work) -> None:
        """Run ``callback()`` as a work item once the clock reaches ``due``."""
        def release() -> list[Record]:
            self.push(callback)
            return []
        self.at(due, release)

    def abandoned(self) -> bool:
        """Called by a work item on its own thread: whether ``stop`` was called since a pool thread took
        it (it must then keep nothing it did). Always False for items run on the driving thread."""
        generation = getattr(self._dispatched, "generation", None)
        return generation is not None and generation != self._generation

    # --- driving ------------------------------------------------------------------------------------

    def step(self) -> bool:
        """Run one ready work item on this thread (releasing due items first); False when there is none.

        With concurrency only callbacks run here; the pool's threads take activities and episodes.
        """
        with self._drive_lock:
            with self._lock:
                records = self._release_due(self.clock.now())
                item = self._take(mine=True)
            self._emit(records)
            if item is None:
                return False
            item.work()
            return True

    def run_until_idle(self) -> int:
        """Run everything ready at the current clock time, without moving the clock; the number of items run
        here (with concurrency, also waits until the pool's threads have nothing left)."""
        self._start_pool()
        count = 0
        while True:
            while self.step():
                count += 1
            with self._wakeup:
                if not self._busy():
                    return count
                if self._take(mine=True, peek=True) is None:
                    self._wakeup.wait()

    def run(self, until: Callable[[], bool] | None = None, max_virtual_seconds: float | None = None) -> bool:
        """Run work, moving the clock to each next due time, until ``until()`` is true or nothing is left.

        Returns True when ``until()`` became true (or, without ``until``, once nothing is left);
        False when nothing is left while ``until()`` is still false, or when the next due time lies
        beyond ``max_virtual_seconds`` (default: no limit) from the start - the clock is then left
        where it was. Work the pool's threads have or will take counts as something left.
        """
        self._start_pool()
        deadline = None if max_virtual_seconds is None else self.clock.now() + timedelta(seconds=max_virtual_seconds)
        while True:
            if until is not None and until():
                return True
            if self.step():
                continue
            with self._lock:
                due, busy = self._next_due(), self._busy()
            if not busy:
                if due is None:
                    return until is None
                if deadline is not None and due > deadline:
                    return False
            self._wait_until(due)

    def start_background(self) -> None:
        """Drive on a daemon worker thread until ``stop()``: it sleeps until the next due time or new work."""
        with self._lock:
            if self._worker is not None:
                return
            self._stopping = False
            self._worker = threading.Thread(target=self._background_loop, name="taskhub-worker", daemon=True)
            self._worker.start()
            self._start_pool()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background worker (after the item it runs itself) and wait up to ``timeout`` seconds
        for it; the pool's threads end without being waited for, abandoning what they still run."""
        with self._lock:
            worker, self._worker = self._worker, None
            self._stopping = True
            self._generation += 1
            self._pool = []
            self._wakeup.notify_all()
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)

    # --- internals ------------------------------------------------------------------------------------

    def _take(self, mine: bool, peek: bool = False) -> _Ready | None:
        """The first ready item the calling thread may run now (removed unless ``peek``); the lock is held.

        ``mine``: the driving thread's - any item without concurrency, only callbacks with it.
        Otherwise a pool thread's: the first activity or episode whose kind has a free slot.
        """
        for index, item in enumerate(self._ready):
            if self._concurrency is None or item.kind is None:
                runnable = mine
            else:
                runnable = not mine and self._running[item.kind] < self._concurrency.limit(item.kind)
            if runnable:
                if not peek:
                    del self._ready[index]
                return item
        return None

    def _busy(self) -> bool:
        """Whether the pool's threads run or have yet to take something; the lock is held."""
        if self._concurrency is None:
            return False
        return any(self._running.values()) or any(item.kind is not None for item in self._ready)

    def _start_pool(self) -> None:
        """Start the pool's threads, when there is concurrency and they are not running (``start_background``,
        ``run`` and ``run_until_idle`` call it; ``stop`` ends them)."""
        with self._lock:
            if self._concurrency is None or self._pool:
                return
            self._pool = [threading.Thread(target=self._pool_loop, args=(self._generation,), daemon=True,
                                           name=f"functions-worker-{n}") for n in range(self._concurrency.threads)]
            for thread in self._pool:
                thread.start()

    def _pool_loop(self, generation: int) -> None:
        """One of the pool's threads: take an activity or episode with a free slot, run it, free the slot."""
        while True:
            with self._wakeup:
                while (item := None if self._generation != generation else self._take(mine=False)) is None:
                    if self._generation != generation:
                        return
                    self._wakeup.wait()
                assert item.kind is not None
                self._running[item.kind] += 1
            self._dispatched.generation = generation
            try:
                item.work()
            except Exception:
                logger.exception("task hub work item failed")
            finally:
                self._dispatched.generation = None
                with self._lock:
                    self._running[item.kind] -= 1
                    self._wakeup.notify_all()

    def _background_loop(self) -> None:
        while True:
            try:
                if self.step():
                    continue
            except Exception:
                logger.exception("task hub work item failed")
                continue
            with self._wakeup:
                if self._stopping:
                    return
                if self._take(mine=True, peek=True) is not None:
                    continue
                due = self._next_due()
                now = self.clock.now()
                if due is not None and due <= now:
                    continue
                if due is not None and isinstance(self.clock, VirtualClock):
                    self.clock.advance_to(due)
                    continue
                self._wakeup.wait(None if due is None else (due - now).total_seconds())

    def _next_due(self) -> datetime | None:
        """The earliest due time of a live item (dropping dead ones); the lock is held."""
        while self._due:
            if self._due[0].alive():
                return self._due[0].at
            heappop(self._due)
        return None

    def _wait_until(self, due: datetime | None) -> None:
        """Move a virtual clock to ``due``; on a real clock, sleep until then (None: no limit) or until
        new work arrives or a pool thread finishes an item."""
        if isinstance(self.clock, VirtualClock):
            assert due is not None
            self.clock.advance_to(due)
            return
        with self._wakeup:
            if self._take(mine=True, peek=True) is not None:
                return
            if due is None:
                if self._busy():
                    self._wakeup.wait()
                return
            remaining = (due - self.clock.now()).total_seconds()
            if remaining > 0:
                self._wakeup.wait(remaining)

    def _release_due(self, now: datetime) -> list[Record]:
        records: list[Record] = []
        while self._due and self._due[0].at <= now:
            records += heappop(self._due).release()
        return records
