"""``LifecyclePort`` over azure-ai-ml: create, scale and delete deployments, create endpoints, read
their operations, container logs, VM sizes and quota (the calls and their requests: ``AzureMLLifecycle``).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, TypeVar

from azure.ai.ml import MLClient
from azure.ai.ml.entities import (
    CodeConfiguration,
    Environment,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    OnlineDeployment,
    OnlineRequestSettings,
    ProbeSettings,
)
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from azure.core.pipeline.transport import HttpTransport

from adapters.azure_common import (
    ML_ROLE_HINT,
    ClientTuning,
    CloudEndpoints,
    bounded_retry_policy,
    service_message,
    translate,
)
from adapters.azure_ml.endpoints import endpoint_state, enum_text
from rollout.capacity import QuotaUsage, VmSize
from rollout.deployment_spec import (
    AssetRef,
    DeploymentSpec,
    EndpointSpec,
    InlineEnvironment,
    ObservedDeployment,
    Probe,
    RequestSettings,
)
from rollout.errors import ResourceNotFound, ServiceError
from rollout.model import WorkspaceRef, normalize_traffic
from rollout.operation import NOT_FOUND, TERMINAL_FAILURES, Observed, OperationStart

T = TypeVar("T")


class OperationUrls:
    """Remembers, per thread, the ``Azure-AsyncOperation`` (or ``Location``) URL of the last PUT or DELETE answer.

    Installed as the ``MLClient``'s ``raw_response_hook`` (an azure-core pipeline option), so a
    ``begin_*`` call can hand the operation's URL to the orchestrator: the operation is then
    polled later, from another activity, and its error read from that URL once it failed.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def hook(self, response: Any) -> None:
        """The pipeline hook: record the operation URL of a PUT/DELETE answer."""
        http = getattr(response, "http_response", None)
        request = getattr(http, "request", None)
        if http is None or request is None or getattr(request, "method", "") not in ("PUT", "DELETE"):
            return
        headers = {k.lower(): v for k, v in http.headers.items()}
        url = headers.get("azure-asyncoperation") or headers.get("location")
        if url:
            self._local.last = (str(request.url).split("?", 1)[0].lower(), url)

    def take(self, resource_path: str) -> str | None:
        """The URL recorded for the last write of ``resource_path`` on this thread (consumed)."""
        last = getattr(self._local, "last", None)
        self._local.last = None
        if last and last[0].endswith(resource_path.lower()):
            return str(last[1])
        return None


ANONYMOUS_ENVIRONMENT = "CliV2AnonymousEnvironment"
"""The name azure-ai-ml registers an inline ``Environment(image, conda_file)`` under (version: a content hash)."""


def _rest_error(exc: AzureError) -> str:
    """The service's message with the first detail's, where Azure hides the cause (OutOfQuota arrives as
    ``BadRequest: The request is invalid.`` with the quota text in ``details[0]``)."""
    error = getattr(exc, "error", None)
    details = getattr(error, "details", None) or []
    text = service_message(exc)
    cause: BaseException | None = exc
    while not text.strip() and cause is not None:   # azure-ai-ml's MlException wraps the refusal in blank lines
        cause = cause.__cause__ or cause.__context__
        text = "" if cause is None else str(getattr(cause, "message", None) or cause).strip().splitlines()[0]
    if details:
        first = details[0]
        text += f" ({getattr(first, 'code', '')}: {getattr(first, 'message', '')})"
    return text


