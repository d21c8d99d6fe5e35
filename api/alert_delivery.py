"""Hand an Azure Monitor alert to the rollout it concerns: the webhook's core, also used by ``simulate``.

Parse (``rollout.alerts.parse_alert``), locate the managed endpoint, look up its running
rollout, decide, and raise the event: ``rollback`` when a fired alert concerns the new
deployment, ``alert`` (recorded on the rollout) otherwise. Ignored alerts change nothing.

- **Notes are coalesced** (``NoteCoalescer``, ``rollout.notes``): record-only notes for a rollout
  are gathered for ``NOTE_GATHER_SECONDS`` and raised as one ``alert`` event, one at a time. A
  rollback is never queued behind notes: it is raised at once.
- **An endpoint whose last rollout ended unsafe** (``rollout.safety.ended_unsafe``: not promoted,
  the new deployment still holding traffic) is not forgotten: a fired alert about its new
  deployment starts a rollback-only run of the orchestrator on the same instance id, which
  retries until traffic is back on the old deployment, or at 0% after a first rollout (or a
  person sends ``resolve``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from api.rollouts import find_rollout, find_running_rollout, is_running, raw_request_of
from rollout.alerts import AlertDecision, AlertTarget, ManagedScope, RunningRollout, decide, locate, parse_alert, strongest
from rollout.model import WorkspaceRef
from rollout.notes import coalesce
from rollout.safety import ended_unsafe, versioned_input

log = logging.getLogger("aml_rollout.alerts")
ORCHESTRATOR = "rollout_orchestrator"
NOTE_GATHER_SECONDS = 0.5     # how long record-only notes for one rollout are gathered into one event


@dataclass(frozen=True)
class AlertOutcome:
    """What was done with an alert, for the webhook's response body and the logs."""

    decision: AlertDecision
    alert: dict[str, Any]
    endpoint: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.decision.action, "reason": self.decision.reason,
                "instance_id": self.decision.instance_id, "endpoint": self.endpoint, "alert": self.alert}


@dataclass
class _Batch:
    notes: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class NoteCoalescer:
    """At most one ``alert`` event in flight per rollout; notes go together, ``gather_seconds`` at a time.

    The first note for a rollout starts a flush that waits ``gather_seconds`` (default
    ``NOTE_GATHER_SECONDS``, 0.5 s) for more, raises one event for all of them, and goes on while
    notes keep coming. ``deliver`` returns once the event carrying the note was raised, or raises
    what raising it raised (every note of that event sees the same error), so a 202 still means
    handed over. One per event loop (the worker runs every invocation on one).
    """

    def __init__(self, gather_seconds: float | None = None) -> None:
        self.gather_seconds = NOTE_GATHER_SECONDS if gather_seconds is None else gather_seconds
        self._queued: dict[str, _Batch] = {}
        self._flushing: set[str] = set()

    async def deliver(self, client: Any, instance_id: str, alert: dict[str, Any], reason: str) -> None:
        batch = self._queued.setdefault(instance_id, _Batch())
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        batch.notes.append((alert, reason))
        batch.waiters.append(done)
        if instance_id not in self._flushing:
            self._flushing.add(instance_id)
            asyncio.get_running_loop().create_task(self._flush(client, instance_id))
        await done

    async def _flush(self, client: Any, instance_id: str) -> None:
        try:
            while self._queued.get(instance_id):
                if self.gather_seconds > 0:
                    await asyncio.sleep(self.gather_seconds)
                batch = self._queued.pop(instance_id)
                try:
                    await client.raise_event(instance_id, "alert", coalesce(batch.notes))
                except Exception as exc:   # every note of the batch answers with it (503, or the 410 fallback)
                    for waiter in batch.waiters:
                        if not waiter.done():
                            waiter.set_exception(exc)
                else:
                    for waiter in batch.waiters:
                        if not waiter.done():
                            waiter.set_result(None)
        finally:
            self._flushing.discard(instance_id)


_coalescers: dict[int, NoteCoalescer] = {}


def _coalescer() -> NoteCoalescer:
    loop = asyncio.get_running_loop()
    return _coalescers.setdefault(id(loop), NoteCoalescer())


