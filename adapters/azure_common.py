"""What the Azure adapters share: clouds, client tuning, the transport, and error translation.

Imported by ``adapters.azure_ml`` and ``adapters.azure_monitor`` (and by ``AzureBackend`` on first
use), never at app start-up. It imports ``azure.core`` only, no service SDK.

- ``CloudEndpoints``: where ARM and Log Analytics live. The three public sovereign clouds are
  built in; any other cloud (Azure Stack Hub, a private cloud) is read from its ARM metadata
  document, the one ``ARM_CLOUD_METADATA_URL`` names for the Azure CLI and SDKs.
- ``ClientTuning``: timeouts and retry settings. Retries belong to the orchestrator (durable
  timers honouring ``retry_after``); the SDK clients keep azure-core's retry policy but bounded so
  that an activity never sleeps long: a few quick retries, and a ``Retry-After`` longer than
  ``max_retry_after`` is not slept on but handed back as ``Throttled.retry_after``.
- ``translate``: ``azure.core.exceptions`` into ``rollout.errors``.
"""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from typing import Any, Mapping

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies import RetryPolicy
from azure.core.pipeline.transport import HttpTransport, RequestsTransport

from rollout import errors

# ---------------------------------------------------------------------------------------------
# Clouds


@dataclass(frozen=True)
class CloudEndpoints:
    """One Azure cloud's service addresses.

    ``ml_cloud_metadata`` is set for clouds azure-ai-ml does not know by name: it is handed to
    ``MLClient(cloud=..., cloud_metadata=...)``, the SDK's own way to register a cloud.
    ``log_analytics`` is None for a cloud whose metadata names no Log Analytics service.
    """

    name: str
    resource_manager: str
    log_analytics: str | None
    authority_host: str
    ml_cloud_metadata: Mapping[str, str] | None = None

    @property
    def arm_scope(self) -> str:
        """The token scope for Azure Resource Manager (what azure-ai-ml asks for too)."""
        return self.resource_manager.rstrip("/") + "/.default"


KNOWN_CLOUDS: dict[str, CloudEndpoints] = {
    cloud.name.lower(): cloud for cloud in (
        CloudEndpoints("AzureCloud", "https://management.azure.com", "https://api.loganalytics.io",
                       "login.microsoftonline.com"),
        CloudEndpoints("AzureUSGovernment", "https://management.usgovcloudapi.net", "https://api.loganalytics.us",
                       "login.microsoftonline.us"),
        CloudEndpoints("AzureChinaCloud", "https://management.chinacloudapi.cn", "https://api.loganalytics.azure.cn",
                       "login.chinacloudapi.cn"),
    )
}


def cloud_from_metadata(name: str, document: Any) -> CloudEndpoints:
    """The cloud called ``name`` in an ARM metadata document (one cloud object or a list of them).

    Raises ``ServiceError`` naming the clouds the document has when ``name`` is not among them.
    """
    clouds = document if isinstance(document, list) else [document]
    found = next((c for c in clouds if isinstance(c, dict) and str(c.get("name", "")).lower() == name.lower()), None)
    if found is None:
        names = ", ".join(str(c.get("name")) for c in clouds if isinstance(c, dict))
        raise errors.ServiceError(f"cloud {name!r} is not in the ARM cloud metadata (it has: {names})")
    try:
        resource_manager = found["resourceManager"].rstrip("/")
        login = found["authentication"]["loginEndpoint"].rstrip("/")
        portal = found["portal"].rstrip("/")
        storage = found["suffixes"]["storage"]
    except (KeyError, AttributeError, TypeError) as exc:
        raise errors.ServiceError(f"the ARM cloud metadata for {name!r} lacks {exc}") from exc
    suffix = ".".join(portal.split("//", 1)[-1].split(".")[1:])
    log_analytics = found.get("logAnalyticsResourceId")
    ml_metadata = {
        "azure_portal": portal + "/",
        "resource_manager": resource_manager + "/",
        "active_directory": login + "/",
        "aml_resource_id": f"https://ml.{suffix}/",
        "storage_endpoint": storage,
        "registry_discovery_endpoint": resource_manager + "/",
    }
    return CloudEndpoints(str(found["name"]), resource_manager, log_analytics.rstrip("/") if log_analytics else None,
                          login.split("//", 1)[-1], ml_metadata)


