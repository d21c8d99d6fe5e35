"""Starting, inspecting and listing rollouts over real HTTP against ``serve``."""

from __future__ import annotations

import threading

import pytest

from tests.http.helpers import ENDPOINT, INSTANCE, KEY, NEW, OLD, WORKSPACE, Client, rollout_request


def test_start_answers_202_with_the_id_and_where_to_poll_and_steer(api: Client) -> None:
    response = api.start()
    body = response.json()
    status_url = f"{api.base_url}/api/rollouts/{ENDPOINT}"
    assert body["id"] == INSTANCE
    assert body["status_url"] == status_url and response.header("Location") == status_url
    assert body["actions"] == {a: f"{status_url}/{a}" for a in ("pause", "resume", "promote", "abort", "resolve",
                                                                          "revert")}
    assert body["request"]["observation_window"] == "PT30S" and body["request"]["error_threshold"] == 0.01
    assert KEY not in response.body.decode() and KEY not in str(response.headers)


def test_status_shows_phase_step_traffic_last_health_and_history(api: Client) -> None:
    api.start()
    view = api.wait_for(lambda v: v.get("last_health") is not None)
    assert view["instance_id"] == INSTANCE and view["runtime_status"] == "Running"
    assert view["phase"] == "observing" and view["current_step"] == 10 and view["step_index"] == 0
    assert view["traffic"] == {OLD: 90, NEW: 10}
    health = view["last_health"]
    # a second of 10% of serve's 1200 requests a minute: too few for the judge, and the status says what it needs
    assert health["verdict"] == "inconclusive" and health["step"] == 10
    assert health["needed_requests"] > 0 and f"a verdict needs {health['needed_requests']} more" in health["reason"]
    assert health["new"]["requests"] > 0 and health["old"]["requests"] > health["new"]["requests"]
    assert [(h["kind"], h["traffic"], h["reason"]) for h in view["history"]] == [
        ("step", {OLD: 90, NEW: 10}, f"step 1/3: {NEW} to 10%")]
    assert view["request"]["new_deployment"] == NEW and view["outcome"] is None


def test_a_healthy_rollout_is_promoted_and_its_status_keeps_the_outcome(api: Client, server) -> None:
    api.start(traffic_steps=[50, 100], observation_window="PT1S")
    view = api.wait_until_done()
    assert view["runtime_status"] == "Completed" and view["phase"] == "done"
    assert view["outcome"] == "promoted" and view["final_traffic"] == {NEW: 100}
    assert view["steps_completed"] == [50, 100]
    assert [h["traffic"] for h in view["history"]] == [{OLD: 50, NEW: 50}, {NEW: 100}]
    assert server.endpoint.traffic == {NEW: 100}


def test_status_of_an_endpoint_that_never_had_a_rollout_is_404(api: Client) -> None:
    response = api.get("/api/rollouts/other-endpoint")
    assert response.status == 404
    assert response.content_type.startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 404 and problem["type"].endswith("rollout-not-found")
    assert "other-endpoint" in problem["detail"]


def test_a_route_parameter_that_cannot_be_an_endpoint_name_is_400(api: Client) -> None:
    response = api.get("/api/rollouts/x%3FshowHistory%3Dtrue")
    assert response.status == 400
    assert [e["field"] for e in response.json()["errors"]] == ["endpoint"]


def test_list_shows_running_and_recently_ended_rollouts(api: Client) -> None:
    assert api.get("/api/rollouts").json()["rollouts"] == []
    api.start()
    api.wait_until_running()
    listed = api.get("/api/rollouts").json()
    assert listed["window"] == "P1D"
    assert [(r["instance_id"], r["runtime_status"], r["endpoint_name"]) for r in listed["rollouts"]] == [
        (INSTANCE, "Running", ENDPOINT)]
    assert listed["rollouts"][0]["links"]["status"] == f"{api.base_url}/api/rollouts/{ENDPOINT}"
    api.post(f"/api/rollouts/{ENDPOINT}/abort")
    api.wait_until_done()
    ended = api.get("/api/rollouts?window=PT1H").json()
    assert ended["window"] == "PT1H"
    assert [(r["runtime_status"], r["outcome"]) for r in ended["rollouts"]] == [("Completed", "aborted")]


