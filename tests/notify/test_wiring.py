"""Notifications wired into the rollout orchestrator.

End to end through the emulator (``run_simulation``, as ``./dev simulate``) with targets pointing
at the loopback receiver; and at the orchestrator level (``tests.rollout.sdk_history.Driver``, the
real SDK replay plus the host's action replay) for what the simulation cannot show: on a virtual
clock its task hub runs one work item at a time, so a send that hangs holds up the episode that
would act on a rollback (the virtual clock does not move meanwhile, but real time does). The real
host runs activities beside orchestrator episodes; the Driver models that by never answering the
send, and ``serve`` does it too (``test_hanging_receiver_serve.py``).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from emulator.scenario import parse_scenario
from emulator.simulate import run_simulation
from rollout.notify import CLOUDEVENT_TYPE_PREFIX, CONTENT_TYPES
from rollout.safety import versioned_input
from tests.notify.receiver import Receiver
from tests.rollout.sdk_history import REQUEST, Driver, SimpleEndpoint

ROOT = Path(__file__).resolve().parents[2]
FIRED = {"alert": {"rule": "green-5xx", "monitor_condition": "Fired"}, "reason": "alert 'green-5xx' fired"}


def scenario(notify: list[dict[str, Any]], rollout: dict[str, Any] | None = None, **top: Any) -> Any:
    data: dict[str, Any] = {
        "seed": None,
        "endpoint": {"name": "fraud-detection-endpoint",
                     "deployments": {"blue-v1": {"traffic": 100}, "green-v2": {"traffic": 0}}},
        "rollout": {"new_deployment": "green-v2", "traffic_steps": [10, 50, 100], "observation_window": "PT5M",
                    "notify": notify, **(rollout or {})},
        "load": {"requests_per_minute": 1200},
        "health": {"blue-v1": [{"from": "PT0S", "error_rate": 0.001, "latency_p99_ms": 120}],
                   "green-v2": [{"from": "PT0S", "error_rate": 0.002, "latency_p99_ms": 140}]},
        **top,
    }
    return parse_scenario(data, ROOT / "examples")


def kinds(receiver: Receiver) -> list[str]:
    return [r.json()["type"].removeprefix(CLOUDEVENT_TYPE_PREFIX) for r in receiver.received]


# --- end to end through the emulator --------------------------------------------------------------


def test_a_promoted_rollout_with_a_pause_sends_every_event_in_order_in_each_format(receivers) -> None:
    cloud, teams, slack = Receiver(), Receiver(), Receiver()
    receivers += [cloud, teams, slack]
    result = run_simulation(scenario(
        [{"url": cloud.url("/events?code=s3cret")}, {"url": teams.url("/workflows/abc?sig=s3cret"), "format": "teams"},
         {"url": slack.url("/services/T0/B0/s3cret"), "format": "slack", "events": ["promoted", "rolled_back"]}],
        controls=[{"at": "PT7M", "action": "pause", "reason": "look at the dashboards"},
                  {"at": "PT8M", "action": "resume", "reason": "looks fine"}]))
    assert result.outcome == "promoted"
    assert kinds(cloud) == ["started", "step", "step", "paused", "resumed", "step", "promoted"]
    bodies = [r.json() for r in cloud.received]
    assert [b["data"]["current_step"] for b in bodies if b["data"]["kind"] == "step"] == [10, 50, 100]
    assert bodies[1]["data"]["traffic"] == {"blue-v1": 90, "green-v2": 10}, "sent once the step's traffic is applied"
    assert bodies[3]["data"]["reason"] == "look at the dashboards"
    assert bodies[-1]["data"]["outcome"] == "promoted" and bodies[-1]["data"]["traffic"] == {"green-v2": 100}
    assert all(r.headers["Content-Type"] == CONTENT_TYPES["cloudevents"] for r in cloud.received)
    assert cloud.received[0].path == "/events?code=s3cret"
    card = teams.received[-1].json()["attachments"][0]
    assert len(teams.received) == 7 and card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][0]["text"].startswith("Rollout promoted")
    assert [r.json()["text"].split(":")[0] for r in slack.received] == ["Rollout promoted"], "only what it asked for"
    sent = result.record["notifications"]
    assert len(sent) == 10 and all(n["delivered"] for n in sent)
    assert sent[-1]["event"] == "promoted" and sent[-1]["target"] == f"http://127.0.0.1:{slack.server.server_address[1]}/services/…"
    assert "s3cret" not in repr(result.record), "URLs are redacted in the record"


@pytest.mark.parametrize("top, outcome", [
    pytest.param({"alerts": [{"at": "PT7M", "payload": "alerts/endpoint-5xx-fired.json"}]}, "rolled_back",
                 id="alert-rolls-back"),
    pytest.param({"controls": [{"at": "PT7M", "action": "abort", "reason": "wrong model"}]}, "aborted", id="abort"),
    pytest.param({"health": {"blue-v1": [{"from": "PT0S", "error_rate": 0.001, "latency_p99_ms": 120}],
                             "green-v2": [{"from": "PT0S", "error_rate": 0.2, "latency_p99_ms": 140}]}},
                 "rolled_back", id="judge-rolls-back"),
    pytest.param({"rollout": {"cleanup": "delete", "revert_window": "PT30M"},
                  "controls": [{"at": "PT40M", "action": "revert", "reason": "latency on the dashboard"}]},
                 "reverted", id="revert-after-promotion"),
])
def test_an_early_end_is_told_once_after_traffic_is_back(receivers, top, outcome) -> None:
    receiver = Receiver()
    receivers.append(receiver)
    result = run_simulation(scenario([{"url": receiver.url()}], **top))
    assert result.outcome == outcome
    got = kinds(receiver)
    assert got[0] == "started" and got.count(outcome) == 1 and got[-1] == outcome
    final = receiver.received[-1].json()["data"]
    assert final["traffic"] == {"blue-v1": 100} and final["reason"] == result.record["reason"]
    assert result.record["notifications"][-1] == {**result.record["notifications"][-1], "event": outcome,
                                                  "delivered": True, "attempts": 1, "error": None}


def test_a_receiver_that_fails_is_recorded_and_the_rollout_goes_on(receivers) -> None:
    receiver = Receiver(script=[404])
    receivers.append(receiver)
    result = run_simulation(scenario([{"url": receiver.url("/hook?token=s3cret"), "events": ["started", "promoted"]}]))
    assert result.outcome == "promoted"
    assert [(n["event"], n["delivered"], n["error"]) for n in result.record["notifications"]] == [
        ("started", False, "HTTP 404"), ("promoted", False, "HTTP 404")]
    assert "s3cret" not in repr(result.record)


def alert_to_safe_seconds(result: Any) -> float:
    """Virtual seconds from the alert (at PT7M) to the rollback's traffic change."""
    rollback = [h for h in result.record["history"] if h["kind"] == "rollback"][-1]
    started = result.record["started_at"]
    return (datetime.fromisoformat(rollback["at"]) - datetime.fromisoformat(started)).total_seconds() - 7 * 60


