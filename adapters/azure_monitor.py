"""``MetricsPort`` over Azure Monitor: the only module of the app that imports the Monitor clients.

Two sources, one contract (``deployment_metrics(endpoint, deployments, start, end)``; errors are
requests answered 5xx or 424):

- ``PlatformMetrics``: the online endpoint's platform metrics through the per-resource ARM
  metrics API (azure-mgmt-monitor ``MonitorManagementClient.metrics.list``, api-version
  2024-02-01). ONE request per health check: ``RequestsPerMinute`` split by ``deployment`` and
  ``statusCode`` (the status code, not only its class, is needed to count 424) and
  ``RequestLatency_P99`` split by ``deployment``, both ``average`` at ``PT1M``, with
  ``ValidateDimensions=false`` so that the one ``$filter`` may name ``statusCode``, which only
  the first metric has (what the Azure portal sends). Reading access: Monitoring Reader on the
  workspace or endpoint.
- ``LogAnalyticsMetrics``: one KQL query over ``AmlOnlineEndpointTrafficLog`` in a Log Analytics
  workspace (azure-monitor-query ``LogsQueryClient``): counts and a true p99 of
  ``TotalDurationMs`` per deployment over all requests of the window.

Time: queries end ``lag_seconds`` (default 60) before the requested ``end``, so that data Azure
has not ingested yet is not read as "no requests, no errors". Platform metrics have one-minute
grain: the query covers whole minutes, from the minute ``start`` falls in to the last minute
that ended ``lag_seconds`` before ``end``. When nothing is left, no request is made and every
deployment reports zero requests (which the policy treats as inconclusive, never as healthy).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.core.pipeline.transport import HttpTransport
from azure.mgmt.monitor import MonitorManagementClient
from azure.monitor.query import LogsQueryClient, LogsQueryStatus

from adapters.azure_common import (
    LOGS_ROLE_HINT,
    METRICS_ROLE_HINT,
    ClientTuning,
    CloudEndpoints,
    bounded_retry_policy,
    translate,
)
from rollout.errors import ServiceError, TransientError
from rollout.model import DeploymentMetrics, WorkspaceRef

T = TypeVar("T")

REQUESTS_METRIC = "RequestsPerMinute"
LATENCY_METRIC = "RequestLatency_P99"
METRIC_NAMESPACE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
METRICS_FILTER = "deployment eq '*' and statusCode eq '*'"
METRICS_TOP = 200


def build_monitor_client(subscription_id: str, credential: TokenCredential, cloud: CloudEndpoints,
                         transport: HttpTransport, tuning: ClientTuning) -> MonitorManagementClient:
    """A ``MonitorManagementClient`` for ``cloud``'s Resource Manager, on the shared transport."""
    return MonitorManagementClient(credential, subscription_id, base_url=cloud.resource_manager,
                                   credential_scopes=[cloud.arm_scope], transport=transport,
                                   retry_policy=bounded_retry_policy(tuning))


def build_logs_client(credential: TokenCredential, cloud: CloudEndpoints, transport: HttpTransport,
                      tuning: ClientTuning) -> LogsQueryClient:
    """A ``LogsQueryClient`` for ``cloud``'s Log Analytics endpoint (and token audience)."""
    if not cloud.log_analytics:
        raise ServiceError(f"cloud {cloud.name!r} has no Log Analytics endpoint in its metadata")
    return LogsQueryClient(credential, endpoint=cloud.log_analytics, audience=cloud.log_analytics,
                           transport=transport, retry_policy=bounded_retry_policy(tuning))


def is_error_status(code: Any) -> bool:
    """Whether an HTTP status code counts as an error: 5xx, or 424 (the model container failed)."""
    try:
        status = int(str(code).strip())
    except ValueError:
        return False
    return status == 424 or 500 <= status <= 599


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def minute_window(start: datetime, end: datetime, lag_seconds: float) -> tuple[datetime, datetime] | None:
    """Whole minutes to query for [start, end): start's minute up to the last minute ended by end - lag.

    None when no whole minute is left.
    """
    first = _utc(start).replace(second=0, microsecond=0)
    last = (_utc(end) - timedelta(seconds=lag_seconds)).replace(second=0, microsecond=0)
    return (first, last) if last > first else None


def _none_served(deployments: Sequence[str]) -> dict[str, DeploymentMetrics]:
    return {name: DeploymentMetrics(0, 0, None) for name in deployments}