async def deliver_alert(payload: Any, client: Any, scope: ManagedScope,
                        default_workspace: WorkspaceRef | None = None) -> AlertOutcome:
    """Route one alert payload to every managed endpoint it names; raises ``InvalidAlert`` when it
    is not a well-formed common-schema payload. The outcome is the decision that mattered most.

    When raising the event fails and the rollout is no longer running (it ended between the
    lookup and the event: the task hub answers 410), nothing is left to do. Any other error from
    the Durable client (the task hub unreachable, say) propagates: the caller answers so that
    Azure Monitor sends the alert again.
    """
    alert = parse_alert(payload)
    outcome: AlertOutcome | None = None
    for target in locate(alert, scope):     # every endpoint the alert names, each with its own rollout
        decision = await _deliver_to(client, alert, target, default_workspace)
        log.info("alert %s (%s) for %s: %s: %s", alert.rule, alert.monitor_condition, target.endpoint,
                 decision.action, decision.reason)
        if outcome is None or strongest([outcome.decision, decision]) is not outcome.decision:
            outcome = AlertOutcome(decision, alert.summary(), target.endpoint)
    if outcome is None:
        decision = decide(alert, None, None, default_workspace)
        log.info("alert %s (%s): %s: %s", alert.rule, alert.monitor_condition, decision.action, decision.reason)
        outcome = AlertOutcome(decision, alert.summary(), None)
    return outcome


async def _deliver_to(client: Any, alert: Any, target: AlertTarget,
                      default_workspace: WorkspaceRef | None) -> AlertDecision:
    """Decide for one endpoint and hand the alert over: a rollback at once, a note through the coalescer,
    or a rollback-only run when the endpoint's last rollout ended unsafe."""
    rollout = await find_running_rollout(client, target.endpoint)
    decision = decide(alert, target, rollout, default_workspace)
    if rollout is None:
        return await _after_unsafe_end(client, alert, target, default_workspace) or decision
    if decision.action == "ignore" or not decision.instance_id:
        return decision
    try:
        if decision.action == "rollback":
            await client.raise_event(decision.instance_id, "rollback", {"reason": decision.reason,
                                                                        "alert": alert.summary()})
        else:
            await _coalescer().deliver(client, decision.instance_id, alert.summary(), decision.reason)
    except Exception:
        if await find_running_rollout(client, target.endpoint) is not None:
            raise
        return AlertDecision("ignore", "the endpoint's rollout ended while the alert was being delivered")
    return decision


async def _after_unsafe_end(client: Any, alert: Any, target: AlertTarget,
                            default_workspace: WorkspaceRef | None) -> AlertDecision | None:
    """A rollback-only run when the endpoint's last rollout ended unsafe and the alert calls for a
    rollback; None to keep the ordinary decision (nothing running, nothing to do)."""
    status = await find_rollout(client, target.endpoint)
    record = _record_of(status)
    request = raw_request_of(status) if status is not None else None
    if status is None or is_running(status) or request is None or not ended_unsafe(record):
        return None
    assert record is not None
    ended = RunningRollout(status.instance_id, str(record["plan"]["new"]),
                           WorkspaceRef.from_dict(request["workspace"]) if request.get("workspace") else None)
    decision = decide(alert, target, ended, default_workspace)
    if decision.action != "rollback":
        return None
    traffic = record.get("final_traffic") or record.get("traffic")
    reason = (f"{decision.reason}; the last rollout ended {record.get('outcome') or 'failed'} with "
              f"{record['plan']['new']} still holding traffic ({traffic})")
    try:
        await client.start_new(ORCHESTRATOR, status.instance_id,
                               versioned_input(request, {"plan": record["plan"], "reason": reason}))
    except Exception:
        if await find_running_rollout(client, target.endpoint) is None:
            raise
        return AlertDecision("rollback", f"{reason}; a rollback is already running", status.instance_id)
    return AlertDecision("rollback", f"{reason}; started a rollback", status.instance_id)


def _record_of(status: Any) -> dict[str, Any] | None:
    """The rollout's record: its output, or for an orchestration that failed outside the record, its
    last custom status."""
    if status is None:
        return None
    for candidate in (status.output, status.custom_status):
        if isinstance(candidate, dict) and candidate:
            return candidate
    return None
