"""Looking up an endpoint's rollout through the Durable client (shared by HTTP routes and the emulator)."""

from __future__ import annotations

from typing import Any

from rollout.alerts import RunningRollout
from rollout.model import WorkspaceRef
from rollout.plan import instance_id_for
from rollout.wire import decoded

RUNNING_STATUSES = ("Pending", "Running", "ContinuedAsNew", "Suspended")


def runtime_status_name(status: Any) -> str | None:
    """The runtime status of a ``DurableOrchestrationStatus`` as a plain string, or None when absent."""
    value = getattr(status, "runtime_status", None)
    if value is None:
        return None
    return str(getattr(value, "value", value))


async def find_rollout(client: Any, endpoint_name: str) -> Any | None:
    """The endpoint's rollout status (input included), or None when it has none."""
    status = await client.get_status(instance_id_for(endpoint_name), show_input=True)
    return status if runtime_status_name(status) else None


async def find_running_rollout(client: Any, endpoint_name: str) -> RunningRollout | None:
    """The endpoint's rollout if it is running, as alert routing needs it."""
    status = await find_rollout(client, endpoint_name)
    if status is None or runtime_status_name(status) not in RUNNING_STATUSES:
        return None
    request = decoded(status.input_)
    request = request if isinstance(request, dict) else {}
    workspace = request.get("workspace")
    return RunningRollout(
        instance_id=status.instance_id,
        new_deployment=str(request.get("new_deployment", "")),
        workspace=WorkspaceRef.from_dict(workspace) if workspace else None,
    )
