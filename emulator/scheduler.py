"""The task hub's driver: a queue of ready work items and a clock-ordered list of due ones.

A work item is a plain callable run outside the shared lock, one at a time. A due item has a time,
a ``release`` called *under* the lock when the clock reaches it (it may queue work and returns
records for the observers) and an ``alive`` predicate: items no longer alive are dropped when
looking for the next due time, so a virtual clock never jumps to a time where nothing happens
(the host would deliver and discard such messages).

Work runs on the thread that calls ``run_until_idle`` / ``run``, or on the daemon worker of
``start_background``. A ``VirtualClock`` is moved to the next due time instead of being waited
for; any other clock is slept on (woken early by new work).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from heapq import heappop, heappush
from typing import Any

from emulator.clock import Clock, VirtualClock
from emulator.queue_polling import QueuePoller, QueuePolling

logger = logging.getLogger(__name__)

Record = dict[str, Any]
Work = Callable[[], Any]


def _always() -> bool:
    return True


@dataclass(order=True)
class _Due:
    at: datetime
    sequence: int
    release: Callable[[], list[Record]] = field(compare=False)
    alive: Callable[[], bool] = field(compare=False, default=_always)


class Scheduler:
    """Ready and due work for one task hub, guarded by the hub's ``lock``; ``emit`` publishes records."""

    def __init__(self, clock: Clock, lock: threading.RLock, emit: Callable[[list[Record]], None],
                 queue_polling: QueuePolling | None = None) -> None:
        self.clock = clock
        self._polling = queue_polling
        self._pollers: dict[str, QueuePoller] = {}
        self._lock = lock
        self._wakeup = threading.Condition(lock)
        self._emit = emit
        self._drive_lock = threading.RLock()
        self._ready: deque[Work] = deque()
        self._due: list[_Due] = []
        self._sequence = 0
        self._worker: threading.Thread | None = None
        self._stopping = False

    # --- queueing (callers hold the lock) -----------------------------------------------------------

    def push(self, work: Work, queue: str | None = None) -> None:
        """Queue ``work`` to run after what is ready already.

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
                    self.push(work)
                    return []
                self.at(pickup, release)
                return
        self._ready.append(work)
        self._wakeup.notify_all()

    def push_front(self, work: Work) -> None:
        """Queue ``work`` to run before what is ready already."""
        self._ready.appendleft(work)
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

    # --- driving ------------------------------------------------------------------------------------

    def step(self) -> bool:
        """Run one ready work item (releasing due items first); False when none is ready."""
        with self._drive_lock:
            with self._lock:
                records = self._release_due(self.clock.now())
                work = self._ready.popleft() if self._ready else None
            self._emit(records)
            if work is None:
                return False
            work()
            return True

    def run_until_idle(self) -> int:
        """Run everything ready at the current clock time, without moving the clock; the number of items run."""
        count = 0
        while self.step():
            count += 1
        return count

    def run(self, until: Callable[[], bool] | None = None, max_virtual_seconds: float | None = None) -> bool:
        """Run work, moving the clock to each next due time, until ``until()`` is true or nothing is left.

        Returns True when ``until()`` became true (or, without ``until``, once nothing is left);
        False when nothing is left while ``until()`` is still false, or when the next due time lies
        beyond ``max_virtual_seconds`` (default: no limit) from the start - the clock is then left
        where it was.
        """
        deadline = None if max_virtual_seconds is None else self.clock.now() + timedelta(seconds=max_virtual_seconds)
        while True:
            if until is not None and until():
                return True
            if self.step():
                continue
            with self._lock:
                due = self._next_due()
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

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background worker (after the item it is running) and wait up to ``timeout`` seconds."""
        with self._lock:
            worker, self._worker = self._worker, None
            self._stopping = True
            self._wakeup.notify_all()
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)

    # --- internals ------------------------------------------------------------------------------------

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
                if self._ready:
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

    def _wait_until(self, due: datetime) -> None:
        """Move a virtual clock to ``due``; on a real clock, sleep until then or until new work arrives."""
        if isinstance(self.clock, VirtualClock):
            self.clock.advance_to(due)
            return
        with self._wakeup:
            remaining = (due - self.clock.now()).total_seconds()
            if remaining > 0 and not self._ready:
                self._wakeup.wait(remaining)

    def _release_due(self, now: datetime) -> list[Record]:
        records: list[Record] = []
        while self._due and self._due[0].at <= now:
            records += heappop(self._due).release()
        return records
