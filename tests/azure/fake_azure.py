"""A fake Azure on loopback HTTPS: what the real SDK clients talk to in the tests.

It serves, in the REST API's own shapes (bodies from ``fixtures/``, copied from the Azure REST API
spec examples and from what azure-ai-ml 1.35.2 sent):

- ARM cloud metadata (``/metadata/endpoints``), so a custom cloud can point every client here;
- Azure ML: workspace GET, online endpoint GET/PUT, deployment list/GET/PUT, and the
  ``mfeOperationsStatus`` long-running operations that a PUT answers with (201 +
  ``Azure-AsyncOperation``, ``InProgress`` for ``polls_before_done`` polls, then the outcome);
- Azure Monitor metrics (``{resource}/providers/Microsoft.Insights/metrics``);
- the Log Analytics query API (``POST /v1/workspaces/{id}/query``).

A PUT follows the service's full-replace semantics: what the body leaves out (tags, identity,
auth mode) is gone afterwards. Every request is recorded (method, path, query, headers, JSON
body) so tests assert on what the SDK really sent. ``fail`` scripts faults: any status, headers
(``Retry-After``), raw or malformed bodies, and delays longer than the client's read timeout.
Error bodies follow ARM's ``{"error": {"code", "message"}}``; their exact codes and messages are
illustrative (the service's are not all documented) and the adapters branch on status codes.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

from rollout.model import WorkspaceRef
from tests.azure.tls import TestPki

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "fake-token-for-tests"
DROP = object()
"""A fault body that makes the fake hang up without answering (a broken connection)."""

Reply = tuple[int, Any, dict[str, str]]

_WS = (r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
       r"/providers/microsoft\.machinelearningservices/workspaces/(?P<ws>[^/]+)")
_EP = _WS + r"/onlineendpoints/(?P<ep>[^/]+)"


def fixture(name: str) -> Any:
    """A JSON fixture from tests/azure/fixtures."""
    return json.loads((FIXTURES / name).read_text())


def arm_error(code: str, message: str) -> dict[str, Any]:
    """ARM's error body."""
    return {"error": {"code": code, "message": message}}


@dataclass
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any

    @property
    def api_version(self) -> str | None:
        return self.query.get("api-version")


@dataclass
class Fault:
    """Answer requests matching ``method`` and ``path`` (a regex searched in the lower-cased path)."""

    method: str
    path: str
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    times: int | None = 1


@dataclass
class Operation:
    """A long-running operation behind an ``Azure-AsyncOperation`` URL."""

    id: str
    polls_left: int
    outcome: str
    finish: Callable[[str], None]
    done: bool = False


