"""Activities: every Azure ML update and every metric check. Thin: dict in, call a port, dict out.

Each returns ``{"ok": true, ...}`` or, when Azure failed in an expected way,
``{"ok": false, "error": AzureError.to_dict()}``. Each is idempotent (activities run at least
once): traffic is set as absolute weights and not written at all when already in place.

    preflight     {endpoint_name, workspace}            -> {endpoint, deployments}
    read_traffic  {endpoint_name, workspace}            -> {endpoint}
    set_traffic   {endpoint_name, workspace, traffic, mirror_traffic, expected}
                                                        -> {endpoint} (read back after the write;
                                                           on failure, the endpoint as re-read if possible;
                                                           TrafficDrift: as read, nothing written)
    check_health  {endpoint_name, workspace, metrics_source, deployments, start, end}
                                                        -> {metrics: {deployment: DeploymentMetrics}}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Mapping

import azure.durable_functions as df

from rollout.errors import AzureError, TrafficDrift
from rollout.model import WorkspaceRef
from rollout.ports import Backend, EndpointPort


def blueprint(backend: Callable[[], Backend]) -> df.Blueprint:
    """The four activities, reaching Azure through ``backend()`` (called each time an activity runs)."""
    bp = df.Blueprint()

    def endpoints(payload: Mapping[str, Any]) -> EndpointPort:
        return backend().endpoints(workspace_of(payload))

    @bp.activity_trigger(input_name="payload")
    def preflight(payload: Mapping[str, Any]) -> dict[str, Any]:
        """Read the endpoint and every deployment behind it."""
        def work() -> dict[str, Any]:
            port, name = endpoints(payload), payload["endpoint_name"]
            endpoint = port.get_endpoint(name)
            return {"endpoint": endpoint.to_dict(), "deployments": [d.to_dict() for d in port.list_deployments(name)]}
        return guarded(work)

    @bp.activity_trigger(input_name="payload")
    def read_traffic(payload: Mapping[str, Any]) -> dict[str, Any]:
        """Read the endpoint's current traffic."""
        return guarded(lambda: {"endpoint": endpoints(payload).get_endpoint(payload["endpoint_name"]).to_dict()})

    @bp.activity_trigger(input_name="payload")
    def set_traffic(payload: Mapping[str, Any]) -> dict[str, Any]:
        """Write absolute traffic (the port writes nothing when already in place); return the endpoint read back.

        On failure the endpoint is re-read (when that works) so the orchestrator records the
        traffic as it really is.
        """
        port, name = endpoints(payload), payload["endpoint_name"]
        try:
            endpoint = port.set_traffic(name, payload["traffic"], payload.get("mirror_traffic"), payload.get("expected"))
            return {"ok": True, "endpoint": endpoint.to_dict()}
        except TrafficDrift as exc:
            return {"ok": False, "error": exc.to_dict(), "endpoint": exc.found.to_dict()}
        except AzureError as exc:
            return {"ok": False, "error": exc.to_dict(), "endpoint": _reread(port, name)}

    @bp.activity_trigger(input_name="payload")
    def check_health(payload: Mapping[str, Any]) -> dict[str, Any]:
        """Per-deployment requests, errors (5xx and 424) and p99 latency over [start, end)."""
        def work() -> dict[str, Any]:
            metrics = backend().metrics(workspace_of(payload), payload.get("metrics_source", "platform"))
            start, end = datetime.fromisoformat(payload["start"]), datetime.fromisoformat(payload["end"])
            found = metrics.deployment_metrics(payload["endpoint_name"], payload["deployments"], start, end)
            return {"metrics": {name: value.to_dict() for name, value in found.items()}}
        return guarded(work)

    return bp


def workspace_of(payload: Mapping[str, Any]) -> WorkspaceRef | None:
    data = payload.get("workspace")
    return None if not data else WorkspaceRef.from_dict(data)


def guarded(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``work``; an ``AzureError`` becomes an explicit failure result."""
    try:
        return {"ok": True, **work()}
    except AzureError as exc:
        return {"ok": False, "error": exc.to_dict()}


def _reread(port: EndpointPort, name: str) -> dict[str, Any] | None:
    try:
        return port.get_endpoint(name).to_dict()
    except AzureError:
        return None
