"""Looking up an endpoint's rollout through the Durable client (shared by HTTP routes and the emulator)."""

from __future__ import annotations

from typing import Any

from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus
from typing_extensions import TypeIs

from rollout.alerts import RunningRollout
from rollout.model import WorkspaceRef
from rollout.notify import redact_request
from rollout.plan import instance_id_for
from rollout.safety import split_input
from rollout.wire import RUNNING_STATUSES, decoded


def runtime_status_name(status: Any) -> str | None:
    """The runtime status of a ``DurableOrchestrationStatus`` as a plain string, or None when absent."""
    value = getattr(status, "runtime_status", None)
    if value is None:
        return None
    return str(getattr(value, "value", value))


def is_running(status: DurableOrchestrationStatus | None) -> TypeIs[DurableOrchestrationStatus]:
    """Whether a status (None: no rollout) is of a rollout that has not ended."""
    return status is not None and runtime_status_name(status) in RUNNING_STATUSES


def request_of(status: Any) -> dict[str, Any] | None:
    """The request the rollout was started with (decoded: the task hub returns it as JSON text,
    ``rollout.wire``), notification URLs redacted; None when the status does not carry it."""
    request = raw_request_of(status)
    return redact_request(request) if request is not None else None


def raw_request_of(status: Any) -> dict[str, Any] | None:
    """The request the rollout was started with, as the orchestrator got it (notification URLs
    included, ``orchestration_version`` left out); None when the status does not carry it."""
    value = decoded(status.input_)
    return split_input(value)[1] if isinstance(value, dict) else None


async def find_rollout(client: Any, endpoint_name: str) -> DurableOrchestrationStatus | None:
    """The endpoint's rollout status (input included), or None when it has none."""
    status = await client.get_status(instance_id_for(endpoint_name), show_input=True)
    return status if runtime_status_name(status) else None


async def find_running_rollout(client: Any, endpoint_name: str) -> RunningRollout | None:
    """The endpoint's rollout if it is running, as alert routing needs it."""
    status = await find_rollout(client, endpoint_name)
    if not is_running(status):
        return None
    request = request_of(status) or {}
    workspace = request.get("workspace")
    return RunningRollout(
        instance_id=status.instance_id,
        new_deployment=str(request.get("new_deployment", "")),
        workspace=WorkspaceRef.from_dict(workspace) if workspace else None,
    )
