"""Simulated Azure Monitor autoscale settings over a simulated workspace (``AutoscalePort``).

Settings are kept by name (case-insensitive) and validated as the service validates them:
profiles 1-20, capacities strings with minimum <= default <= maximum, directions
``Increase``/``Decrease``, the target an existing deployment (``ServiceError`` "BadRequest: ...").
"""

from __future__ import annotations

from typing import Any, Mapping

from emulator.simulated_azure import SimulatedWorkspace
from rollout.errors import ServiceError


class SimulatedAutoscale:
    """``AutoscalePort`` over a simulated workspace: settings kept by name, validated as the service does."""

    def __init__(self, workspace: SimulatedWorkspace) -> None:
        self.workspace = workspace
        self.settings: dict[str, dict[str, Any]] = {}

    def get_setting(self, name: str) -> dict[str, Any] | None:
        with self.workspace.lock:
            found = self.settings.get(name.lower())
            return None if found is None else dict(found)

    def put_setting(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        with self.workspace.lock:
            problem = self._problem(body)
            if problem:
                raise ServiceError(f"BadRequest: {problem}")
            stored = {**dict(body), "name": name, "type": "Microsoft.Insights/autoscaleSettings"}
            self.settings[name.lower()] = stored
            return dict(stored)

    def delete_setting(self, name: str) -> None:
        with self.workspace.lock:
            self.settings.pop(name.lower(), None)

    def _problem(self, body: Mapping[str, Any]) -> str | None:
        props = body.get("properties") or {}
        profiles = props.get("profiles") or []
        if not 1 <= len(profiles) <= 20:
            return "an autoscale setting needs 1 to 20 profiles"
        target = str(props.get("targetResourceUri") or "")
        parts = target.lower().split("/")
        if "deployments" not in parts or parts.index("deployments") < 2:
            return f"targetResourceUri {target!r} is not a deployment"
        endpoint, deployment = parts[parts.index("deployments") - 1], parts[parts.index("deployments") + 1]
        found = self.workspace.endpoints.get(endpoint)
        if found is None or deployment not in found.deployments:
            return f"targetResourceUri {target!r} does not exist"
        for profile in profiles:
            capacity = profile.get("capacity") or {}
            if not all(isinstance(capacity.get(k), str) for k in ("minimum", "maximum", "default")):
                return "capacity minimum, maximum and default must be strings"
            low, high, default = (int(capacity[k]) for k in ("minimum", "maximum", "default"))
            if not low <= default <= high:
                return "capacity must satisfy minimum <= default <= maximum"
            for rule in profile.get("rules") or []:
                if rule.get("scaleAction", {}).get("direction") not in ("Increase", "Decrease"):
                    return "scaleAction.direction must be Increase or Decrease"
        return None
