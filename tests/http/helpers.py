"""What the HTTP tests share: the scenario, a small HTTP client, alert samples, and a scripted task hub.

Everything goes over real HTTP on loopback. ``ScriptedTaskHub`` is a hand-written fake of the
Durable HTTP management API for what the real task hub cannot be made to do on cue (answer
nonsense, lose a race); everything else runs against ``serve``'s own task hub.
"""

from __future__ import annotations

import copy
import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from rollout.wire import RUNNING_STATUSES

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "test-key-2f9d1c6b"
ENDPOINT, OLD, NEW = "ep1", "blue", "green"
INSTANCE = f"rollout-{ENDPOINT}"
WORKSPACE = {"subscription_id": "00000000-1111-2222-3333-444444444444", "resource_group": "rg1", "workspace_name": "ws1"}
# The workspace and endpoint of the *.SYNTHETIC.json alert samples, so that they route unchanged.
SCENARIO: dict[str, Any] = {
    "workspace": WORKSPACE,
    "endpoint": {"name": ENDPOINT, "deployments": {OLD: {"traffic": 100, "instance_count": 2}, NEW: {"traffic": 0}}},
    "load": {"requests_per_minute": 60000},
    "health": {OLD: [{"from": "PT0S", "error_rate": 0.001, "latency_p99_ms": 100}],
               NEW: [{"from": "PT0S", "error_rate": 0.002, "latency_p99_ms": 120}]},
}
MANAGED_SAMPLES = ("ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json",
                   "ml_endpoint_dynamic_threshold_latency_fired.SYNTHETIC.json",
                   "ml_workspace_log_search_alert_fired.SYNTHETIC.json")
RESOLVED_SAMPLE = "ml_endpoint_metric_alert_deployment_dimension_resolved.SYNTHETIC.json"
UNMANAGED_SAMPLES = ("activity_log_alert_administrative_fired_common_schema.json",
                     "log_search_alert_v2_fired_common_schema.json",
                     "metric_alert_dynamic_threshold_fired_common_schema.json",
                     "metric_alert_resolved_common_schema.json",
                     "metric_alert_static_threshold_fired_common_schema.json")


def rollout_request(**overrides: Any) -> dict[str, Any]:
    """A request for ep1 that stays in its first step for 30 s (checks every second) unless overridden."""
    return {"endpoint_name": ENDPOINT, "new_deployment": NEW, "traffic_steps": [10, 50, 100],
            "observation_window": "PT30S", "check_interval": "PT1S", "min_requests": 1, **overrides}


def alert(name: str, **essentials: Any) -> dict[str, Any]:
    """A sample alert payload from the fixtures, with ``essentials`` fields replaced."""
    payload = json.loads((FIXTURES / name).read_text())
    payload["data"]["essentials"].update(essentials)
    return payload


def with_dimension(payload: dict[str, Any], name: str, value: str) -> dict[str, Any]:
    """A copy of a metric alert payload with the value of dimension ``name`` replaced."""
    payload = copy.deepcopy(payload)
    for criterion in payload["data"]["alertContext"]["condition"]["allOf"]:
        for dimension in criterion["dimensions"]:
            if dimension["name"] == name:
                dimension["value"] = value
    return payload


def endpoint_id(endpoint: str = ENDPOINT) -> str:
    w = WORKSPACE
    return (f"/subscriptions/{w['subscription_id']}/resourcegroups/{w['resource_group']}/providers"
            f"/microsoft.machinelearningservices/workspaces/{w['workspace_name']}/onlineendpoints/{endpoint}")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    @property
    def content_type(self) -> str:
        return self.header("Content-Type") or ""


