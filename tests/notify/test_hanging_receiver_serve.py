"""A receiver that hangs, end to end through ``serve`` on loopback: it holds up nothing but its own send.

The send of a step's notification hangs for its whole budget (``SendPolicy``: 3 attempts of at
most 5 s, 15 s in all) because the receiver never answers in time. On the host that activity runs
beside everything else (``maxConcurrentActivityFunctions``), so an alert's rollback and other
rollouts go on; ``serve``'s task hub dispatches work items the same way (``emulator.scheduler``).
Times are read from the simulated endpoint's traffic history (``SimulatedEndpoint.changes``), not
from sleeps. On a task hub that runs one work item at a time both tests fail: the rollback and
the other rollout's steps wait for the send to give up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from activities.notify import SendPolicy
from emulator.scenario import parse_scenario
from emulator.serve import LocalServer
from emulator.simulated_azure import SimulatedBackend, TrafficChange
from rollout.model import DeploymentState
from tests.http.helpers import ENDPOINT, FIXTURES, KEY, MANAGED_SAMPLES, NEW, OLD, SCENARIO, Client, alert, rollout_request
from tests.notify.receiver import Receiver

HANG_SECONDS = 60.0                        # longer than the whole send budget: every attempt times out
BUDGET = timedelta(seconds=SendPolicy().deadline)
PROMPT = timedelta(seconds=5)              # "well under the budget", generous for a loaded machine
OTHER = "ep2"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """``serve`` (real clock, host.json's concurrency) on the HTTP tests' scenario: ep1, blue 100%, green 0%."""
    local = LocalServer(parse_scenario(SCENARIO, FIXTURES, require_rollout=False), key=KEY).start()
    yield local
    local.stop()


def hanging(receivers: list[Receiver]) -> Receiver:
    receiver = Receiver(hang=HANG_SECONDS)
    receivers.append(receiver)
    return receiver


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def first_change(changes: list[TrafficChange], traffic: dict[str, int]) -> TrafficChange:
    return next(c for c in changes if c.traffic == traffic and c.by != "setup")


def test_an_alert_rolls_back_at_once_while_a_step_notification_hangs(server: LocalServer, receivers) -> None:
    receiver = hanging(receivers)
    api = Client(server.url)
    api.start(observation_window="PT60S", notify=[{"url": receiver.url(), "events": ["step"]}])
    wait_until(lambda: len(receiver.received) == 1)          # the first step's send is hanging now
    assert receiver.received[0].json()["data"]["current_step"] == 10

    response = api.post("/api/alerts", alert(MANAGED_SAMPLES[0]))
    assert response.status == 202 and response.json()["action"] == "rollback"
    view = api.wait_for(lambda v: v.get("outcome") == "rolled_back", timeout=BUDGET.total_seconds())

    changes = server.endpoint.changes
    step = first_change(changes, {OLD: 90, NEW: 10})
    rollback = first_change(changes, {OLD: 100})
    assert rollback.at - step.at < PROMPT, f"rolled back {rollback.at - step.at} after the step (send budget {BUDGET})"
    assert len(receiver.received) == 1, "the send was still on its first attempt when the rollback was applied"
    assert view["final_traffic"] == {OLD: 100} and server.endpoint.traffic == {OLD: 100}


def test_another_rollout_goes_on_while_one_rollouts_notification_hangs(server: LocalServer, receivers) -> None:
    backend = server.backend
    assert isinstance(backend, SimulatedBackend)
    backend.workspace.add_endpoint(OTHER, [DeploymentState(OLD, "Succeeded", 2), DeploymentState(NEW, "Succeeded", 1)],
                                   {OLD: 100, NEW: 0})
    receiver = hanging(receivers)
    api = Client(server.url)
    api.start(observation_window="PT60S", notify=[{"url": receiver.url(), "events": ["step"]}])
    wait_until(lambda: len(receiver.received) == 1)          # ep1's first step's send is hanging now

    started = api.post("/api/rollouts", rollout_request(endpoint_name=OTHER, traffic_steps=[50, 100],
                                                        observation_window="PT1S"))
    assert started.status == 202, started.body
    view = api.wait_for(lambda v: v["runtime_status"] not in ("Pending", "Running"), timeout=BUDGET.total_seconds(),
                        endpoint=OTHER)

    assert view["outcome"] == "promoted", view
    step = first_change(server.endpoint.changes, {OLD: 90, NEW: 10})
    other = backend.workspace.endpoint(OTHER).changes
    half, promoted = first_change(other, {OLD: 50, NEW: 50}), first_change(other, {NEW: 100})
    assert half.at < promoted.at
    assert promoted.at - step.at < BUDGET - timedelta(seconds=3), (
        f"{OTHER} promoted {promoted.at - step.at} after {ENDPOINT}'s step whose send hangs for {BUDGET}")
    assert len(receiver.received) == 1 and server.endpoint.traffic == {OLD: 90, NEW: 10}, "ep1 is still in its step"