class PlatformMetrics:
    """``MetricsPort`` from the online endpoint's platform metrics (one ARM request per call)."""

    def __init__(self, client: MonitorManagementClient, workspace: WorkspaceRef, lag_seconds: float = 60.0) -> None:
        self._client = client
        self.workspace = workspace
        self.lag_seconds = lag_seconds

    def deployment_metrics(self, endpoint: str, deployments: Sequence[str], start: datetime,
                           end: datetime) -> dict[str, DeploymentMetrics]:
        """Requests, errors (5xx + 424) and p99 latency of each named deployment over [start, end).

        Minutes without a value count nothing (never zero errors out of some requests). The
        window's p99 is the highest per-minute p99 (``RequestLatency_P99`` is a p99 per
        minute): a bound the true p99 of the window cannot exceed.
        """
        window = minute_window(start, end, self.lag_seconds)
        if window is None or not deployments:
            return _none_served(deployments)
        response = self._query(endpoint, *window)
        metrics = {_name(metric): metric for metric in response.value or []}
        for metric in metrics.values():
            if (metric.error_code or "Success") != "Success":
                raise ServiceError(f"metric {_name(metric)} of endpoint {endpoint!r}: "
                                   f"{metric.error_code}: {metric.error_message}")
        requests = metrics.get(REQUESTS_METRIC.lower())
        if requests is not None and len(requests.timeseries or []) >= METRICS_TOP:
            raise ServiceError(f"{REQUESTS_METRIC} of endpoint {endpoint!r} came back with {METRICS_TOP} series, "
                               "the most one query returns: counts could be incomplete")
        counts = _request_counts(requests)
        latency = _latency_maxima(metrics.get(LATENCY_METRIC.lower()))
        return {name: _combine(counts.get(name.lower()), latency.get(name.lower())) for name in deployments}

    def _query(self, endpoint: str, first: datetime, last: datetime) -> Any:
        action = f"reading the metrics of endpoint {endpoint!r}"
        try:
            return self._client.metrics.list(
                self.workspace.endpoint_id(endpoint).lstrip("/"),
                timespan=f"{_iso(first)}/{_iso(last)}",
                interval="PT1M",
                metricnames=f"{REQUESTS_METRIC},{LATENCY_METRIC}",
                aggregation="average",
                filter=METRICS_FILTER,
                top=METRICS_TOP,
                metricnamespace=METRIC_NAMESPACE,
                validate_dimensions=False,
            )
        except AzureError as exc:
            raise translate(exc, action, METRICS_ROLE_HINT) from exc


def _name(metric: Any) -> str:
    return str(getattr(metric.name, "value", metric.name) or "").lower()


def _dimensions(series: Any) -> dict[str, str]:
    """A time series' dimension values by lower-cased dimension name (Azure lower-cases them)."""
    return {str(getattr(m.name, "value", m.name)).lower(): str(m.value) for m in series.metadatavalues or []}


def _values(series: Any) -> Iterable[float]:
    """The per-minute averages that exist: a minute without data has no value, not zero."""
    return (point.average for point in series.data or [] if point.average is not None)


def _request_counts(metric: Any) -> dict[str, tuple[float, float]]:
    """(requests, errors) per lower-cased deployment name."""
    found: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for series in getattr(metric, "timeseries", None) or []:
        dims = _dimensions(series)
        served = sum(_values(series))
        totals = found[dims.get("deployment", "").lower()]
        totals[0] += served
        if is_error_status(dims.get("statuscode")):
            totals[1] += served
    return {name: (totals[0], totals[1]) for name, totals in found.items()}


def _latency_maxima(metric: Any) -> dict[str, float]:
    """The highest per-minute p99 per lower-cased deployment name.

    Raises ``ServiceError`` when latency came back without the deployment split (it cannot be
    attributed; failing the check is safer than reading it as "no latency").
    """
    found: dict[str, float] = {}
    for series in getattr(metric, "timeseries", None) or []:
        values = list(_values(series))
        deployment = _dimensions(series).get("deployment")
        if values and not deployment:
            raise ServiceError(f"{LATENCY_METRIC} came back without the deployment dimension")
        if values and deployment:
            found[deployment.lower()] = max(found.get(deployment.lower(), -math.inf), *values)
    return found


def _combine(counts: tuple[float, float] | None, p99: float | None) -> DeploymentMetrics:
    requests, errors = counts or (0.0, 0.0)
    served = int(round(requests))
    return DeploymentMetrics(served, min(served, int(round(errors))), p99 if served else None)


# ---------------------------------------------------------------------------------------------
# Log Analytics


