"""The task hub refuses what the Functions host and the Durable extension refuse.

Each test names the host code it follows; each fails on an emulator that is more lenient.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from azure.durable_functions.models.actions.ActionType import ActionType
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as T

from emulator.scenario import parse_scenario
from emulator.simulate import run_simulation
from tests.emulator.test_taskhub import of_type, run_to_end

ROOT = Path(__file__).resolve().parent.parent.parent

# --- custom status limit (DurableOrchestrationContext.SetCustomStatus: 16 KB of UTF-16 JSON) -----------


@pytest.mark.parametrize("text, repeat, fails, size_kb", [
    # JSON "xx..x" is repeat + 2 UTF-16 code units, 2 bytes each; the host truncates to whole KB.
    pytest.param("x", 8701, False, None, id="17406-bytes-is-16-KB-and-passes"),
    pytest.param("x", 8702, True, 17, id="17408-bytes-is-17-KB-and-fails"),
    pytest.param("\U0001F600", 4350, False, None, id="emoji-count-two-code-units-4350-pass"),
    pytest.param("\U0001F600", 4351, True, 17, id="emoji-count-two-code-units-4351-fail"),
    pytest.param("é", 8702, True, 17, id="non-ascii-counts-one-code-unit-not-its-utf8-bytes"),
    pytest.param("x", 20000, True, 39, id="size-reported-in-whole-KB"),
])
def test_a_custom_status_over_16_kb_of_utf16_json_fails_the_instance_as_the_host_does(hub, text, repeat, fails, size_kb):
    hub.start("big_status", "s1", {"text": text, "repeat": repeat})
    status = run_to_end(hub, "s1")

    if not fails:
        assert status["runtimeStatus"] == "Completed" and status["customStatus"] == text * repeat
        return
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == ("Orchestrator function 'big_status' failed: The UTF-16 size of the JSON-serialized "
                                f"payload must not exceed 16 KB. The current payload size is {size_kb} KB.")
    assert status["customStatus"] is None
    assert of_type(hub.stored_history("s1"), T.TIMER_CREATED) == []  # no action of that episode was carried out


# --- the host's action model (OutOfProcOrchestrationShim.ProcessAsyncActionsV2) ---------------------------


def activity_scheduled_at(hub, instance_id: str) -> list[str]:
    return [e["Timestamp"] for e in of_type(hub.stored_history(instance_id), T.TASK_SCHEDULED)]


def test_the_sdk_sends_later_windows_as_a_when_any_holding_only_the_new_timer(hub, t0):
    hub.start("watcher", "w0", {"cancel": True})
    hub.run(max_virtual_seconds=25 * 60)
    context = json.dumps({"history": hub.history("w0"), "input": {"cancel": True}, "instanceId": "w0",
                          "isReplaying": True, "parentInstanceId": None, "upperSchemaVersion": 1,
                          "upperSchemaVersionNew": 2})

    [actions] = json.loads(hub.registry.orchestrators["watcher"](context))["actions"]

    assert [[child["actionType"] for child in a["compoundActions"]] for a in actions] == [
        [ActionType.WAIT_FOR_EXTERNAL_EVENT, ActionType.CREATE_TIMER], [ActionType.CREATE_TIMER],
        [ActionType.CREATE_TIMER]]


@pytest.mark.parametrize("cancel, acted_at, output_at", [
    pytest.param(True, "2026-01-01T00:15:00Z", "2026-01-01T00:15:00+00:00", id="cancelled-timer-acts-at-the-event"),
    pytest.param(False, "2026-01-01T00:20:00Z", "2026-01-01T00:20:00+00:00",
                 id="uncancelled-timer-blocks-the-host-until-it-fires"),
])
def test_an_event_in_a_later_window_is_acted_on_at_once_only_if_the_lost_timer_is_cancelled(
        hub, t0, cancel, acted_at, output_at):
    # Window 2 (10-20 min) is sent as WhenAny[timer]: the host awaits that timer before it looks at
    # the next action, unless isCanceled completes it at once.
    hub.start("watcher", "w1", {"cancel": cancel})
    hub.call_at(t0 + timedelta(minutes=15), lambda: hub.raise_event("w1", "stop"))
    status = run_to_end(hub, "w1")

    assert activity_scheduled_at(hub, "w1") == [acted_at]
    assert status["output"] == {"window": 1, "doubled": 2, "at": output_at}


@pytest.mark.parametrize("cancel, done_at", [
    pytest.param(True, timedelta(minutes=5), id="cancelled-completes-at-once"),
    pytest.param(False, timedelta(minutes=30), id="open-timer-keeps-it-running-until-it-fires"),
])
def test_an_orchestration_completes_only_when_no_timer_is_left_open(hub, clock, t0, cancel, done_at):
    # DTFx TaskOrchestrationExecutor.Execute completes only `if (!this.context.HasOpenTasks)`.
    hub.start("quitter", "q1", {"cancel": cancel})
    hub.call_at(t0 + timedelta(minutes=5), lambda: hub.raise_event("q1", "stop"))
    hub.run(max_virtual_seconds=6 * 60)
    assert hub.get_status("q1")["runtimeStatus"] == ("Completed" if cancel else "Running")

    status = run_to_end(hub, "q1")
    assert status["output"] == "stopped" and status["lastUpdatedTime"] == status_time(t0 + done_at)


def status_time(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- redeploying mid-orchestration: DTFx's determinism check ------------------------------------------------


@pytest.mark.parametrize("version, accepted", [
    # DTFx compares only TaskScheduled (by id, name ignoring case) and TimerCreated (by id) with history.
    pytest.param("event renamed", True, id="event-waiter-names-are-not-compared"),
    pytest.param("extra event waiter", True, id="event-waiters-in-a-when-any-are-not-compared"),
    pytest.param("activity name cased", True, id="activity-names-compare-ignoring-case"),
    pytest.param("activity input changed", True, id="inputs-are-not-compared"),
    pytest.param("timer length changed", True, id="fire-times-are-not-compared"),
    pytest.param("activity wrapped in task_all", True, id="compound-actions-are-not-compared"),
    pytest.param("activity renamed", False, id="activity-renamed-fails"),
    pytest.param("timer first", False, id="timer-where-history-has-an-activity-fails"),
    pytest.param("first activity removed", False, id="activity-removed-fails"),
])
def test_a_redeploy_mid_orchestration_passes_or_fails_the_frameworks_determinism_check(hub, t0, redeployed, version,
                                                                                       accepted):
    hub.start("redeployable", "r1")
    hub.run(max_virtual_seconds=60)  # double(1) done; waiting in the window: TaskScheduled 0, TimerCreated 1
    assert [T(e["EventType"]).name for e in hub.stored_history("r1")].count("TIMER_CREATED") == 1
    redeployed["version"] = version
    status = run_to_end(hub, "r1")  # the window's timer fires: the first episode of the new code

    if accepted:
        assert status["runtimeStatus"] == "Completed", status["output"]
        assert status["output"] == {"version": version, "result": 4}
    else:
        assert status["runtimeStatus"] == "Failed"
        assert status["output"].startswith("Non-Deterministic workflow detected: A previous execution of this "
                                           "orchestration scheduled ")


def test_the_rollout_ends_when_aborted_not_when_its_abandoned_window_timer_would_fire():
    # orchestrators/waiting.py cancels the timer an event beat; without that the host keeps the
    # instance Running until the timer fires (here the 7-minute check, 30 s after the abort).
    scenario = parse_scenario({
        "endpoint": {"name": "fraud-detection-endpoint",
                     "deployments": {"blue-v1": {"traffic": 100, "instance_count": 3}, "green-v2": {"traffic": 0}}},
        "rollout": {"new_deployment": "green-v2", "traffic_steps": [10, 50, 100], "observation_window": "PT5M"},
        "load": {"requests_per_minute": 1200},
        "controls": [{"at": "PT6M30S", "action": "abort"}],
    }, ROOT / "examples")

    result = run_simulation(scenario)

    assert result.outcome == "aborted" and result.to_json()["final_traffic"] == {"blue-v1": 100}
    assert result.elapsed_seconds == 390


# --- batching (the host's work item carries every message waiting for the instance) ------------------------


def test_messages_waiting_for_an_instance_are_delivered_in_one_episode(hub):
    hub.start("collector", "b1")
    for name in ("a", "b", "c"):
        hub.raise_event("b1", name, name.upper())
    status = run_to_end(hub, "b1")

    assert status["output"] == ["A", "B", "C"]
    history = [T(e["EventType"]).name for e in hub.stored_history("b1")]
    assert history[:6] == ["ORCHESTRATOR_STARTED", "EXECUTION_STARTED", "EVENT_RAISED", "EVENT_RAISED",
                           "EVENT_RAISED", "EXECUTION_COMPLETED"]
    assert history.count("ORCHESTRATOR_STARTED") == 1


@pytest.mark.filterwarnings("ignore:Potential duplicate Task completion")  # events nobody waits for: the point
def test_a_burst_of_events_is_delivered_in_batches_of_at_most_256(hub):
    hub.start("listener", "b2")
    hub.run_until_idle()
    for n in range(600):
        hub.raise_event("b2", "ignored", n)
    hub.raise_event("b2", "note", "last")
    status = run_to_end(hub, "b2")

    assert status["output"] == {"note": "last", "type": "str"}
    episodes = [T(e["EventType"]).name for e in hub.stored_history("b2")].count("ORCHESTRATOR_STARTED")
    assert episodes == 1 + 3  # the start, then 601 messages as 256 + 256 + 89


def test_an_orchestrator_error_without_out_of_proc_state_fails_with_the_hosts_message(hub):
    # TaskOrchestrationShim: an exception carrying no $OutOfProcData$ becomes
    # OrchestrationFailureException("Orchestrator function '<name>' failed: <message>").
    def crashing(context_json: str) -> str:
        raise RecursionError("maximum recursion depth exceeded")

    hub.registry.orchestrators["chain"] = crashing
    hub.start("chain", "e1", {"n": 1})
    status = run_to_end(hub, "e1")

    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == "Orchestrator function 'chain' failed: maximum recursion depth exceeded"


def test_activity_names_are_looked_up_ignoring_case_as_the_host_does(hub, fickle_choice):
    # The extension keys functions by FunctionName, whose Equals is StringComparison.OrdinalIgnoreCase.
    fickle_choice["activity"] = "DOUBLE"
    hub.start("fickle", "k1")
    hub.run_until_idle()
    hub.raise_event("k1", "next")
    status = run_to_end(hub, "k1")

    assert status["runtimeStatus"] == "Completed" and status["output"] == "done"
    assert [e["Name"] for e in of_type(hub.stored_history("k1"), T.TASK_SCHEDULED)] == ["DOUBLE"]
    assert of_type(hub.stored_history("k1"), T.TASK_FAILED) == []