def fetch_cloud(name: str, metadata_url: str | None, transport: HttpTransport, tuning: ClientTuning) -> CloudEndpoints:
    """The endpoints of cloud ``name``: built in for the public clouds, else read from ``metadata_url``.

    The metadata document is fetched once, anonymously, through the app's transport; failing to
    read it raises like any Azure call (``TransientError`` for a 5xx or a broken connection).
    """
    known = KNOWN_CLOUDS.get(name.lower())
    if known is not None:
        return known
    if not metadata_url:
        raise errors.ServiceError(
            f"cloud {name!r} is not one of {', '.join(c.name for c in KNOWN_CLOUDS.values())}: "
            "give the ARM cloud metadata URL (ARM_CLOUD_METADATA_URL) that describes it")
    from azure.core import PipelineClient
    from azure.core.rest import HttpRequest

    client: PipelineClient[Any, Any] = PipelineClient(metadata_url, transport=transport,
                                                      policies=[bounded_retry_policy(tuning)])
    action = f"reading the ARM cloud metadata at {metadata_url}"
    try:
        response = client.send_request(HttpRequest("GET", metadata_url))
        response.raise_for_status()
        document = response.json()
    except AzureError as exc:
        raise translate(exc, action, "") from exc
    except ValueError as exc:
        raise errors.ServiceError(f"{action}: not JSON ({exc})") from exc
    return cloud_from_metadata(name, document)


# ---------------------------------------------------------------------------------------------
# Tuning, retries, transport


@dataclass(frozen=True)
class ClientTuning:
    """Timeouts and retries of every SDK client the adapters build (seconds).

    Defaults keep one adapter call well inside an activity: at most ``retry_total`` quick retries
    (0 s, then ``retry_backoff_factor`` x 2 s, capped at ``retry_backoff_max``), a server's
    ``Retry-After`` slept on only up to ``max_retry_after``, and ``call_budget`` for one call
    including its retries. A long-running update is waited on for ``lro_timeout`` at most (under
    the Consumption plan's default 5-minute function timeout), polled every ``lro_poll_interval``
    (or as the service's ``Retry-After`` says). A Log Analytics query may run
    ``log_query_server_timeout`` on the server, less than ``read_timeout``.
    """

    connection_timeout: float = 10.0
    read_timeout: float = 60.0
    retry_total: int = 2
    retry_backoff_factor: float = 0.5
    retry_backoff_max: float = 4.0
    max_retry_after: float = 5.0
    call_budget: float = 120.0
    lro_poll_interval: float = 5.0
    lro_timeout: float = 240.0
    log_query_server_timeout: int = 50


class BoundedRetryPolicy(RetryPolicy):
    """azure-core's ``RetryPolicy``, except that a ``Retry-After`` above ``max_retry_after`` ends retrying.

    azure-core retries any response of 400 and above that carries ``Retry-After`` and sleeps as long
    as it says; inside an activity that could be minutes. Such a response is returned instead, and
    the adapter raises it with ``retry_after`` for the orchestrator's durable timer.
    """

    def __init__(self, *, max_retry_after: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_retry_after = max_retry_after

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse[Any, Any]) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after is not None and retry_after > self.max_retry_after:
            return False
        return bool(super().is_retry(settings, response))


def bounded_retry_policy(tuning: ClientTuning) -> BoundedRetryPolicy:
    """The retry policy every client gets (see ``ClientTuning``)."""
    return BoundedRetryPolicy(
        max_retry_after=tuning.max_retry_after,
        retry_total=tuning.retry_total,
        retry_backoff_factor=tuning.retry_backoff_factor,
        retry_backoff_max=tuning.retry_backoff_max,
        timeout=tuning.call_budget,
    )


def default_transport(tuning: ClientTuning, **overrides: Any) -> RequestsTransport:
    """One ``requests`` transport (one connection pool) shared by every client of the app.

    ``overrides`` go to ``RequestsTransport`` (e.g. ``connection_verify`` with a private CA bundle;
    by default ``REQUESTS_CA_BUNDLE`` and proxy variables are honoured).
    """
    options: dict[str, Any] = {"connection_timeout": tuning.connection_timeout, "read_timeout": tuning.read_timeout}
    options.update(overrides)
    return RequestsTransport(**options)


# ---------------------------------------------------------------------------------------------
# Errors


ML_ROLE_HINT = (
    "The app's identity needs the 'AzureML Data Scientist' role on the workspace, or a custom role with "
    "Microsoft.MachineLearningServices/workspaces/read, workspaces/onlineEndpoints/read, "
    "workspaces/onlineEndpoints/write, workspaces/onlineEndpoints/deployments/read and "
    "workspaces/onlineEndpoints/deployments/write."
)
METRICS_ROLE_HINT = (
    "The app's identity needs the 'Monitoring Reader' role (Microsoft.Insights/metrics/read) on the "
    "workspace or the online endpoint."
)
LOGS_ROLE_HINT = (
    "The app's identity needs the 'Log Analytics Reader' role on the Log Analytics workspace "
    "(Microsoft.OperationalInsights/workspaces/query/read)."
)


