"""Activities of the deployment lifecycle: gather facts, start long operations, poll them. Thin and idempotent.

Each returns ``{"ok": true, ...}`` or ``{"ok": false, "error": AzureError.to_dict()}``. A start
never waits: it returns ``OperationStart`` (``started`` false when nothing needed writing, so a
re-run after a crash never creates a second deployment, scales twice or deletes something else)
and the orchestrator polls on durable timers.

    lifecycle_inspect  {endpoint_name, workspace, new_deployment, old_deployment?, instance_type?}
        -> {endpoint: Observed, new_status: Observed, vm_size: VmSize | null, usages: [QuotaUsage]}
    spec_check     {endpoint_name, workspace, deployment_name, deployment: spec wire} -> {exists, differences}
    create_endpoint_start    {endpoint_name, workspace, endpoint: EndpointSpec wire}      -> OperationStart
    create_deployment_start  {endpoint_name, workspace, deployment_name, deployment: spec wire} -> OperationStart
    scale_start    {endpoint_name, workspace, deployment_name, instance_count}           -> OperationStart
    delete_start   {endpoint_name, workspace, deployment_name}                            -> OperationStart
    operation_poll {endpoint_name, workspace, kind, deployment_name?, operation_url?, log_lines?}
        -> {observed: Observed, logs: [str] (only when log_lines is given and the deployment exists)}
    autoscale_apply  {endpoint_name, workspace, deployment_name, autoscale: AutoscaleSpec wire, instance_count}
        -> {setting: name}   (PUT the whole setting; the same body twice is harmless)
    autoscale_remove {endpoint_name, workspace, deployment_name}  -> {removed: bool}
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import azure.durable_functions as df

from activities import guarded, workspace_of
from rollout.autoscale import autoscale_setting, parse_autoscale, setting_name
from rollout.deployment_spec import parse_deployment_spec, parse_endpoint_spec
from rollout.errors import AzureError
from rollout.operation import NOT_FOUND, last_lines
from rollout.ports import Backend, LifecyclePort


def blueprint(backend: Callable[[], Backend]) -> df.Blueprint:
    """The lifecycle activities, reaching Azure through ``backend()`` (called each time an activity runs)."""
    bp = df.Blueprint()

    def _port(payload: Mapping[str, Any]) -> LifecyclePort:
        return backend().lifecycle(workspace_of(payload))

    @bp.activity_trigger(input_name="payload")
    def lifecycle_inspect(payload: Mapping[str, Any]) -> dict[str, Any]:
        """The endpoint's and the new deployment's state, the new deployment's spec, and the quota of its VM size."""
        def work() -> dict[str, Any]:
            port, endpoint = _port(payload), payload["endpoint_name"]
            status = port.endpoint_status(endpoint)
            found: dict[str, Any] = {"endpoint": status.to_dict(), "new_status": {"state": NOT_FOUND}}
            if status.state != NOT_FOUND:
                found["new_status"] = port.deployment_status(endpoint, payload["new_deployment"]).to_dict()
            instance_type = payload.get("instance_type")
            if instance_type:
                size = port.vm_size(instance_type)
                found["vm_size"] = None if size is None else size.to_dict()
                found["usages"] = [u.to_dict() for u in port.quota_usages()]
            return found
        return guarded(work)

    @bp.activity_trigger(input_name="payload")
    def spec_check(payload: Mapping[str, Any]) -> dict[str, Any]:
        """Compare the requested deployment spec with the deployment that exists: ``{exists, differences}``."""
        from rollout.deployment_spec import spec_differences

        def work() -> dict[str, Any]:
            observed = _port(payload).read_deployment(payload["endpoint_name"], payload["deployment_name"])
            if observed is None:
                return {"exists": False, "differences": []}
            spec = parse_deployment_spec(payload["deployment"])
            return {"exists": True, "differences": spec_differences(spec, observed)}
        return guarded(work)

    @bp.activity_trigger(input_name="payload")
    def create_endpoint_start(payload: Mapping[str, Any]) -> dict[str, Any]:
        """Start creating the endpoint (nothing when it exists)."""
        spec = parse_endpoint_spec(payload.get("endpoint") or {})
        return guarded(lambda: _port(payload).begin_create_endpoint(payload["endpoint_name"], spec).to_dict())

    @bp.activity_trigger(input_name="payload")
    def create_deployment_start(payload: Mapping[str, Any]) -> dict[str, Any]:
        """Start creating the deployment with 0% traffic (nothing when it exists)."""
        spec = parse_deployment_spec(payload["deployment"])
        return guarded(lambda: _port(payload).begin_create_deployment(
            payload["endpoint_name"], payload["deployment_name"], spec).to_dict())

    @bp.activity_trigger(input_name="payload")
    def scale_start(payload: Mapping[str, Any]) -> dict[str, Any]:
        """Start setting the deployment's instance count (nothing when it already has it)."""
        return guarded(lambda: _port(payload).begin_scale(
            payload["endpoint_name"], payload["deployment_name"], int(payload["instance_count"])).to_dict())

    @bp.activity_trigger(input_name="payload")
    def delete_start(payload: Mapping[str, Any]) -> dict[str, Any]:
        """Start deleting the deployment (refused while it holds traffic; nothing when it is gone)."""
        return guarded(lambda: _port(payload).begin_delete(payload["endpoint_name"], payload["deployment_name"]).to_dict())

    @bp.activity_trigger(input_name="payload")
    def operation_poll(payload: Mapping[str, Any]) -> dict[str, Any]:
        """Read the resource a long operation works on; with ``log_lines``, also the deployment's container log tail."""
        def work() -> dict[str, Any]:
            port, endpoint = _port(payload), payload["endpoint_name"]
            url = payload.get("operation_url")
            if payload["kind"] == "create_endpoint":
                return {"observed": port.endpoint_status(endpoint, url).to_dict()}
            deployment = payload["deployment_name"]
            observed = port.deployment_status(endpoint, deployment, url)
            found: dict[str, Any] = {"observed": observed.to_dict()}
            lines = payload.get("log_lines")
            if lines and observed.state != NOT_FOUND:
                found["logs"] = _logs(port, endpoint, deployment, int(lines))
            return found
        return guarded(work)

    @bp.activity_trigger(input_name="payload")
    def autoscale_apply(payload: Mapping[str, Any]) -> dict[str, Any]:
        """PUT the deployment's autoscale setting (the whole body: writing it twice changes nothing)."""
        def work() -> dict[str, Any]:
            found, workspace = backend(), workspace_of(payload)
            port = found.lifecycle(workspace)
            endpoint, deployment = payload["endpoint_name"], payload["deployment_name"]
            ws = port.arm_workspace()
            deployment_id = f"{ws.endpoint_id(endpoint)}/deployments/{deployment}"
            body = autoscale_setting(parse_autoscale(payload["autoscale"]), deployment_id, ws.endpoint_id(endpoint),
                                     port.location(), int(payload["instance_count"]))
            name = setting_name(endpoint, deployment)
            found.autoscale(workspace).put_setting(name, body)
            return {"setting": name, "capacity": body["properties"]["profiles"][0]["capacity"]}
        return guarded(work)

    @bp.activity_trigger(input_name="payload")
    def autoscale_remove(payload: Mapping[str, Any]) -> dict[str, Any]:
        """Delete the deployment's autoscale setting made by aml-rollout (nothing when there is none)."""
        def work() -> dict[str, Any]:
            port = backend().autoscale(workspace_of(payload))
            name = setting_name(payload["endpoint_name"], payload["deployment_name"])
            existed = port.get_setting(name) is not None
            port.delete_setting(name)
            return {"removed": existed}
        return guarded(work)

    return bp



def _logs(port: LifecyclePort, endpoint: str, deployment: str, lines: int) -> dict[str, list[str]]:
    """Both containers' log tails; a container whose log cannot be read says why instead."""
    logs = {}
    for container in ("storage-initializer", "inference-server"):
        try:
            logs[container] = last_lines(port.get_logs(endpoint, deployment, lines, container), lines)
        except AzureError as exc:
            logs[container] = [f"(logs not available: {exc})"]
    return logs
