"""Issue 8 §3-4 over real HTTP against ``serve``: out-of-range and non-finite values are 400s naming
the field and start nothing; ARM names are compared case-insensitively; an alert is routed on every
target and every deployment dimension; a malformed alert is a 400, never a 503 retried for ever."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from emulator.serve import LocalServer
from tests.http.helpers import ENDPOINT, INSTANCE, NEW, OLD, WORKSPACE, Client, alert, endpoint_id, rollout_request

FIRED = "ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json"
WORKSPACE_ID = endpoint_id().rsplit("/onlineendpoints/", 1)[0]


def raw_request(**raw_values: str) -> bytes:
    """The test rollout request as JSON text, with ``raw_values`` spliced in as literal JSON (NaN, 1e310...)."""
    text = json.dumps(rollout_request())[:-1]
    return (text + "".join(f', "{key}": {value}' for key, value in raw_values.items()) + "}").encode()


@pytest.mark.parametrize("raw, field, message", [
    pytest.param(raw_request(error_threshold="NaN"), "error_threshold", "finite", id="threshold-nan"),
    pytest.param(raw_request(error_threshold="Infinity"), "error_threshold", "finite", id="threshold-infinity"),
    pytest.param(raw_request(confidence="NaN"), "confidence", "finite", id="confidence-nan"),
    pytest.param(raw_request(max_latency_ratio="1e400"), "max_latency_ratio", "finite", id="latency-ratio-1e400"),
    pytest.param(raw_request(max_error_rate_increase="-Infinity"), "max_error_rate_increase", "finite",
                 id="increase-minus-infinity"),
    pytest.param(raw_request(latency_p99_threshold_ms="1" + "0" * 400), "latency_p99_threshold_ms", "between",
                 id="latency-10e400-int"),
    pytest.param(raw_request(latency_p99_threshold_ms="1e400"), "latency_p99_threshold_ms", "finite",
                 id="latency-1e400-float"),
    pytest.param(raw_request(min_requests="1" + "0" * 310), "min_requests", "between", id="min-requests-10e310"),
    pytest.param(raw_request(min_requests="1e310"), "min_requests", "integer", id="min-requests-1e310-float"),
    pytest.param(raw_request(observation_window='"P99999999999W"'), "observation_window", "at most P6D",
                 id="window-overflow"),
    pytest.param(raw_request(bake_time='"P99999999999W"'), "bake_time", "at most P6D", id="bake-overflow"),
    pytest.param(raw_request(observation_window='"PT\\uff13\\uff10S"'), "observation_window", "ISO 8601",
                 id="window-fullwidth-digits"),
    pytest.param(raw_request(endpoint_name='"ep1\\n"'), "endpoint_name", "3-32 characters", id="name-newline"),
])
def test_an_out_of_range_value_is_400_naming_it_and_starts_nothing(api: Client, server: LocalServer, raw: bytes,
                                                                    field: str, message: str) -> None:
    response = api.post("/api/rollouts", raw=raw)
    assert response.status == 400, response.body
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert list(errors) == [field] and message in errors[field]
    assert api.get(f"/api/rollouts/{ENDPOINT}").status == 404
    assert server.endpoint.traffic == {OLD: 100}


@pytest.mark.parametrize("window, message", [
    pytest.param("P99999999999W", "at most P30D", id="overflow"),
    pytest.param("P31D", "at most P30D", id="over-limit"),
    pytest.param("PT5M%0A", "ISO 8601", id="trailing-newline"),
    pytest.param("PT%EF%BC%95M", "ISO 8601", id="fullwidth-digit"),
    pytest.param("-PT5M", "ISO 8601", id="negative"),
])
def test_a_list_window_out_of_range_is_400_naming_it(api: Client, window: str, message: str) -> None:
    response = api.get(f"/api/rollouts?window={window}")
    assert response.status == 400, response.body
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == ["window"] and message in errors[0]["message"]


def test_the_list_window_at_its_limit_is_taken(api: Client) -> None:
    response = api.get("/api/rollouts?window=P30D")
    assert response.status == 200 and response.json()["window"] == "P30D"


@pytest.mark.parametrize("path", ["/api/rollouts/ep1%0A", "/api/rollouts/ep1%0A/abort", "/api/rollouts/ep-"])
def test_a_route_endpoint_that_azure_would_refuse_is_400(api: Client, path: str) -> None:
    response = api.request("POST" if path.endswith("abort") else "GET", path)
    assert response.status == 400 and [e["field"] for e in response.json()["errors"]] == ["endpoint"]


# --- ARM names are case-insensitive ------------------------------------------------------------------


def test_a_rollout_started_with_the_workspace_cased_otherwise_runs_and_its_alert_rolls_back(
        api: Client, server: LocalServer) -> None:
    workspace = {key: value.upper() for key, value in WORKSPACE.items()}
    api.start(workspace=workspace)
    api.wait_until_shifting()
    response = api.post("/api/alerts", alert(FIRED))
    assert response.status == 202, response.body
    assert (response.json()["action"], response.json()["instance_id"]) == ("rollback", INSTANCE)
    view = api.wait_until_done(timeout=5)
    assert view["outcome"] == "rolled_back" and server.endpoint.traffic == {OLD: 100}


# --- every target, every deployment dimension ---------------------------------------------------------


def with_dimensions(payload: dict[str, Any], dimensions: list[tuple[str, str]]) -> dict[str, Any]:
    payload = copy.deepcopy(payload)
    payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"] = [
        {"name": name, "value": value} for name, value in dimensions]
    return payload


@pytest.mark.parametrize("payload", [
    pytest.param(alert(FIRED, alertTargetIDs=[WORKSPACE_ID, endpoint_id()]), id="workspace-then-endpoint"),
    pytest.param(alert(FIRED, alertTargetIDs=[endpoint_id("ep2"), endpoint_id()]), id="other-endpoint-then-endpoint"),
    pytest.param(alert(FIRED, alertTargetIDs=[endpoint_id().upper()]), id="target-id-upper-case"),
    pytest.param(with_dimensions(alert(FIRED), [("deployment", OLD), ("deployment", NEW)]),
                 id="new-deployment-in-the-second-dimension"),
    pytest.param(with_dimensions(alert(FIRED, alertTargetIDs=[endpoint_id() + f"/deployments/{OLD}"]),
                                 [("deployment", NEW)]), id="old-in-the-id-new-in-a-dimension"),
])
def test_an_alert_naming_the_new_deployment_anywhere_rolls_back(api: Client, server: LocalServer,
                                                                  payload: dict[str, Any]) -> None:
    api.start()
    api.wait_until_shifting()
    response = api.post("/api/alerts", payload)
    assert response.status == 202, response.body
    assert (response.json()["action"], response.json()["endpoint"]) == ("rollback", ENDPOINT)
    assert api.wait_until_done(timeout=5)["outcome"] == "rolled_back"
    assert server.endpoint.traffic == {OLD: 100}


# --- malformed for good: 400 -------------------------------------------------------------------------


def _broken(where: str, value: Any) -> dict[str, Any]:
    payload = alert(FIRED)
    if where == "data":
        payload["data"] = value
    elif where == "dimensions":
        payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"] = value
    else:
        payload["data"]["essentials"][where] = value
    return payload


@pytest.mark.parametrize("payload, detail", [
    pytest.param(_broken("data", []), "data is missing or not an object", id="data-a-list"),
    pytest.param(_broken("data", "text"), "data is missing or not an object", id="data-a-string"),
    pytest.param(_broken("dimensions", 7), "dimensions must be a list", id="dimensions-7"),
    pytest.param(_broken("alertRule", ["r"]), "alertRule must be a string", id="rule-a-list"),
    pytest.param(_broken("alertTargetIDs", [{"id": 1}]), "list of resource ids", id="target-an-object"),
])
def test_an_alert_that_can_never_parse_is_400_not_503(api: Client, payload: dict[str, Any], detail: str) -> None:
    api.start()
    api.wait_until_shifting()
    response = api.post("/api/alerts", payload)
    assert response.status == 400, response.body
    assert response.json()["type"].endswith("invalid-alert") and detail in response.json()["detail"]
    assert api.status()["runtime_status"] == "Running"