class AzureMLLifecycle:
    """``LifecyclePort`` for one workspace, over an ``MLClient`` whose ``raw_response_hook`` is ``urls.hook``.

    Calls (azure-ai-ml 1.35.2) and their requests:

    - ``begin_create_endpoint``: GET the endpoint; when missing, GET the workspace and PUT the
      endpoint (auth mode, description, no traffic), returning without waiting.
    - ``begin_create_deployment``: GET the deployment; when missing, the SDK GETs the endpoint and
      the workspace (and PUTs an anonymous environment for ``{image, conda_file}``), then PUTs the
      deployment (201 + ``Azure-AsyncOperation``).
    - ``begin_scale``: GET the deployment; unless it already has the count, PUT it back with the new
      ``sku.capacity``.
    - ``begin_delete``: GET the endpoint (refusing while the deployment holds live or mirror
      traffic), GET the deployment (gone: nothing to do), DELETE it (202 + ``Location``).
    - ``deployment_status``/``endpoint_status``: GET the resource; once ``Failed`` or ``Canceled``,
      GET the operation URL for Azure's error.
    - ``get_logs``: POST ``getLogs`` with ``tail`` and the container type; ``vm_size`` and
      ``quota_usages``: GET ``vmSizes`` and ``usages`` of the workspace's region.

    The SDK's own poller of a started operation may keep polling in the background until the
    operation ends; nothing waits on it.
    """

    def __init__(self, client: MLClient, workspace: WorkspaceRef, urls: OperationUrls,
                 read_operation: Callable[[str], dict[str, Any]]) -> None:
        self._ml = client
        self.workspace = workspace
        self._urls = urls
        self._read_operation = read_operation
        self._location: str | None = None

    def _call(self, action: str, work: Callable[[], T]) -> T:
        try:
            return work()
        except AzureError as exc:
            found = translate(exc, f"{action} in workspace {self.workspace.workspace_name!r}", ML_ROLE_HINT)
            if type(found) is ServiceError:
                found = ServiceError(f"{action}: {_rest_error(exc)}")
            raise found from exc

    def _deployment_path(self, endpoint: str, deployment: str) -> str:
        return f"{self.workspace.endpoint_id(endpoint)}/deployments/{deployment}"

    def arm_workspace(self) -> WorkspaceRef:
        return self.workspace

    def location(self) -> str:
        """The workspace's region (read once)."""
        if self._location is None:
            workspace = self._call("reading the workspace", lambda: self._ml.workspaces.get(self.workspace.workspace_name))
            self._location = str(workspace.location)
        return self._location

    def _maybe(self, work: Callable[[], T]) -> T | None:
        try:
            return work()
        except ResourceNotFound:
            return None

    # --- endpoint ---------------------------------------------------------------------------

    def begin_create_endpoint(self, endpoint: str, spec: EndpointSpec) -> OperationStart:
        action = f"creating endpoint {endpoint!r}"
        if self._maybe(lambda: self._call(action, lambda: self._ml.online_endpoints.get(endpoint))) is not None:
            return OperationStart(False, None, f"endpoint {endpoint!r} exists")
        entity = ManagedOnlineEndpoint(name=endpoint, auth_mode=spec.auth_mode, description=spec.description)
        self._call(action, lambda: self._ml.online_endpoints.begin_create_or_update(entity))
        return OperationStart(True, self._urls.take(self.workspace.endpoint_id(endpoint)))

    def endpoint_status(self, endpoint: str, operation_url: str | None = None) -> Observed:
        found = self._maybe(lambda: self._call(f"reading endpoint {endpoint!r}",
                                               lambda: self._ml.online_endpoints.get(endpoint)))
        if found is None:
            return Observed(NOT_FOUND)
        return self._with_error(Observed(enum_text(found.provisioning_state)), operation_url)

    # --- deployment ---------------------------------------------------------------------------

    def read_deployment(self, endpoint: str, deployment: str) -> ObservedDeployment | None:
        found = self._maybe(lambda: self._get(endpoint, deployment))
        return None if found is None else self._observed(found)

    def _get(self, endpoint: str, deployment: str) -> OnlineDeployment:
        return self._call(f"reading deployment {deployment!r} of endpoint {endpoint!r}",
                          lambda: self._ml.online_deployments.get(deployment, endpoint))

    def _observed(self, d: OnlineDeployment) -> ObservedDeployment:
        environment_id = str(d.environment or "")
        environment: str | InlineEnvironment = environment_id
        if f"/environments/{ANONYMOUS_ENVIRONMENT.lower()}/" in environment_id.lower():
            name, version = environment_id.rstrip("/").split("/")[-3::2]
            env = self._call("reading the deployment's environment", lambda: self._ml.environments.get(name, version))
            environment = InlineEnvironment(str(env.image), dict(env.conda_file or {}) or None)
        code = d.code_configuration
        rs = d.request_settings
        return ObservedDeployment(
            model=str(d.model or ""), environment=environment, instance_type=str(d.instance_type or ""),
            code=None if code is None else str(code.code), scoring_script=None if code is None else str(code.scoring_script),
            # azure-ai-ml 1.35.2 reads maxQueueWait "PT0.5S" back as 0 ms (whole seconds): unknown, not compared.
            request_settings=None if rs is None else RequestSettings(
                rs.request_timeout_ms, rs.max_concurrent_requests_per_instance, None),
            liveness_probe=_probe(d.liveness_probe), readiness_probe=_probe(d.readiness_probe),
            environment_variables=dict(d.environment_variables or {}),
            app_insights_enabled=bool(d.app_insights_enabled))

    def begin_create_deployment(self, endpoint: str, deployment: str, spec: DeploymentSpec) -> OperationStart:
        action = f"creating deployment {deployment!r} of endpoint {endpoint!r}"
        if self._maybe(lambda: self._get(endpoint, deployment)) is not None:
            return OperationStart(False, None, f"deployment {deployment!r} exists")
        entity = _deployment_entity(endpoint, deployment, spec)
        self._call(action, lambda: self._ml.online_deployments.begin_create_or_update(entity, skip_script_validation=True))
        return OperationStart(True, self._urls.take(self._deployment_path(endpoint, deployment)))

    def deployment_status(self, endpoint: str, deployment: str, operation_url: str | None = None) -> Observed:
        found = self._maybe(lambda: self._get(endpoint, deployment))
        if found is None:
            return Observed(NOT_FOUND)
        seen = Observed(enum_text(found.provisioning_state), int(found.instance_count or 0))
        return self._with_error(seen, operation_url)

    def _with_error(self, seen: Observed, operation_url: str | None) -> Observed:
        """Add Azure's error from the operation's status once the resource ``Failed`` or was ``Canceled``."""
        if seen.state not in TERMINAL_FAILURES or not operation_url:
            return seen
        body = self._call("reading the failed operation", lambda: self._read_operation(operation_url))
        error = body.get("error") or {}
        message = str(error.get("message") or "")
        details = error.get("details") or []
        if details and isinstance(details[0], dict):
            message += f" ({details[0].get('code')}: {details[0].get('message')})"
        return Observed(seen.state, seen.instance_count, error.get("code"), message or None)

    def begin_scale(self, endpoint: str, deployment: str, instance_count: int) -> OperationStart:
        action = f"scaling deployment {deployment!r} of endpoint {endpoint!r} to {instance_count}"
        current = self._get(endpoint, deployment)
        if current.instance_count == instance_count:
            return OperationStart(False, None, f"{deployment!r} already has {instance_count} instances")
        current.instance_count = instance_count
        self._call(action, lambda: self._ml.online_deployments.begin_create_or_update(current,
                                                                                     skip_script_validation=True))
        return OperationStart(True, self._urls.take(self._deployment_path(endpoint, deployment)))

    def begin_delete(self, endpoint: str, deployment: str) -> OperationStart:
        action = f"deleting deployment {deployment!r} of endpoint {endpoint!r}"
        state = endpoint_state(self._call(f"reading endpoint {endpoint!r}", lambda: self._ml.online_endpoints.get(endpoint)))
        held = {**normalize_traffic(state.mirror_traffic), **normalize_traffic(state.traffic)}.get(deployment.lower())
        if held:
            raise ServiceError(f"{action}: refused, it still holds {held}% of the traffic")
        if self._maybe(lambda: self._get(endpoint, deployment)) is None:
            return OperationStart(False, None, f"deployment {deployment!r} does not exist")
        self._call(action, lambda: self._ml.online_deployments.begin_delete(name=deployment, endpoint_name=endpoint))
        return OperationStart(True, self._urls.take(self._deployment_path(endpoint, deployment)))

    def get_logs(self, endpoint: str, deployment: str, lines: int, container_type: str = "inference-server") -> str:
        return str(self._call(f"reading the logs of deployment {deployment!r}", lambda: self._ml.online_deployments.get_logs(
            deployment, endpoint, lines, container_type=container_type)))

    # --- quota -----------------------------------------------------------------------------------

    def vm_size(self, instance_type: str) -> VmSize | None:
        sizes = self._call("listing VM sizes", lambda: list(self._ml.compute.list_sizes(location=self.location())))
        for size in sizes:
            if str(size.name).lower() == instance_type.lower():
                # VmSize._from_rest_object copies the REST model's ``as_dict()``, whose keys are the REST names:
                # vCPUs arrive as attribute ``vCPUs`` (the entity's own ``v_cp_us`` stays None).
                vcpus = vars(size).get("vCPUs") or size.v_cp_us or 0
                return VmSize(str(size.name), str(size.family), int(vcpus))
        return None

    def quota_usages(self) -> list[QuotaUsage]:
        usages = self._call("reading Azure ML quota", lambda: list(self._ml.compute.list_usage(location=self.location())))
        return [_usage(u) for u in usages]


