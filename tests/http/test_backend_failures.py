"""When the Durable task hub is down, answers nonsense, or loses a race: what each route answers.

The hosts here serve the app's functions against a task hub that cannot be reached, or against
``ScriptedTaskHub`` (a hand-written fake of the management API) for races the real hub cannot be
made to lose on cue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.http.helpers import (
    ENDPOINT,
    INSTANCE,
    MANAGED_SAMPLES,
    NOT_FOUND,
    Client,
    ScriptedTaskHub,
    alert,
    instance_status,
    rollout_request,
    unreachable_binding,
)

HostWith = Callable[[str], Client]
OBSERVING = {"phase": "observing", "paused": False, "endpoint_name": ENDPOINT}
RUNNING = (202, instance_status("Running", OBSERVING))
PROMOTED = (200, instance_status("Completed", None, {"phase": "done", "outcome": "promoted", "endpoint_name": ENDPOINT}))


@pytest.fixture
def scripted() -> Iterator[Callable[[dict[str, list]], ScriptedTaskHub]]:
    """``scripted({kind: [(status, body), ...]})``: a started ``ScriptedTaskHub``, closed after the test."""
    hubs: list[ScriptedTaskHub] = []

    def make(scripts: dict[str, list]) -> ScriptedTaskHub:
        hubs.append(ScriptedTaskHub(scripts=scripts))
        return hubs[-1]

    yield make
    for hub in hubs:
        hub.close()


def test_the_webhook_answers_503_with_retry_after_when_the_task_hub_is_unreachable(host_with: HostWith) -> None:
    api = host_with(unreachable_binding())
    response = api.post("/api/alerts", alert(MANAGED_SAMPLES[0]))
    assert response.status == 503 and response.header("Retry-After") == "10"
    assert response.json()["type"].endswith("backend-unavailable")


@pytest.mark.parametrize(("method", "path"), [("POST", "/api/rollouts"), ("GET", "/api/rollouts"),
                                              ("GET", f"/api/rollouts/{ENDPOINT}"),
                                              ("POST", f"/api/rollouts/{ENDPOINT}/abort")])
def test_every_route_answers_503_when_the_task_hub_is_unreachable(host_with: HostWith, method: str, path: str) -> None:
    api = host_with(unreachable_binding())
    response = api.request(method, path, rollout_request() if path == "/api/rollouts" else None)
    assert response.status == 503 and response.header("Retry-After") == "10"


def test_the_webhook_answers_503_never_500_when_the_task_hub_answers_nonsense(host_with: HostWith, scripted) -> None:
    hub = scripted({"status": [(502, {"Message": "secret internals"})]})
    api = host_with(hub.binding)
    response = api.post("/api/alerts", alert(MANAGED_SAMPLES[0]))
    assert response.status == 503 and response.header("Retry-After")
    start = api.post("/api/rollouts", rollout_request())       # a management route: a plain 500...
    assert start.status == 500 and start.json()["type"].endswith("internal-error")
    assert b"secret internals" not in start.body                # ...that says nothing of the cause


def test_an_alert_racing_the_end_of_the_rollout_is_2xx_and_does_nothing(host_with: HostWith, scripted) -> None:
    hub = scripted({"status": [RUNNING, PROMOTED], "raise": [(410, None)]})
    api = host_with(hub.binding)
    response = api.post("/api/alerts", alert(MANAGED_SAMPLES[0]))
    assert response.status == 200
    assert response.json()["done"] is False and "ended while the alert was being delivered" in response.json()["reason"]
    assert hub.count("raise") == 1


def test_an_alert_the_task_hub_will_not_take_while_the_rollout_runs_is_503(host_with: HostWith, scripted) -> None:
    hub = scripted({"status": [RUNNING], "raise": [(500, {"Message": "storage timeout"})]})
    api = host_with(hub.binding)
    response = api.post("/api/alerts", alert(MANAGED_SAMPLES[0]))
    assert response.status == 503 and response.header("Retry-After") == "10"


def test_a_control_action_racing_the_end_of_the_rollout_is_404(host_with: HostWith, scripted) -> None:
    hub = scripted({"status": [RUNNING, PROMOTED], "raise": [(410, None)]})
    api = host_with(hub.binding)
    response = api.post(f"/api/rollouts/{ENDPOINT}/pause")
    assert response.status == 404 and "ended: promoted" in response.json()["detail"]


def test_a_start_refused_because_another_worker_started_first_is_409(host_with: HostWith, scripted) -> None:
    # overridableExistingInstanceStates = NonRunningStates: the host refuses to replace a running instance.
    hub = scripted({"status": [NOT_FOUND, RUNNING],
                    "start": [(500, {"Message": "Something went wrong while processing your request",
                                     "ExceptionType": "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException"})]})
    api = host_with(hub.binding)
    response = api.post("/api/rollouts", rollout_request())
    assert response.status == 409 and response.json()["instance_id"] == INSTANCE
    assert hub.count("start") == 1


def test_a_start_the_task_hub_refuses_for_another_reason_is_503(host_with: HostWith, scripted) -> None:
    hub = scripted({"status": [NOT_FOUND], "start": [(500, {"Message": "storage unavailable"})]})
    api = host_with(hub.binding)
    response = api.post("/api/rollouts", rollout_request())
    assert response.status == 503 and response.header("Retry-After") == "10"