@pytest.mark.parametrize("window", ["yesterday", "P31D"])
def test_list_refuses_a_bad_window(api: Client, window: str) -> None:
    response = api.get(f"/api/rollouts?window={window}")
    assert response.status == 400
    assert [e["field"] for e in response.json()["errors"]] == ["window"]


def test_a_second_start_while_one_runs_is_409_naming_it(api: Client) -> None:
    api.start()
    response = api.post("/api/rollouts", rollout_request(traffic_steps=[100]))
    assert response.status == 409
    problem = response.json()
    assert problem["instance_id"] == INSTANCE and INSTANCE in problem["detail"]
    assert api.status()["request"]["traffic_steps"] == [10, 50, 100]   # the running one was not replaced


def test_concurrent_starts_start_exactly_one_rollout(api: Client, server) -> None:
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        statuses.append(api.post("/api/rollouts", rollout_request()).status)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [202] + [409] * 7
    assert len(server.hub.list_instances()) == 1


def test_a_new_rollout_can_start_once_the_previous_one_ended(api: Client) -> None:
    api.start()
    api.post(f"/api/rollouts/{ENDPOINT}/abort")
    api.wait_until_done()
    api.start(traffic_steps=[100], observation_window="PT1S")
    assert api.wait_until_done()["outcome"] == "promoted"


@pytest.mark.parametrize(("body", "fields"), [
    ({"endpoint_name": ENDPOINT}, ["new_deployment"]),
    ({"endpoint_name": "x", "new_deployment": NEW, "traffic_steps": [50, 10], "colour": "blue"},
     ["colour", "endpoint_name", "traffic_steps"]),
    (rollout_request(observation_window="PT1S", check_interval="PT5S", error_threshold=2), ["error_threshold", "check_interval"]),
    (rollout_request(workspace={**WORKSPACE, "workspace_name": "somebody-elses"}), ["workspace"]),
    ([ENDPOINT, NEW], ["body"]),
])
def test_a_bad_request_is_400_naming_every_bad_field(api: Client, body: object, fields: list[str]) -> None:
    response = api.post("/api/rollouts", body)
    assert response.status == 400
    assert response.content_type.startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("invalid-request") and problem["title"] and problem["status"] == 400
    assert [e["field"] for e in problem["errors"]] == fields
    assert all(e["message"] for e in problem["errors"])
    assert api.get(f"/api/rollouts/{ENDPOINT}").status == 404   # nothing started


@pytest.mark.parametrize("raw", [b"{\"endpoint_name\": ", b"", b"\xff\xfe\x00garbage", b"[" * 60000])
def test_a_body_that_is_not_json_is_400_on_the_body(api: Client, raw: bytes) -> None:
    response = api.post("/api/rollouts", raw=raw)
    assert response.status == 400
    assert [e["field"] for e in response.json()["errors"]] == ["body"]


def test_a_rollout_request_over_64_kib_is_413(api: Client) -> None:
    response = api.post("/api/rollouts", rollout_request(padding="x" * 70000))
    assert response.status == 413 and response.json()["limit_bytes"] == 65536


def test_an_unknown_route_is_404_and_a_wrong_method_405(api: Client) -> None:
    assert api.get("/api/nothing-here").status == 404
    response = api.request("DELETE", "/api/rollouts")
    assert response.status == 405 and response.header("Allow") == "GET, POST"


def test_a_pending_rollout_without_a_record_still_names_its_endpoint() -> None:
    from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

    from api.http import rollout_view

    pending = DurableOrchestrationStatus(name="rollout_orchestrator", instanceId=INSTANCE, runtimeStatus="Pending",
                                         createdTime="2026-01-01T00:00:00Z", lastUpdatedTime="2026-01-01T00:00:00Z")
    view = rollout_view(pending, {})
    assert (view["endpoint_name"], view["phase"]) == (INSTANCE.removeprefix("rollout-"), "pending")
