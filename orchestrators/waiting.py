"""Waiting in the orchestrator so that a control event never arrives with no waiter open.

azure-functions-durable 1.7.0 (azure-functions-durable-python#507): an ``EventRaised`` that
finds no open waiter of its name is parked in ``DurableOrchestrationContext.deferred_tasks`` and
replayed into every later waiter of that name, never removed; the orchestrator loops into
``RecursionError`` and the instance ends ``Failed`` with no reason. A waiter is *open* once it
has been yielded (``TaskOrchestrationExecutor.resume_user_code`` registers the yielded task's
children in ``open_tasks``) and until an event completes it.

The design that holds on the real host, not only in the emulator:

* ``EventInbox`` keeps exactly one waiter per control event, created once and replaced only
  after its event has been taken.
* **Every** yield is ``task_any([task, *inbox.waiters()])`` (``wait_for``): activity calls,
  retry timers, window timers. So from the very first yield (pre-flight) every name has an
  open waiter.
* When an event completes its waiter, the ``WhenAny`` it belongs to completes, the executor
  resumes this code before it processes the next history event, and ``wait_for`` takes the
  event and yields again with a fresh waiter of that name. The same event raised twice in a
  row therefore finds the second waiter open, as does any number of events in one batch.

The host runs the actions differently (``OutOfProcOrchestrationShim``, modelled in
``emulator/replay.py``): it carries out the actions one after the other and awaits each
``WhenAny`` over the children the SDK sent *in that action*, which are only those not scheduled
before. Re-waiting on a task already scheduled (after an event was taken) would therefore send a
``WhenAny`` holding nothing but the fresh waiter, and the host would block on that waiter forever.
So every such re-wait also carries a *nudge*: a timer a day ahead, cancelled at once. The host
completes a cancelled timer's task immediately and moves on; the SDK keeps racing it, and if it
ever fires (a wait on one task longer than a day), the next re-wait carries a new one. The host
keeps events that find no waiter of its own for the next one, so its waiters never lose one.

The task waited for is never abandoned unless ``stop`` says so (then the caller cancels a
timer, which lets the host move on); an activity is always waited for to the end, since its
result says what Azure did.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable, Generator

import azure.durable_functions as df

from rollout.control import CONTROL_EVENTS
from rollout.wire import decoded

Gen = Generator[Any, Any, Any]
NUDGE_AHEAD = timedelta(days=1)     # within every storage provider's longest plain timer


class EventInbox:
    """One open waiter per control event, replaced only once its event has been taken."""

    def __init__(self, context: df.DurableOrchestrationContext) -> None:
        self._context = context
        self._waiters: dict[str, Any] = {}

    def waiters(self) -> list[Any]:
        """The waiters to race, creating any whose event was taken."""
        for name in CONTROL_EVENTS:
            if name not in self._waiters:
                self._waiters[name] = self._context.wait_for_external_event(name)
        return [self._waiters[name] for name in CONTROL_EVENTS]

    def take_ready(self) -> list[tuple[str, Any]]:
        """Every event received and not yet taken (in ``CONTROL_EVENTS`` order: the safe ones first)."""
        ready = []
        for name in CONTROL_EVENTS:
            task = self._waiters.get(name)
            if task is not None and task.is_completed:
                del self._waiters[name]
                ready.append((name, decoded(task.result)))
        return ready


def wait_for(context: df.DurableOrchestrationContext, inbox: EventInbox, task: Any,
             receive: Callable[[str, Any], None], stop: Callable[[], bool] | None = None,
             abandonable: bool = False) -> Gen:
    """Yield until ``task`` completes, handing every control event that arrives first to ``receive``.

    Returns True once ``task`` has completed; False as soon as ``stop()`` is true after an event
    (``task`` is then still pending: cancel it if it is a timer).

    ``abandonable``: carry a nudge from the first yield, so the host does not block on ``task`` (a new
    activity) but keeps delivering events while it runs: for a task that ``stop`` may abandon (a
    notification being sent), since the host's ``WhenAny`` of a new task holds only that task
    (the waiters were sent before) and would otherwise keep every later action waiting for it.
    """
    rewait = abandonable or bool(task._is_scheduled)      # already sent to the host in an earlier action
    while True:
        for name, payload in inbox.take_ready():
            receive(name, payload)
        if task.is_completed:
            return True
        if stop is not None and stop():
            return False
        racers = [task, *inbox.waiters()]
        if rewait:
            nudge = context.create_timer(context.current_utc_datetime + NUDGE_AHEAD)
            nudge.cancel()
            racers.append(nudge)
        rewait = True
        yield context.task_any(racers)
