"""The HTTP host itself: routes read from the app, templates, body framing and limits."""

from __future__ import annotations

import http.client
import json
import logging
import socket
from pathlib import Path

import pytest

from bootstrap import build_app, provide
from emulator.http_host import HttpHost, compile_template, http_routes, route_prefix_from_host_json
from settings import Settings
from tests.http.conftest import no_backend
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
    app = build_app(backend=no_backend, settings=provide(Settings(workspace=None)))
    with HttpHost(app, unreachable_binding(), KEY, max_body_bytes=2048) as host:
        yield host


def test_a_chunked_body_reaches_the_function(small_host: HttpHost) -> None:
    body = json.dumps({**rollout_request(), "colour": "green"}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", small_host.port, timeout=10)
    connection.request("POST", f"/api/rollouts?code={KEY}", body=iter([body[:10], body[10:]]),
                       headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
    reply = connection.getresponse()
    assert reply.status == 400 and [e["field"] for e in json.loads(reply.read())["errors"]] == ["colour"]
    connection.close()


def test_a_body_over_the_hosts_limit_is_413_before_any_function_runs(small_host: HttpHost) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", small_host.port, timeout=10)
    connection.request("POST", f"/api/alerts?code={KEY}", body=b"x" * 4096)
    reply = connection.getresponse()
    assert reply.status == 413 and reply.getheader("Connection") == "close"
    connection.close()


def exchange(host: HttpHost, raw: bytes) -> tuple[bytes, bool]:
    """Send ``raw`` on a fresh connection, left open; return what came back before the server closed the
    connection or went quiet for 5 s, and whether it closed it."""
    with socket.create_connection(("127.0.0.1", host.port), timeout=5) as sock:
        sock.sendall(raw)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            return received, False
        return received, True


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1]) if reply.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")) else 0


@pytest.mark.parametrize("size_line", [
    pytest.param(b"-1", id="minus-one"),
    pytest.param(b"-5", id="negative"),
    pytest.param(b"zz", id="not-hex"),
    pytest.param(b"ffffffffffffffffffff", id="beyond-any-limit"),
])
def test_a_bad_chunk_size_is_400_and_the_connection_closed_at_once(small_host: HttpHost, size_line: bytes) -> None:
    # The client keeps the connection open: a server reading "to the end of the stream" would wait forever.
    reply, closed = exchange(small_host, b"POST /api/alerts?code=" + KEY.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n" + size_line + b"\r\n" + b"x" * 4096)
    assert (status_of(reply), closed) == (400, True)


def test_a_chunked_body_over_the_limit_is_413_and_closes_the_connection(small_host: HttpHost) -> None:
    chunks = b"".join(b"400\r\n" + b"x" * 1024 + b"\r\n" for _ in range(3))      # 3 KiB > 2 KiB
    reply, closed = exchange(small_host, b"POST /api/alerts?code=" + KEY.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
    assert (status_of(reply), closed) == (413, True)


def test_a_declared_length_over_the_limit_is_413_without_waiting_for_the_body(small_host: HttpHost) -> None:
    reply, closed = exchange(small_host, b"POST /api/alerts?code=" + KEY.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Length: 1000000000\r\n\r\n" + b"x" * 4096)
    assert (status_of(reply), closed) == (413, True)


@pytest.mark.parametrize("headers", [
    pytest.param(b"Content-Length: -1\r\n", id="negative-length"),
    pytest.param(b"Content-Length: 12abc\r\n", id="non-numeric-length"),
    pytest.param(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", id="length-and-chunked"),
])
def test_malformed_framing_is_400(small_host: HttpHost, headers: bytes) -> None:
    reply, closed = exchange(small_host, b"POST /api/alerts?code=" + KEY.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                             + headers + b"\r\n0\r\n\r\n")
    assert (status_of(reply), closed) == (400, True)


def test_a_body_at_the_limit_reaches_the_function(small_host: HttpHost) -> None:
    body = json.dumps({**rollout_request(), "pad": ""}).encode()
    body = body.replace(b'"pad": ""', b'"pad": "' + b"x" * (2048 - len(body)) + b'"')
    assert len(body) == 2048
    reply, _ = exchange(small_host, b"POST /api/rollouts?code=" + KEY.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Length: 2048\r\nConnection: close\r\n\r\n" + body)
    assert status_of(reply) == 400 and b'"field": "pad"' in reply     # the function's own answer, naming the field


def test_keep_alive_serves_several_requests_on_one_connection(small_host: HttpHost) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", small_host.port, timeout=10)
    statuses = []
    for _ in range(3):
        connection.request("GET", "/api/nowhere")
        reply = connection.getresponse()
        reply.read()
        statuses.append(reply.status)
    connection.close()
    assert statuses == [404, 404, 404]


def test_the_key_never_reaches_the_log_even_for_a_malformed_request(small_host: HttpHost,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        exchange(small_host, b"POST /api/alerts?code=" + KEY.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n-1\r\n")
        exchange(small_host, b"GET /api/rollouts?code=" + KEY.encode() + b"\x01 HTTP/1.1\r\nHost: x\r\n\r\n")
        exchange(small_host, b"GET /api/rollouts?code=" + KEY.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert "GET /api/rollouts -> " in caplog.text and KEY not in caplog.text
