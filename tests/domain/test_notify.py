"""Notification targets, the event built from a record, and its three wire formats: whole bodies, named rows."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.errors import InvalidRequest
from rollout.notify import (
    EVENT_KINDS,
    NotifyTarget,
    body_for,
    cloudevent,
    notification_payload,
    parse_targets,
    redact_request,
    redact_url,
    rollout_event,
    slack_message,
    teams_message,
)

AT = "2026-01-01T00:00:00Z"
HEALTH = {"at": "t", "verdict": "healthy", "reason": "ok", "new": {"requests": 200, "errors": 3, "latency_p99_ms": 123.4},
          "old": {"requests": 1}, "error_rate": 0.015, "not_sent": 1}
RECORD: dict[str, Any] = {
    "instance_id": "i1", "endpoint_name": "ep", "new_deployment": "green", "plan": {"old": "blue", "steps": [10, 50, 100]},
    "step_index": 1, "current_step": 50, "traffic": {"blue": 50, "green": 50}, "phase": "waiting", "outcome": None,
    "reason": "not the last change", "history": [{"reason": "first"}, {"reason": "second"}, {"reason": "to 50%"}],
    "last_health": HEALTH}
STEP_EVENT = {"kind": "step", "at": AT, "instance_id": "i1", "endpoint_name": "ep", "new_deployment": "green",
              "old_deployment": "blue", "steps": [10, 50, 100], "step_index": 1, "current_step": 50,
              "traffic": {"blue": 50, "green": 50}, "phase": "waiting", "outcome": None, "reason": "to 50%",
              "health": {"at": "t", "verdict": "healthy", "reason": "ok",
                         "new": {"requests": 200, "errors": 3, "latency_p99_ms": 123.4}, "old": {"requests": 1},
                         "error_rate": 0.015}}
FACTS = [("Endpoint", "ep"), ("Deployments", "green replacing blue"), ("Traffic", "blue 50%, green 50%"),
         ("Steps", "10% → 50% → 100%"), ("Last check", "healthy: 200 requests, error rate 0.0150, p99 123 ms")]


# --- targets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value, targets", [
    pytest.param(None, (), id="absent-is-none"),
    pytest.param([], (), id="empty-list"),
    pytest.param([{"url": "https://h/x"}], (NotifyTarget("https://h/x", "cloudevents", EVENT_KINDS),),
                 id="defaults-cloudevents-and-every-event"),
    pytest.param([{"url": "http://h:8080/x", "format": "slack", "events": ["failed", "promoted", "failed"]}],
                 (NotifyTarget("http://h:8080/x", "slack", ("failed", "promoted")),), id="events-deduplicated-in-order"),
    pytest.param([{"url": f"https://h/{n}"} for n in range(10)],
                 tuple(NotifyTarget(f"https://h/{n}") for n in range(10)), id="ten-targets-allowed"),
])
def test_parse_targets(value: Any, targets: tuple[NotifyTarget, ...]) -> None:
    assert parse_targets(value) == targets


@pytest.mark.parametrize("value, problems", [
    pytest.param([{"url": "https://h/x"}] * 11, [("hooks", "must be a list of at most 10 {url, format, events}")],
                 id="eleven-targets"),
    pytest.param([{"url": "https:///x"}], [("hooks[0].url", "must be an http(s) URL")], id="no-host"),
    pytest.param([{"url": 5}], [("hooks[0].url", "must be an http(s) URL")], id="url-not-a-string"),
    pytest.param([{"url": "https://h/x", "events": []}],
                 [("hooks[0].events", "must be a non-empty list of " + ", ".join(EVENT_KINDS))], id="no-events"),
    pytest.param([{"url": "https://h/x", "events": "failed"}],
                 [("hooks[0].events", "must be a non-empty list of " + ", ".join(EVENT_KINDS))], id="events-not-a-list"),
    pytest.param([{"url": "https://h/x"}, "x", {"url": "ftp://h", "format": "mail", "to": 1}],
                 [("hooks[1]", "must be an object {url, format, events}"), ("hooks[2].to", "is not a known field"),
                  ("hooks[2].url", "must be an http(s) URL"),
                  ("hooks[2].format", "must be one of cloudevents, teams, slack")], id="every-problem-with-its-index"),
])
def test_parse_targets_problems(value: Any, problems: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_targets(value, "hooks")
    assert [(p.field, p.message) for p in caught.value.problems] == problems


def test_parse_targets_default_field() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_targets([{"url": "x"}])
    assert [p.field for p in caught.value.problems] == ["notify[0].url"]


@pytest.mark.parametrize("target, kind, wanted", [
    pytest.param(NotifyTarget("u"), "reverted", True, id="default-wants-all"),
    pytest.param(NotifyTarget("u", events=("failed",)), "promoted", False, id="not-asked"),
])
def test_target_wants(target: NotifyTarget, kind: str, wanted: bool) -> None:
    assert target.wants(kind) is wanted


@pytest.mark.parametrize("url, shown", [
    pytest.param("https://h", "https://h", id="no-path"),
    pytest.param("https://h/one", "https://h/one", id="one-segment"),
    pytest.param("https://h/one#frag", "https://h/one/…", id="fragment-hidden"),
    pytest.param("https://h//a//b", "https://h/a/…", id="empty-segments-skipped"),
    pytest.param("", "://?", id="empty"),
    pytest.param("http://127.0.0.1:8080/hook?sig=s", "http://127.0.0.1:8080/hook/…", id="port-kept"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("request_, shown", [
    pytest.param(None, None, id="none"),
    pytest.param({"endpoint_name": "ep"}, {"endpoint_name": "ep"}, id="no-notify"),
    pytest.param({"notify": [{"url": "https://h/a/secret", "format": "teams"}, "junk", {"format": "slack"}]},
                 {"notify": [{"url": "https://h/a/…", "format": "teams"}, "junk", {"url": "://?", "format": "slack"}]},
                 id="each-url-redacted-others-kept"),
])
def test_redact_request(request_: dict[str, Any] | None, shown: dict[str, Any] | None) -> None:
    assert redact_request(request_) == shown


# --- the event and its formats -----------------------------------------------------------------------


def test_rollout_event_from_a_record() -> None:
    assert rollout_event("step", RECORD, AT) == STEP_EVENT


@pytest.mark.parametrize("change, expected", [
    pytest.param({"outcome": "rolled_back", "reason": "error rate 5%"}, {"outcome": "rolled_back", "reason": "error rate 5%"},
                 id="an-outcome-gives-the-records-reason"),
    pytest.param({"history": []}, {"reason": None}, id="no-history-no-reason"),
    pytest.param({"last_health": None, "plan": None, "traffic": None},
                 {"health": None, "old_deployment": None, "steps": None, "traffic": {}}, id="nothing-yet"),
])
def test_rollout_event_fields(change: dict[str, Any], expected: dict[str, Any]) -> None:
    event = rollout_event("step", {**RECORD, **change}, AT)
    assert {key: event[key] for key in expected} == expected


def test_cloudevent_whole_body() -> None:
    assert cloudevent(STEP_EVENT) == {
        "specversion": "1.0", "type": "io.github.aml-rollout.step", "source": "/aml-rollout/endpoints/ep",
        "id": "i1/step/2026-01-01T00:00:00Z", "time": AT, "subject": "ep", "datacontenttype": "application/json",
        "data": STEP_EVENT}


def test_teams_message_whole_body() -> None:
    assert teams_message(STEP_EVENT) == {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4",
            "body": [{"type": "TextBlock", "text": "Rollout step to 50%: green on ep", "weight": "bolder",
                      "size": "medium", "color": "default", "wrap": True},
                     {"type": "TextBlock", "text": "to 50%", "wrap": True},
                     {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in FACTS]}]}}]}


def test_slack_message_whole_body() -> None:
    assert slack_message(STEP_EVENT) == {
        "text": "Rollout step to 50%: green on ep: to 50%",
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "Rollout step to 50%: green on ep"}},
                   {"type": "section", "text": {"type": "mrkdwn", "text": "to 50%"}},
                   {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in FACTS]}]}


@pytest.mark.parametrize("kind, colour", [
    pytest.param("promoted", "good", id="promoted-good"),
    pytest.param("rolled_back", "attention", id="rolled-back"), pytest.param("aborted", "attention", id="aborted"),
    pytest.param("failed", "attention", id="failed"), pytest.param("reverted", "attention", id="reverted"),
    pytest.param("paused", "default", id="paused-default"),
])
def test_teams_colour(kind: str, colour: str) -> None:
    assert teams_message({**STEP_EVENT, "kind": kind})["attachments"][0]["content"]["body"][0]["color"] == colour


@pytest.mark.parametrize("change, title, facts", [
    pytest.param({"kind": "promoted"}, "Rollout promoted: green on ep", FACTS, id="step-only-for-step-events"),
    pytest.param({"current_step": None}, "Rollout step: green on ep", FACTS, id="step-without-current-step"),
    pytest.param({"old_deployment": None, "traffic": {}, "steps": [], "health": None}, "Rollout step to 50%: green on ep",
                 [("Endpoint", "ep"), ("Deployments", "green replacing ?"), ("Traffic", "none")], id="bare-facts"),
    pytest.param({"health": {"verdict": "inconclusive", "new": {"requests": 0, "errors": 0, "latency_p99_ms": None}}},
                 "Rollout step to 50%: green on ep",
                 FACTS[:4] + [("Last check", "inconclusive: 0 requests, error rate -, p99 -")], id="no-requests-no-rate"),
])
def test_slack_title_and_facts(change: dict[str, Any], title: str, facts: list[tuple[str, str]]) -> None:
    body = slack_message({**STEP_EVENT, **change})
    assert body["blocks"][0]["text"]["text"] == title
    assert [f["text"] for f in body["blocks"][2]["fields"]] == [f"*{k}*\n{v}" for k, v in facts]


def test_slack_escapes_and_cuts_the_header() -> None:
    body = slack_message({**STEP_EVENT, "reason": "a < b & c > d", "new_deployment": "g" * 200, "old_deployment": "<x>"})
    assert body["blocks"][1]["text"]["text"] == "a &lt; b &amp; c &gt; d"
    assert len(body["blocks"][0]["text"]["text"]) == 150
    assert body["blocks"][2]["fields"][1]["text"] == f"*Deployments*\n{'g' * 200} replacing &lt;x&gt;"
    assert slack_message({**STEP_EVENT, "reason": None})["blocks"][1]["text"]["text"] == " "
    assert teams_message({**STEP_EVENT, "reason": None})["attachments"][0]["content"]["body"][1]["text"] == ""


@pytest.mark.parametrize("fmt, build", [
    pytest.param("cloudevents", cloudevent, id="cloudevents"), pytest.param("teams", teams_message, id="teams"),
    pytest.param("slack", slack_message, id="slack")])
def test_body_for(fmt: str, build: Any) -> None:
    assert body_for(fmt, STEP_EVENT) == build(STEP_EVENT)


@pytest.mark.parametrize("targets, payload", [
    pytest.param((NotifyTarget("https://h/a", events=("failed",)),), None, id="nobody-wants-it"),
    pytest.param((NotifyTarget("https://h/a", events=("failed",)), NotifyTarget("https://h/b", "slack", ("step",))),
                 {"event": STEP_EVENT, "targets": [{"url": "https://h/b", "format": "slack", "events": ["step"]}]},
                 id="only-the-targets-that-want-it"),
])
def test_notification_payload(targets: tuple[NotifyTarget, ...], payload: dict[str, Any] | None) -> None:
    assert notification_payload("step", RECORD, targets, AT) == payload
