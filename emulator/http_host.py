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
100 MiB, the Functions default) and answered 413 beyond, with the connection closed; the
limit holds for chunked bodies too.

HTTP/1.1 itself (request line, headers, Content-Length, chunked framing, keep-alive) is
aiohttp's server, not parsed here: a malformed request (a chunk size of ``-1``, say) is its 400.
It runs on the process's one worker loop (``emulator.worker.WORKER_LOOP``), where the functions
run too, as in the Python worker: ``async`` functions are awaited there, plain ones run in the
loop's thread pool. The access log shows method, path, status and time: never the query string
(it may hold the key); aiohttp's own access log is off.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

import azure.functions as func
from aiohttp import web

from emulator.worker import WORKER_LOOP, registered_functions

log = logging.getLogger("aml_rollout.http_host")

DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024     # FUNCTIONS_REQUEST_BODY_SIZE_LIMIT's default
FUNCTION_TIMEOUT_SECONDS = 230.0                # Azure's load balancer gives an HTTP trigger 230 s
LISTEN_BACKLOG = 128                            # deep enough for a burst of webhook calls
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
    each invocation). ``start`` and ``stop`` run and end the server on the worker loop.
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
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> HttpHost:
        """Start serving (the shared worker loop starts with the first user); returns self.

        Raises ``OSError`` when the address cannot be bound (nothing is left running then).
        """
        _redact_server_log()
        WORKER_LOOP.acquire()
        try:
            WORKER_LOOP.run(self._listen(), timeout=30)
        except BaseException:
            WORKER_LOOP.release()
            raise
        return self

    async def _listen(self) -> None:
        application = web.Application(client_max_size=self.max_body_bytes)
        application.router.add_route("*", r"/{path:[\s\S]*}", self._serve)   # [\s\S]: a decoded %0A is still a path
        # lingering_time 0: a body left unread (a 413) is not drained; the connection is closed at once.
        runner = web.AppRunner(application, access_log=None, handle_signals=False, shutdown_timeout=1.0,
                               lingering_time=0)
        await runner.setup()
        site = web.TCPSite(runner, self._address[0], self._address[1], backlog=LISTEN_BACKLOG)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    def stop(self) -> None:
        """Stop serving; the last user of the worker loop closes the Durable client's HTTP session."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        try:
            WORKER_LOOP.run(runner.cleanup(), timeout=10)
        finally:
            self._port = None
            WORKER_LOOP.release()

    def __enter__(self) -> HttpHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._port is not None, "not started"
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:7071``."""
        return f"http://{self._address[0]}:{self.port}"

    # --- requests ---------------------------------------------------------------------------

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            reply = Reply(413, {"Connection": "close"})
        else:
            headers = {name: value for name, value in request.headers.items()}
            reply = await self.handle(request.method, request.raw_path, headers, body, f"http://{request.host}")
        headers = {k: v for k, v in reply.headers.items() if k.lower() not in ("content-length", "transfer-encoding")}
        response = web.Response(status=reply.status, headers=headers, body=reply.body)
        if reply.headers.get("Connection", "").lower() == "close":
            response.force_close()
        log.info("%s %s -> %d (%.1f ms)", request.method, request.path, reply.status,
                 (time.perf_counter() - started) * 1000)
        return response

    async def handle(self, method: str, target: str, headers: dict[str, str], body: bytes, origin: str) -> Reply:
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
        return await self._invoke(route, request)

    def _authorized(self, route: HttpRoute, query: dict[str, str], headers: dict[str, str]) -> bool:
        if route.auth_level == ANONYMOUS:
            return True
        given = next((v for k, v in headers.items() if k.lower() == "x-functions-key"), None) or query.get("code")
        return given is not None and hmac.compare_digest(given.encode(), self.key.encode())

    async def _invoke(self, route: HttpRoute, request: func.HttpRequest) -> Reply:
        try:
            response = await asyncio.wait_for(self._call(route, request), FUNCTION_TIMEOUT_SECONDS)
        except TimeoutError:
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


class _RedactKeys(logging.Filter):
    """aiohttp's server logs a malformed request with its parser error, which quotes the offending
    line (the request line may carry ``?code=KEY``): the record keeps one redacted line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        message = record.getMessage() + (f": {type(error).__name__}: {error}" if error is not None else "")
        record.msg, record.args, record.exc_info, record.exc_text = redact(message), None, None, None
        return True


def _redact_server_log() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _RedactKeys) for f in server_log.filters):
        server_log.addFilter(_RedactKeys())