def kql_string(value: str) -> str:
    """A KQL string literal for ``value``."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _kql_time(moment: datetime) -> str:
    return f"datetime({_utc(moment).strftime('%Y-%m-%dT%H:%M:%S.%fZ')})"


def traffic_query(workspace_name: str, endpoint: str, deployments: Sequence[str], start: datetime, end: datetime) -> str:
    """The KQL: per deployment, requests, 5xx, 424 and the p99 of ``TotalDurationMs`` over [start, end)."""
    names = ", ".join(kql_string(name) for name in deployments)
    return "\n".join([
        "AmlOnlineEndpointTrafficLog",
        f"| where TimeGenerated >= {_kql_time(start)} and TimeGenerated < {_kql_time(end)}",
        f"| where AzureMLWorkspaceName =~ {kql_string(workspace_name)} and EndpointName =~ {kql_string(endpoint)}",
        f"| where DeploymentName in~ ({names})",
        "| extend Code = toint(ResponseCode)",
        "| summarize Requests = count(), Errors5xx = countif(Code >= 500 and Code <= 599),",
        "    ModelErrors = countif(Code == 424), P99Ms = percentile(TotalDurationMs, 99)",
        "    by DeploymentName = tolower(DeploymentName)",
    ])


class LogAnalyticsMetrics:
    """``MetricsPort`` from ``AmlOnlineEndpointTrafficLog`` in a Log Analytics workspace (one query per call)."""

    def __init__(self, client: LogsQueryClient, workspace: WorkspaceRef, log_analytics_workspace_id: str,
                 lag_seconds: float = 60.0, server_timeout: int = 50) -> None:
        self._client = client
        self.workspace = workspace
        self.log_analytics_workspace_id = log_analytics_workspace_id
        self.lag_seconds = lag_seconds
        self.server_timeout = server_timeout

    def deployment_metrics(self, endpoint: str, deployments: Sequence[str], start: datetime,
                           end: datetime) -> dict[str, DeploymentMetrics]:
        """Requests, errors (5xx + 424) and the p99 of ``TotalDurationMs`` per deployment over [start, end - lag).

        A partial result is an error (``TransientError``), never a count.
        """
        first, last = _utc(start), _utc(end) - timedelta(seconds=self.lag_seconds)
        if last <= first or not deployments:
            return _none_served(deployments)
        query = traffic_query(self.workspace.workspace_name, endpoint, deployments, first, last)
        result = self._run(f"querying the traffic log of endpoint {endpoint!r}",
                           lambda: self._client.query_workspace(self.log_analytics_workspace_id, query,
                                                                timespan=(first, last),
                                                                server_timeout=self.server_timeout))
        if result.status == LogsQueryStatus.PARTIAL:
            error = result.partial_error
            raise TransientError(f"the traffic log query of endpoint {endpoint!r} returned partial results "
                                 f"({getattr(error, 'code', '')}: {getattr(error, 'message', '')})")
        rows = _rows(result.tables[0]) if result.tables else {}
        return {name: rows.get(name.lower(), DeploymentMetrics(0, 0, None)) for name in deployments}

    def _run(self, action: str, work: Callable[[], T]) -> T:
        try:
            return work()
        except AzureError as exc:
            raise translate(exc, action, LOGS_ROLE_HINT) from exc


def _rows(table: Any) -> dict[str, DeploymentMetrics]:
    """Per lower-cased deployment name, read by column name (extra columns are ignored)."""
    found = {}
    for row in table.rows:
        record: Mapping[str, Any] = dict(zip(table.columns, row, strict=False))
        requests = int(record.get("Requests") or 0)
        errors = int(record.get("Errors5xx") or 0) + int(record.get("ModelErrors") or 0)
        p99 = record.get("P99Ms")
        found[str(record.get("DeploymentName", "")).lower()] = DeploymentMetrics(
            requests, errors, float(p99) if p99 is not None and requests else None)
    return found


AUTOSCALE_ROLE_HINT = (
    "The app's identity needs Microsoft.Insights/autoscalesettings/read, /write and /delete on the "
    "resource group (the 'Monitoring Contributor' role has them)."
)


class AzureAutoscale:
    """``AutoscalePort`` over ``MonitorManagementClient.autoscale_settings`` (api-version 2022-10-01) for one
    resource group. Bodies are REST-shaped dicts (``properties.profiles``, capacities as strings).

    ``put_setting`` is one synchronous PUT (no long-running operation); ``delete_setting`` is one
    DELETE, a missing setting (404) counting as deleted; ``get_setting`` is one GET (404: None).
    """

    def __init__(self, client: MonitorManagementClient, workspace: WorkspaceRef) -> None:
        self._client = client
        self.workspace = workspace

    def _call(self, action: str, work: Callable[[], T]) -> T:
        try:
            return work()
        except AzureError as exc:
            raise translate(exc, action, AUTOSCALE_ROLE_HINT) from exc

    def get_setting(self, name: str) -> dict[str, Any] | None:
        try:
            found = self._client.autoscale_settings.get(self.workspace.resource_group, name)
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise translate(exc, f"reading autoscale setting {name!r}", AUTOSCALE_ROLE_HINT) from exc
        return dict(found.serialize(keep_readonly=True))

    def put_setting(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        from azure.mgmt.monitor.models import AutoscaleSettingResource

        resource = AutoscaleSettingResource.from_dict(dict(body))
        written = self._call(f"writing autoscale setting {name!r}", lambda: self._client.autoscale_settings.create_or_update(
            self.workspace.resource_group, name, resource))
        return dict(written.serialize(keep_readonly=True))

    def delete_setting(self, name: str) -> None:
        try:
            self._client.autoscale_settings.delete(self.workspace.resource_group, name)
        except ResourceNotFoundError:
            return
        except AzureError as exc:
            raise translate(exc, f"deleting autoscale setting {name!r}", AUTOSCALE_ROLE_HINT) from exc