def test_a_hanging_receiver_costs_no_virtual_time_from_alert_to_rollback_in_the_emulator(receivers) -> None:
    """A simulation runs one work item at a time: a send that hangs holds the worker (real seconds),
    never the virtual clock, so alert -> traffic back is the same as with no target. What the real
    host does while a send hangs is tested below at the orchestrator level."""
    alert = {"alerts": [{"at": "PT7M", "payload": "alerts/endpoint-5xx-fired.json"}]}
    plain = run_simulation(scenario([], **alert))
    hanging = Receiver(hang=0.5)
    receivers.append(hanging)
    begun = time.monotonic()
    slow = run_simulation(scenario([{"url": hanging.url()}], **alert))
    real = time.monotonic() - begun
    assert plain.outcome == slow.outcome == "rolled_back"
    assert alert_to_safe_seconds(slow) == alert_to_safe_seconds(plain) < 60
    assert real >= 0.5 * len(hanging.received) and len(hanging.received) == 4   # started, 2 steps, rolled_back


# --- at the orchestrator level: what the host does while a send hangs -------------------------------


def notify_input(events: list[str] | None = None) -> Any:
    target: dict[str, Any] = {"url": "https://hooks.example/services/T/B/secret"}
    if events is not None:
        target["events"] = events
    return versioned_input({**REQUEST, "notify": [target]})


class Sends(SimpleEndpoint):
    """``SimpleEndpoint`` that also answers ``send_notifications`` (delivered) and keeps each call's
    event and the calls made before it."""

    def __init__(self) -> None:
        super().__init__()
        self.sends: list[tuple[str, int]] = []      # (event kind, len(calls) before it)

    def __call__(self, name: str, payload: Any) -> Any:
        if name != "send_notifications":
            return super().__call__(name, payload)
        self.sends.append((payload["event"]["kind"], len(self.calls)))
        self.calls.append(name)
        return {"ok": True, "sent": [{"at": "x", "event": payload["event"]["kind"], "target": "https://hooks.example/…",
                                      "format": "cloudevents", "delivered": True, "attempts": 1, "error": None}]}


def hang_on(kind: str, endpoint: Sends) -> Any:
    """A send of ``kind`` that hangs until traffic is back on blue (then answers, as a bounded send does)."""
    return lambda name, payload: (name == "send_notifications" and payload["event"]["kind"] == kind
                                  and endpoint.traffic != {"blue-v1": 100})


