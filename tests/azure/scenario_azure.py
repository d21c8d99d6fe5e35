"""A fake Azure whose endpoint, deployments, metrics and logs come from a simulated world.

``ScenarioAzure`` is the loopback ``FakeAzure`` (same TLS, recording, scripted faults, long-running
operations, cloud metadata) serving the world a scenario describes instead of canned bodies:
``load(scenario, now)`` builds it with ``emulator.simulate.build_workspace`` on the clock ``now``
(the simulation's virtual clock), and from then on

- **ARM, Azure ML.** ``GET`` endpoint: the fixture body (auth mode, identity, tags, as the last
  PUT left them) with ``traffic``, ``mirrorTraffic`` and ``provisioningState`` read from the
  ``SimulatedWorkspace``. ``PUT`` endpoint: the body's absolute ``traffic`` and ``mirrorTraffic``
  go to ``SimulatedWorkspace.update_traffic``, which enforces the service's rules and records the
  change at the clock's time (``ServiceError`` -> 400 with ARM's error body, ``UpdateConflict`` ->
  409, e.g. within the scenario's ``update_seconds``); then 201 + ``Azure-AsyncOperation``, the
  operation ``Succeeded`` after ``polls_before_done`` polls (polled in real time, a few ms, while
  the virtual clock stands still: the change is in force from the PUT's virtual time, as in
  memory). Deployments (list, GET) are the world's ``DeploymentState``\\ s. The endpoint exists
  only when the scenario says so (``endpoint.exists``); a ``PUT`` of a missing one creates it.
- **The deployment lifecycle** (``tests/azure/scenario_lifecycle.py``, ``LifecycleRoutes``):
  endpoint and deployment creation, scaling, deletion, ``getLogs``, the region's quota usages and
  VM sizes, their ``mfeOperationsStatus`` operations, and Monitor autoscale settings, all through
  the world's ``SimulatedLifecycle`` and ``SimulatedAutoscale``.
- **Monitor metrics** (``GET {endpoint}/providers/Microsoft.Insights/metrics``, series built by
  ``tests/azure/scenario_metrics.py``): computed from
  the world's traffic history and health segments for each minute of the requested ``timespan``
  (``interval`` ``PT1M``, ``aggregation`` ``average``): ``RequestsPerMinute`` split by the
  dimensions the ``$filter`` names with ``eq '*'`` (``deployment``, ``statusCode``): 200 for
  answered requests, errors three quarters 500 and one quarter 424; ``RequestLatency_P99`` by
  ``deployment``, the p99 in force while the deployment served in that minute. Values are the
  in-memory per-minute counts (``SyntheticMetrics.served``: the seeded noisy minutes, or exact
  fractional counts with ``seed: null``), so a window's sum is the in-memory count; a minute
  without requests has no ``average``; ``top`` cuts the series; without
  ``ValidateDimensions=false`` a ``statusCode`` filter is refused for the latency metric, as
  Azure does.
- **Log Analytics** (``POST /v1/workspaces/{id}/query``): only the adapter's
  ``AmlOnlineEndpointTrafficLog`` summary is understood (anything else is a 400): its time
  range, workspace, endpoint and deployment names are read from the KQL, intersected with the
  body's ``timespan``, and answered with one row per deployment that served requests: counts
  rounded as ``SyntheticMetrics`` rounds them (errors split ``Errors5xx``/``ModelErrors``) and
  the p99 in force.
- **Scenario faults** apply per REST request: ``get_endpoint`` to ``GET`` endpoint (which a
  traffic write through azure-ai-ml also makes), ``list_deployments`` to the deployments list of
  ``online_deployments.list`` (api-version ``2023-04-01-preview``; the list ``online_endpoints.get``
  makes on its own is left alone), ``set_traffic`` to the endpoint ``PUT``, ``metrics`` to both
  metric requests. Errors become their HTTP status: conflict 409, throttled 429 (+ ``Retry-After``),
  transient 503, not_found 404, permission 403, service 400.
- **Identity.** The loopback cloud's ``loginEndpoint`` is this server, which answers an AD FS
  style authority (tenant ``adfs``, as on Azure Stack Hub: no instance discovery): the OpenID
  configuration and a client-credentials token endpoint handing out ``TOKEN`` to
  ``CLIENT_ID``/``CLIENT_SECRET``. So ``DefaultAzureCredential`` (through ``EnvironmentCredential``)
  authenticates here with ``AZURE_TENANT_ID=adfs``, ``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET``.

Kept in ``tests/azure`` because it is ``FakeAzure`` (the test CA, the REST fixtures).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from emulator.scenario import Scenario
from emulator.simulate import build_workspace
from emulator.simulated_azure import SimulatedBackend, SyntheticMetrics, conflict
from rollout.errors import (
    AzureError,
    PermissionDenied,
    ResourceNotFound,
    ServiceError,
    Throttled,
    TransientError,
    UpdateConflict,
)
from rollout.model import DeploymentState
from tests.azure.fake_azure import TOKEN, Reply, _replace_endpoint, arm_error, fixture
from tests.azure.scenario_lifecycle import LifecycleRoutes
from tests.azure.scenario_metrics import (
    METRIC_DIMENSIONS,
    METRICS_TEMPLATE,
    latency_series,
    metrics_problem,
    request_series,
    split_dimensions,
)
from tests.azure.scenario_rest import conflict_reply
from tests.azure.tls import TestPki

CLIENT_ID = "aml-rollout-test-client"
CLIENT_SECRET = "aml-rollout-test-secret"
ADFS = "adfs"
LIST_DEPLOYMENTS_API = "2023-04-01-preview"
"""The api-version of ``online_deployments.list``; ``online_endpoints.get`` lists with its own."""

TRAFFIC_LOG_COLUMNS = [{"name": "DeploymentName", "type": "string"}, {"name": "Requests", "type": "long"},
                       {"name": "Errors5xx", "type": "long"}, {"name": "ModelErrors", "type": "long"},
                       {"name": "P99Ms", "type": "real"}]
_KQL_STRING = r'"((?:[^"\\]|\\.)*)"'
_KQL_SHAPE = [
    r"^AmlOnlineEndpointTrafficLog \|",
    r"\| where TimeGenerated >= datetime\((?P<start>[^)]+)\) and TimeGenerated < datetime\((?P<end>[^)]+)\) \|",
    rf"\| where AzureMLWorkspaceName =~ {_KQL_STRING} and EndpointName =~ {_KQL_STRING} \|",
    r"\| where DeploymentName in~ \((?P<names>[^)]*)\) \|",
    r"\| extend Code = toint\(ResponseCode\) \|",
    r"\| summarize Requests = count\(\), Errors5xx = countif\(Code >= 500 and Code <= 599\), "
    r"ModelErrors = countif\(Code == 424\), P99Ms = percentile\(TotalDurationMs, 99\) "
    r"by DeploymentName = tolower\(DeploymentName\)$",
]


def error_reply(error: AzureError) -> Reply:
    """The HTTP answer Azure gives for what the world raised (ARM's error body)."""
    headers = {} if not error.retry_after else {"Retry-After": str(math.ceil(error.retry_after))}
    if isinstance(error, UpdateConflict):
        return conflict_reply(error)
    if isinstance(error, Throttled):
        return 429, arm_error("TooManyRequests", str(error)), headers
    if isinstance(error, TransientError):
        return 503, arm_error("ServiceUnavailable", str(error)), headers
    if isinstance(error, ResourceNotFound):
        return 404, arm_error("ResourceNotFound", str(error)), headers
    if isinstance(error, PermissionDenied):
        return 403, arm_error("AuthorizationFailed", str(error)), headers
    if isinstance(error, ServiceError):   # the world's messages read "BadRequest: ..."
        return 400, arm_error("BadRequest", str(error).removeprefix("BadRequest: ")), headers
    return 500, arm_error("InternalServerError", str(error)), headers


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _timespan(text: str) -> tuple[datetime, datetime]:
    start, _, end = text.partition("/")
    return _parse_time(start), _parse_time(end)


class ScenarioAzure(LifecycleRoutes):
    """``FakeAzure`` serving one scenario's simulated world (see the module docstring)."""

    anonymous_prefixes = ("/metadata/", f"/{ADFS}/")

    def __init__(self, pki: TestPki, cloud_name: str, log_analytics_workspace_id: str) -> None:
        self.log_analytics_workspace_id = log_analytics_workspace_id
        super().__init__(pki, cloud_name)

    def reset(self) -> None:
        """Forget the world too, and the token requests."""
        with self._lock:
            super().reset()
            self.world: SimulatedBackend | None = None
            self.scenario: Scenario | None = None
            self.token_requests: list[dict[str, str]] = []

    def load(self, scenario: Scenario, now: Callable[[], datetime]) -> SimulatedBackend:
        """Forget everything and serve the world ``scenario`` describes, on the clock ``now``."""
        with self._lock:
            self.reset()
            self.world = build_workspace(scenario, now)     # with its own copies of the scenario's faults
            self.scenario = scenario
            self.add_workspace(scenario.workspace)
            if scenario.endpoint_exists:   # traffic is read from the world
                self.add_endpoint(scenario.workspace, scenario.endpoint_name, {})
            return self.world

    # ---- routing ---------------------------------------------------------------------------

    def _routes(self) -> list[tuple[str, str, Callable[..., Reply]]]:
        return [
            ("GET", rf"^/{ADFS}/\.well-known/openid-configuration$", self._openid_configuration),
            ("POST", rf"^/{ADFS}/oauth2/token$", self._token),
            *self._lifecycle_routes(),
            *super()._routes(),
        ]

    def _metadata(self, **kwargs: Any) -> Reply:
        status, clouds, headers = super()._metadata(**kwargs)
        for cloud in clouds:
            if cloud["name"] == self.cloud_name:
                cloud["authentication"]["loginEndpoint"] = self.base_url
        return status, clouds, headers

    def _fault(self, operation: str) -> Reply | None:
        """The reply for the scenario's fault on ``operation`` when one is active now, else None."""
        assert self.world is not None
        try:
            self.world.workspace.check_fault(operation)
        except AzureError as error:
            return error_reply(error)
        return None

    # ---- identity --------------------------------------------------------------------------

    def _openid_configuration(self, **_: Any) -> Reply:
        authority = f"{self.base_url}/{ADFS}"
        return 200, {"issuer": authority, "authorization_endpoint": f"{authority}/oauth2/authorize",
                     "token_endpoint": f"{authority}/oauth2/token"}, {}

    def _token(self, body: Any, **_: Any) -> Reply:
        form = dict(parse_qsl(body if isinstance(body, str) else ""))
        self.token_requests.append(form)
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client", "error_description": "Unknown client or wrong secret."}, {}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "Client credentials only."}, {}
        return 200, {"token_type": "Bearer", "access_token": TOKEN, "expires_in": 3600, "ext_expires_in": 3600}, {}

    # ---- Azure ML --------------------------------------------------------------------------

    def _endpoint_body(self, path: str) -> dict[str, Any]:
        """The stored ARM body with the world's traffic, mirror traffic and provisioning state."""
        assert self.world is not None
        body = copy.deepcopy(self.endpoints[path])
        state = self.world.workspace.endpoint(body["name"]).state()
        body["properties"].update(traffic=dict(state.traffic), mirrorTraffic=dict(state.mirror_traffic),
                                  provisioningState="Updating" if self._busy(path) else state.provisioning_state)
        return body

    def _fixture_deployment(self, endpoint_path: str, deployment: DeploymentState) -> dict[str, Any]:
        """A deployment the scenario made (not created through the SDK): the GET fixture's shape with the world's
        state, and its assets as the world reads them (unknown ones; none of the settings a spec would set)."""
        body = fixture("deployment_get_200.SYNTHETIC.json")
        body.update(id=f"{self.endpoints[endpoint_path]['id']}/deployments/{deployment.name}", name=deployment.name,
                    location=self.endpoints[endpoint_path]["location"])
        body["sku"]["capacity"] = deployment.instance_count
        observed = self._lifecycle().read_deployment(self.endpoints[endpoint_path]["name"], deployment.name)
        assert observed is not None and isinstance(observed.environment, str)
        for unknown in ("codeConfiguration", "requestSettings", "livenessProbe", "readinessProbe"):
            body["properties"].pop(unknown, None)
        body["properties"].update(instanceType=deployment.instance_type, provisioningState=deployment.provisioning_state,
                                  model=observed.model, environmentId=observed.environment,
                                  environmentVariables=dict(observed.environment_variables),
                                  appInsightsEnabled=observed.app_insights_enabled)
        return body

    def _deployments(self, endpoint_path: str) -> dict[str, DeploymentState]:
        assert self.world is not None
        name = self.endpoints[endpoint_path]["name"]
        return dict(self.world.workspace.endpoint(name).deployments)

    def _get_endpoint(self, path: str, ep: str, **_: Any) -> Reply:
        if path not in self.endpoints:
            return 404, arm_error("UserError", f"Could not find online endpoint '{ep}'."), {}
        return self._fault("get_endpoint") or (200, self._endpoint_body(path), {})

    def _list_deployments(self, path: str, ep: str, query: dict[str, str] | None = None, **_: Any) -> Reply:
        endpoint_path = path.rsplit("/deployments", 1)[0]
        if endpoint_path not in self.endpoints:
            return 404, arm_error("UserError", f"Could not find online endpoint '{ep}'."), {}
        fault = self._fault("list_deployments") if (query or {}).get("api-version") == LIST_DEPLOYMENTS_API else None
        return fault or (200, {"value": [self._deployment_body(endpoint_path, d)
                                         for d in self._deployments(endpoint_path).values()]}, {})

    def _get_deployment(self, path: str, dep: str, **_: Any) -> Reply:
        endpoint_path = path.rsplit("/deployments/", 1)[0]
        found = self._deployments(endpoint_path).get(dep) if endpoint_path in self.endpoints else None
        if found is None:
            return 404, arm_error("UserError", f"Could not find online deployment '{dep}'."), {}
        return 200, self._deployment_body(endpoint_path, found), {}

    def _put_endpoint(self, path: str, sub: str, ep: str, query: dict[str, str], body: Any, **_: Any) -> Reply:
        assert self.world is not None
        current = self.endpoints.get(path)
        if current is None:
            return self._create_endpoint(path, sub, ep, query, body)
        fault = self._fault("set_traffic")
        if fault is not None:
            return fault
        if self._busy(path):
            return conflict_reply(conflict(self.world.workspace.workspace, f"endpoint {ep!r} is Updating"))
        if not isinstance(body, dict) or "location" not in body or "authMode" not in body.get("properties", {}):
            return 400, arm_error("BadArgument", "The request body must carry location and properties.authMode."), {}
        sent = body["properties"]
        try:
            self.world.workspace.update_traffic(ep, sent.get("traffic") or {}, sent.get("mirrorTraffic") or {},
                                                by="PUT through the SDK")
        except AzureError as error:
            return error_reply(error)
        self.endpoints[path] = _replace_endpoint(current, body)   # what the body leaves out is gone
        # The world applied the update at once; the operation only has to be polled to its end.
        headers = self._start_operation(path, sub, current["location"], query, lambda outcome: None)
        return 201, self._endpoint_body(path), headers   # provisioningState Updating

    # ---- Monitor ---------------------------------------------------------------------------

    def _metrics(self, query: dict[str, str], path: str = "", **_: Any) -> Reply:
        assert self.world is not None
        endpoint_path = path.rsplit("/providers/", 1)[0]
        if endpoint_path not in self.endpoints:
            return 404, arm_error("ResourceNotFound", f"The resource {endpoint_path} was not found."), {}
        problem = metrics_problem(query)
        if problem:
            return 400, arm_error("BadRequest", problem), {}
        fault = self._fault("metrics")
        if fault is not None:
            return fault
        first, last = _timespan(query["timespan"])
        minutes = [first + timedelta(minutes=n) for n in range(max(0, int((last - first).total_seconds() // 60)))]
        split = split_dimensions(query.get("$filter", ""))
        deployments = list(self._deployments(endpoint_path).values())
        per_minute = {d.name: [self._served(d.name, m, m + timedelta(minutes=1)) for m in minutes] for d in deployments}
        top = int(query.get("top", "10"))
        value = []
        for name in query["metricnames"].split(","):
            dims = [d for d in split if d in METRIC_DIMENSIONS[name.lower()]]
            series = (request_series if name.lower() == "requestsperminute" else latency_series)(
                per_minute, minutes, dims)
            template = next(m for m in METRICS_TEMPLATE["value"] if m["name"]["value"].lower() == name.lower())
            value.append({**{k: v for k, v in template.items() if k != "timeseries"},
                          "id": f"{self.endpoints[endpoint_path]['id']}/providers/Microsoft.Insights/metrics/{name}",
                          "timeseries": series[:top]})
        return 200, {"cost": len(minutes) * len(value), "timespan": query["timespan"], "interval": "PT1M",
                     "namespace": METRICS_TEMPLATE["namespace"], "resourceregion": self.endpoints[endpoint_path]["location"],
                     "value": value}, {}

    def _served(self, name: str, start: datetime, end: datetime) -> tuple[float, float, float | None]:
        """Requests and errors (not rounded) and the highest p99 in force while ``name`` served in [start, end)."""
        assert self.world is not None and self.scenario is not None
        metrics = self.world.metrics(None, "platform")
        assert isinstance(metrics, SyntheticMetrics)
        return metrics.served(self.scenario.endpoint_name, name, start, end)

    def _query_logs(self, la: str = "", body: Any = None, **_: Any) -> Reply:
        assert self.world is not None and self.scenario is not None
        if la != self.log_analytics_workspace_id.lower():
            return 404, {"error": {"code": "WorkspaceNotFoundError", "message": f"Workspace {la} not found."}}, {}
        query = " ".join(str((body or {}).get("query", "")).split())
        fields: dict[str, Any] = {}
        for pattern in _KQL_SHAPE:
            match = re.search(pattern, query)
            if match is None:
                return 400, {"error": {"code": "BadArgumentError",
                                       "message": f"the scenario fake answers only the traffic summary; no {pattern!r}"}}, {}
            fields.update(match.groupdict())
            if "AzureMLWorkspaceName" in pattern:
                fields["workspace"], fields["endpoint"] = match.group(1), match.group(2)
        fault = self._fault("metrics")
        if fault is not None:
            return fault
        start, end = _parse_time(fields["start"]), _parse_time(fields["end"])
        if (body or {}).get("timespan"):
            span_start, span_end = _timespan(body["timespan"])
            start, end = max(start, span_start), min(end, span_end)
        names = {n.lower() for n in re.findall(_KQL_STRING, fields["names"])}
        rows = []
        same_place = (fields["workspace"].lower() == self.scenario.workspace.workspace_name.lower()
                      and fields["endpoint"].lower() == self.scenario.endpoint_name.lower())
        for deployment in self.world.workspace.endpoint(self.scenario.endpoint_name).deployments.values():
            if not same_place or deployment.name.lower() not in names or end <= start:
                continue
            requests, errors, p99 = self._served(deployment.name, start, end)
            counted, failed = int(round(requests)), int(round(errors))
            if counted:
                model_errors = failed // 4
                rows.append([deployment.name.lower(), counted, failed - model_errors, model_errors, p99])
        return 200, {"tables": [{"name": "PrimaryResult", "columns": TRAFFIC_LOG_COLUMNS, "rows": rows}]}, {}
