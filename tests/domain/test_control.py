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


@pytest.mark.parametrize("action, status, refusal", [
    pytest.param("dance", None, "unknown action 'dance'; use one of pause, resume, promote, abort, resolve, revert",
                 id="unknown-action-lists-the-actions"),
    pytest.param("resolve", {"phase": "observing"},
                 "the rollout is observing; resolve only stops a rollback that is being retried", id="resolve-observing"),
    pytest.param("resolve", None, "the rollout is preflight; resolve only stops a rollback that is being retried",
                 id="resolve-before-status"),
    pytest.param("pause", {"phase": "rolling_back"},
                 "the rollout is rolling back; pause does not apply. If the rollback keeps failing, fix the cause (the "
                 "status shows the last error) or send resolve once traffic is safe", id="pause-rolling-back"),
    pytest.param("abort", {"phase": "done"}, "the rollout is done; abort needs a running rollout", id="abort-done"),
    pytest.param("pause", {"phase": "shifting", "paused": True}, "the rollout is already paused", id="pause-paused"),
    pytest.param("resume", {"phase": "shifting"}, "the rollout is not paused", id="resume-running"),
    pytest.param("resume", {"phase": "shifting", "paused": 1}, None, id="resume-paused-truthy"),
    pytest.param("revert", {"phase": "cleaning_up"},
                 "the rollout is cleaning_up; revert fits only after promotion, within the revert window (cleanup "
                 "scale_down or delete)", id="revert-without-window"),
    pytest.param("revert", {"phase": "autoscaling", "revert_until": "t"},
                 "the rollout is autoscaling; revert fits only after promotion, within the revert window (cleanup "
                 "scale_down or delete)", id="revert-while-autoscaling"),
    pytest.param("revert", {"phase": "cleaning_up", "revert_until": "t"}, None, id="revert-in-window"),
    pytest.param("promote", {"phase": "cleaning_up", "revert_until": "t"},
                 "the rollout is cleaning_up: the new deployment is promoted; use revert within the revert window",
                 id="promote-cleaning-up"),
    pytest.param("abort", {"phase": "autoscaling"},
                 "the rollout is autoscaling: the new deployment is promoted; use revert within the revert window",
                 id="abort-autoscaling"),
    pytest.param("promote", {"phase": "preflight"}, "the rollout is still in pre-flight; promote fits once traffic "
                 "starts shifting", id="promote-preflight"),
    pytest.param("promote", {"phase": "creating"}, "the rollout is still in creating; promote fits once traffic "
                 "starts shifting", id="promote-creating"),
    pytest.param("pause", {"phase": "preflight"}, "the rollout is still in pre-flight; pause fits once traffic starts "
                 "shifting", id="pause-preflight"),
    pytest.param("resume", {"phase": "preflight", "paused": True}, "the rollout is still in pre-flight; resume fits "
                 "once traffic starts shifting", id="resume-preflight"),
    pytest.param("pause", {"phase": "mirroring"}, None, id="pause-mirroring"),
    pytest.param("promote", {"phase": "shifting"}, None, id="promote-shifting"),
    pytest.param("abort", {"phase": "baking"}, None, id="abort-baking"),
])
def test_action_refusal_text(action, status, refusal):
    assert action_refusal(action, status) == refusal


@pytest.mark.parametrize("event, payload, expected", [
    pytest.param("rollback", {"reason": ""}, ("rollback", "rollback requested"), id="empty-reason-is-the-default"),
    pytest.param("rollback", {"reason": 5}, ("rollback", "rollback requested"), id="reason-not-text"),
    pytest.param("abort", "stop", ("abort", "abort requested"), id="payload-not-a-mapping"),
    pytest.param("revert", None, ("revert", "revert requested"), id="revert"),
    pytest.param("resume", None, ("ignore", "resume ignored: not paused"), id="resume-not-paused"),
])
def test_control_action_reason(event, payload, expected):
    assert control_action(event, payload, False) == expected


@pytest.mark.parametrize("event, expected", [
    pytest.param("resume", ("resume", "resume requested"), id="resume-paused"),
    pytest.param("alert", ("note", "alert requested"), id="alert-while-paused"),
])
def test_control_action_while_paused(event, expected):
    assert control_action(event, {}, True) == expected
