"""Replaying an instance that another orchestration version started, without replaying its code.

A redeploy changes the code every running instance replays on its next episode. The Durable
Task Framework checks a replay against history by the activities it scheduled (names, in
order) and the timers (by id); a mismatch fails the instance (``NonDeterministicOrchestration``)
with traffic wherever it was. So code that meets an instance of another version
(``rollout.safety.can_replay``) does not run its own walk over that history: it first schedules
again exactly what the history records (every ``TaskScheduled`` by name and every
``TimerCreated`` by fire time, in ``EventId`` order, which the SDK numbers the same way), waits
until every recorded completion has been replayed and cancels the timers that never fired
(``replay_recorded``). Then ``after_redeploy`` rebuilds the plan from the recorded pre-flight and
continues as new, at this version, as a rollback-only run (fresh history: reads traffic and
returns the new deployment's share to the old one, retrying until it is back); with no plan to
rebuild it ends ``failed`` changing nothing. A first rollout (the endpoint's first deployment,
``recorded_first_rollout``: known from its recorded ``creating``) has no old deployment: its
rollback-only run returns traffic to 0% everywhere, as it was before, once the 100% write was
scheduled (in its window or its bake; the deployment is kept); before that (``creating``, where the
endpoint may not exist yet) it ends ``failed`` changing nothing. Control events are raced throughout
(``orchestrators.waiting``), so none lands on no waiter; those the old run's history holds were
handled by the code that ran then and are dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generator

import azure.durable_functions as df
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as T
from dateutil.parser import isoparse

from orchestrators.waiting import EventInbox, wait_for
from rollout.errors import InvalidRequest
from rollout.lifecycle_plan import first_rollout_record_plan, is_first_rollout
from rollout.model import DeploymentState, EndpointState
from rollout.operation import NOT_FOUND
from rollout.plan import Plan, PlanRejected, RolloutRequest, parse_request, resolve_plan
from rollout.record import RolloutRecord
from rollout.safety import ORCHESTRATION_VERSION, versioned_input

Gen = Generator[Any, Any, Any]


@dataclass(frozen=True)
class RecordedTask:
    """An activity or timer the history records: its ``EventId``, name (activities) or fire time
    (timers), and whether the history holds its completion."""

    event_id: int
    name: str | None
    fire_at: datetime | None
    completes: bool


def recorded_tasks(history: list[Any]) -> list[RecordedTask]:
    """Every activity and timer scheduled in ``history`` (SDK ``HistoryEvent`` objects), by ``EventId``."""
    completed = {getattr(e, "TaskScheduledId", None) for e in history
                 if e.event_type in (T.TASK_COMPLETED, T.TASK_FAILED)}
    fired = {getattr(e, "TimerId", None) for e in history if e.event_type == T.TIMER_FIRED}
    tasks = []
    for event in history:
        if event.event_type == T.TASK_SCHEDULED:
            tasks.append(RecordedTask(event.event_id, str(event.Name), None, event.event_id in completed))
        elif event.event_type == T.TIMER_CREATED:
            fire_at = isoparse(str(event.FireAt))
            tasks.append(RecordedTask(event.event_id, None, fire_at, event.event_id in fired))
    return sorted(tasks, key=lambda t: t.event_id)


def replay_recorded(context: df.DurableOrchestrationContext, inbox: EventInbox) -> Gen:
    """Schedule again what the history records and wait for its recorded completions.

    Returns the results of the recorded activities that completed, as ``(name, result)`` in
    ``EventId`` order (a failed activity gives an ``Exception``). Events received meanwhile were
    already handled by the code that ran then and are dropped.
    """
    recorded = recorded_tasks(list(context.histories))
    tasks = [context.call_activity(r.name, None) if r.name is not None else context.create_timer(r.fire_at)
             for r in recorded]
    awaited = [task for task, r in zip(tasks, recorded, strict=True) if r.completes]
    if tasks:
        everything = context.task_any(tasks) if len(tasks) > 1 else tasks[0]
        yield from wait_for(context, inbox, everything, _drop)
        for task in awaited:
            yield from wait_for(context, inbox, task, _drop)
    for task, r in zip(tasks, recorded, strict=True):
        if r.name is None and not task.is_completed:
            task.cancel()
    return [(r.name, _decoded(t.result)) for t, r in zip(tasks, recorded, strict=True) if r.name is not None and t.is_completed]


def _drop(name: str, payload: Any) -> None:
    """An event the earlier code already handled."""


def _decoded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def after_redeploy(context: df.DurableOrchestrationContext, version: int, request: dict[str, Any]) -> Gen:
    """An instance another orchestration version started: replay what its history records
    (``orchestrators.redeploy``), then continue as new with a rollback-only run of this version
    that returns its traffic to the old deployment (a first rollout's: to 0% everywhere); with no
    recorded plan, end changing nothing."""
    inbox = EventInbox(context)
    results = yield from replay_recorded(context, inbox)
    reason = (f"the app was redeployed with orchestration version {ORCHESTRATION_VERSION} while this rollout "
              f"(version {version}) ran; it is not continued")
    record = RolloutRecord(request, context.instance_id, context.current_utc_datetime)
    try:
        parsed = parse_request(request)
    except InvalidRequest as exc:
        return _end(context, record, f"{reason}; its request is no longer valid ({exc}); traffic not changed")
    first = recorded_first_rollout(parsed, results)
    if first is not None:           # the endpoint's first deployment: back to 0% everywhere, as before it
        if not any(task.name == "set_traffic" for task in recorded_tasks(list(context.histories))):
            return _end(context, record, f"{reason}; it had not given {first['new']} any traffic yet (the endpoint's "
                                         "first rollout), so traffic was not changed")
        context.continue_as_new(versioned_input(request, {
            "plan": first, "reason": f"{reason}; traffic returned to 0% everywhere, as before the endpoint's "
                                     f"first rollout ({first['new']} kept for inspection)"}))
        return None
    plan = recorded_plan(parsed, results)
    if plan is None:
        for _, result in results:
            traffic = _traffic_of(result)
            if traffic is not None:
                record.observe(traffic)
        return _end(context, record, f"{reason}; it had no plan, so traffic was not changed")
    spec = {"plan": {"old": plan.old, "new": plan.new, "steps": list(plan.steps), "shared": plan.shared},
            "reason": f"{reason}; traffic returned to {plan.old}"}
    context.continue_as_new(versioned_input(request, spec))
    return None


def _end(context: df.DurableOrchestrationContext, record: RolloutRecord, reason: str) -> dict[str, Any]:
    final = record.finish(context.current_utc_datetime, "failed", reason)
    context.set_custom_status(final)
    return final


def recorded_plan(request: RolloutRequest, results: list[tuple[str, Any]]) -> Plan | None:
    """The plan an earlier version resolved, rebuilt from its first successful recorded pre-flight."""
    pre = next((r for name, r in results if name == "preflight" and isinstance(r, dict) and r.get("ok")), None)
    if pre is None:
        return None
    try:
        return resolve_plan(request, EndpointState.from_dict(pre["endpoint"]),
                            [DeploymentState.from_dict(d) for d in pre["deployments"]])
    except (PlanRejected, KeyError, TypeError, ValueError):
        return None


def recorded_first_rollout(request: RolloutRequest, results: list[tuple[str, Any]]) -> dict[str, Any] | None:
    """The record's plan of a first rollout an earlier version ran (``old`` null, ``first_rollout`` true), or None.

    Decided by ``rollout.lifecycle_plan.is_first_rollout`` from what the earlier version recorded in
    ``creating``: the first successful ``lifecycle_inspect`` (the endpoint's state) and, when the
    endpoint existed, the first successful ``preflight`` (its traffic and deployments). None when
    neither was recorded (the rollout had not got that far) or the endpoint had an old deployment.
    """
    inspect = _first_ok(results, "lifecycle_inspect")
    if inspect is None or not isinstance(inspect.get("endpoint"), dict):
        return None
    state = str(inspect["endpoint"].get("state"))
    traffic: dict[str, int] = {}
    names: list[str] = []
    if state != NOT_FOUND:
        found = _first_ok(results, "preflight")
        traffic_found = _traffic_of(found)
        if found is None or traffic_found is None or not isinstance(found.get("deployments"), list):
            return None
        traffic, names = traffic_found, [str(d.get("name")) for d in found["deployments"] if isinstance(d, dict)]
    if not is_first_rollout(state, traffic, names, request.new_deployment, request.old_deployment):
        return None
    return first_rollout_record_plan(request.new_deployment)


def _first_ok(results: list[tuple[str, Any]], name: str) -> dict[str, Any] | None:
    return next((r for n, r in results if n == name and isinstance(r, dict) and r.get("ok")), None)


def _traffic_of(result: Any) -> dict[str, int] | None:
    endpoint = result.get("endpoint") if isinstance(result, dict) else None
    return dict(endpoint["traffic"]) if isinstance(endpoint, dict) and isinstance(endpoint.get("traffic"), dict) else None
