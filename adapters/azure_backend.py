"""``AzureBackend``: the production ``rollout.ports.Backend``, building the Azure ports lazily.

Importing this module imports no Azure SDK (not even azure-core): the first ``endpoints`` or
``metrics`` call imports them, resolves the cloud, creates the credential and the shared
transport, and builds the port; every port is then cached for the life of the process (one
``MLClient`` per workspace, one Monitor client per subscription, one Logs client).

Construct it from plain settings (``settings.py`` reads the environment, this module never does)::

    AzureBackend(AzureSettings(subscription_id, resource_group, workspace_name,
                               log_analytics_workspace_id=..., metrics_lag_seconds=60.0,
                               cloud="AzureCloud", cloud_metadata_url=None))

Tests and the emulator may pass ``credential`` (any ``TokenCredential``), ``transport`` (an
azure-core ``HttpTransport``, shared by every client) and ``tuning``
(``adapters.azure_common.ClientTuning``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rollout.errors import ServiceError
from rollout.model import WorkspaceRef
from rollout.plan import METRICS_SOURCES

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline.transport import HttpTransport

    from adapters.azure_common import ClientTuning, CloudEndpoints
    from rollout.ports import AutoscalePort, EndpointPort, LifecyclePort, MetricsPort

@dataclass(frozen=True)
class AzureSettings:
    """What the Azure adapters need to know, already read from the environment.

    The workspace fields may be empty strings when the app has no default workspace (every
    request must then name one). ``log_analytics_workspace_id`` is the workspace GUID
    ("Workspace ID"), needed only for ``metrics_source: log_analytics``. ``cloud`` is
    ``AzureCloud`` (default), ``AzureUSGovernment``, ``AzureChinaCloud`` or the name of a cloud
    described by the ARM metadata document at ``cloud_metadata_url`` (``ARM_CLOUD_METADATA_URL``).
    """

    subscription_id: str
    resource_group: str
    workspace_name: str
    log_analytics_workspace_id: str | None = None
    metrics_lag_seconds: float = 60.0
    cloud: str = "AzureCloud"
    cloud_metadata_url: str | None = None

    def default_workspace(self) -> WorkspaceRef | None:
        """The configured workspace, or None when any of its three fields is empty."""
        parts = (self.subscription_id, self.resource_group, self.workspace_name)
        return WorkspaceRef(*parts) if all(parts) else None


@dataclass(frozen=True)
class _Shared:
    """What every client of the backend shares, built once on first use."""

    credential: TokenCredential
    transport: HttpTransport
    cloud: CloudEndpoints
    tuning: ClientTuning


class AzureBackend:
    """``Backend`` over Azure ML and Azure Monitor; thread-safe, every port built once and cached."""

    def __init__(self, settings: AzureSettings, *, credential: TokenCredential | None = None,
                 transport: HttpTransport | None = None, tuning: ClientTuning | None = None) -> None:
        self.settings = settings
        self._credential = credential
        self._transport = transport
        self._tuning = tuning
        self._lock = threading.RLock()
        self._shared: _Shared | None = None
        self._endpoint_ports: dict[WorkspaceRef, EndpointPort] = {}
        self._metric_ports: dict[tuple[WorkspaceRef, str], MetricsPort] = {}
        self._clients: dict[Any, Any] = {}

    def endpoints(self, workspace: WorkspaceRef | None) -> EndpointPort:
        """The endpoint port for ``workspace`` (None: the configured one), built on first use."""
        target = self._workspace(workspace)
        with self._lock:
            if target not in self._endpoint_ports:
                from adapters.azure_ml import AzureMLEndpoints, build_ml_client

                shared = self._share()
                client = build_ml_client(target, shared.credential, shared.cloud, shared.transport, shared.tuning)
                self._endpoint_ports[target] = AzureMLEndpoints(client, target, shared.tuning.lro_timeout)
            return self._endpoint_ports[target]

    def lifecycle(self, workspace: WorkspaceRef | None) -> LifecyclePort:
        """The deployment lifecycle port for ``workspace``: its own ``MLClient``, whose response hook records
        the operation URLs of the writes it starts, built on first use."""
        target = self._workspace(workspace)
        with self._lock:
            key = ("lifecycle", target)
            if key not in self._clients:
                from adapters.azure_ml import AzureMLLifecycle, OperationUrls, build_ml_client, build_operation_reader

                shared = self._share()
                urls = OperationUrls()
                client = build_ml_client(target, shared.credential, shared.cloud, shared.transport, shared.tuning,
                                         response_hook=urls.hook)
                reader = build_operation_reader(shared.credential, shared.cloud, shared.transport, shared.tuning)
                self._clients[key] = AzureMLLifecycle(client, target, urls, reader)
            port: LifecyclePort = self._clients[key]
            return port

    def autoscale(self, workspace: WorkspaceRef | None) -> AutoscalePort:
        """The autoscale settings port for ``workspace``'s resource group (the subscription's Monitor client)."""
        target = self._workspace(workspace)
        with self._lock:
            from adapters.azure_monitor import AzureAutoscale, build_monitor_client

            shared, key = self._share(), ("monitor", target.subscription_id)
            if key not in self._clients:
                self._clients[key] = build_monitor_client(target.subscription_id, shared.credential, shared.cloud,
                                                          shared.transport, shared.tuning)
            return AzureAutoscale(self._clients[key], target)

    def metrics(self, workspace: WorkspaceRef | None, source: str) -> MetricsPort:
        """The metrics port for ``workspace`` and ``source`` ("platform" or "log_analytics"), built on first use."""
        if source not in METRICS_SOURCES:
            raise ValueError(f"metrics source must be one of {METRICS_SOURCES}, not {source!r}")
        target = self._workspace(workspace)
        with self._lock:
            key = (target, source)
            if key not in self._metric_ports:
                self._metric_ports[key] = self._metrics_port(target, source)
            return self._metric_ports[key]

    def _metrics_port(self, target: WorkspaceRef, source: str) -> MetricsPort:
        from adapters.azure_monitor import LogAnalyticsMetrics, PlatformMetrics, build_logs_client, build_monitor_client

        shared, lag = self._share(), self.settings.metrics_lag_seconds
        if source == "platform":
            key = ("monitor", target.subscription_id)
            if key not in self._clients:
                self._clients[key] = build_monitor_client(target.subscription_id, shared.credential, shared.cloud,
                                                          shared.transport, shared.tuning)
            return PlatformMetrics(self._clients[key], target, lag)
        la_workspace = self.settings.log_analytics_workspace_id
        if not la_workspace:
            raise ServiceError("metrics source 'log_analytics' needs the Log Analytics workspace id "
                               "(AML_ROLLOUT_LOG_ANALYTICS_WORKSPACE_ID), which is not set")
        if "logs" not in self._clients:
            self._clients["logs"] = build_logs_client(shared.credential, shared.cloud, shared.transport, shared.tuning)
        return LogAnalyticsMetrics(self._clients["logs"], target, la_workspace, lag,
                                   shared.tuning.log_query_server_timeout)

    def _workspace(self, workspace: WorkspaceRef | None) -> WorkspaceRef:
        found = workspace or self.settings.default_workspace()
        if found is None:
            raise ServiceError("no workspace: the request names none and the app has no default workspace")
        return found

    def _share(self) -> _Shared:
        """Tuning, transport, cloud and credential, made on first use (imports azure-core and azure-identity)."""
        if self._shared is None:
            from adapters.azure_common import ClientTuning, default_transport, fetch_cloud

            tuning = self._tuning or ClientTuning()
            transport = self._transport or default_transport(tuning)
            cloud = fetch_cloud(self.settings.cloud, self.settings.cloud_metadata_url, transport, tuning)
            credential = self._credential or _default_credential(cloud)
            self._shared = _Shared(credential, transport, cloud, tuning)
        return self._shared


def _default_credential(cloud: CloudEndpoints) -> TokenCredential:
    """``DefaultAzureCredential`` for ``cloud``: managed identity in Azure, the developer's login locally."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(authority=cloud.authority_host)
