"""Function keys, enforced as Azure does, and never echoed in responses or logs."""

from __future__ import annotations

import logging

import pytest

from tests.http.helpers import ENDPOINT, KEY, MANAGED_SAMPLES, Client, alert, rollout_request

ROUTES = [("POST", "/api/rollouts"), ("GET", "/api/rollouts"), ("GET", f"/api/rollouts/{ENDPOINT}"),
          ("POST", f"/api/rollouts/{ENDPOINT}/pause"), ("POST", "/api/alerts")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_answers_401_without_the_right_key(api: Client, method: str, path: str) -> None:
    body = rollout_request() if path == "/api/rollouts" and method == "POST" else None
    for response in (api.request(method, path, body, key=None),
                     api.request(method, path, body, key="not-the-key"),
                     api.request(method, path, body, key="not-the-key", key_in="header"),
                     api.request(method, path, body, key=KEY.upper())):
        assert (response.status, response.body) == (401, b"")
    assert api.get(f"/api/rollouts/{ENDPOINT}").status == 404   # nothing started on the way


def test_the_key_is_taken_from_the_query_or_the_x_functions_key_header(api: Client) -> None:
    assert api.get("/api/rollouts", key_in="query").status == 200
    assert api.get("/api/rollouts", key_in="header").status == 200


def test_the_key_appears_in_no_response_and_no_log(api: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    responses = [api.start()]
    api.wait_until_shifting()        # a pause is refused (409) while pre-flight runs
    responses += [api.get(f"/api/rollouts/{ENDPOINT}"), api.get("/api/rollouts"),
                  api.post(f"/api/rollouts/{ENDPOINT}/pause", key_in="header"),
                  api.post("/api/alerts", alert(MANAGED_SAMPLES[0])), api.get("/api/rollouts?window=bad"),
                  api.request("GET", "/api/rollouts", key=KEY + "x")]
    assert [r.status for r in responses] == [202, 200, 200, 202, 202, 400, 401]
    for response in responses:
        assert KEY not in response.body.decode() and KEY not in str(response.headers)
    assert "POST /api/rollouts -> 202" in caplog.text   # requests are logged...
    assert KEY not in caplog.text                        # ...without their key
