"""The ports the activities call. Adapters implement them; nothing else talks to Azure.

Both are deliberately small and Azure-shaped (absolute traffic, per-deployment metrics over a
time range), after flagger's router and metrics-provider interfaces. Failures raise the
``AzureError`` subclasses of ``rollout.errors``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, Protocol, Sequence

from rollout.capacity import QuotaUsage, VmSize
from rollout.deployment_spec import DeploymentSpec, EndpointSpec, ObservedDeployment
from rollout.model import DeploymentMetrics, DeploymentState, EndpointState, WorkspaceRef
from rollout.operation import Observed, OperationStart


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


class LifecyclePort(Protocol):
    """Creating, scaling and deleting deployments (and creating endpoints) in one workspace.

    Every ``begin_*`` starts a long operation and returns at once (``OperationStart``); the
    orchestrator polls ``deployment_status``/``endpoint_status`` on durable timers. Each is
    idempotent: what is already as asked is not written again (``started`` false).
    """

    def location(self) -> str:
        """The workspace's Azure region (autoscale settings live there)."""
        ...

    def arm_workspace(self) -> WorkspaceRef:
        """The workspace this port works in (to build the deployment's ARM id)."""
        ...

    def begin_create_endpoint(self, endpoint: str, spec: EndpointSpec) -> OperationStart:
        """Create the endpoint with no traffic, unless it exists (then nothing is written)."""
        ...

    def endpoint_status(self, endpoint: str, operation_url: str | None = None) -> Observed:
        """The endpoint's provisioning state (``NotFound`` when missing), with the operation's error once failed."""
        ...

    def read_deployment(self, endpoint: str, deployment: str) -> ObservedDeployment | None:
        """The deployment's spec as Azure holds it, for comparison with a request (None: it does not exist)."""
        ...

    def begin_create_deployment(self, endpoint: str, deployment: str, spec: DeploymentSpec) -> OperationStart:
        """Create the deployment with the spec (no traffic), unless it exists (then nothing is written)."""
        ...

    def deployment_status(self, endpoint: str, deployment: str, operation_url: str | None = None) -> Observed:
        """The deployment's provisioning state and instances (``NotFound`` when missing), with the operation's error."""
        ...

    def begin_scale(self, endpoint: str, deployment: str, instance_count: int) -> OperationStart:
        """Set the deployment's instance count; nothing is written when it already has that count."""
        ...

    def begin_delete(self, endpoint: str, deployment: str) -> OperationStart:
        """Delete the deployment; refused (``ServiceError``) while it holds live or mirror traffic; none when gone."""
        ...

    def get_logs(self, endpoint: str, deployment: str, lines: int, container_type: str = "inference-server") -> str:
        """The last ``lines`` lines of a container's log ("inference-server" or "storage-initializer")."""
        ...

    def vm_size(self, instance_type: str) -> VmSize | None:
        """The VM size's family and vCPUs as Azure ML lists them for the region (None: not offered)."""
        ...

    def quota_usages(self) -> list[QuotaUsage]:
        """The region's Azure ML core quotas: each VM family's line and the regional dedicated total."""
        ...


class AutoscalePort(Protocol):
    """Azure Monitor autoscale settings (``Microsoft.Insights/autoscalesettings``) in one resource group."""

    def get_setting(self, name: str) -> dict[str, Any] | None:
        """The setting's body in REST names (None: it does not exist)."""
        ...

    def put_setting(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace the setting (a synchronous call); return it as read back."""
        ...

    def delete_setting(self, name: str) -> None:
        """Delete the setting; nothing happens when it does not exist."""
        ...


class Backend(Protocol):
    """Where activities get their ports: Azure in production, simulations in the emulator."""

    def endpoints(self, workspace: WorkspaceRef | None) -> EndpointPort:
        """The endpoint port for a workspace (None: the app's configured workspace)."""
        ...

    def metrics(self, workspace: WorkspaceRef | None, source: str) -> MetricsPort:
        """The metrics port for a workspace and source ("platform" or "log_analytics")."""
        ...

    def lifecycle(self, workspace: WorkspaceRef | None) -> LifecyclePort:
        """The deployment lifecycle port for a workspace (None: the app's configured workspace)."""
        ...

    def autoscale(self, workspace: WorkspaceRef | None) -> AutoscalePort:
        """The autoscale settings port for a workspace's resource group."""
        ...
