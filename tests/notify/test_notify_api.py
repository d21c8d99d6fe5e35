"""Notification targets through the HTTP API and the app setting: accepted, merged, never shown in full."""

from __future__ import annotations

import json

import pytest

from emulator.serve import LocalServer, default_scenario, serve_settings
from rollout.notify import NotifyTarget
from settings import load_settings
from tests.cli.helpers import KEY, cli
from tests.http.helpers import Client

ENDPOINT = "fraud-detection-endpoint"
SECRET_URL = "https://prod-01.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=REQUESTSECRET"
DEFAULT_URL = "https://hooks.slack.com/services/T0/B0/DEFAULTSECRET"


def test_request_and_default_targets_are_kept_and_shown_redacted() -> None:
    scenario = default_scenario()
    settings = serve_settings(scenario)
    settings = type(settings)(workspace=settings.workspace, notify_targets=(NotifyTarget(DEFAULT_URL, "slack"),))
    with LocalServer(scenario, key=KEY, settings=settings) as server:
        api = Client(server.url, KEY)
        started = api.post("/api/rollouts", {"endpoint_name": ENDPOINT, "new_deployment": "green-v2",
                                             "observation_window": "PT60S", "check_interval": "PT1S",
                                             "notify": [{"url": SECRET_URL, "format": "teams", "events": ["rolled_back"]}]})
        assert started.status == 202
        shown = [cli("status", ENDPOINT, "--json", url=server.url).out, started.body.decode(),
                 api.get("/api/rollouts").body.decode(), api.get(f"/api/rollouts/{ENDPOINT}/view").body.decode()]
        request = json.loads(shown[0])["request"]
        cli("abort", ENDPOINT, url=server.url)
    assert request["notify"] == [
        {"url": "https://prod-01.westeurope.logic.azure.com/workflows/…", "format": "teams", "events": ["rolled_back"]},
        {"url": "https://hooks.slack.com/services/…", "format": "slack", "events": list(NotifyTarget.events)}]
    for text in shown:
        assert "REQUESTSECRET" not in text and "DEFAULTSECRET" not in text


def test_a_bad_target_is_a_400_naming_the_field() -> None:
    with LocalServer(default_scenario(), key=KEY) as server:
        answer = Client(server.url, KEY).post("/api/rollouts", {"endpoint_name": ENDPOINT, "new_deployment": "green-v2",
                                                                "notify": [{"url": SECRET_URL, "format": "pager"}]})
    assert answer.status == 400
    assert answer.json()["errors"] == [{"field": "notify[0].format", "message": "must be one of cloudevents, teams, slack"}]
    assert "REQUESTSECRET" not in answer.body.decode()


@pytest.mark.parametrize("value, error", [
    pytest.param("not json", "AML_ROLLOUT_NOTIFY is not JSON: it must be a list of {url, format, events}", id="not-json"),
    pytest.param(json.dumps([{"url": DEFAULT_URL, "format": "pager"}]),
                 "AML_ROLLOUT_NOTIFY[0].format: must be one of cloudevents, teams, slack", id="bad-format"),
])
def test_a_bad_notify_setting_is_refused_without_echoing_the_url(value: str, error: str) -> None:
    with pytest.raises(ValueError) as caught:
        load_settings({"AML_ROLLOUT_NOTIFY": value})
    assert str(caught.value) == error and "DEFAULTSECRET" not in str(caught.value)


def test_the_notify_setting_gives_default_targets() -> None:
    settings = load_settings({"AML_ROLLOUT_NOTIFY": json.dumps([{"url": DEFAULT_URL, "format": "slack",
                                                                 "events": ["promoted"]}])})
    assert settings.notify_targets == (NotifyTarget(DEFAULT_URL, "slack", ("promoted",)),)
