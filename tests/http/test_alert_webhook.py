"""The Azure Monitor webhook over real HTTP, with the common-schema samples, against ``serve``."""

from __future__ import annotations

import json
import threading

import pytest

from emulator.serve import LocalServer
from tests.http.helpers import (
    ENDPOINT,
    INSTANCE,
    MANAGED_SAMPLES,
    NEW,
    OLD,
    RESOLVED_SAMPLE,
    UNMANAGED_SAMPLES,
    Client,
    alert,
    endpoint_id,
    with_dimension,
)

FIRED = MANAGED_SAMPLES[0]


def post_alert(api: Client, payload: object = None, raw: bytes | None = None):
    return api.post("/api/alerts", payload, raw=raw)


def rule_of(name: str) -> str:
    return alert(name)["data"]["essentials"]["alertRule"]


@pytest.mark.parametrize("name", UNMANAGED_SAMPLES)
def test_an_alert_outside_the_managed_workspaces_is_2xx_and_changes_nothing(api: Client, name: str) -> None:
    api.start()
    api.wait_until_shifting()
    response = post_alert(api, alert(name))
    assert response.status == 200
    body = response.json()
    assert body["done"] is False and body["action"] == "ignore" and body["instance_id"] is None
    assert "workspace this app manages" in body["reason"]
    assert body["alert"]["rule"] == rule_of(name)
    view = api.status()
    assert view["runtime_status"] == "Running" and view["alerts"] == []


@pytest.mark.parametrize("name", MANAGED_SAMPLES)
def test_a_fired_alert_about_the_new_deployment_rolls_back_at_once(api: Client, server: LocalServer, name: str) -> None:
    api.start()   # a 30 s window: only the alert can end it this soon
    api.wait_until_shifting()
    response = post_alert(api, alert(name))
    assert response.status == 202
    body = response.json()
    assert (body["done"], body["action"], body["instance_id"], body["endpoint"]) == (True, "rollback", INSTANCE, ENDPOINT)
    view = api.wait_until_done(timeout=3)
    reason = f"alert {rule_of(name)!r} fired"
    assert view["outcome"] == "rolled_back" and view["reason"] == reason
    assert view["final_traffic"] == {OLD: 100} and server.endpoint.traffic == {OLD: 100}
    assert (view["history"][-1]["kind"], view["history"][-1]["reason"]) == ("rollback", reason)
    assert [(a["rule"], a["action"]) for a in view["alerts"]] == [(rule_of(name), "rolled back")]


def test_a_resolved_alert_is_recorded_on_the_running_rollout(api: Client) -> None:
    api.start()
    api.wait_until_shifting()
    response = post_alert(api, alert(RESOLVED_SAMPLE))
    assert response.status == 202
    assert (response.json()["action"], response.json()["reason"]) == ("record", f"alert {rule_of(RESOLVED_SAMPLE)!r} resolved")
    view = api.wait_for(lambda v: bool(v["alerts"]))
    assert [(a["monitor_condition"], a["action"]) for a in view["alerts"]] == [("Resolved", "recorded")]
    assert view["runtime_status"] == "Running" and view["traffic"] == {OLD: 90, NEW: 10}


def test_a_fired_alert_about_the_old_deployment_is_recorded_not_acted_on(api: Client) -> None:
    api.start()
    api.wait_until_shifting()
    response = post_alert(api, with_dimension(alert(FIRED), "deployment", OLD))
    assert response.status == 202
    assert response.json()["action"] == "record" and f"{OLD!r}" in response.json()["reason"]
    view = api.wait_for(lambda v: bool(v["alerts"]))
    assert view["runtime_status"] == "Running" and view["traffic"] == {OLD: 90, NEW: 10}


def test_an_alert_for_an_endpoint_without_a_running_rollout_is_2xx_and_does_nothing(api: Client) -> None:
    response = post_alert(api, alert(FIRED))
    assert response.status == 200
    assert response.json()["done"] is False and f"{ENDPOINT!r} has no running rollout" in response.json()["reason"]
    api.start()
    api.wait_until_shifting()
    other = post_alert(api, alert(FIRED, alertTargetIDs=[endpoint_id("ep2")]))
    assert other.status == 200 and "'ep2' has no running rollout" in other.json()["reason"]
    assert api.status()["runtime_status"] == "Running"


def test_an_alert_after_the_rollout_ended_does_nothing(api: Client, server: LocalServer) -> None:
    api.start()
    api.wait_until_shifting()
    api.post(f"/api/rollouts/{ENDPOINT}/promote")
    api.wait_until_done()
    response = post_alert(api, alert(FIRED))
    assert response.status == 200 and response.json()["done"] is False
    assert server.endpoint.traffic == {NEW: 100}


def test_only_the_alert_target_chooses_the_rollout(api: Client) -> None:
    payload = alert("metric_alert_static_threshold_fired_common_schema.json", alertId=INSTANCE,
                    configurationItems=[ENDPOINT])
    payload["data"]["customProperties"] = {"instanceId": INSTANCE, "endpoint": ENDPOINT}
    api.start()
    api.wait_until_shifting()
    response = post_alert(api, payload)
    assert response.status == 200 and response.json()["done"] is False
    assert api.status()["runtime_status"] == "Running"


@pytest.mark.parametrize("payload", [
    {"schemaId": "AzureMonitorMetricAlert", "data": {"context": {"name": "legacy"}}},
    {"data": {"essentials": {"alertRule": "x"}}},
])
def test_a_payload_that_is_not_the_common_schema_is_400_asking_to_turn_it_on(api: Client, payload: object) -> None:
    response = post_alert(api, payload)
    assert response.status == 400
    problem = response.json()
    assert problem["type"].endswith("invalid-alert") and "Enable the common alert schema" in problem["detail"]


@pytest.mark.parametrize("raw", [b'{"schemaId": "azureMonitorCommonAlertSchema", ', b"", b"not json at all"])
def test_malformed_json_is_400(api: Client, raw: bytes) -> None:
    response = post_alert(api, raw=raw)
    assert response.status == 400 and [e["field"] for e in response.json()["errors"]] == ["body"]


def test_a_body_over_max_alert_bytes_is_413_and_one_at_the_limit_is_taken(api: Client, server: LocalServer) -> None:
    limit = server.settings.max_alert_bytes
    payload = alert(FIRED)
    payload["data"]["customProperties"] = {"padding": ""}
    padding = limit - len(json.dumps(payload).encode())
    payload["data"]["customProperties"]["padding"] = "x" * padding
    at_limit = json.dumps(payload).encode()
    assert len(at_limit) == limit
    assert post_alert(api, raw=at_limit).status == 200
    too_big = post_alert(api, raw=at_limit + b" ")
    assert too_big.status == 413 and too_big.json()["limit_bytes"] == limit


def test_a_burst_of_duplicate_alerts_causes_exactly_one_rollback(api: Client, server: LocalServer) -> None:
    api.start()
    api.wait_until_shifting()
    payload, statuses = alert(FIRED), []
    barrier = threading.Barrier(20)

    def deliver() -> None:
        barrier.wait()
        statuses.append(post_alert(api, payload).status)

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(statuses) <= {200, 202} and 202 in statuses
    view = api.wait_until_done()
    assert view["outcome"] == "rolled_back"
    assert [h["kind"] for h in view["history"]] == ["step", "rollback"]
    by_rollout = [c.traffic for c in server.endpoint.changes if c.by == "aml-rollout"]
    assert by_rollout == [{OLD: 90, NEW: 10}, {OLD: 100}]
