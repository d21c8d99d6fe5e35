"""Notification targets, redaction and the three wire formats (pure, tables)."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.scenario import load_scenario
from emulator.simulate import run_simulation
from rollout.errors import InvalidRequest
from rollout.notify import EVENT_KINDS, NotifyTarget, body_for, parse_targets, redact_request, redact_url, rollout_event
from rollout.plan import parse_request
from tests.cli.helpers import EXAMPLES

SLACK = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
TEAMS = "https://prod-01.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=SECRETSIG"


@pytest.mark.parametrize("url, shown", [
    pytest.param(SLACK, "https://hooks.slack.com/services/…", id="slack-secret-in-path"),
    pytest.param(TEAMS, "https://prod-01.westeurope.logic.azure.com:443/workflows/…", id="teams-secret-in-query"),
    pytest.param("https://example.com/hook?token=abc", "https://example.com/hook/…", id="query-only"),
    pytest.param("https://user:pw@example.com/", "https://example.com", id="credentials-in-url"),
    pytest.param("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook", id="nothing-secret"),
])
def test_redact_url_keeps_only_scheme_host_and_first_segment(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "SECRET" not in redact_url(url) and "pw" not in redact_url(url)


@pytest.mark.parametrize("value, problems", [
    pytest.param([{"url": "ftp://x/y"}], {"notify[0].url": "must be an http(s) URL"}, id="not-http"),
    pytest.param([{"url": SLACK, "format": "email"}], {"notify[0].format": "must be one of cloudevents, teams, slack"},
                 id="unknown-format"),
    pytest.param([{"url": SLACK, "events": ["exploded"]}], {"notify[0].events": "must be a non-empty list of "
                                                                                 + ", ".join(EVENT_KINDS)}, id="unknown-event"),
    pytest.param([{"url": SLACK, "colour": 1}], {"notify[0].colour": "is not a known field"}, id="unknown-field"),
    pytest.param(["x"], {"notify[0]": "must be an object {url, format, events}"}, id="not-an-object"),
    pytest.param({"url": SLACK}, {"notify": "must be a list of at most 10 {url, format, events}"}, id="not-a-list"),
])
def test_bad_targets_are_refused_naming_the_field(value: Any, problems: dict[str, str]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_targets(value)
    assert {p.field: p.message for p in caught.value.problems} == problems


def test_a_request_carries_its_targets_and_shows_them_redacted() -> None:
    request = parse_request({"endpoint_name": "ep1", "new_deployment": "green",
                             "notify": [{"url": TEAMS, "format": "teams", "events": ["rolled_back", "promoted"]}]})
    assert request.notify == (NotifyTarget(TEAMS, "teams", ("rolled_back", "promoted")),)
    assert parse_request(request.to_dict()) == request                              # the wire form goes round
    shown = redact_request(request.to_dict())
    assert shown is not None and shown["notify"][0]["url"] == "https://prod-01.westeurope.logic.azure.com:443/workflows/…"
    with pytest.raises(InvalidRequest) as caught:
        parse_request({"endpoint_name": "ep1", "new_deployment": "green", "notify": [{"url": "x"}]}, prefix="rollout.")
    assert [p.field for p in caught.value.problems] == ["rollout.notify[0].url"]


@pytest.fixture(scope="module")
def record() -> dict[str, Any]:
    return run_simulation(load_scenario(EXAMPLES / "regression-caught.yaml")).record


@pytest.fixture(scope="module")
def rolled_back(record: dict[str, Any]) -> dict[str, Any]:
    return rollout_event("rolled_back", record, record["ended_at"])


def test_cloudevent_is_structured_mode_with_a_stable_id(rolled_back: dict[str, Any], record: dict[str, Any]) -> None:
    body = body_for("cloudevents", rolled_back)
    assert {k: body[k] for k in ("specversion", "type", "source", "subject", "datacontenttype")} == {
        "specversion": "1.0", "type": "io.github.aml-rollout.rolled_back",
        "source": "/aml-rollout/endpoints/fraud-detection-endpoint", "subject": "fraud-detection-endpoint",
        "datacontenttype": "application/json"}
    assert body["id"] == f"rollout-fraud-detection-endpoint/rolled_back/{record['ended_at']}" == \
        body_for("cloudevents", dict(rolled_back))["id"]
    assert body["time"] == record["ended_at"]
    data = body["data"]
    assert data["reason"] == record["reason"] and data["reason"].startswith(
        "health check failed: regression detected at 95% confidence: error rate ")
    assert data["traffic"] == {"blue-v1": 100} and data["health"]["verdict"] == "fail"
    assert data["health"]["new"] == record["last_health"]["new"]


def test_teams_body_is_a_message_with_one_adaptive_card(rolled_back: dict[str, Any], record: dict[str, Any]) -> None:
    body = body_for("teams", rolled_back)
    assert body["type"] == "message" and len(body["attachments"]) == 1
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    title, reason, facts = card["body"]
    assert title["text"] == "Rollout rolled back: green-v2 on fraud-detection-endpoint" and title["color"] == "attention"
    assert reason["text"] == record["reason"]
    new = record["last_health"]["new"]
    assert {f["title"]: f["value"] for f in facts["facts"]} == {
        "Endpoint": "fraud-detection-endpoint", "Deployments": "green-v2 replacing blue-v1", "Traffic": "blue-v1 100%",
        "Steps": "10% → 50% → 100%",
        "Last check": f"fail: {new['requests']} requests, error rate {new['errors'] / new['requests']:.4f}, "
                      f"p99 {new['latency_p99_ms']:.0f} ms"}


def test_slack_body_has_fallback_text_and_blocks(rolled_back: dict[str, Any]) -> None:
    body = body_for("slack", rolled_back)
    assert body["text"].startswith("Rollout rolled back: green-v2 on fraud-detection-endpoint: health check failed")
    header, reason, fields = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text",
                                                 "text": "Rollout rolled back: green-v2 on fraud-detection-endpoint"}}
    assert reason["text"]["type"] == "mrkdwn"
    assert "*Traffic*\nblue-v1 100%" in [f["text"] for f in fields["fields"]]


def test_a_step_event_names_the_step_and_the_reason_of_the_last_change() -> None:
    record = run_simulation(load_scenario(EXAMPLES / "healthy-promotion.yaml")).record
    record = {**record, "outcome": None, "step_index": 1, "current_step": 50}
    event = rollout_event("step", record, "2026-01-01T00:05:00+00:00")
    assert body_for("slack", event)["blocks"][0]["text"]["text"] == "Rollout step to 50%: green-v2 on fraud-detection-endpoint"
