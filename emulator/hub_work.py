"""The task hub's work: applying an instance's effects and running its work items.

``HubWork`` is the half of ``emulator.taskhub.TaskHub`` that the scheduler drives (the other half
is the instance API callers use): it queues what an episode decided (activities, timers, the next
episode), fires timers into the instance's inbox, runs an orchestrator episode through the real
replay engine and commits it, and runs an activity outside the hub's lock and delivers its
``TaskCompleted`` or ``TaskFailed``. Work abandoned by ``stop`` (``Scheduler.abandoned``) commits
nothing and is queued again, as the host redelivers it. Records go to the observers outside the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

from emulator import history as h
from emulator.clock import Clock
from emulator.functions import FunctionRegistry
from emulator.history import Record, invoke_orchestrator, loads_or_text
from emulator.instance import ActivityJob, Change, Effects, Episode, Instance, TimerJob, record
from emulator.queue_polling import WORK_ITEM_QUEUE, control_queue
from emulator.scheduler import ACTIVITY, ORCHESTRATOR, Scheduler
from emulator.store import SqliteStore

Observer = Callable[[Record], None]


class HubWork:
    """Effects and work items of a task hub; ``TaskHub`` sets the attributes below."""

    registry: FunctionRegistry
    _clock: Clock
    _lock: threading.RLock
    _scheduler: Scheduler
    _instances: dict[str, Instance]
    _observers: list[Observer]
    _store: SqliteStore | None

    # --- changes, effects and records -------------------------------------------------------------

    def _change(self, instance_id: str, change: Change) -> bool:
        """Apply ``change`` to the active instance ``instance_id`` under the lock, then emit its records.

        False (and nothing changed) when there is no such instance or it is done.
        """
        with self._lock:
            instance = self._instances.get(instance_id)
            if instance is None or not instance.active:
                return False
            records = change(instance, self._clock.now())
            self._save(instance)
        self._emit(records)
        return True

    def _save(self, instance: Instance) -> None:
        """Store the instance as it is now (under the lock), when the hub has a store."""
        if self._store is not None:
            self._store.save(instance)

    def _live(self, instance_id: str, execution_id: str) -> Instance | None:
        """The instance if ``execution_id`` is still its live execution (messages to others are dropped)."""
        instance = self._instances.get(instance_id)
        return instance if instance is not None and instance.is_execution(execution_id) else None

    def _is_live(self, instance_id: str, execution_id: str) -> bool:
        return self._live(instance_id, execution_id) is not None

    def _apply(self, instance: Instance, effects: Effects) -> list[Record]:
        """Queue the activities and timers of ``effects`` and the instance's next episode; its records."""
        for job in effects.activities:
            self._scheduler.push(partial(self._run_activity, job), WORK_ITEM_QUEUE, ACTIVITY)
        for timer in effects.timers:
            self._scheduler.at(timer.fire_at, partial(self._fire_timer, timer),
                               partial(self._is_live, timer.instance_id, timer.execution_id))
        if instance.active:
            self._queue_episode(instance)
        return effects.records

    def _queue_episode(self, instance: Instance) -> None:
        if instance.wants_episode():
            instance.episode_queued = True
            self._scheduler.push(partial(self._run_episode, instance.instance_id), control_queue(instance.instance_id),
                                 ORCHESTRATOR)

    def _emit(self, records: list[Record]) -> None:
        if not records:
            return
        with self._lock:
            observers = list(self._observers)
        for item in records:
            for observer in observers:
                observer(item)

    # --- work items -------------------------------------------------------------------------------

    def _fire_timer(self, job: TimerJob) -> list[Record]:
        """Called under the lock when the timer is due: ``TimerFired`` into the instance's inbox."""
        instance = self._live(job.instance_id, job.execution_id)
        if instance is None:
            return []  # the host drops messages for instances that are gone or done
        now = self._clock.now()
        instance.inbox.append(h.timer_fired(now, job.timer_id, job.fire_at))
        self._save(instance)
        self._queue_episode(instance)
        return [instance.record("timer_fired", now, event_id=job.timer_id, fire_at=job.fire_at)]

    def _run_episode(self, instance_id: str) -> None:
        """Feed the instance's next messages to its orchestrator and commit what it decided.

        An episode abandoned by ``stop`` (``Scheduler.abandoned``) commits nothing: its messages go
        back to the inbox and the episode is queued again, as the host redelivers them.
        """
        with self._lock:
            if self._scheduler.abandoned():
                self._scheduler.push(partial(self._run_episode, instance_id), kind=ORCHESTRATOR)
                return
            instance = self._instances.get(instance_id)
            episode = None if instance is None else instance.begin_episode(self._clock.now())
        if instance is None or episode is None:
            return
        try:
            state = invoke_orchestrator(self.registry.orchestrator(instance.name), episode.context_json)
        except BaseException:  # interrupted: give the message back so a later episode can deliver it
            self._give_back(instance, episode)
            raise
        with self._lock:
            if self._live(instance_id, episode.execution_id) is not instance:
                return  # terminated, replaced or purged while the orchestrator ran
            if self._scheduler.abandoned():
                self._give_back(instance, episode)
                return
            records = self._apply(instance, instance.commit(episode, state))
            self._save(instance)
        self._emit(records)

    def _give_back(self, instance: Instance, episode: Episode) -> None:
        """Return an episode's messages to its (still live) instance and queue the episode again."""
        with self._lock:
            if self._live(instance.instance_id, episode.execution_id) is instance:
                instance.abandon(episode)
                self._queue_episode(instance)

    def _run_activity(self, job: ActivityJob) -> None:
        """Run the activity outside the lock and deliver ``TaskCompleted`` or ``TaskFailed``.

        An activity abandoned by ``stop`` delivers nothing and is queued again: the host runs an
        activity at least once, again when its work item never completed.
        """
        with self._lock:
            if self._live(job.instance_id, job.execution_id) is None or self._redelivered(job):
                return
        outcome = self.registry.call_activity(job.name, job.input_json)
        with self._lock:
            instance = self._live(job.instance_id, job.execution_id)
            if instance is None or self._redelivered(job):
                return
            now = self._clock.now()
            if outcome.reason is None:
                instance.inbox.append(h.task_completed(now, job.event_id, outcome.result_json))
                item = record(job.instance_id, "activity_completed", now, name=job.name, event_id=job.event_id,
                              result=loads_or_text(outcome.result_json))
            else:
                instance.inbox.append(h.task_failed(now, job.event_id, outcome.reason, outcome.details))
                item = record(job.instance_id, "activity_failed", now, name=job.name, event_id=job.event_id,
                              error=outcome.reason)
            self._save(instance)
            self._queue_episode(instance)
        self._emit([item])

    def _redelivered(self, job: ActivityJob) -> bool:
        """When ``stop`` abandoned this activity run: queue it again (under the lock) and say so."""
        if not self._scheduler.abandoned():
            return False
        self._scheduler.push(partial(self._run_activity, job), kind=ACTIVITY)
        return True
