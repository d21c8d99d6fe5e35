"""``send_notifications`` over real HTTP to a local receiver: bodies, retries, a hanging receiver, redaction."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from activities.notify import SendPolicy, send_all
from rollout.notify import body_for, rollout_event
from tests.notify.receiver import Receiver

RECORD = {"instance_id": "rollout-ep1", "endpoint_name": "ep1", "new_deployment": "green", "phase": "done",
          "plan": {"old": "blue", "new": "green", "steps": [10, 50, 100], "shared": 100}, "step_index": 1,
          "current_step": 50, "traffic": {"blue": 100}, "outcome": "rolled_back", "reason": "alert 'green-5xx' fired",
          "last_health": {"at": "2026-01-01T00:07:00+00:00", "verdict": "pass", "reason": "ok",
                          "new": {"requests": 1200, "errors": 2, "latency_p99_ms": 140.0}}}
EVENT = rollout_event("rolled_back", RECORD, "2026-01-01T00:07:00+00:00")
FAST = SendPolicy(attempts=3, timeout=1.0, backoff=0.05, deadline=3.0)


def receiver(made: list[Receiver], **kwargs: Any) -> Receiver:
    made.append(Receiver(**kwargs))
    return made[-1]


@pytest.mark.parametrize("fmt, content_type", [
    pytest.param("cloudevents", "application/cloudevents+json; charset=utf-8", id="cloudevents"),
    pytest.param("teams", "application/json", id="teams"),
    pytest.param("slack", "application/json", id="slack"),
])
def test_each_format_is_posted_as_built(receivers: list[Receiver], fmt: str, content_type: str) -> None:
    hook = receiver(receivers)
    result = send_all({"event": EVENT, "targets": [{"url": hook.url(), "format": fmt}]}, FAST)
    assert result["sent"][0]["delivered"] is True and result["sent"][0]["attempts"] == 1
    (got,) = hook.received
    assert got.headers["Content-Type"] == content_type
    assert got.json() == json.loads(json.dumps(body_for(fmt, EVENT)))


def test_only_targets_that_want_the_event_are_sent_to(receivers: list[Receiver]) -> None:
    wants, ignores = receiver(receivers), receiver(receivers)
    result = send_all({"event": EVENT, "targets": [{"url": wants.url(), "events": ["rolled_back"]},
                                                   {"url": ignores.url(), "events": ["promoted"]}]}, FAST)
    assert len(result["sent"]) == 1 and len(wants.received) == 1 and ignores.received == []


def test_5xx_and_429_are_retried_with_backoff_until_delivered(receivers: list[Receiver]) -> None:
    hook = receiver(receivers, script=[503, 429, 200])
    sleeps: list[float] = []
    result = send_all({"event": EVENT, "targets": [{"url": hook.url()}]}, FAST, sleep=sleeps.append)
    assert result["sent"][0] | {"at": None} == {"at": None, "event": "rolled_back", "target": hook.url(),
                                                 "format": "cloudevents", "delivered": True, "attempts": 3, "error": None}
    assert sleeps == [0.05, 0.1] and len(hook.received) == 3


def test_retries_are_bounded_and_a_4xx_is_not_retried(receivers: list[Receiver]) -> None:
    failing, refusing = receiver(receivers, script=[500]), receiver(receivers, script=[404])
    result = send_all({"event": EVENT, "targets": [{"url": failing.url()}, {"url": refusing.url()}]}, FAST,
                      sleep=lambda s: None)
    assert [(s["delivered"], s["attempts"], s["error"]) for s in result["sent"]] == [
        (False, 3, "HTTP 500"), (False, 1, "HTTP 404")]
    assert len(failing.received) == 3 and len(refusing.received) == 1


def test_retry_after_beyond_the_deadline_stops_at_once(receivers: list[Receiver]) -> None:
    hook = receiver(receivers, script=[503], retry_after="3600")
    started = time.monotonic()
    result = send_all({"event": EVENT, "targets": [{"url": hook.url()}]}, FAST)
    assert time.monotonic() - started < 1.0
    assert result["sent"][0]["error"] == "HTTP 503; next try would pass the 3 s deadline"


def test_a_receiver_that_hangs_costs_at_most_the_deadline(receivers: list[Receiver]) -> None:
    hook = receiver(receivers, hang=10.0)
    policy = SendPolicy(attempts=5, timeout=0.5, backoff=0.1, deadline=1.5)
    started = time.monotonic()
    result = send_all({"event": EVENT, "targets": [{"url": hook.url()}]}, policy)
    elapsed = time.monotonic() - started
    assert result["sent"][0]["delivered"] is False and result["sent"][0]["error"].startswith("no answer: ")
    assert 1.0 <= elapsed < 2.0, elapsed


def test_secrets_in_urls_never_reach_the_result_or_the_log(receivers: list[Receiver],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    hook = receiver(receivers, script=[500])
    secret = hook.url("/workflows/abc/invoke") + "?api-version=1&sig=TOPSECRET"
    with caplog.at_level(logging.INFO):
        result = send_all({"event": EVENT, "targets": [{"url": secret, "format": "teams"}]}, FAST, sleep=lambda s: None)
    assert hook.received[0].path.endswith("sig=TOPSECRET")                 # the receiver got the real URL...
    assert "TOPSECRET" not in json.dumps(result) and "TOPSECRET" not in caplog.text   # ...nobody else sees it
    assert result["sent"][0]["target"] == hook.url("/workflows") + "/…"
    assert "notification rolled_back to http://127.0.0.1:" in caplog.text


def test_an_unreachable_target_is_reported_not_raised() -> None:
    result = send_all({"event": EVENT, "targets": [{"url": "http://127.0.0.1:9/hook?key=SECRET"}]}, FAST,
                      sleep=lambda s: None)
    sent = result["sent"][0]
    assert result["ok"] is True and sent["delivered"] is False and sent["attempts"] == 3
    assert "SECRET" not in json.dumps(result)
