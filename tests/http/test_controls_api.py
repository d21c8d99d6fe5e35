"""Operator actions over real HTTP: pause, resume, promote, abort, and when each is refused."""

from __future__ import annotations

import pytest

from emulator.scenario import parse_scenario
from emulator.serve import LocalServer
from tests.http.helpers import ENDPOINT, FIXTURES, INSTANCE, KEY, NEW, OLD, SCENARIO, Client


def control(api: Client, action: str, body: object = None):
    return api.post(f"/api/rollouts/{ENDPOINT}/{action}", body)


def test_pause_holds_the_step_and_resume_lets_it_go_on(api: Client) -> None:
    api.start(observation_window="PT2S", error_threshold=0.5)   # seeded noise must not roll this one back
    api.wait_until_observing()
    api.wait_for(lambda v: v["last_health"] is not None)      # a first check, to compare with later
    response = control(api, "pause", {"reason": "looking at the dashboards"})
    assert response.status == 202
    assert response.json() == {"instance_id": INSTANCE, "action": "pause", "reason": "looking at the dashboards",
                               "status_url": f"{api.base_url}/api/rollouts/{ENDPOINT}"}
    paused = api.wait_for(lambda v: v["paused"])
    assert paused["history"][-1]["kind"] == "pause"
    assert paused["history"][-1]["reason"] == "looking at the dashboards"
    held = api.wait_for(lambda v: v["last_health"]["at"] > paused["last_health"]["at"], timeout=5)
    assert held["current_step"] == 10 and held["traffic"] == {OLD: 90, NEW: 10}   # checks go on, the step holds
    assert control(api, "resume").status == 202
    resumed = api.wait_for(lambda v: not v["paused"])
    assert resumed["history"][-1]["kind"] == "resume"
    next_step = api.wait_for(lambda v: v["current_step"] == 50 and v["phase"] == "observing", timeout=6)
    assert next_step["traffic"] == {OLD: 50, NEW: 50}


def test_pausing_twice_or_resuming_a_running_rollout_is_409(api: Client) -> None:
    api.start()
    api.wait_until_shifting()
    refused = control(api, "resume")
    assert refused.status == 409
    assert refused.json()["type"].endswith("action-not-allowed") and "not paused" in refused.json()["detail"]
    assert control(api, "pause").status == 202
    api.wait_for(lambda v: v["paused"])
    again = control(api, "pause")
    assert again.status == 409 and "already paused" in again.json()["detail"]


def test_promote_gives_the_new_deployment_everything_now(api: Client, server: LocalServer) -> None:
    api.start()
    api.wait_until_shifting()
    assert control(api, "promote", {"reason": "verified by hand"}).status == 202
    view = api.wait_until_done()
    assert view["outcome"] == "promoted" and view["final_traffic"] == {NEW: 100}
    assert view["history"][-1]["kind"] == "promote" and view["history"][-1]["reason"] == "verified by hand"
    assert server.endpoint.traffic == {NEW: 100}


def test_abort_returns_all_traffic_to_the_old_deployment(api: Client, server: LocalServer) -> None:
    api.start()
    api.wait_until_shifting()
    assert control(api, "abort", {"reason": "wrong model version"}).status == 202
    view = api.wait_until_done()
    assert view["outcome"] == "aborted" and view["reason"] == "wrong model version"
    assert view["final_traffic"] == {OLD: 100} and server.endpoint.traffic == {OLD: 100}
    assert [h["kind"] for h in view["history"]] == ["step", "rollback"]


@pytest.mark.parametrize("action", ["pause", "resume", "promote", "abort"])
def test_an_action_for_an_endpoint_without_a_running_rollout_is_404(api: Client, action: str) -> None:
    response = control(api, action)
    assert response.status == 404 and "has no rollout" in response.json()["detail"]


def test_an_action_after_the_rollout_ended_is_404_saying_how_it_ended(api: Client) -> None:
    api.start()
    api.wait_until_shifting()
    control(api, "abort")
    api.wait_until_done()
    response = control(api, "pause")
    assert response.status == 404 and "ended: aborted" in response.json()["detail"]


def test_an_unknown_action_or_a_bad_body_is_400_naming_the_field(api: Client) -> None:
    api.start()
    api.wait_until_running()
    unknown = control(api, "rollback")
    assert unknown.status == 400 and [e["field"] for e in unknown.json()["errors"]] == ["action"]
    bad = control(api, "pause", {"reason": "", "by": "me"})
    assert bad.status == 400 and [e["field"] for e in bad.json()["errors"]] == ["by", "reason"]
    assert control(api, "pause", ["not", "an", "object"]).status == 400
    assert api.post(f"/api/rollouts/{ENDPOINT}/pause", raw=b"{oops").status == 400
    assert api.status()["paused"] is False   # nothing was sent


def test_pause_and_promote_are_refused_in_pre_flight() -> None:
    # The first endpoint read fails once: pre-flight waits 5 s on a durable timer before retrying.
    scenario = parse_scenario({**SCENARIO, "faults": [{"operation": "get_endpoint", "error": "transient", "times": 1}]},
                              FIXTURES, require_rollout=False)
    with LocalServer(scenario, key=KEY) as server:
        api = Client(server.url)
        api.start()
        api.wait_for(lambda v: v.get("phase") == "preflight")
        for action in ("pause", "promote"):
            response = control(api, action)
            assert response.status == 409 and "pre-flight" in response.json()["detail"]
        assert control(api, "abort").status == 202