class Client:
    """Real HTTP requests against a served base URL; the key goes in ``?code=`` unless told otherwise."""

    def __init__(self, base_url: str, key: str = KEY) -> None:
        self.base_url, self.key = base_url, key

    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                key: str | None = "default", key_in: str = "query", headers: dict[str, str] | None = None) -> Response:
        """``body`` is sent as JSON (``raw`` as is); ``key`` None sends none; ``key_in`` "query" or "header"."""
        key = self.key if key == "default" else key
        headers = dict(headers or {})
        if key is not None and key_in == "header":
            headers["x-functions-key"] = key
        elif key is not None:
            path += ("&" if "?" in path else "?") + f"code={key}"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is not None:
            headers.setdefault("Content-Type", "application/json")
        parts = urlsplit(self.base_url)
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        try:
            connection.request(method, path, body=data, headers=headers)
            reply = connection.getresponse()
            return Response(reply.status, dict(reply.getheaders()), reply.read())
        finally:
            connection.close()

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.request("POST", path, body, **kwargs)

    def start(self, **overrides: Any) -> Response:
        """Start a rollout of green on ep1 (``rollout_request``); asserts the 202."""
        response = self.post("/api/rollouts", rollout_request(**overrides))
        assert response.status == 202, response.body
        return response

    def status(self, endpoint: str = ENDPOINT) -> dict[str, Any]:
        response = self.get(f"/api/rollouts/{endpoint}")
        assert response.status == 200, response.body
        return response.json()

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0,
                 endpoint: str = ENDPOINT) -> dict[str, Any]:
        """Poll the rollout's status until ``predicate`` holds; returns that status (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            view = self.status(endpoint)
            if predicate(view):
                return view
            assert time.monotonic() < deadline, f"timed out; last status: {json.dumps(view)[:2000]}"
            time.sleep(0.05)

    def wait_until_running(self) -> dict[str, Any]:
        """Until the instance has left ``Pending`` (its first episode ran). On Azure, as in ``serve``,
        the status read right after the 202 can still be ``Pending``."""
        return self.wait_for(lambda v: v["runtime_status"] != "Pending")

    def wait_until_observing(self) -> dict[str, Any]:
        """Until the first step's traffic is set and its observation window has begun."""
        return self.wait_for(lambda v: v.get("phase") == "observing")

    def wait_until_shifting(self) -> dict[str, Any]:
        """Until pre-flight is over: operator actions fit from here on (they act at the step's first wait)."""
        return self.wait_for(lambda v: v.get("phase") in ("shifting", "observing"))

    def wait_until_done(self, timeout: float = 10.0) -> dict[str, Any]:
        return self.wait_for(lambda v: v["runtime_status"] not in RUNNING_STATUSES, timeout)


# --- a scripted Durable management API ------------------------------------------------------------


def instance_status(runtime_status: str, custom_status: Any = None, output: Any = None,
                    instance_id: str = INSTANCE) -> dict[str, Any]:
    """A status body as the management API returns it."""
    return {"name": "rollout_orchestrator", "instanceId": instance_id, "runtimeStatus": runtime_status,
            "input": {"endpoint_name": ENDPOINT, "new_deployment": NEW, "workspace": None},
            "customStatus": custom_status, "output": output,
            "createdTime": "2026-01-01T00:00:00Z", "lastUpdatedTime": "2026-01-01T00:00:01Z"}


NOT_FOUND = (404, None)


@dataclass
class ScriptedTaskHub:
    """A fake Durable management API: each kind of call answers from its script, in order, the last
    answer repeating. Kinds: ``status`` (GET one instance), ``list`` (GET instances), ``start``
    (POST orchestrators/...), ``raise`` (POST .../raiseEvent/...). ``calls`` records (kind, path)."""

    scripts: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def binding(self) -> str:
        """The durable client binding JSON pointing at this fake."""
        port = self._server.server_address[1]
        return json.dumps({"taskHubName": "TestHub", "creationUrls": {}, "managementUrls": {},
                           "rpcBaseUrl": f"http://127.0.0.1:{port}/durabletask/"})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.calls if k == kind)

    def _answer(self, kind: str, path: str) -> tuple[int, Any]:
        with self._lock:
            self.calls.append((kind, path))
            script = self.scripts.get(kind) or [(500, {"Message": f"no script for {kind}"})]
            return script.pop(0) if len(script) > 1 else script[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, kind: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                status, body = hub._answer(kind, self.path)
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                self._reply("list" if path.rstrip("/").endswith("/instances") else "status")

            def do_POST(self) -> None:
                self._reply("raise" if "/raiseEvent/" in self.path else "start")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def unreachable_binding() -> str:
    """A durable client binding whose management API port has nothing listening."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return json.dumps({"taskHubName": "TestHub", "creationUrls": {}, "managementUrls": {},
                       "rpcBaseUrl": f"http://127.0.0.1:{port}/durabletask/"})
