"""The two ports the activities call. Adapters implement them; nothing else talks to Azure.

Both are deliberately small and Azure-shaped (absolute traffic, per-deployment metrics over a
time range), after flagger's router and metrics-provider interfaces. Failures raise the
``AzureError`` subclasses of ``rollout.errors``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Mapping, Protocol, Sequence

from rollout.model import DeploymentMetrics, DeploymentState, EndpointState, WorkspaceRef


class EndpointPort(Protocol):
    """An Azure ML workspace's managed online endpoints."""

    def get_endpoint(self, endpoint: str) -> EndpointState:
        """The endpoint's traffic, mirror traffic and provisioning state."""
        ...

    def list_deployments(self, endpoint: str) -> list[DeploymentState]:
        """Every deployment behind the endpoint, with provisioning state and instances."""
        ...

    def set_traffic(
        self, endpoint: str, traffic: Mapping[str, int], mirror_traffic: Mapping[str, int] | None = None,
        expected: Mapping[str, int] | None = None,
    ) -> EndpointState:
        """Write absolute traffic (and mirror traffic when given), wait for it, return a fresh read.

        Writes nothing when the endpoint already routes exactly so (activities run at least once).
        ``expected``: the traffic the caller last set; when the endpoint routes neither so nor as
        asked, raise ``TrafficDrift`` (with the endpoint as read) and write nothing: the drift
        check folded into the write's own read.
        """
        ...


class MetricsPort(Protocol):
    """Request counts, errors and latency per deployment."""

    def deployment_metrics(
        self, endpoint: str, deployments: Sequence[str], start: datetime, end: datetime
    ) -> dict[str, DeploymentMetrics]:
        """What each named deployment served in [start, end); absent data means zero requests."""
        ...


class Backend(Protocol):
    """Where activities get their ports: Azure in production, simulations in the emulator."""

    def endpoints(self, workspace: WorkspaceRef | None) -> EndpointPort:
        """The endpoint port for a workspace (None: the app's configured workspace)."""
        ...

    def metrics(self, workspace: WorkspaceRef | None, source: str) -> MetricsPort:
        """The metrics port for a workspace and source ("platform" or "log_analytics")."""
        ...