def service_message(exc: AzureError) -> str:
    """The service's own error, as ``code: message`` when it sent one."""
    error = getattr(exc, "error", None)
    code, message = getattr(error, "code", None), getattr(error, "message", None)
    if code or message:
        return f"{code}: {message}" if code and message else str(code or message)
    return str(getattr(exc, "message", None) or exc).splitlines()[0]


def retry_after_seconds(exc: AzureError) -> float | None:
    """``Retry-After`` of the failed response in seconds (seconds, HTTP date, or the -ms headers)."""
    response = getattr(exc, "response", None)
    headers = {k.lower(): v for k, v in (getattr(response, "headers", None) or {}).items()}
    if headers.get("retry-after"):
        value = headers["retry-after"].strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            return None if parsed is None else max(0.0, parsed.timestamp() - time.time())
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        if headers.get(name):
            try:
                return max(0.0, float(headers[name]) / 1000.0)
            except ValueError:
                return None
    return None


def _operation_status(exc: HttpResponseError) -> str | None:
    """``status`` of a long-running operation's status body (``Failed``, ``Canceled``), if it is one."""
    try:
        body = json.loads(exc.response.text()) if exc.response is not None else None
    except (ValueError, AttributeError):
        return None
    return body.get("status") if isinstance(body, dict) else None


def _not_found(exc: HttpResponseError, action: str) -> errors.AzureError:
    """A 404 names what was missing from the request's URL: workspace, endpoint or deployment."""
    request = getattr(exc.response, "request", None)
    segments = str(getattr(request, "url", "")).split("?", 1)[0].rstrip("/").split("/")
    kinds = {"deployments": "deployment", "onlineendpoints": "endpoint", "workspaces": "workspace"}
    for position in range(len(segments) - 2, -1, -1):
        kind = kinds.get(segments[position].lower())
        if kind is not None and position + 1 < len(segments):
            name = segments[position + 1]
            return errors.ResourceNotFound(kind, name, f"{kind} {name!r} not found ({service_message(exc)})")
    return errors.ServiceError(f"{action}: not found ({service_message(exc)})")


def translate(exc: AzureError, action: str, role_hint: str) -> errors.AzureError:
    """The ``rollout.errors`` counterpart of an ``azure.core`` exception raised while doing ``action``.

    401/403 and token failures: ``PermissionDenied`` naming the role (``role_hint``); 404:
    ``ResourceNotFound`` of what the URL named; 409 and superseded (``Canceled``) operations:
    ``UpdateConflict``; 429: ``Throttled`` with ``retry_after``; 408, 5xx, timeouts, broken
    connections and unreadable bodies: ``TransientError``; anything else (400, a ``Failed``
    operation): ``ServiceError`` with the service's own message.
    """
    if isinstance(exc, ClientAuthenticationError) and exc.status_code is None:
        return errors.PermissionDenied(f"{action}: the app's identity could not get a token ({service_message(exc)}). "
                                       f"{role_hint}")
    if isinstance(exc, DecodeError):
        return errors.TransientError(f"{action}: Azure answered with a body that is not valid JSON")
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        return _from_status(exc, exc.status_code, action, role_hint)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return errors.TransientError(f"{action}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    return errors.ServiceError(f"{action}: {service_message(exc)}")


def _from_status(exc: HttpResponseError, status: int, action: str, role_hint: str) -> errors.AzureError:
    message = service_message(exc)
    if status in (401, 403):
        return errors.PermissionDenied(f"{action} was refused ({status} {message}). {role_hint}")
    if status == 404:
        return _not_found(exc, action)
    if status == 409:
        return errors.UpdateConflict(f"{action}: another update is in progress (409 {message})",
                                     retry_after=retry_after_seconds(exc))
    if status == 429:
        return errors.Throttled(f"{action}: throttled (429 {message})", retry_after=retry_after_seconds(exc))
    if status == 408 or status >= 500:
        return errors.TransientError(f"{action}: {status} {message}", retry_after=retry_after_seconds(exc))
    if status < 300:
        if _operation_status(exc) == "Canceled":
            return errors.UpdateConflict(f"{action}: the operation was canceled, superseded by another update ({message})")
        return errors.ServiceError(f"{action}: the operation failed ({message})")
    return errors.ServiceError(f"{action}: {status} {message}")
