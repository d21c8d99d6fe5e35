"""What the host shows of an instance: its status JSON, its readable history, and instance queries.

``status_json`` is the body of ``GET instances/{id}`` (``DurableClient.GetStatusAsync``),
``readable_history`` the ``historyEvents`` it adds with ``showHistory``, and ``matching`` the
filter of ``GET instances/`` (``createdTimeFrom``/``To``, ``runtimeStatus``, ``instanceIdPrefix``).
All three read an instance through the small ``InstanceView`` protocol, so they stand apart from
how the task hub stores instances.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from azure.durable_functions.models.history.HistoryEventType import HistoryEventType

from emulator.clock import as_utc
from emulator.history import PENDING, STATUS_BY_CODE, Record, loads_or_text, status_timestamp


class InstanceView(Protocol):
    """What a status view reads of an instance."""

    instance_id: str
    name: str
    input: Any
    status: str
    custom_status: Any
    output: Any
    created_at: datetime
    last_updated_at: datetime
    history: list[Record]


def status_json(instance: InstanceView, show_history: bool, show_input: bool, show_history_output: bool) -> Record:
    """The instance's status in the host's JSON shape (values copied, so callers may keep them)."""
    status = {
        "name": instance.name,
        "instanceId": instance.instance_id,
        "runtimeStatus": instance.status,
        "input": copy.deepcopy(instance.input) if show_input else None,
        "customStatus": copy.deepcopy(instance.custom_status),
        "output": copy.deepcopy(instance.output),
        "createdTime": status_timestamp(instance.created_at),
        "lastUpdatedTime": status_timestamp(instance.last_updated_at),
    }
    if show_history:
        status["historyEvents"] = (None if instance.status == PENDING
                                   else readable_history(instance.history, show_input, show_history_output))
    return status


def matching(instances: Iterable[InstanceView], created_from: datetime | None, created_to: datetime | None,
             runtime_status: Iterable[str] | None, prefix: str | None) -> list[Any]:
    """The instances passing every filter given, oldest first (ties by id); an empty status list filters nothing."""
    statuses = None if runtime_status is None else set(runtime_status)
    found = [
        i for i in instances
        if (created_from is None or i.created_at >= as_utc(created_from))
        and (created_to is None or i.created_at <= as_utc(created_to))
        and (statuses is None or not statuses or i.status in statuses)
        and (prefix is None or i.instance_id.startswith(prefix))
    ]
    return sorted(found, key=lambda i: (i.created_at, i.instance_id))


DEFAULT_PAGE_SIZE = 100
"""The host's instance query page size (``OrchestrationStatusQueryCondition.PageSize``; ``?top=`` changes it)."""


class BadContinuationToken(ValueError):
    """A continuation token this task hub did not issue."""


def page_of(found: list[Any], page_size: int, token: str | None) -> tuple[list[Any], str | None]:
    """The page of ``found`` (sorted as ``matching`` sorts) after ``token``, and the next page's token.

    Tokens are opaque (base64 JSON of the last instance's sort key, as the Azure Storage provider's
    are opaque table continuation tokens) and survive instances being added or purged in between.
    The last page has no token.
    """
    if page_size <= 0:
        raise ValueError(f"page size must be positive, got {page_size}")
    start = 0
    if token:
        try:
            created, instance_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        except (ValueError, TypeError) as exc:
            raise BadContinuationToken(f"not a continuation token: {token!r}") from exc
        after = (created, instance_id)
        start = next((n for n, i in enumerate(found) if _sort_key(i) > after), len(found))
    page = found[start:start + page_size]
    if start + page_size >= len(found):
        return page, None
    key = json.dumps(_sort_key(page[-1]))
    return page, base64.urlsafe_b64encode(key.encode()).decode()


def _sort_key(instance: InstanceView) -> tuple[str, str]:
    return instance.created_at.isoformat(timespec="microseconds"), instance.instance_id


_HISTORY_EVENT_NAMES = (
    "ExecutionStarted", "ExecutionCompleted", "ExecutionFailed", "ExecutionTerminated", "TaskScheduled",
    "TaskCompleted", "TaskFailed", "SubOrchestrationInstanceCreated", "SubOrchestrationInstanceCompleted",
    "SubOrchestrationInstanceFailed", "TimerCreated", "TimerFired", "OrchestratorStarted", "OrchestratorCompleted",
    "EventSent", "EventRaised", "ContinueAsNew", "GenericEvent", "HistoryState", "ExecutionSuspended",
    "ExecutionResumed",
)


def readable_history(events: list[Record], show_input: bool, show_output: bool) -> list[Record]:
    """History as the HTTP status API shows it (``DurableClient.GetDurableOrchestrationStatusAsync``).

    Event types become names; episode markers and the ``TaskScheduled`` events that a completion
    names are dropped; completions gain ``FunctionName`` and ``ScheduledTime``; ``EventId`` and
    ``IsPlayed`` go; results are kept (parsed) only with ``show_output``.
    """
    scheduled: dict[int, tuple[int, Record]] = {}
    dropped: set[int] = set()
    readable: list[Record] = []
    for index, source in enumerate(events):
        item = dict(source)
        event_type = item["EventType"]
        item["EventType"] = _HISTORY_EVENT_NAMES[event_type]
        if event_type in (HistoryEventType.ORCHESTRATOR_STARTED, HistoryEventType.ORCHESTRATOR_COMPLETED):
            dropped.add(index)
        elif event_type == HistoryEventType.TASK_SCHEDULED:
            scheduled[item["EventId"]] = (index, item)
            item.pop("Version", None)
        elif event_type in (HistoryEventType.TASK_COMPLETED, HistoryEventType.TASK_FAILED):
            _merge_scheduled(item, scheduled, dropped, show_input)
            _result_for_status(item, show_output and event_type == HistoryEventType.TASK_COMPLETED)
        elif event_type == HistoryEventType.EXECUTION_STARTED:
            item["FunctionName"] = item.pop("Name", None)
            for key in ("OrchestrationInstance", "ParentInstance", "Version", "Tags"):
                item.pop(key, None)
        elif event_type == HistoryEventType.EXECUTION_COMPLETED:
            code = item.get("OrchestrationStatus")
            item["OrchestrationStatus"] = STATUS_BY_CODE.get(code, code) if isinstance(code, int) else code
            _result_for_status(item, show_output)
        elif event_type == HistoryEventType.TIMER_FIRED:
            item.pop("TimerId", None)
        if not show_input:
            item.pop("Input", None)
        item.pop("EventId", None)
        item.pop("IsPlayed", None)
        readable.append(item)
    return [item for index, item in enumerate(readable) if index not in dropped]


def _merge_scheduled(item: Record, scheduled: dict[int, tuple[int, Record]], dropped: set[int], show_input: bool) -> None:
    found = scheduled.get(int(item.pop("TaskScheduledId", -1)))
    if found is None:
        return
    index, task = found
    item["ScheduledTime"] = task["Timestamp"]
    item["FunctionName"] = task.get("Name")
    if show_input:
        item["Input"] = task.get("Input")
    dropped.add(index)


def _result_for_status(item: Record, show_output: bool) -> None:
    if not show_output:
        item.pop("Result", None)
    elif isinstance(item.get("Result"), str):
        item["Result"] = loads_or_text(item["Result"])
