"""The outcome reaches the status before its notifications are sent, and they go to every target at once.

End to end: ``aml-rollout start --wait`` against ``serve`` (real clock) returns with the outcome
while the outcome's notification still hangs at its receiver. At the orchestrator level
(``tests.rollout.sdk_history.Driver``: the real SDK replay plus the host's own replay of the
actions). The host keeps an episode's custom status from the moment the episode
ends, and runs the activities one episode scheduled side by side (Durable Functions dispatches each
scheduled activity as its own work item). So what a person polling the status (``start --wait``,
``watch``) sees while the outcome's sends run is the custom status of the episode that scheduled
them, and the instance completes one episode after the slowest of them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

from activities.notify import SendPolicy
from api.http import rollout_view
from emulator.scenario import load_scenario
from emulator.serve import LocalServer
from rollout.notify import redact_url
from rollout.safety import versioned_input
from tests.cli.helpers import EXAMPLES, KEY, cli, faster_example
from tests.http.helpers import Client
from tests.notify.receiver import Receiver
from tests.rollout.sdk_history import REQUEST, Driver, SimpleEndpoint

FIRED = {"alert": {"rule": "green-5xx", "monitor_condition": "Fired"}, "reason": "alert 'green-5xx' fired"}
TARGETS = [{"url": f"https://hooks{n}.example/services/T/B/secret"} for n in range(3)]
OUTCOMES = ("promoted", "rolled_back", "aborted", "failed", "reverted")
STEP_SENT = 4                          # the turn whose episode sent the first step's notification


class Sends(SimpleEndpoint):
    """``SimpleEndpoint`` that also answers ``send_notifications`` (delivered), keeping for each call its
    event, its targets, the turn it was answered in and the custom status the host held then."""

    def __init__(self) -> None:
        super().__init__()
        self.driver: Driver | None = None
        self.sends: list[dict[str, Any]] = []

    def __call__(self, name: str, payload: Any) -> Any:
        if name != "send_notifications":
            return super().__call__(name, payload)
        assert self.driver is not None
        kind = payload["event"]["kind"]
        self.calls.append(name)
        self.sends.append({"kind": kind, "targets": [t["url"] for t in payload["targets"]],
                           "turn": len(self.driver.statuses), "status": self.driver.statuses[-1]})
        return {"ok": True, "sent": [{"at": "x", "event": kind, "target": redact_url(t["url"]), "format": "cloudevents",
                                      "delivered": True, "attempts": 1, "error": None} for t in payload["targets"]]}


def drive(inject: dict[int, list[tuple[str, Any]]] | None = None, hang: Any = None) -> tuple[Driver, Sends, dict[str, Any]]:
    endpoint = Sends()
    driver = Driver(endpoint, versioned_input({**REQUEST, "notify": TARGETS}), hang=hang)
    endpoint.driver = driver
    state = driver.run(inject)
    return driver, endpoint, state["output"]


def outcome_sends(endpoint: Sends) -> list[dict[str, Any]]:
    return [s for s in endpoint.sends if s["kind"] in OUTCOMES]


def status(runtime: str, custom: Any, output: Any) -> DurableOrchestrationStatus:
    return DurableOrchestrationStatus(name="rollout_orchestrator", instanceId="rollout-fraud-detection-endpoint",
                                      runtimeStatus=runtime, customStatus=custom, output=output,
                                      createdTime="2026-01-01T00:00:00Z", lastUpdatedTime="2026-01-01T00:00:00Z")


@pytest.mark.parametrize("inject, outcome", [
    pytest.param({}, "promoted", id="promoted"),
    pytest.param({STEP_SENT: [("rollback", FIRED)]}, "rolled_back", id="alert-rolls-back"),
    pytest.param({STEP_SENT: [("abort", {"reason": "wrong model"})]}, "aborted", id="abort"),
])
def test_the_status_shows_the_outcome_while_the_outcome_is_being_sent(inject, outcome) -> None:
    _, endpoint, final = drive(inject)
    assert final["outcome"] == outcome
    sends = outcome_sends(endpoint)
    assert sends and all(s["kind"] == outcome for s in sends)
    shown = sends[0]["status"]
    assert (shown["phase"], shown["outcome"], shown["final_traffic"]) == ("done", outcome, final["final_traffic"])
    assert shown["reason"] == final["reason"]
    running, done = rollout_view(status("Running", shown, None), {}), rollout_view(status("Completed", None, final), {})
    agreed = ("phase", "outcome", "reason", "final_traffic", "traffic", "ended_at", "plan")
    assert {k: running[k] for k in agreed} == {k: done[k] for k in agreed}, "the view while the send runs and after"
    assert running["runtime_status"] == "Running" and running["outcome"] == outcome


@pytest.mark.parametrize("inject, outcome", [
    pytest.param({}, "promoted", id="promoted"),
    pytest.param({STEP_SENT: [("rollback", FIRED)]}, "rolled_back", id="alert-rolls-back"),
])
def test_the_outcome_goes_to_every_target_at_once_so_hanging_targets_cost_one_budget(inject, outcome) -> None:
    driver, endpoint, final = drive(inject)
    sends = outcome_sends(endpoint)
    assert sorted(t for s in sends for t in s["targets"]) == sorted(t["url"] for t in TARGETS)
    assert all(len(s["targets"]) == 1 for s in sends), "one activity call per target"
    assert {s["turn"] for s in sends} == {sends[0]["turn"]}, "all scheduled in one episode: the host runs them side by side"
    assert len(driver.statuses) == sends[0]["turn"] + 1, "the instance completes on the episode after they end"
    # Every target hanging: each send takes its whole budget; an episode's sends run side by side, a call's
    # targets one after the other (``activities.notify.send_all``). Completion waits one budget, not three.
    budget = SendPolicy().deadline
    turns = {s["turn"] for s in sends}
    waited = sum(max(len(s["targets"]) * budget for s in sends if s["turn"] == turn) for turn in turns)
    assert waited == budget == 15
    assert [n["event"] for n in final["notifications"]][-3:] == [outcome] * 3
    assert all(n["delivered"] for n in final["notifications"] if n["event"] == outcome)


def test_a_step_send_given_up_for_a_rollback_records_each_target() -> None:
    """The step's notification goes to the three targets at once; a rollback arrives while one of them
    hangs (until traffic is back, as a bounded send ends): the rollback is not held up, the two that
    answered are recorded as delivered and the hanging one as not waited for."""
    slow = TARGETS[1]["url"]
    endpoint = Sends()
    driver = Driver(endpoint, versioned_input({**REQUEST, "notify": TARGETS}),
                    hang=lambda name, payload: (name == "send_notifications" and payload["event"]["kind"] == "step"
                                                and payload["targets"][0]["url"] == slow
                                                and endpoint.traffic != {"blue-v1": 100}))
    endpoint.driver = driver
    final = driver.run({STEP_SENT + 1: [("rollback", FIRED)]})["output"]    # after the two answered
    assert final["outcome"] == "rolled_back" and endpoint.seen == [{"blue-v1": 90, "green-v2": 10}, {"blue-v1": 100}]
    step = [(n["target"], n["delivered"]) for n in final["notifications"] if n["event"] == "step"]
    assert step == [(redact_url(TARGETS[0]["url"]), True), (redact_url(slow), None), (redact_url(TARGETS[2]["url"]), True)]
    rollback = [h for h in final["history"] if h["kind"] == "rollback"][0]
    assert rollback["at"] == [h for h in final["history"] if h["kind"] == "step"][0]["at"]


def test_start_wait_returns_with_the_outcome_while_its_notification_still_hangs(receivers, tmp_path: Path) -> None:
    """``serve`` on the real clock; the only target wants ``promoted`` and answers after 4 s (within
    the 5 s a try may take). ``start --wait`` polls every 0.5 s: it ends on the outcome while the
    instance is still Running for that send, and the final record holds its result afterwards."""
    hanging = Receiver(hang=4.0)
    receivers.append(hanging)
    example = faster_example(EXAMPLES / "healthy-promotion.yaml")
    example["rollout"]["notify"] = [{"url": hanging.url(), "events": ["promoted"]}]
    scenario_file = tmp_path / "healthy-promotion.yaml"
    scenario_file.write_text(yaml.safe_dump(example))
    with LocalServer(load_scenario(scenario_file, require_rollout=False), key=KEY) as server:
        run = cli("start", str(scenario_file), "--wait", "--interval", "0.5", url=server.url)
        api = Client(server.url, KEY)
        right_after = api.get("/api/rollouts/fraud-detection-endpoint").json()
        deadline = time.monotonic() + 30
        final = right_after
        while final["runtime_status"] != "Completed" and time.monotonic() < deadline:
            time.sleep(0.2)
            final = api.get("/api/rollouts/fraud-detection-endpoint").json()
    assert run.code == 0 and run.out.splitlines()[-1].startswith("promoted: ")
    assert (right_after["runtime_status"], right_after["outcome"]) == ("Running", "promoted"), "the send still hangs"
    assert right_after["notifications"] == [], "its result is not in yet"
    assert final["runtime_status"] == "Completed" and final["outcome"] == "promoted"
    assert [(n["event"], n["delivered"]) for n in final["notifications"]] == [("promoted", True)]
    assert len(hanging.received) == 1
