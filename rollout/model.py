"""Values that describe an endpoint, its deployments and their health, with their wire forms."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

Traffic = Mapping[str, int]


@dataclass(frozen=True, eq=False)
class WorkspaceRef:
    """An Azure ML workspace: where endpoints live.

    ARM names are case-insensitive, so two references are equal (and hash alike) when their
    three parts are equal ignoring case; each keeps the spelling it was given.
    """

    subscription_id: str
    resource_group: str
    workspace_name: str

    def key(self) -> tuple[str, str, str]:
        """The three parts lower-cased: what identifies the workspace."""
        return (self.subscription_id.lower(), self.resource_group.lower(), self.workspace_name.lower())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WorkspaceRef) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def arm_id(self) -> str:
        """The workspace's ARM resource id."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.workspace_name}"
        )

    def endpoint_id(self, endpoint: str) -> str:
        """The ARM id of an online endpoint in this workspace."""
        return f"{self.arm_id()}/onlineEndpoints/{endpoint}"

    def to_dict(self) -> dict[str, str]:
        return {
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "workspace_name": self.workspace_name,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkspaceRef:
        return cls(data["subscription_id"], data["resource_group"], data["workspace_name"])


@dataclass(frozen=True)
class DeploymentState:
    """One deployment behind an endpoint."""

    name: str
    provisioning_state: str
    instance_count: int
    instance_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "provisioning_state": self.provisioning_state,
            "instance_count": self.instance_count,
            "instance_type": self.instance_type,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploymentState:
        return cls(
            data["name"], data["provisioning_state"], int(data["instance_count"]),
            data.get("instance_type"),
        )


@dataclass(frozen=True)
class EndpointState:
    """An online endpoint: live traffic, mirror traffic and provisioning state.

    Traffic maps deployment name to an integer percentage; zero entries are dropped and
    names are kept as the service returned them (Azure may lower-case them).
    """

    name: str
    provisioning_state: str
    traffic: Traffic = field(default_factory=dict)
    mirror_traffic: Traffic = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "provisioning_state": self.provisioning_state,
            "traffic": dict(self.traffic),
            "mirror_traffic": dict(self.mirror_traffic),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EndpointState:
        return cls(
            data["name"], data["provisioning_state"],
            dict(data.get("traffic") or {}), dict(data.get("mirror_traffic") or {}),
        )


@dataclass(frozen=True)
class DeploymentMetrics:
    """What one deployment served over a time range.

    ``errors`` counts requests answered 5xx or 424 (424: the model container itself failed).
    ``latency_p99_ms`` is None when no request was measured.
    """

    requests: int
    errors: int
    latency_p99_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.errors, "latency_p99_ms": self.latency_p99_ms}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploymentMetrics:
        """The wire form read back; a p99 that is not a finite number (NaN, Infinity) counts as
        not measured, so no NaN ever reaches a verdict or the status."""
        p99 = data.get("latency_p99_ms")
        latency = None if p99 is None else float(p99)
        return cls(int(data["requests"]), int(data["errors"]),
                   latency if latency is not None and math.isfinite(latency) else None)


def normalize_traffic(traffic: Traffic) -> dict[str, int]:
    """Traffic as Azure stores it: names lower-cased, zero entries dropped.

    Two traffic maps mean the same routing exactly when their normalized forms are equal.
    """
    return {name.lower(): int(share) for name, share in traffic.items() if int(share) != 0}
