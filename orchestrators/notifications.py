"""Notifications: queue events, send them raced against the control events, and tell the outcome.

Each event is one ``send_notifications`` activity call (``activities.notify``); an event no
target wants calls nothing. During the rollout a send never stands in a rollback's way: it is
given up the moment an ending action arrives. Results, delivered or not, are recorded in the
status, never raised.
"""

from __future__ import annotations

from typing import Any, Mapping

from orchestrators.run_state import Gen, RunState
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
        """Send the queued notifications, one ``send_notifications`` activity each, in order.

        Each send is raced against the control events and given up the moment an ending action
        (rollback, abort, promote) is received: the caller acts on it at once, never after the send.
        A send given up on (its activity may still run) and those not started are recorded as not
        waited for. Nothing is raised: a failed delivery is only recorded.
        """
        while self.notices and self.intent is None:
            payload = self.notices.pop(0)
            task = self.context.call_activity("send_notifications", payload)
            if (yield from self.wait(task, stop=lambda: self.intent is not None, abandonable=True)):
                self.note_sent(payload, task.result)
            else:
                self.note_unsent(payload, "not waited for: a rollback, abort or promote came first")
        for payload in self.notices:
            self.note_unsent(payload, "not sent: a rollback, abort or promote came first")
        self.notices = []

    def notify_outcome(self, output: Mapping[str, Any]) -> Gen:
        """After the outcome's traffic is in place: send the notifications still due and the outcome's
        (waiting for each to end: nothing is left to protect), then return the final record with them."""
        if output.get("outcome") is None:
            return output
        self.due(str(output["outcome"]))
        if not self.notices:
            return output
        for payload in self.notices:
            task = self.context.call_activity("send_notifications", payload)
            yield from self.wait(task)
            self.note_sent(payload, task.result)
        self.notices = []
        self.context.set_custom_status(self.record.to_dict())
        return {**output, "notifications": list(self.record.notifications)}

    def note_sent(self, payload: Mapping[str, Any], result: Any) -> None:
        """Record a send's result (an activity that raised is recorded as not delivered) and publish."""
        if not isinstance(result, Mapping):   # TaskFailed: send_notifications never raises, but a host can fail it
            self.note_unsent(payload, f"send_notifications failed: {str(result).strip().splitlines()[:1]}")
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
