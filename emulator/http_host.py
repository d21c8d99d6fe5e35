"""A real HTTP server on loopback that serves the app's HTTP-triggered functions as the Functions host does.

Routes come from the registered functions themselves (``app.get_functions()``): each
``httpTrigger`` binding's route template (``rollouts/{endpoint}/{action}``; ``{name?}`` optional,
``{*rest}`` catch-all, ``{name:constraint}`` with the constraint ignored), its methods and its
auth level, under the route prefix (``api``, as in host.json). A request becomes an
``azure.functions.HttpRequest`` (method, URL, headers, query params, route params, body); every
``durableClient`` binding gets the client binding JSON (the DFApp turns it into a
``DurableOrchestrationClient``); the returned ``HttpResponse`` goes back on the wire.

As in Azure: a route with auth level ``function`` or ``admin`` needs the key, in ``?code=KEY``
or the ``x-functions-key`` header, else 401 with an empty body; an unknown path is 404; an
unhandled exception in a function is a bare 500 (logged here). Beyond Azure: a known path with
the wrong method is 405 with ``Allow``. Bodies are limited to ``max_body_bytes`` (default
100 MiB, the Functions default) and answered 413 beyond.

Functions run on one event loop in its own thread, like the Python worker's; the HTTP server
answers each connection in a thread of its own and hands the invocation to that loop. The
access log shows method, path, status and time: never the query string (it may hold the key).
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging
import re
import threading
import time
import uuid
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

import azure.functions as func

from emulator.worker import WORKER_LOOP, registered_functions

log = logging.getLogger("aml_rollout.http_host")

DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024     # FUNCTIONS_REQUEST_BODY_SIZE_LIMIT's default
FUNCTION_TIMEOUT_SECONDS = 230.0                # Azure's load balancer gives an HTTP trigger 230 s
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class HttpRoute:
    """One HTTP-triggered function: where it listens and which parameters get what."""

    name: str
    template: str
    methods: frozenset[str]           # upper-case; empty means any method
    auth_level: str                   # anonymous, function or admin
    request_param: str
    client_params: tuple[str, ...]
    handler: Callable[..., Any] = field(compare=False)
    pattern: re.Pattern[str] = field(compare=False)

    def match(self, path: str) -> dict[str, str] | None:
        """The route parameters when ``path`` (after the prefix, no leading slash) matches, else None."""
        found = self.pattern.match(path)
        if found is None:
            return None
        return {name: unquote(value) for name, value in found.groupdict().items() if value is not None}

    def allows(self, method: str) -> bool:
        return not self.methods or method in self.methods


_SEGMENT = re.compile(r"^\{(?P<star>\*)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::[^}?]*)?(?P<optional>\?)?\}$")


def compile_template(template: str) -> re.Pattern[str]:
    """A case-insensitive regex for a route template: literal segments, ``{name}``, ``{name?}``, ``{*name}``."""
    parts = []
    for segment in filter(None, template.strip("/").split("/")):
        found = _SEGMENT.match(segment)
        if found is None:
            parts.append("/" + re.escape(segment))
        elif found["star"]:
            parts.append(f"(?:/(?P<{found['name']}>.*))?")
        elif found["optional"]:
            parts.append(f"(?:/(?P<{found['name']}>[^/]+))?")
        else:
            parts.append(f"/(?P<{found['name']}>[^/]+)")
    return re.compile("^" + "".join(parts) + "/?$", re.IGNORECASE)


def http_routes(app: Any) -> list[HttpRoute]:
    """The HTTP routes of a ``FunctionApp``'s registered functions, most literal segments first."""
    routes = []
    for function in registered_functions(app):
        bindings = [json.loads(raw) for raw in function.get_raw_bindings()]
        trigger = next((b for b in bindings if b.get("type") == "httpTrigger"), None)
        if trigger is None:
            continue
        name = function.get_function_name()
        template = trigger.get("route") or name
        routes.append(HttpRoute(
            name=name, template=template,
            methods=frozenset(m.upper() for m in trigger.get("methods") or ()),
            auth_level=str(trigger.get("authLevel") or "function").lower(),
            request_param=trigger["name"],
            client_params=tuple(b["name"] for b in bindings if b.get("type") == "durableClient"),
            handler=function.get_user_function(),
            pattern=compile_template(template),
        ))
    return sorted(routes, key=lambda r: -sum(1 for s in r.template.split("/") if s and not s.startswith("{")))


def route_prefix_from_host_json(path: str | Path, default: str = "api") -> str:
    """``extensions.http.routePrefix`` of a host.json (``default`` when absent or unreadable)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default
    prefix = ((data.get("extensions") or {}).get("http") or {}).get("routePrefix")
    return default if prefix is None else str(prefix).strip("/")


@dataclass
class Reply:
    """What goes back on the wire."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class _Context:
    """The ``func.Context`` fields a function may ask for."""

    invocation_id: str
    function_name: str
    function_directory: str = ""


