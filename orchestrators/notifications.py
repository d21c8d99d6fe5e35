"""Notifications: queue events, send them raced against the control events, and tell the outcome.

Each event is one ``send_notifications`` activity call (``activities.notify``); an event no
target wants calls nothing. During the rollout a send never stands in a rollback's way: it is
given up the moment an ending action arrives. Results, delivered or not, are recorded in the
status, never raised.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from orchestrators.run_state import Gen, RunState, failure_text
from rollout.notify import notification_payload, redact_url


class Notifications(RunState):
    """The notifications due and sent."""

    def due(self, kind: str) -> None:
        """Queue event ``kind``'s notification (as the record says now) for the next ``send_notices``."""
        payload = notification_payload(kind, self.record.to_dict(), self.request.notify, self.now.isoformat())
        if payload is not None:
            self.notices.append(payload)

    def notify(self, kind: str) -> Gen:
        """Send event ``kind`` now (with any queued before it), unless an ending action is waiting."""
        self.due(kind)
        yield from self.send_notices()

    def send_notices(self) -> Gen:
        """Send the queued notifications in order, each to all its targets at once (``send_event``).

        Each send is raced against the control events and given up the moment an ending action
        (rollback, abort, promote) is received: the caller acts on it at once, never after the send.
        A send given up on (its activity may still run) and those not started are recorded as not
        waited for. Nothing is raised: a failed delivery is only recorded.
        """
        while self.notices and self.intent is None:
            payload = self.notices.pop(0)
            yield from self.send_event(payload, stop=lambda: self.intent is not None)
        for payload in self.notices:
            self.note_unsent(payload, "not sent: a rollback, abort or promote came first")
        self.notices = []

    def send_event(self, payload: Mapping[str, Any], stop: Callable[[], bool] | None = None) -> Gen:
        """Send one event to each of its targets at once and record each result.

        One ``send_notifications`` activity call per target, all scheduled in the same episode (a
        ``task_all`` for more than one): the host runs them side by side, so the wait is one send's
        budget (``activities.notify.SendPolicy``, 15 s), not that budget times the targets. ``stop``:
        give the wait up the moment it is true (the sends not ended are recorded as not waited for;
        their activities may still run).
        """
        each = [{**payload, "targets": [target]} for target in payload["targets"]]
        tasks = [self.context.call_activity("send_notifications", one) for one in each]
        waiting = tasks[0] if len(tasks) == 1 else self.context.task_all(tasks)
        ended = yield from self.wait(waiting, stop=stop, abandonable=stop is not None)
        for one, task in zip(each, tasks, strict=True):
            if ended and not task.is_completed:    # a task_all ends at its first failure; the others still run
                ended = yield from self.wait(task, stop=stop, abandonable=stop is not None)
            if task.is_completed:
                self.note_sent(one, task.result)
            else:
                self.note_unsent(one, "not waited for: a rollback, abort or promote came first")

    def notify_outcome(self, output: Mapping[str, Any]) -> Gen:
        """After the outcome's traffic is in place and the final record, outcome included, is the
        custom status (``finish``; the status route, ``start --wait`` and ``watch`` see the outcome
        from then on): send the notifications still due and the outcome's, each event to all its
        targets at once (``send_event``), waiting for them to end (nothing is left to protect), then
        return the final record with their results. The instance stays ``Running`` until then: one
        send's budget per event still due (usually just the outcome).
        """
        if output.get("outcome") is None:
            return output
        self.publish()                  # finish() did; the outcome shows before any send starts
        self.due(str(output["outcome"]))
        if not self.notices:
            return output
        for payload in self.notices:
            yield from self.send_event(payload)
        self.notices = []
        self.publish()
        return {**output, "notifications": list(self.record.notifications)}

    def note_sent(self, payload: Mapping[str, Any], result: Any) -> None:
        """Record a send's result (an activity that raised is recorded as not delivered) and publish."""
        if not isinstance(result, Mapping):   # TaskFailed: send_notifications never raises, but a host can fail it
            self.note_unsent(payload, f"send_notifications failed: {failure_text(result)}")
            return
        self.record.note_notifications(result)
        self.publish()

    def note_unsent(self, payload: Mapping[str, Any], why: str) -> None:
        event = payload["event"]
        self.record.note_notifications({"sent": [
            {"at": self.now.isoformat(), "event": event["kind"], "target": redact_url(str(t["url"])),
             "format": t["format"], "delivered": None, "attempts": None, "error": why}
            for t in payload["targets"]]})
        self.publish()
