"""The history wire format: DTFx history events and the orchestration context, as the host writes them.

The Functions host hands an out-of-process orchestrator one JSON string per episode
(``OrchestrationTriggerAttributeBindingProvider.OrchestrationContextToString`` in
azure-functions-durable-extension): the execution's history - DTFx ``HistoryEvent`` objects
serialised by Newtonsoft.Json, ``EventType`` as its number, ``EventId`` -1 unless the event names
a scheduled task, ``IsPlayed`` true for earlier episodes' events - and a few settings. This module
builds those events and that string, and reads the orchestrator's answer (its state JSON, also
when the SDK raised it inside an exception after ``$OutOfProcData$:``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from azure.durable_functions.models.history.HistoryEventType import HistoryEventType

from emulator.clock import as_utc

Record = dict[str, Any]

PENDING, RUNNING, COMPLETED, FAILED = "Pending", "Running", "Completed", "Failed"
TERMINATED, CONTINUED_AS_NEW, SUSPENDED = "Terminated", "ContinuedAsNew", "Suspended"
ACTIVE_STATUSES = frozenset({PENDING, RUNNING, CONTINUED_AS_NEW, SUSPENDED})
"""Runtime statuses of an instance that still takes events."""

# What the Durable extension sends in the orchestration context (OrchestrationTriggerAttributeBindingProvider):
# upperSchemaVersion V2 for SDKs 1.1.0-1.1.3, upperSchemaVersionNew V3 for newer ones; long timers per the
# Azure Storage provider (MaximumDelayTime 6 days, LongRunningTimerIntervalLength 3 days), as .NET TimeSpans.
UPPER_SCHEMA_VERSION = 1
UPPER_SCHEMA_VERSION_NEW = 2
MAXIMUM_SHORT_TIMER_DURATION = "6.00:00:00"
LONG_RUNNING_TIMER_INTERVAL_DURATION = "3.00:00:00"
DEFAULT_HTTP_ASYNC_SLEEP_MS = 30000

ORCHESTRATION_STATUS_CODE = {COMPLETED: 1, CONTINUED_AS_NEW: 2, FAILED: 3, TERMINATED: 5}
"""DTFx ``OrchestrationStatus`` values, as ``ExecutionCompleted`` records them."""

STATUS_BY_CODE = {code: status for status, code in ORCHESTRATION_STATUS_CODE.items()}

_OUT_OF_PROC_LABEL = "$OutOfProcData$:"

MAX_CUSTOM_STATUS_KB = 16
"""The Durable extension's custom status limit, in whole KB of UTF-16 JSON (see ``custom_status_too_large``)."""


def dotnet_timestamp(moment: datetime) -> str:
    """``moment`` as Newtonsoft.Json writes a UTC ``DateTime``: ISO 8601, trailing zero fractions dropped, ``Z``."""
    moment = as_utc(moment)
    fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def parse_timestamp(text: str) -> datetime:
    """A timestamp as ``dotnet_timestamp`` (or the SDK's ``fireAt``) writes it, as an aware UTC ``datetime``."""
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


