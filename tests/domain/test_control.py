"""Control events and which operator actions fit which phase."""

import pytest

from rollout.control import action_refusal, control_action


@pytest.mark.parametrize("event, payload, paused, expected", [
    pytest.param("rollback", {"reason": "alert 'x' fired"}, False, ("rollback", "alert 'x' fired"), id="rollback"),
    pytest.param("abort", None, False, ("abort", "abort requested"), id="abort-default-reason"),
    pytest.param("promote", {}, True, ("promote", "promote requested"), id="promote-while-paused"),
    pytest.param("pause", {}, False, ("pause", "pause requested"), id="pause"),
    pytest.param("pause", {}, True, ("ignore", "pause ignored: already paused"), id="pause-twice"),
    pytest.param("resume", {}, False, ("ignore", "resume ignored: not paused"), id="resume-not-paused"),
    pytest.param("alert", {"reason": "r"}, False, ("note", "r"), id="alert-note"),
    pytest.param("explode", {}, False, ("ignore", "unknown event 'explode'"), id="unknown"),
])
def test_control_action(event, payload, paused, expected):
    assert control_action(event, payload, paused) == expected


@pytest.mark.parametrize("action, status, refusal", [
    pytest.param("pause", {"phase": "observing", "paused": False}, None, id="pause-observing"),
    pytest.param("pause", {"phase": "observing", "paused": True}, "already paused", id="pause-paused"),
    pytest.param("resume", {"phase": "observing", "paused": False}, "not paused", id="resume-running"),
    pytest.param("resume", {"phase": "observing", "paused": True}, None, id="resume-paused"),
    pytest.param("promote", {"phase": "baking"}, None, id="promote-baking"),
    pytest.param("promote", {"phase": "preflight"}, "still in pre-flight", id="promote-preflight"),
    pytest.param("abort", None, None, id="abort-before-first-status"),
    pytest.param("abort", {"phase": "done"}, "needs a running rollout", id="abort-done"),
    pytest.param("abort", {"phase": "rolling_back"}, "send resolve once traffic is safe", id="abort-rolling-back"),
    pytest.param("dance", {"phase": "observing"}, "unknown action", id="unknown-action"),
])
def test_action_refusal(action, status, refusal):
    result = action_refusal(action, status)
    assert (result is None) if refusal is None else (refusal in result)


@pytest.mark.parametrize("value, expected", [
    pytest.param('{"reason": "x"}', {"reason": "x"}, id="json-text-of-an-object"),
    pytest.param('[1, 2]', [1, 2], id="json-text-of-a-list"),
    pytest.param({"reason": "x"}, {"reason": "x"}, id="already-decoded"),
    pytest.param("plain words", "plain words", id="a-plain-string"),
    pytest.param("{not json", "{not json", id="broken-json-kept"),
    pytest.param(None, None, id="none"),
])
def test_decoded(value, expected):
    from rollout.wire import decoded

    assert decoded(value) == expected