class FakeAzure:
    """The fake service. Start it once; ``reset`` between tests."""

    anonymous_prefixes: tuple[str, ...] = ("/metadata/",)
    """Paths served without a bearer token (the cloud metadata; a subclass adds its token endpoint)."""

    def __init__(self, pki: TestPki, cloud_name: str) -> None:
        self.pki = pki
        self.cloud_name = cloud_name
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.reset()

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeAzure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.server_cert, self.pki.server_key)
        server = _Server(("127.0.0.1", 0), _handler_for(self))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, name="fake-azure", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def reset(self) -> None:
        """Forget every resource, fault, operation and recorded request."""
        with self._lock:
            self.requests: list[Recorded] = []
            self.faults: list[Fault] = []
            self.workspaces: dict[str, dict[str, Any]] = {}
            self.endpoints: dict[str, dict[str, Any]] = {}
            self.deployments: dict[str, dict[str, Any]] = {}
            self.operations: dict[str, Operation] = {}
            self.polls_before_done = 1
            self.next_outcomes: list[str] = []
            self.poll_retry_after_ms: int | None = 10
            self.metrics_body: dict[str, Any] | None = None
            self.logs_body: dict[str, Any] | None = None
            self.environments: dict[str, dict[str, Any]] = {}     # environment version id -> its body

    # ---- arranging state -------------------------------------------------------------------

    def add_workspace(self, ws: WorkspaceRef, location: str = "eastus") -> None:
        body = fixture("workspace_get_200.SYNTHETIC.json")
        body.update(id=ws.arm_id(), name=ws.workspace_name, location=location)
        with self._lock:
            self.workspaces[ws.arm_id().lower()] = body

    def add_endpoint(self, ws: WorkspaceRef, name: str, traffic: dict[str, int],
                     mirror: dict[str, int] | None = None, **overrides: Any) -> dict[str, Any]:
        """An endpoint from the GET fixture; ``overrides`` replace top-level or ``properties`` keys."""
        body = fixture("endpoint_get_200.SYNTHETIC.json")
        body.update(id=ws.endpoint_id(name), name=name)
        body["properties"].update(traffic=dict(traffic), mirrorTraffic=dict(mirror or {}))
        for key, value in overrides.items():
            (body if key in ("identity", "tags", "location", "kind") else body["properties"])[key] = value
        with self._lock:
            self.endpoints[ws.endpoint_id(name).lower()] = body
        return body

    def put_raw_endpoint(self, ws: WorkspaceRef, name: str, body: dict[str, Any]) -> None:
        """Serve ``body`` as-is for the endpoint (e.g. a spec example)."""
        with self._lock:
            self.endpoints[ws.endpoint_id(name).lower()] = copy.deepcopy(body)

    def put_raw_deployment(self, ws: WorkspaceRef, endpoint: str, name: str, body: dict[str, Any]) -> None:
        """Serve ``body`` as-is for the deployment (e.g. a spec example)."""
        with self._lock:
            self.deployments[f"{ws.endpoint_id(endpoint)}/deployments/{name}".lower()] = copy.deepcopy(body)

    def add_deployment(self, ws: WorkspaceRef, endpoint: str, name: str, capacity: int = 1,
                       instance_type: str = "Standard_DS3_v2", state: str = "Succeeded") -> dict[str, Any]:
        body = fixture("deployment_get_200.SYNTHETIC.json")
        deployment_id = f"{ws.endpoint_id(endpoint)}/deployments/{name}"
        body.update(id=deployment_id, name=name)
        body["sku"]["capacity"] = capacity
        body["properties"].update(instanceType=instance_type, provisioningState=state)
        with self._lock:
            self.deployments[deployment_id.lower()] = body
        return body

    def fail(self, method: str, path: str, status: int = 500, body: Any = None,
             headers: dict[str, str] | None = None, delay: float = 0.0, times: int | None = 1) -> None:
        """Script a fault for matching requests (``times`` None: every time)."""
        with self._lock:
            self.faults.append(Fault(method, path, status, body, dict(headers or {}), delay, times))

    # ---- reading what happened ----------------------------------------------------------

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        """Recorded requests, optionally filtered by method and a regex searched in the path."""
        with self._lock:
            return [r for r in self.requests if (method is None or r.method == method)
                    and (path is None or re.search(path, r.path.lower()))]

    def endpoint_state(self, ws: WorkspaceRef, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.endpoints[ws.endpoint_id(name).lower()])

    # ---- serving ---------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[Reply, float]:
        """Record the request and compute the reply (and how long to wait before sending it)."""
        split = urlsplit(target)
        path = unquote(split.path)
        body = _parse_body(raw)
        with self._lock:
            self.requests.append(Recorded(method, path, dict(parse_qsl(split.query)), headers, body))
            fault = self._take_fault(method, path.lower())
            if fault is not None:
                return (fault.status, fault.body, fault.headers), fault.delay
            anonymous = path.lower().startswith(self.anonymous_prefixes)
            if not anonymous and headers.get("authorization") != f"Bearer {TOKEN}":
                return (401, arm_error("AuthenticationFailed", "Missing or bad bearer token."), {}), 0.0
            return self._route(method, path.lower(), dict(parse_qsl(split.query)), body), 0.0

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and re.search(fault.path, path) and (fault.times is None or fault.times > 0):
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    def _routes(self) -> list[tuple[str, str, Callable[..., Reply]]]:
        """(method, regex of the lower-cased path, handler): the first match serves a request."""
        return [
            ("GET", r"^/metadata/endpoints$", self._metadata),
            ("GET", _WS + "$", self._get_workspace),
            ("GET", _EP + r"/providers/microsoft\.insights/metrics$", self._metrics),
            ("GET", _EP + "$", self._get_endpoint),
            ("PUT", _EP + "$", self._put_endpoint),
            ("GET", _EP + "/deployments$", self._list_deployments),
            ("GET", _EP + "/deployments/(?P<dep>[^/]+)$", self._get_deployment),
            ("PUT", _EP + "/deployments/(?P<dep>[^/]+)$", self._put_deployment),
            ("GET", r"^/subscriptions/[^/]+/providers/microsoft\.machinelearningservices/locations/[^/]+"
                    r"/mfeoperationsstatus/(?P<op>[^/]+)$", self._get_operation),
            ("POST", r"^/v1/workspaces/(?P<la>[^/]+)/query$", self._query_logs),
            ("GET", _WS + "/environments/(?P<env>[^/]+)$", self._get_environment),
            ("PUT", _WS + "/environments/(?P<env>[^/]+)/versions/(?P<ver>[^/]+)$", self._put_environment_version),
        ]

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        for verb, pattern, handler in self._routes():
            match = re.match(pattern, path)
            if verb == method and match:
                return handler(path=path, query=query, body=body, **match.groupdict())
        return 404, arm_error("NoRoute", f"fake Azure has no route for {method} {path}"), {}

    # ---- cloud metadata --------------------------------------------------------------------

    def _metadata(self, **_: Any) -> Reply:
        loopback = {
            "name": self.cloud_name,
            "portal": "https://portal.loopback.test",
            "authentication": {"loginEndpoint": "https://login.loopback.test", "audiences": [self.base_url + "/"],
                               "tenant": "common", "identityProvider": "AAD"},
            "resourceManager": self.base_url + "/",
            # Same server under its other name, so that Log Analytics has its own token audience.
            "logAnalyticsResourceId": self.base_url.replace("127.0.0.1", "localhost"),
            "suffixes": {"storage": "core.loopback.test", "keyVaultDns": ".vault.loopback.test",
                         "sqlServerHostname": ".database.loopback.test"},
        }
        public = {
            "name": "AzureCloud", "portal": "https://portal.azure.com",
            "authentication": {"loginEndpoint": "https://login.microsoftonline.com",
                               "audiences": ["https://management.core.windows.net/"],
                               "tenant": "common", "identityProvider": "AAD"},
            "resourceManager": "https://management.azure.com/",
            "logAnalyticsResourceId": "https://api.loganalytics.io",
            "suffixes": {"storage": "core.windows.net"},
        }
        return 200, [public, loopback], {}

    # ---- Azure ML --------------------------------------------------------------------------

    def _get_workspace(self, path: str, **_: Any) -> Reply:
        found = self.workspaces.get(path)
        if found is None:
            return 404, arm_error("ResourceNotFound", f"Workspace not found: {path}"), {}
        return 200, found, {}

    def _get_endpoint(self, path: str, ep: str, **_: Any) -> Reply:
        found = self.endpoints.get(path)
        if found is None:
            return 404, arm_error("UserError", f"Could not find online endpoint '{ep}'."), {}
        return 200, found, {}

    def _list_deployments(self, path: str, ep: str, **_: Any) -> Reply:
        if path.rsplit("/deployments", 1)[0] not in self.endpoints:
            return 404, arm_error("UserError", f"Could not find online endpoint '{ep}'."), {}
        prefix = path + "/"
        return 200, {"value": [d for key, d in self.deployments.items() if key.startswith(prefix)]}, {}

    def _get_deployment(self, path: str, dep: str, **_: Any) -> Reply:
        found = self.deployments.get(path)
        if found is None:
            return 404, arm_error("UserError", f"Could not find online deployment '{dep}'."), {}
        return 200, found, {}

    def _get_environment(self, path: str, env: str, **_: Any) -> Reply:
        """An environment container: its latest and next version, as the service computes them."""
        versions = [int(key.rsplit("/", 1)[1]) for key in self.environments if key.startswith(path + "/versions/")
                    and key.rsplit("/", 1)[1].isdigit()]
        if not versions:
            return 404, arm_error("UserError", f"Could not find asset with name {env}"), {}
        latest = max(versions)
        return 200, {"id": path, "name": env, "properties": {"latestVersion": str(latest),
                                                             "nextVersion": str(latest + 1)}}, {}

    def _put_environment_version(self, path: str, sub: str, rg: str, ws: str, env: str, ver: str, body: Any,
                                 **_: Any) -> Reply:
        """Create an environment version (201). An existing version is immutable: the same definition
        again answers 200 with it, a different one 409 (azure-ai-ml then tries the next version)."""
        if path.split("/environments/")[0] not in self.workspaces:
            return 404, arm_error("ResourceNotFound", f"Workspace not found: {path}"), {}
        existing = self.environments.get(path)
        if existing is not None:
            if existing["properties"] == dict((body or {}).get("properties") or {}):
                return 200, existing, {}
            return 409, arm_error("UserError", f"Environment {env}:{ver} already exists and cannot be changed."), {}
        arm_id = self.requests[-1].path     # the id in the caller's casing (routes see the path lower-cased)
        stored = {"id": arm_id, "name": ver, "type": "Microsoft.MachineLearningServices/workspaces/environments/versions",
                  "properties": dict((body or {}).get("properties") or {})}
        self.environments[path] = stored
        return 201, stored, {}

    def _busy(self, resource_id: str) -> bool:
        return any(not op.done and op.id.startswith(resource_id) for op in self.operations.values())

    def _put_endpoint(self, path: str, sub: str, ep: str, query: dict[str, str], body: Any, **_: Any) -> Reply:
        current = self.endpoints.get(path)
        if current is None:
            return 404, arm_error("UserError", f"Could not find online endpoint '{ep}'."), {}
        if self._busy(path):
            return 409, fixture("error_409_conflict.ILLUSTRATIVE.json"), {}
        problem = self._endpoint_problem(path, body)
        if problem:
            return 400, arm_error("BadArgument", problem), {}
        updated = _replace_endpoint(current, body)
        updated["properties"]["provisioningState"] = "Updating"
        self.endpoints[path] = updated

        def finish(outcome: str) -> None:
            final = updated if outcome == "Succeeded" else current
            self.endpoints[path] = {**final, "properties": {**final["properties"], "provisioningState": "Succeeded"}}

        return 201, updated, self._start_operation(path, sub, current["location"], query, finish)

    def _endpoint_problem(self, path: str, body: Any) -> str | None:
        if not isinstance(body, dict) or "location" not in body or "authMode" not in body.get("properties", {}):
            return "The request body must carry location and properties.authMode."
        traffic = body["properties"].get("traffic") or {}
        if sum(traffic.values()) not in (0, 100):
            return f"Traffic must add up to 100 or 0, not {sum(traffic.values())}."
        for name in list(traffic) + list(body["properties"].get("mirrorTraffic") or {}):
            if f"{path}/deployments/{name.lower()}" not in self.deployments:
                return f"Deployment '{name}' does not exist."
        return None

    def _put_deployment(self, path: str, sub: str, dep: str, query: dict[str, str], body: Any, **_: Any) -> Reply:
        current = self.deployments.get(path)
        if current is None:
            return 404, arm_error("UserError", f"Could not find online deployment '{dep}'."), {}
        if self._busy(path.rsplit("/deployments/", 1)[0]):
            return 409, fixture("error_409_conflict.ILLUSTRATIVE.json"), {}
        updated = copy.deepcopy(current)
        updated["sku"] = {**updated.get("sku", {}), **(body.get("sku") or {})}
        updated["properties"]["instanceType"] = body["properties"].get("instanceType")
        updated["properties"]["provisioningState"] = "Updating"
        self.deployments[path] = updated

        def finish(outcome: str) -> None:
            final = updated if outcome == "Succeeded" else current
            self.deployments[path] = {**final, "properties": {**final["properties"], "provisioningState": "Succeeded"}}

        endpoint_path = path.rsplit("/deployments/", 1)[0]
        return 201, updated, self._start_operation(endpoint_path, sub, current["location"], query, finish)

    def _start_operation(self, resource: str, sub: str, location: str, query: dict[str, str],
                         finish: Callable[[str], None]) -> dict[str, str]:
        outcome = self.next_outcomes.pop(0) if self.next_outcomes else "Succeeded"
        op_id = f"{resource}|oeidp:{uuid.uuid4()}"
        self.operations[op_id] = Operation(op_id, self.polls_before_done, outcome, finish)
        url = (f"{self.base_url}/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/locations/"
               f"{location}/mfeOperationsStatus/{_op_token(op_id)}?api-version={query.get('api-version')}")
        return {"Azure-AsyncOperation": url, "x-ms-async-operation-timeout": "PT2H", **self._poll_hint()}

    def _poll_hint(self) -> dict[str, str]:
        return {} if self.poll_retry_after_ms is None else {"x-ms-retry-after-ms": str(self.poll_retry_after_ms)}

    def _get_operation(self, op: str, **_: Any) -> Reply:
        found = next((o for o in self.operations.values() if _op_token(o.id) == op), None)
        if found is None:
            return 404, arm_error("NotFound", "No such operation."), {}
        if found.polls_left > 0:
            found.polls_left -= 1
            body = fixture("mfeOperationsStatus_InProgress.SYNTHETIC.json")
            return 200, {**body, "id": op, "name": op}, self._poll_hint()
        if not found.done:
            found.done = True
            found.finish(found.outcome)
        return 200, _operation_status(op, found.outcome), {}

    # ---- Monitor ---------------------------------------------------------------------------

    def _metrics(self, query: dict[str, str], **_: Any) -> Reply:
        if self.metrics_body is None:
            return 400, arm_error("BadRequest", "No metrics arranged for this test."), {}
        body = copy.deepcopy(self.metrics_body)
        body["timespan"] = query.get("timespan", body.get("timespan"))
        return 200, body, {}

    def _query_logs(self, **_: Any) -> Reply:
        if self.logs_body is None:
            return 400, {"error": {"code": "BadArgumentError", "message": "No logs arranged for this test."}}, {}
        return 200, self.logs_body, {}


