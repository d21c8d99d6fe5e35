"""The HTTP host itself: routes read from the app, templates, body framing and limits."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from emulator.http_host import HttpHost, compile_template, http_routes, route_prefix_from_host_json
from tests.http.helpers import KEY, rollout_request, unreachable_binding

ROOT = Path(__file__).resolve().parents[2]


def test_the_routes_come_from_the_registered_http_functions() -> None:
    from function_app import app

    routes = {(r.name, r.template, tuple(sorted(r.methods)), r.auth_level, r.request_param, r.client_params)
              for r in http_routes(app)}
    assert routes == {
        ("start_rollout", "rollouts", ("POST",), "function", "req", ("client",)),
        ("list_rollouts", "rollouts", ("GET",), "function", "req", ("client",)),
        ("get_rollout", "rollouts/{endpoint}", ("GET",), "function", "req", ("client",)),
        ("control_rollout", "rollouts/{endpoint}/{action}", ("POST",), "function", "req", ("client",)),
        ("view_rollout", "rollouts/{endpoint}/view", ("GET",), "function", "req", ("client",)),
        ("alert_webhook", "alerts", ("POST",), "function", "req", ("client",)),
    }


@pytest.mark.parametrize(("template", "path", "params"), [
    ("rollouts/{endpoint}/{action}", "/rollouts/ep1/pause", {"endpoint": "ep1", "action": "pause"}),
    ("rollouts/{endpoint}/{action}", "/Rollouts/ep-1/pause/", {"endpoint": "ep-1", "action": "pause"}),
    ("rollouts/{endpoint}/{action}", "/rollouts/ep1", None),
    ("rollouts/{endpoint}", "/rollouts/ep1/pause", None),
    ("items/{id:int}/{name?}", "/items/7", {"id": "7"}),
    ("items/{id:int}/{name?}", "/items/7/x", {"id": "7", "name": "x"}),
    ("files/{*rest}", "/files/a/b/c", {"rest": "a/b/c"}),
])
def test_route_templates_match_as_the_functions_host_does(template: str, path: str, params: dict | None) -> None:
    found = compile_template(template).match(path)
    assert (None if found is None else {k: v for k, v in found.groupdict().items() if v is not None}) == params


def test_the_route_prefix_is_read_from_host_json(tmp_path: Path) -> None:
    assert route_prefix_from_host_json(ROOT / "host.json") == "api"
    (tmp_path / "host.json").write_text(json.dumps({"extensions": {"http": {"routePrefix": ""}}}))
    assert route_prefix_from_host_json(tmp_path / "host.json") == ""
    assert route_prefix_from_host_json(tmp_path / "missing.json") == "api"


@pytest.fixture
def small_host():
    from function_app import app

    with HttpHost(app, unreachable_binding(), KEY, max_body_bytes=2048) as host:
        yield host


def test_a_chunked_body_reaches_the_function(small_host: HttpHost) -> None:
    body = json.dumps({**rollout_request(), "colour": "green"}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", small_host.port, timeout=10)
    connection.request("POST", f"/api/rollouts?code={KEY}", body=iter([body[:10], body[10:]]),
                       headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
    reply = connection.getresponse()
    assert reply.status == 400 and [e["field"] for e in json.loads(reply.read())["errors"]] == ["colour"]


def test_a_body_over_the_hosts_limit_is_413_before_any_function_runs(small_host: HttpHost) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", small_host.port, timeout=10)
    connection.request("POST", f"/api/alerts?code={KEY}", body=b"x" * 4096)
    reply = connection.getresponse()
    assert reply.status == 413 and reply.getheader("Connection") == "close"