PREFLIGHT, BASELINE, STARTED, STEP_UPDATE, STEP_SENT = 0, 1, 2, 3, 4


def test_a_rollback_raised_while_a_step_notification_hangs_is_acted_on_at_once() -> None:
    endpoint = Sends()
    driver = Driver(endpoint, notify_input(), hang=hang_on("step", endpoint))
    record = driver.run({STEP_SENT: [("rollback", FIRED)]})["output"]
    assert record["outcome"] == "rolled_back"
    assert endpoint.seen == [{"blue-v1": 90, "green-v2": 10}, {"blue-v1": 100}]
    rollback_set = endpoint.calls.index("set_traffic", endpoint.calls.index("set_traffic") + 1)
    assert [kind for kind, _ in endpoint.sends] == ["started", "step", "rolled_back"]
    assert endpoint.sends[1][1] > rollback_set, "the step's send answered only once traffic was back"
    assert endpoint.sends[2][1] > rollback_set, "the outcome is told after the rollback's traffic"
    rollback = [h for h in record["history"] if h["kind"] == "rollback"][0]
    step = [h for h in record["history"] if h["kind"] == "step"][0]
    assert rollback["at"] == step["at"], "no virtual time passed waiting for the send"
    assert [(n["event"], n["delivered"]) for n in record["notifications"]] == [
        ("started", True), ("step", None), ("rolled_back", True)]
    assert record["notifications"][1]["error"].startswith("not waited for")


def test_the_same_rollback_with_no_target_takes_as_many_turns() -> None:
    """Baseline for the test above: the rollback's set_traffic comes the same number of episodes after
    the alert with a hanging send as with no notification target at all."""
    def turns_to_safe(orchestration_input: Any, inject_at: int, hang: str | None) -> int:
        endpoint = Sends()
        driver = Driver(endpoint, orchestration_input, hang=hang and hang_on(hang, endpoint))
        driver.run({inject_at: [("rollback", FIRED)]})
        safe = [i for i, status in enumerate(driver.statuses) if status and status.get("traffic") == {"blue-v1": 100}
                and status.get("phase") == "done"]
        return safe[0] - inject_at

    plain = turns_to_safe(None, 2, None)      # no target: preflight, baseline, step update -> first wait
    hung = turns_to_safe(notify_input(), STEP_SENT, "step")
    assert hung == plain


def test_notifications_never_break_continue_as_new_and_pauses_are_sent_before_a_handover() -> None:
    endpoint = Sends()
    driver = Driver(endpoint, notify_input())
    record = driver.run({STEP_SENT + 2: [("pause", {"reason": "hold"})], 30: [("resume", {"reason": "go"})]})["output"]
    assert record["outcome"] == "promoted" and driver.handovers, "the rollout continued as new"
    sent = [kind for kind, _ in endpoint.sends]
    assert sent == ["started", "step", "paused", "resumed", "step", "step", "promoted"]
    assert [n["event"] for n in record["notifications"]] == sent, "the record carried them over the handovers"


def test_with_no_target_wanting_an_event_nothing_is_called() -> None:
    endpoint = Sends()
    record = Driver(endpoint, notify_input(["rolled_back"])).run()["output"]
    assert record["outcome"] == "promoted" and endpoint.sends == [] and record["notifications"] == []


def test_a_failed_step_is_told_as_failed_after_traffic_is_back() -> None:
    permission = {"kind": "PermissionDenied", "message": "the app's identity needs AzureML Data Scientist",
                  "retryable": False, "retry_after": None}
    endpoint = Sends()
    endpoint.faults = {"set_traffic": [None, permission]}
    record = Driver(endpoint, notify_input()).run()["output"]
    assert record["outcome"] == "failed" and endpoint.traffic == {"blue-v1": 100}
    assert [kind for kind, _ in endpoint.sends] == ["started", "step", "failed"]
    assert endpoint.sends[-1][1] == len(endpoint.calls) - 1, "the last call, after the rollback's set_traffic"


def test_a_pause_taken_on_the_turn_a_handover_is_decided_is_sent_not_lost() -> None:
    """The pause arrives with the completion on which the first execution would continue as new: its
    notification is queued then, so the handover waits until it has been sent (nothing is carried)."""
    probe = Driver(Sends(), notify_input())
    probe.run()
    decided = probe.handovers[0] - 1
    endpoint = Sends()
    driver = Driver(endpoint, notify_input())
    record = driver.run({decided: [("pause", {"reason": "hold"})], decided + 12: [("resume", {"reason": "go"})]})["output"]
    assert record["outcome"] == "promoted"
    sent = [kind for kind, _ in endpoint.sends]
    assert sent[:3] == ["started", "step", "paused"] and sent.count("paused") == sent.count("resumed") == 1
    assert sent[-1] == "promoted" and driver.handovers