def _usage(usage: Any) -> QuotaUsage:
    """A quota line from an azure-ai-ml ``Usage``. ``Usage._from_rest_object`` copies the REST model's
    ``as_dict()``, so in 1.35.2 the fields arrive under their REST names (``currentValue``, ``name`` a
    dict); the entity's own attributes (``current_value``, ``name.value``) are read when set."""
    fields = vars(usage)
    name = fields.get("name")
    text = name.get("value") if isinstance(name, dict) else getattr(name, "value", name)
    current = fields.get("currentValue", getattr(usage, "current_value", None))
    return QuotaUsage(str(text), int(current or 0), int(fields.get("limit") or 0))


def _probe(probe: Any) -> Probe | None:
    if probe is None:
        return None
    return Probe(probe.initial_delay, probe.period, probe.timeout, probe.failure_threshold, probe.success_threshold)


def _sdk_id(ref: AssetRef) -> str:
    """The id azure-ai-ml 1.35.2 resolves: a workspace ``azureml:NAME@LABEL`` without its prefix (with it, the SDK
    lists the versions of an asset named ``azureml:NAME`` and finds none); anything else as given."""
    return f"{ref.name}@{ref.label}" if ref.label is not None and ref.registry is None else ref.text


def _deployment_entity(endpoint: str, deployment: str, spec: DeploymentSpec) -> ManagedOnlineDeployment:
    """The azure-ai-ml entity for a spec: asset references passed as given (the SDK resolves ``azureml:``
    ids locally); an inline environment becomes an ``Environment`` the SDK registers anonymously."""
    env = spec.environment
    environment: str | Environment = _sdk_id(env) if isinstance(env, AssetRef) else Environment(
        image=env.image, conda_file=None if env.conda_file is None else dict(env.conda_file))
    code = spec.code_configuration
    rs = spec.request_settings
    return ManagedOnlineDeployment(
        name=deployment, endpoint_name=endpoint, model=_sdk_id(spec.model), environment=environment,
        code_configuration=None if code is None else CodeConfiguration(code=code.code.text,
                                                                       scoring_script=code.scoring_script),
        instance_type=spec.instance_type, instance_count=spec.instance_count,
        request_settings=None if rs is None else OnlineRequestSettings(
            request_timeout_ms=rs.request_timeout_ms,
            max_concurrent_requests_per_instance=rs.max_concurrent_requests_per_instance,
            max_queue_wait_ms=rs.max_queue_wait_ms),
        liveness_probe=None if spec.liveness_probe is None else ProbeSettings(**vars(spec.liveness_probe)),
        readiness_probe=None if spec.readiness_probe is None else ProbeSettings(**vars(spec.readiness_probe)),
        environment_variables=None if spec.environment_variables is None else dict(spec.environment_variables),
        app_insights_enabled=spec.app_insights_enabled)


def build_operation_reader(credential: TokenCredential, cloud: CloudEndpoints, transport: HttpTransport,
                           tuning: ClientTuning) -> Callable[[str], dict[str, Any]]:
    """A function that GETs a long-running operation's status URL (on ``cloud``'s Resource Manager only)
    with the app's ARM token, returning its JSON (``{status, error{code, message, details}}``)."""
    from azure.core import PipelineClient
    from azure.core.pipeline.policies import BearerTokenCredentialPolicy
    from azure.core.rest import HttpRequest

    base = cloud.resource_manager.rstrip("/")
    client: PipelineClient[Any, Any] = PipelineClient(base, transport=transport, policies=[
        BearerTokenCredentialPolicy(credential, cloud.arm_scope), bounded_retry_policy(tuning)])

    def read(url: str) -> dict[str, Any]:
        if not url.lower().startswith(base.lower() + "/"):
            raise ServiceError(f"operation URL {url!r} is not on {base}; not following it with the app's token")
        response = client.send_request(HttpRequest("GET", url))
        response.raise_for_status()
        body = response.json()
        return body if isinstance(body, dict) else {}

    return read