class HttpHost:
    """Serve ``app``'s HTTP functions on ``host:port`` (port 0: any free one), requiring ``key``.

    ``client_binding`` is the durable client binding JSON, or a callable returning it (read at
    each invocation). ``start`` and ``stop`` run and end the server and its event loop.
    """

    def __init__(self, app: Any, client_binding: str | Callable[[], str], key: str, host: str = "127.0.0.1",
                 port: int = 0, route_prefix: str = "api", max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        if not key:
            raise ValueError("a function key is required")
        self.routes = http_routes(app)
        self.key = key
        self.prefix = "/" + route_prefix.strip("/") if route_prefix.strip("/") else ""
        self.max_body_bytes = max_body_bytes
        self._binding = client_binding
        self._address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> HttpHost:
        """Start serving (the shared worker loop starts with the first host); returns self."""
        self._loop = WORKER_LOOP.acquire()
        self._server = _Server(self._address, _handler_class(self))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="http-host", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; the last host to stop closes the Durable client's HTTP session."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server, self._thread, self._loop = None, None, None
        WORKER_LOOP.release()

    def __enter__(self) -> HttpHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:7071``."""
        return f"http://{self._address[0]}:{self.port}"

    # --- requests ---------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes, origin: str) -> Reply:
        """Answer one request (``target``: path and query as sent; ``origin``: ``http://host:port``)."""
        parts = urlsplit(target)
        path = parts.path
        if not path.lower().startswith(self.prefix.lower()):
            return Reply(404)
        relative = path[len(self.prefix):]
        matches = [(route, params) for route in self.routes if (params := route.match(relative)) is not None]
        if not matches:
            return Reply(404)
        allowed = [(route, params) for route, params in matches if route.allows(method)]
        if not allowed:
            methods = sorted({m for route, _ in matches for m in route.methods})
            return Reply(405, {"Allow": ", ".join(methods)})
        route, params = allowed[0]
        query = {name: values[0] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
        if not self._authorized(route, query, headers):
            return Reply(401)
        request = func.HttpRequest(method, origin + target, headers=headers, params=query, route_params=params,
                                   body=body)
        return self._invoke(route, request)

    def _authorized(self, route: HttpRoute, query: dict[str, str], headers: dict[str, str]) -> bool:
        if route.auth_level == ANONYMOUS:
            return True
        given = next((v for k, v in headers.items() if k.lower() == "x-functions-key"), None) or query.get("code")
        return given is not None and hmac.compare_digest(given.encode(), self.key.encode())

    def _invoke(self, route: HttpRoute, request: func.HttpRequest) -> Reply:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self._call(route, request), self._loop)
        try:
            response = future.result(timeout=FUNCTION_TIMEOUT_SECONDS)
        except FutureTimeout:
            future.cancel()
            log.error("function %s timed out after %.0f s", route.name, FUNCTION_TIMEOUT_SECONDS)
            return Reply(504)
        except Exception:
            log.exception("function %s raised", route.name)
            return Reply(500)
        return _reply(response, route.name)

    async def _call(self, route: HttpRoute, request: func.HttpRequest) -> Any:
        binding = self._binding() if callable(self._binding) else self._binding
        kwargs: dict[str, Any] = {route.request_param: request, **{name: binding for name in route.client_params}}
        if "context" in inspect.signature(route.handler).parameters:
            kwargs["context"] = _Context(str(uuid.uuid4()), route.name)
        if inspect.iscoroutinefunction(route.handler):
            return await route.handler(**kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: route.handler(**kwargs))


def _reply(response: Any, name: str) -> Reply:
    """An ``HttpResponse`` (or a str, as the worker allows) as a ``Reply``; anything else is a 500."""
    if isinstance(response, str):
        response = func.HttpResponse(response)
    if not isinstance(response, func.HttpResponse):
        log.error("function %s returned %s, not an HttpResponse", name, type(response).__name__)
        return Reply(500)
    headers = dict(response.headers.items())
    if not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = f"{response.mimetype}; charset={response.charset}"
    return Reply(response.status_code, headers, response.get_body() or b"")


_SECRET = re.compile(r"(code=)[^&\s'\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the value of any ``code=`` query parameter (a function key) replaced by ``***``."""
    return _SECRET.sub(r"\1***", text)


class _Server(ThreadingHTTPServer):
    """A thread per connection, and a listen backlog deep enough for a burst of webhook calls
    (socketserver's default of 5 resets the connections beyond it)."""

    daemon_threads = True
    request_queue_size = 128


class _BodyError(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


def _handler_class(host: HttpHost) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``host``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "aml-rollout-emulator"
        # Headers and body go out in two writes: with Nagle on, a keep-alive client's delayed ACK
        # holds the body back ~40 ms.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            started = time.perf_counter()
            try:
                body = self._read_body()
            except _BodyError as exc:
                self.close_connection = True
                self._send(Reply(exc.status, {"Connection": "close"}), started)
                return
            headers = {k: v for k, v in self.headers.items()}
            origin = f"http://{self.headers.get('Host') or host.url.split('://', 1)[1]}"
            self._send(host.handle(self.command, self.path, headers, body, origin), started)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        def _read_body(self) -> bytes:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                return self._read_chunked()
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise _BodyError(400) from None
            if length < 0:
                raise _BodyError(400)
            if length > host.max_body_bytes:
                raise _BodyError(413)
            return self.rfile.read(length) if length else b""

        def _read_chunked(self) -> bytes:
            chunks: list[bytes] = []
            total = 0
            while True:
                try:
                    size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"x", 16)
                except ValueError:
                    raise _BodyError(400) from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > host.max_body_bytes:
                    raise _BodyError(413)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)

        def _send(self, reply: Reply, started: float) -> None:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD" and reply.body:
                self.wfile.write(reply.body)
            log.info("%s %s -> %d (%.1f ms)", self.command, urlsplit(self.path).path, reply.status,
                     (time.perf_counter() - started) * 1000)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """Silenced: ``_send`` logs each request without its query string."""

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: %s", redact(format % args))

    return Handler
