"""Long Azure operations (create, scale, delete) watched on durable timers. Pure.

An activity starts the operation and returns at once; the orchestrator then polls the resource
(another activity) on durable timers, and ``next_step`` decides after each poll: wait again,
succeeded, or failed with Azure's own error message. A deployment that fails to provision (or
times out) asks for its container logs (``LOG_LINES`` lines), which go into the record.

Timeouts: creation ``PT45M`` (Azure documents up to 15-20 minutes, longer for a first image
build), scaling ``PT20M``, deletion ``PT20M``; polls every ``PT1M`` for creation and ``PT30S``
otherwise. A timeout ends the operation failed, quoting the state Azure last reported; Azure
carries on with the operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

LOG_LINES = 100
"""Lines of a failed deployment's container log kept in the record."""

DEFAULT_TIMEOUTS: Mapping[str, timedelta] = {
    "create_endpoint": timedelta(minutes=20),
    "create": timedelta(minutes=45),
    "scale": timedelta(minutes=20),
    "delete": timedelta(minutes=20),
}
POLL_INTERVALS: Mapping[str, timedelta] = {
    "create_endpoint": timedelta(seconds=30),
    "create": timedelta(minutes=1),
    "scale": timedelta(seconds=30),
    "delete": timedelta(seconds=30),
}
IN_PROGRESS = ("Creating", "Updating", "Scaling", "Deleting")
TERMINAL_FAILURES = ("Failed", "Canceled")
NOT_FOUND = "NotFound"
"""The provisioning state a poll reports when the resource does not exist (a 404)."""


@dataclass(frozen=True)
class OperationWatch:
    """One long operation being watched: what, on which resource, since when, until when.

    ``kind`` is create_endpoint, create, scale or delete; ``instances`` is the count a scale
    aims at (None otherwise).
    """

    kind: str
    target: str
    started_at: datetime
    timeout: timedelta
    instances: int | None = None

    @property
    def deadline(self) -> datetime:
        return self.started_at + self.timeout

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "started_at": self.started_at.isoformat(),
                "timeout_s": self.timeout.total_seconds(), "instances": self.instances}


def watch(kind: str, target: str, started_at: datetime, timeout: timedelta | None = None,
          instances: int | None = None) -> OperationWatch:
    """A watch with the default timeout for ``kind`` unless one is given."""
    if kind not in DEFAULT_TIMEOUTS:
        raise ValueError(f"unknown operation kind {kind!r}")
    return OperationWatch(kind, target, started_at, timeout or DEFAULT_TIMEOUTS[kind], instances)


@dataclass(frozen=True)
class Observed:
    """What one poll found: the resource's provisioning state (``NotFound`` when it is gone), the
    instance count when it reports one, and the failed operation's error when Azure gave one."""

    state: str
    instance_count: int | None = None
    error_code: str | None = None
    error_message: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Observed:
        count = data.get("instance_count")
        return cls(str(data["state"]), None if count is None else int(count), data.get("error_code"),
                   data.get("error_message"))

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "instance_count": self.instance_count, "error_code": self.error_code,
                "error_message": self.error_message}


@dataclass(frozen=True)
class OperationStart:
    """What starting a long operation did: ``started`` false when nothing needed writing (already as
    asked); ``operation_url`` is Azure's ``Azure-AsyncOperation`` (or ``Location``) URL when it answered with one."""

    started: bool
    operation_url: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"started": self.started, "operation_url": self.operation_url, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OperationStart:
        return cls(bool(data["started"]), data.get("operation_url"), str(data.get("detail", "")))


@dataclass(frozen=True)
class NextStep:
    """What to do after a poll: ``wait`` until ``poll_at``, or stop as ``succeeded``/``failed``.

    ``fetch_logs`` asks for the deployment's container logs (a create that failed or timed out).
    """

    action: str
    reason: str = ""
    poll_at: datetime | None = None
    fetch_logs: bool = False


def _verb(kind: str) -> str:
    return {"create_endpoint": "creating endpoint", "create": "creating deployment", "scale": "scaling deployment",
            "delete": "deleting deployment"}[kind]


def _azure_error(observed: Observed) -> str:
    if observed.error_code and observed.error_message:
        return f"{observed.error_code}: {observed.error_message}"
    return observed.error_code or observed.error_message or f"Azure reports it {observed.state} without a message"


def next_step(operation: OperationWatch, observed: Observed, now: datetime) -> NextStep:
    """Decide after one poll of ``operation``.

    - create/create_endpoint: ``Succeeded`` is done; ``Failed``/``Canceled`` fail with Azure's
      error; the resource gone (``NotFound``) fails.
    - scale: done when ``Succeeded`` with the wanted instances; ``Succeeded`` with another count
      fails (something else changed it, such as autoscale).
    - delete: done when ``NotFound``; ``Failed``/``Canceled`` fail with Azure's error.
    - still in progress at or after the deadline: failed, "timed out after ..." with the state.
    Failed and timed-out creations of a deployment ask for its logs.
    """
    what = f"{_verb(operation.kind)} {operation.target!r}"
    logs = operation.kind == "create"
    state = observed.state
    if operation.kind == "delete":
        if state == NOT_FOUND:
            return NextStep("succeeded", f"{what}: deleted")
    elif state == NOT_FOUND:
        return NextStep("failed", f"{what} failed: it no longer exists (deleted by someone else?)")
    if state in TERMINAL_FAILURES:
        return NextStep("failed", f"{what} failed: {_azure_error(observed)}", fetch_logs=logs)
    if state == "Succeeded" and operation.kind != "delete":
        if operation.kind == "scale" and observed.instance_count != operation.instances:
            return NextStep("failed", f"{what} failed: Azure reports {observed.instance_count} instances, not "
                                      f"{operation.instances} (changed by someone else, or by autoscale)")
        return NextStep("succeeded", f"{what}: Succeeded")
    if now >= operation.deadline:
        minutes = int(operation.timeout.total_seconds() // 60)
        return NextStep("failed", f"{what} timed out after {minutes} minutes; Azure still reports it {state}"
                                  + (f" ({_azure_error(observed)})" if observed.error_code else ""), fetch_logs=logs)
    poll_at = min(now + POLL_INTERVALS[operation.kind], operation.deadline)
    return NextStep("wait", f"{what}: {state}", poll_at=poll_at)


def last_lines(text: str, lines: int = LOG_LINES) -> list[str]:
    """The last ``lines`` lines of a container log (trailing blank lines dropped)."""
    kept = text.rstrip("\n").splitlines()
    return kept[-lines:] if lines > 0 else []
