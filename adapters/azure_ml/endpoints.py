"""``EndpointPort`` over azure-ai-ml, and the ``MLClient`` every port of the package uses.

One ``MLClient`` per workspace, built by ``AzureBackend`` on first use and reused. Calls and the
HTTP requests azure-ai-ml 1.35.2 makes for them (api-versions: endpoints 2022-02-01-preview,
deployments 2023-04-01-preview, workspace 2024-10-01-preview):

- ``get_endpoint``: GET the endpoint (one request: the SDK's ``online_endpoints.get`` would also
  list the deployments, only to add zero shares to the traffic map, which ``normalize_traffic``
  drops anyway; ``_plain_get`` makes its first request alone and builds the same entity).
- ``list_deployments``: GET the deployments.
- ``set_traffic``: ``get_endpoint``; nothing more when the traffic (and mirror traffic, when
  given) is already in place, nor (``TrafficDrift``) when ``expected`` is given and the traffic
  is not that either: the drift check, in the write's own read. Otherwise change that very object (a freshly built
  ``ManagedOnlineEndpoint`` would reset auth mode, identity and tags), and PUT it whole: GET the
  workspace (for its location), PUT the endpoint (201 + ``Azure-AsyncOperation``), poll the
  operation until it ends, GET the endpoint. That last GET is the read-back returned. The SDK
  lower-cases deployment names and drops zero shares before sending. The PUT is
  last-writer-wins: Azure has no ETag on endpoints, so a change made by someone else between
  our GET and our PUT is overwritten (the orchestrator's drift check reads traffic before each
  step).

Failures raise ``rollout.errors`` (see ``adapters.azure_common.translate``). A long-running
operation still going after ``ClientTuning.lro_timeout`` raises ``TransientError``: Azure carries
on, and the orchestrator's retry finds the traffic in place or gets a 409 until it is.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, TypeVar

from azure.ai.ml import MLClient
from azure.ai.ml.entities import OnlineDeployment, OnlineEndpoint
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from azure.core.pipeline.transport import HttpTransport
from azure.core.polling import LROPoller

from adapters.azure_common import ML_ROLE_HINT, ClientTuning, CloudEndpoints, bounded_retry_policy, translate
from rollout.errors import TrafficDrift, TransientError
from rollout.model import DeploymentState, EndpointState, WorkspaceRef, normalize_traffic

T = TypeVar("T")


def build_ml_client(workspace: WorkspaceRef, credential: TokenCredential, cloud: CloudEndpoints,
                    transport: HttpTransport, tuning: ClientTuning,
                    response_hook: Callable[[Any], None] | None = None) -> MLClient:
    """An ``MLClient`` for ``workspace`` in ``cloud``, on the shared transport, with bounded retries.

    Clouds azure-ai-ml does not know by name are registered through its ``cloud_metadata``
    argument. Telemetry and progress output are off. ``response_hook`` sees every raw response
    (``OperationUrls.hook`` for the lifecycle port).
    """
    options: dict[str, Any] = {
        "cloud": cloud.name,
        "transport": transport,
        "retry_policy": bounded_retry_policy(tuning),
        "polling_interval": tuning.lro_poll_interval,
        "enable_telemetry": False,
        "show_progress": False,
    }
    if cloud.ml_cloud_metadata:
        options["cloud_metadata"] = dict(cloud.ml_cloud_metadata)
    if response_hook is not None:
        options["raw_response_hook"] = response_hook
    return MLClient(credential, workspace.subscription_id, workspace.resource_group, workspace.workspace_name,
                    **options)


def enum_text(value: Any) -> str:
    """An SDK enum (or plain string) as its string value."""
    return str(getattr(value, "value", value) or "")


def _shares(traffic: Mapping[str, Any] | None) -> dict[str, int]:
    """Traffic as integer shares, zero entries dropped, names as the service returned them."""
    return {name: int(share) for name, share in (traffic or {}).items() if int(share) != 0}


def endpoint_state(endpoint: OnlineEndpoint) -> EndpointState:
    """Our view of an azure-ai-ml ``OnlineEndpoint``."""
    return EndpointState(str(endpoint.name), enum_text(endpoint.provisioning_state),
                         _shares(endpoint.traffic), _shares(endpoint.mirror_traffic))


def deployment_state(deployment: OnlineDeployment) -> DeploymentState:
    """Our view of an azure-ai-ml ``OnlineDeployment``."""
    return DeploymentState(str(deployment.name), enum_text(deployment.provisioning_state),
                           int(deployment.instance_count or 0), deployment.instance_type)


class AzureMLEndpoints:
    """``EndpointPort`` for one workspace, over one ``MLClient``."""

    def __init__(self, client: MLClient, workspace: WorkspaceRef, lro_timeout: float = 240.0) -> None:
        self._ml = client
        self.workspace = workspace
        self._lro_timeout = lro_timeout

    def _call(self, action: str, work: Callable[[], T]) -> T:
        """Run ``work``; an ``azure.core`` error becomes the matching ``rollout.errors`` error."""
        try:
            return work()
        except AzureError as exc:
            raise translate(exc, f"{action} in workspace {self.workspace.workspace_name!r}", ML_ROLE_HINT) from exc

    def _wait(self, poller: LROPoller[T], action: str) -> T:
        """The result of a long-running operation, waited on for ``lro_timeout`` seconds at most."""
        poller.wait(timeout=self._lro_timeout)
        if not poller.done():
            raise TransientError(f"{action}: still {poller.status()} after {self._lro_timeout:.0f} s "
                                 "(Azure carries on with it)")
        return poller.result()

    def _plain_get(self, endpoint: str) -> OnlineEndpoint:
        """The endpoint entity from one GET: the first request of azure-ai-ml 1.35.2's
        ``OnlineEndpointOperations.get``, without its deployments listing."""
        operations = self._ml.online_endpoints
        rest = self._ml.online_endpoints._online_operation.get(
            resource_group_name=operations._resource_group_name, workspace_name=operations._workspace_name,
            endpoint_name=endpoint, **operations._init_kwargs)
        found: OnlineEndpoint = OnlineEndpoint._from_rest_object(rest)
        return found

    def get_endpoint(self, endpoint: str) -> EndpointState:
        """The endpoint's traffic, mirror traffic and provisioning state (1 request)."""
        return endpoint_state(self._call(f"reading endpoint {endpoint!r}", lambda: self._plain_get(endpoint)))

    def list_deployments(self, endpoint: str) -> list[DeploymentState]:
        """Every deployment behind the endpoint, with provisioning state and instances (1 request per page)."""
        return self._call(f"listing the deployments of endpoint {endpoint!r}",
                          lambda: [deployment_state(d) for d in self._ml.online_deployments.list(endpoint)])

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int],
                    mirror_traffic: Mapping[str, int] | None = None,
                    expected: Mapping[str, int] | None = None) -> EndpointState:
        """Make the endpoint's traffic exactly ``traffic`` (and mirror traffic, when given); return it as read back.

        No PUT when it already is (compared with ``normalize_traffic``). Mirror traffic left as
        it is when ``mirror_traffic`` is None. ``expected``: raise ``TrafficDrift`` and write nothing
        when the traffic read is neither ``traffic`` nor ``expected``.
        """
        action = f"setting the traffic of endpoint {endpoint!r}"
        current = self._call(f"reading endpoint {endpoint!r}", lambda: self._plain_get(endpoint))
        same_live = normalize_traffic(current.traffic or {}) == normalize_traffic(traffic)
        same_mirror = mirror_traffic is None or normalize_traffic(current.mirror_traffic or {}) == normalize_traffic(
            mirror_traffic)
        if same_live and same_mirror:
            return endpoint_state(current)
        if expected is not None and normalize_traffic(current.traffic or {}) != normalize_traffic(expected):
            raise TrafficDrift(endpoint_state(current))
        current.traffic = {name: int(share) for name, share in traffic.items()}
        if mirror_traffic is not None:
            current.mirror_traffic = {name: int(share) for name, share in mirror_traffic.items()}

        def write() -> OnlineEndpoint:
            return self._wait(self._ml.online_endpoints.begin_create_or_update(current), action)

        return endpoint_state(self._call(action, write))