def _op_token(op_id: str) -> str:
    return op_id.rsplit("|", 1)[1]


def _operation_status(op: str, outcome: str) -> dict[str, Any]:
    if outcome == "Succeeded":
        body = fixture("mfeOperationsStatus_Succeeded.SYNTHETIC.json")
    elif outcome == "Canceled":
        body = fixture("mfeOperationsStatus_Canceled.ILLUSTRATIVE.json")
    else:
        body = fixture("mfeOperationsStatus_Failed.SYNTHETIC.json")
    return {**body, "id": op, "name": op}


def _replace_endpoint(current: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The endpoint after a full PUT: what the body leaves out is gone (read-only fields stay)."""
    updated = copy.deepcopy(current)
    sent = body.get("properties", {})
    keep = {k: v for k, v in updated["properties"].items() if k in ("scoringUri", "swaggerUri", "provisioningState")}
    updated["properties"] = {**keep, **{k: v for k, v in sent.items() if k != "properties"},
                             "properties": sent.get("properties", {}),
                             "traffic": sent.get("traffic") or {}, "mirrorTraffic": sent.get("mirrorTraffic") or {}}
    updated["tags"] = body.get("tags") or {}
    identity = body.get("identity") or {"type": "SystemAssigned"}
    same_type = identity.get("type") == current.get("identity", {}).get("type")
    updated["identity"] = {**(current.get("identity", {}) if same_type else {}), **identity}
    return updated


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hang up on purpose (timeouts); nothing to report."""


def _handler_for(fake: FakeAzure) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            """Headers and body go out in two writes: without TCP_NODELAY the body waits for the
            client's delayed ACK of the headers (about 40 ms a response on Linux)."""
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            (status, body, extra), delay = fake.handle(self.command, self.path, headers, raw)
            if delay:
                time.sleep(delay)
            if body is DROP:
                self.close_connection = True
                return
            payload = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-ms-request-id", str(uuid.uuid4()))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _serve

    return Handler
