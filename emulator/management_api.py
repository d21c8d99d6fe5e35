"""The Durable Functions HTTP management API over a ``TaskHub``, served on loopback.

``DurableOrchestrationClient`` talks to the host through the ``rpcBaseUrl`` of its client
binding; this module serves those routes (and the same routes under the public webhook path
``/runtime/webhooks/durabletask/``) with the status codes and bodies of the Durable extension's
``HttpApiHandler``, so the unchanged client works against the emulator:

==========================================  ======================================================
``POST orchestrators/{name}[/{id}]``        start; 202 + check-status links; 400 unknown function
                                            or bad id; 500 when a running instance has the id
``GET instances/{id}``                      status; 200 done (Failed too, unless
                                            ``returnInternalServerErrorOnFailure``), 202 running, 404
``GET instances/``                          statuses filtered by ``createdTimeFrom``,
                                            ``createdTimeTo``, ``runtimeStatus``, ``instanceIdPrefix``;
                                            pages of ``top`` (100) with ``x-ms-continuation-token``
``DELETE instances/{id}``, ``instances/``   purge; 200 ``{"instancesDeleted": n}`` or 404
``POST instances/{id}/raiseEvent/{name}``   202; 404 unknown; 410 done; 400 not JSON
``POST instances/{id}/terminate|suspend|resume``  202; 404 unknown; 410 done
``POST instances/{id}/restart``             202 + check-status links of the new instance
==========================================  ======================================================

Bodies are parsed as the host parses them: the Python client JSON-encodes inputs and event data
before sending them as JSON, so the host (and this API) sees a JSON *string* holding JSON text -
orchestrations started this way report that string as their ``input``, and event payloads reach
the orchestrator as that text. Rewind and entities are not supported (501 / 404).
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from emulator.clock import as_utc
from emulator.status_views import DEFAULT_PAGE_SIZE, BadContinuationToken
from emulator.taskhub import InstanceAlreadyExists, TaskHub, UnknownFunction
from rollout.wire import RUNNING_STATUSES

RPC_PREFIX = "/durabletask/"
WEBHOOK_PREFIX = "/runtime/webhooks/durabletask/"
DONE_STATUSES = frozenset({"Completed", "Failed", "Canceled", "Terminated"})
INSTANCE_ID_PLACEHOLDER = "INSTANCEID"
CONTINUATION_HEADER = "x-ms-continuation-token"


class ManagementApi:
    """Serves the management API of ``hub`` on ``host``:``port`` (loopback, an ephemeral port by default)."""

    def __init__(self, hub: TaskHub, host: str = "127.0.0.1", port: int = 0, task_hub_name: str = "TestHubName",
                 connection_name: str = "Storage") -> None:
        self.hub = hub
        self.task_hub_name = task_hub_name
        self.connection_name = connection_name
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Start serving on a daemon thread; returns the ``rpcBaseUrl`` (``http://host:port/durabletask/``)."""
        if self._server is None:
            server = ThreadingHTTPServer(self._address, _Handler)
            server.daemon_threads = True
            server.api = self  # type: ignore[attr-defined]
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="durable-management-api", daemon=True)
            self._thread.start()
        return self.rpc_base_url

    def stop(self) -> None:
        """Stop serving and release the port."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> ManagementApi:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        """``http://host:port`` of the running server."""
        if self._server is None:
            raise RuntimeError("the management API is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    @property
    def rpc_base_url(self) -> str:
        """Where ``DurableOrchestrationClient`` sends its calls."""
        return self.origin + RPC_PREFIX

    @property
    def base_url(self) -> str:
        """The public webhook base (``.../runtime/webhooks/durabletask``), without a trailing slash."""
        return self.origin + WEBHOOK_PREFIX.rstrip("/")

    def management_urls(self, instance_id: str, origin: str | None = None) -> dict[str, str]:
        """The check-status links of an instance (``HttpApiHandler.GetClientResponseLinks``)."""
        base = (origin or self.origin) + WEBHOOK_PREFIX.rstrip("/")
        instance = f"{base}/instances/{quote(instance_id, safe='')}"
        query = f"taskHub={quote(self.task_hub_name)}&connection={quote(self.connection_name)}"
        return {
            "id": instance_id,
            "statusQueryGetUri": f"{instance}?{query}",
            "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{query}",
            "terminatePostUri": f"{instance}/terminate?reason={{text}}&{query}",
            "rewindPostUri": f"{instance}/rewind?reason={{text}}&{query}",
            "purgeHistoryDeleteUri": f"{instance}?{query}",
            "restartPostUri": f"{instance}/restart?{query}",
            "suspendPostUri": f"{instance}/suspend?reason={{text}}&{query}",
            "resumePostUri": f"{instance}/resume?reason={{text}}&{query}",
        }

    def client_binding_json(self) -> str:
        """The durable client binding the host hands a function: ``df.DurableOrchestrationClient(this)`` works."""
        creation = f"{self.base_url}/orchestrators/{{functionName}}[/{{instanceId}}]"
        return json.dumps({
            "taskHubName": self.task_hub_name,
            "connectionName": None,
            "creationUrls": {
                "createNewInstancePostUri": f"{creation}?",
                "createAndWaitOnNewInstancePostUri": f"{creation}?timeout={{timeoutInSeconds}}"
                                                     "&pollingInterval={intervalInSeconds}&",
            },
            "managementUrls": self.management_urls(INSTANCE_ID_PLACEHOLDER),
            "baseUrl": self.base_url,
            "requiredQueryStringParameters": "",
            "rpcBaseUrl": self.rpc_base_url,
            "httpBaseUrl": None,
        })


class _Response:
    """A status code, an optional JSON body and headers."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None, has_body: bool = True):
        self.status, self.body, self.headers, self.has_body = status, body, headers or {}, has_body


def _empty(status: int) -> _Response:
    return _Response(status, has_body=False)


def _error(status: int, message: str, exc: BaseException | None = None, exception_type: str | None = None) -> _Response:
    """The body of ``request.CreateErrorResponse``: ``Message``, and with an exception its message and type."""
    body: dict[str, Any] = {"Message": message}
    if exc is not None:
        body["ExceptionMessage"] = str(exc)
        body["ExceptionType"] = exception_type or type(exc).__name__
    return _Response(status, body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes on a keep-alive connection; with Nagle's algorithm
    # and the client's delayed ACK the body waited ~40 ms (measured by bench/bench_alerts.py).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's naming)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no access log on stderr."""

    def _handle(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        api: ManagementApi = self.server.api  # type: ignore[attr-defined]
        request = _Request(method, self.path, body, self.headers.get("Content-Type"), api,
                           f"http://{self.headers.get('Host') or api.origin.removeprefix('http://')}",
                           self.headers.get(CONTINUATION_HEADER))
        try:
            response = request.route()
        except Exception as exc:  # the host answers 500 for anything unexpected
            response = _error(500, "Something went wrong while processing your request", exc)
        self._send(response)

    def _send(self, response: _Response) -> None:
        payload = json.dumps(response.body).encode() if response.has_body else b""
        self.send_response(response.status)
        if response.has_body:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _Request:
    """One management API request, routed as ``HttpApiHandler.HandleRequestAsync`` routes it."""

    def __init__(self, method: str, path: str, body: bytes, content_type: str | None, api: ManagementApi,
                 origin: str, continuation_token: str | None = None) -> None:
        parts = urlsplit(path)
        self.continuation_token = continuation_token
        self.method, self.body, self.content_type, self.api, self.hub = method, body, content_type, api, api.hub
        self.url = origin + path
        self.origin = origin
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self.segments = _segments(parts.path)

    def route(self) -> _Response:
        segments, method = self.segments, self.method
        if segments is None or not segments:
            return _empty(404)
        head, rest = segments[0], segments[1:]
        if head == "orchestrators" and rest and len(rest) <= 2:
            return self.start(rest[0], rest[1] if len(rest) == 2 else None) if method == "POST" else _empty(404)
        if head != "instances":
            return _empty(404)
        if not rest:
            return {"GET": self.list_instances, "DELETE": self.purge_by}.get(method, lambda: _empty(404))()
        if len(rest) == 1:
            return {"GET": lambda: self.status(rest[0]), "DELETE": lambda: self.purge(rest[0])}.get(
                method, lambda: _empty(404))()
        if len(rest) == 2 and method == "POST":
            return self.operation(rest[0], rest[1].lower())
        if len(rest) == 3 and rest[1] == "raiseEvent" and method == "POST":
            return self.raise_event(rest[0], rest[2])
        return _empty(404)

    # --- handlers ---------------------------------------------------------------------------------

    def start(self, function_name: str, instance_id: str | None) -> _Response:
        try:
            value = json.loads(self.body) if self.body else None
        except json.JSONDecodeError as exc:
            return _error(400, "Invalid JSON content", exc, "Newtonsoft.Json.JsonReaderException")
        try:
            instance_id = self.hub.start(function_name, instance_id, value)
        except (UnknownFunction, ValueError) as exc:
            return _error(400, "One or more of the arguments submitted is incorrect", exc, "System.ArgumentException")
        except InstanceAlreadyExists as exc:
            return _error(500, "Something went wrong while processing your request", exc,
                          "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException")
        return self.check_status_response(instance_id)

    def check_status_response(self, instance_id: str) -> _Response:
        """202 with the instance's links, ``Location`` and ``Retry-After: 10`` (``CreateCheckStatusResponse``)."""
        links = self.api.management_urls(instance_id, self.origin)
        body = {key: links[key] for key in ("id", "statusQueryGetUri", "sendEventPostUri", "terminatePostUri",
                                            "purgeHistoryDeleteUri", "restartPostUri", "suspendPostUri",
                                            "resumePostUri")}
        return _Response(202, body, {"Location": links["statusQueryGetUri"], "Retry-After": "10"})

    def status(self, instance_id: str) -> _Response:
        status = self.hub.get_status(instance_id, show_history=self.flag("showHistory", False),
                                     show_input=self.flag("showInput", True),
                                     show_history_output=self.flag("showHistoryOutput", False))
        if status is None:
            return _empty(404)
        runtime_status = status["runtimeStatus"]
        if runtime_status in RUNNING_STATUSES:
            return _Response(202, status, {"Location": self.url, "Retry-After": "5"})
        if runtime_status == "Failed" and self.flag("returnInternalServerErrorOnFailure", False):
            return _Response(500, status)
        return _Response(200, status)

    def list_instances(self) -> _Response:
        """One page (``?top=``, default 100) after the ``x-ms-continuation-token`` request header, and the
        next page's token in that response header - empty after the last page (``HandleGetStatusRequestAsync``
        adds the header whatever the provider's token; .NET writes a null value as empty)."""
        try:
            statuses, token = self.hub.query_instances(
                created_from=self.date("createdTimeFrom"), created_to=self.date("createdTimeTo"),
                runtime_status=self.statuses(), instance_id_prefix=self.text("instanceIdPrefix"),
                show_input=self.flag("showInput", True), page_size=self.integer("top", DEFAULT_PAGE_SIZE),
                continuation_token=self.continuation_token)
        except BadContinuationToken as exc:
            return _error(500, "Something went wrong while processing your request", exc)
        return _Response(200, statuses, {CONTINUATION_HEADER: token or ""})

    def purge(self, instance_id: str) -> _Response:
        return _Response(200, {"instancesDeleted": 1}) if self.hub.purge(instance_id) else _empty(404)

    def purge_by(self) -> _Response:
        created_from = self.date("createdTimeFrom")
        if created_from is None:
            return _Response(400, "Please provide value for 'createdTimeFrom' parameter.")
        deleted = self.hub.purge_by(created_from, self.date("createdTimeTo") or self.hub.clock.now(), self.statuses())
        return _Response(200, {"instancesDeleted": deleted}) if deleted else _empty(404)

    def operation(self, instance_id: str, operation: str) -> _Response:
        if operation == "restart":
            return self.restart(instance_id)
        action = {"terminate": self.hub.terminate, "suspend": self.hub.suspend, "resume": self.hub.resume}.get(operation)
        if action is None and operation != "rewind":
            return _empty(404)
        status = self.hub.get_status(instance_id, show_input=False)
        if status is None:
            return _empty(404)
        if status["runtimeStatus"] in DONE_STATUSES - ({"Failed"} if operation == "rewind" else set()):
            return _empty(410)
        if action is None:
            return _error(501, "rewind is not supported by the emulator's task hub")
        return _empty(202) if action(instance_id, self.text("reason")) else _empty(410)

    def restart(self, instance_id: str) -> _Response:
        try:
            new_id = self.hub.restart(instance_id, self.flag("restartWithNewInstanceId", True))
        except KeyError as exc:
            return _error(400, "InstanceId does not match a valid orchestration instance.", exc, "System.ArgumentException")
        except InstanceAlreadyExists as exc:
            return _error(500, "Something went wrong while processing your request", exc,
                          "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException")
        return self.check_status_response(new_id)

    def raise_event(self, instance_id: str, event_name: str) -> _Response:
        status = self.hub.get_status(instance_id, show_input=False)
        if status is None:
            return _empty(404)
        if status["runtimeStatus"] in DONE_STATUSES:
            return _empty(410)
        if (self.content_type or "").split(";")[0].strip().lower() != "application/json":
            return _error(400, "Only application/json request content is supported")
        try:
            data = json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return _error(400, "Invalid JSON content", exc, "Newtonsoft.Json.JsonReaderException")
        return _empty(202) if self.hub.raise_event(instance_id, event_name, data) else _empty(410)

    # --- query parameters ------------------------------------------------------------------------

    def integer(self, name: str, default: int) -> int:
        """An int parameter as ``int.TryParse`` reads it; ``default`` when absent or unreadable."""
        try:
            return int(self.text(name) or "")
        except ValueError:
            return default

    def text(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def flag(self, name: str, default: bool) -> bool:
        """A boolean parameter as .NET's ``bool.TryParse`` reads it; ``default`` when absent or unreadable."""
        value = (self.text(name) or "").strip().lower()
        return {"true": True, "false": False}.get(value, default)

    def date(self, name: str) -> datetime | None:
        value = self.text(name)
        if not value:
            return None
        try:
            return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None

    def statuses(self) -> list[str] | None:
        names = [name for value in self.query.get("runtimeStatus", []) for name in value.split(",") if name]
        return names or None


def _segments(path: str) -> list[str] | None:
    """The path segments after the RPC or webhook prefix (URL-decoded), or None for other paths."""
    for prefix in (RPC_PREFIX, WEBHOOK_PREFIX):
        if path.startswith(prefix) or path == prefix.rstrip("/"):
            return [unquote(part) for part in path[len(prefix):].split("/") if part]
    return None