def status_timestamp(moment: datetime) -> str:
    """``moment`` as the HTTP API writes ``createdTime`` / ``lastUpdatedTime`` (``ToString("s") + "Z"``)."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def host_json(value: Any) -> str:
    """``value`` serialised the way the host does (Newtonsoft, no indentation, non-ASCII kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads_or_text(text: str | None) -> Any:
    """A JSON text decoded, or the text itself when it is not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, json.JSONDecodeError):
        return text


def custom_status_too_large(value: Any) -> str | None:
    """The host's error when ``value`` is too large to be a custom status, else None.

    azure-functions-durable-extension, ``DurableOrchestrationContext.SetCustomStatus`` (v2.13.7,
    src/WebJobs.Extensions.DurableTask/ContextImplementations/DurableOrchestrationContext.cs)
    serialises with ``MessagePayloadDataConverter.Serialize(value, MaxCustomStatusPayloadSizeInKB
    = 16)``, which computes ``(int)(Encoding.Unicode.GetByteCount(json) / 1024.0)`` - whole KB of
    UTF-16, truncated - and throws ``ArgumentException`` with this message when that exceeds 16.
    So 17,407 bytes (8,703 UTF-16 code units) pass and 17,408 fail; a character outside the BMP
    counts as two code units.
    """
    if value is None:
        return None
    text = host_json(value)
    utf16_bytes = len(text.encode("utf-16-le"))
    size_kb = int(utf16_bytes / 1024.0)
    if size_kb <= MAX_CUSTOM_STATUS_KB:
        return None
    return (f"The UTF-16 size of the JSON-serialized payload must not exceed {MAX_CUSTOM_STATUS_KB:,} KB. "
            f"The current payload size is {size_kb:,} KB.")


# --- events ----------------------------------------------------------------------------------------


def event(event_type: HistoryEventType, at: datetime, event_id: int = -1, **fields: Any) -> Record:
    """A history event as the host serialises a DTFx ``HistoryEvent`` (``IsPlayed`` false)."""
    return {"EventType": int(event_type), "EventId": event_id, "IsPlayed": False,
            "Timestamp": dotnet_timestamp(at), **fields}


def execution_started(at: datetime, name: str, input_value: Any, instance_id: str, execution_id: str) -> Record:
    return event(HistoryEventType.EXECUTION_STARTED, at,
                 OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
                 ParentInstance=None, Name=name, Version="", Input=host_json(input_value), Tags=None)


def task_scheduled(at: datetime, event_id: int, name: str, input_json: str | None) -> Record:
    # DTFx serialises the ``params object[]`` of ScheduleTask: a one-element array of the action's input.
    return event(HistoryEventType.TASK_SCHEDULED, at, event_id, Name=name, Version="", Input=host_json([input_json]))


def task_completed(at: datetime, scheduled_id: int, result_json: str | None) -> Record:
    return event(HistoryEventType.TASK_COMPLETED, at, TaskScheduledId=scheduled_id, Result=result_json)


def task_failed(at: datetime, scheduled_id: int, reason: str, details: str) -> Record:
    return event(HistoryEventType.TASK_FAILED, at, TaskScheduledId=scheduled_id, Reason=reason, Details=details)


def timer_created(at: datetime, event_id: int, fire_at: datetime) -> Record:
    return event(HistoryEventType.TIMER_CREATED, at, event_id, FireAt=dotnet_timestamp(fire_at))


def timer_fired(at: datetime, timer_id: int, fire_at: datetime) -> Record:
    return event(HistoryEventType.TIMER_FIRED, at, TimerId=timer_id, FireAt=dotnet_timestamp(fire_at))


def event_raised(at: datetime, name: str, input_json: str) -> Record:
    return event(HistoryEventType.EVENT_RAISED, at, Name=name, Input=input_json)


def execution_completed(at: datetime, status: str, result: str | None) -> Record:
    return event(HistoryEventType.EXECUTION_COMPLETED, at, OrchestrationStatus=ORCHESTRATION_STATUS_CODE[status],
                 Result=result)


def execution_terminated(at: datetime, reason: str | None) -> list[Record]:
    """The episode the host writes when it terminates an instance."""
    return [event(HistoryEventType.ORCHESTRATOR_STARTED, at),
            event(HistoryEventType.EXECUTION_TERMINATED, at, Input=host_json(reason)),
            execution_completed(at, TERMINATED, reason),
            event(HistoryEventType.ORCHESTRATOR_COMPLETED, at)]


# --- the orchestrator's side ---------------------------------------------------------------------------


def encode_played(event: Record) -> str:
    """One history event as JSON, marked played (``IsPlayed`` true), as ``context_json`` embeds it."""
    return json.dumps({**event, "IsPlayed": True}, ensure_ascii=False)


def context_json(played: list[str], new: list[Record], instance_id: str, input_value: Any) -> str:
    """The orchestration context the host sends: the ``played`` events (already encoded by ``encode_played``,
    so an episode encodes only what is new), then ``new``."""
    settings = json.dumps({
        "input": input_value,
        "instanceId": instance_id,
        "isReplaying": bool(played),
        "parentInstanceId": None,
        "upperSchemaVersion": UPPER_SCHEMA_VERSION,
        "upperSchemaVersionNew": UPPER_SCHEMA_VERSION_NEW,
        "longRunningTimerIntervalDuration": LONG_RUNNING_TIMER_INTERVAL_DURATION,
        "maximumShortTimerDuration": MAXIMUM_SHORT_TIMER_DURATION,
        "defaultHttpAsyncRequestSleepTimeMillseconds": DEFAULT_HTTP_ASYNC_SLEEP_MS,
    }, ensure_ascii=False)
    events = ",".join([*played, *(json.dumps(e, ensure_ascii=False) for e in new)])
    return '{"history":[' + events + "]," + settings[1:]


def orchestrator_state_from_exception(exc: BaseException) -> Record:
    """The state JSON an orchestrator exception carries after ``$OutOfProcData$:``.

    Exceptions without it (SDK-internal errors) become a failed, action-less state.
    """
    message = str(exc)
    index = message.find(_OUT_OF_PROC_LABEL)
    if index >= 0:
        try:
            state = json.loads(message[index + len(_OUT_OF_PROC_LABEL):])
            if isinstance(state, dict):
                return state
        except json.JSONDecodeError:
            pass
    return {"isDone": False, "actions": [], "error": message or type(exc).__name__}


def invoke_orchestrator(function: Callable[[str], str], context: str) -> Record:
    """Call a registered orchestrator with the context JSON; its state, also when it raised."""
    try:
        state = json.loads(function(context))
    except Exception as exc:
        return orchestrator_state_from_exception(exc)
    return state if isinstance(state, dict) else {"isDone": False, "actions": [], "error": "not a state object"}
