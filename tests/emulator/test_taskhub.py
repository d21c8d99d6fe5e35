"""The task hub runs registered orchestrators through the real replay engine, as the host would.

Orchestrators and activities come from ``conftest.app``; the clock is virtual unless a test says
otherwise, so timers of minutes complete at once and the orchestrator reads the fire time.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest
from azure.durable_functions.models.actions.ActionType import ActionType
from azure.durable_functions.models.DurableOrchestrationContext import DurableOrchestrationContext
from azure.durable_functions.models.history.HistoryEvent import HistoryEvent
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as T

from emulator.clock import RealClock, VirtualClock
from emulator.taskhub import InstanceAlreadyExists, TaskHub, UnknownFunction, flatten_actions

DONE = ("Completed", "Failed", "Terminated")


def finished(hub: TaskHub, instance_id: str) -> bool:
    status = hub.get_status(instance_id)
    return status is not None and status["runtimeStatus"] in DONE


def run_to_end(hub: TaskHub, instance_id: str) -> dict:
    assert hub.run(until=lambda: finished(hub, instance_id), max_virtual_seconds=86400)
    status = hub.get_status(instance_id)
    assert status is not None
    return status


def types(history: list[dict]) -> list[str]:
    return [T(event["EventType"]).name for event in history]


def of_type(history: list[dict], event_type: T) -> list[dict]:
    return [event for event in history if event["EventType"] == event_type]


def iso(moment) -> str:
    return moment.isoformat()


# --- activities -----------------------------------------------------------------------------------


def test_activity_chain_passes_results_along_and_records_the_hosts_history(hub, replay_log):
    hub.start("chain", "c1", {"n": 3})
    status = run_to_end(hub, "c1")

    assert status["runtimeStatus"] == "Completed" and status["output"] == [6, 12]
    assert replay_log == ["first=6", "second=12"]  # each step logged once: earlier episodes replay as played
    assert types(hub.stored_history("c1")) == [
        "ORCHESTRATOR_STARTED", "EXECUTION_STARTED", "TASK_SCHEDULED", "ORCHESTRATOR_COMPLETED",
        "ORCHESTRATOR_STARTED", "TASK_COMPLETED", "TASK_SCHEDULED", "ORCHESTRATOR_COMPLETED",
        "ORCHESTRATOR_STARTED", "TASK_COMPLETED", "EXECUTION_COMPLETED", "ORCHESTRATOR_COMPLETED"]
    scheduled = of_type(hub.stored_history("c1"), T.TASK_SCHEDULED)
    completed = of_type(hub.stored_history("c1"), T.TASK_COMPLETED)
    assert [(e["EventId"], e["Name"]) for e in scheduled] == [(0, "double"), (1, "double")]
    assert [(e["TaskScheduledId"], e["Result"]) for e in completed] == [(0, "6"), (1, "12")]


def test_parallel_activities_are_scheduled_in_one_episode_and_gathered_in_order(hub):
    hub.start("fan_out", "f1")
    status = run_to_end(hub, "f1")

    assert status["output"] == [2, 4, 6]
    first_episode = hub.stored_history("f1")[:6]
    assert types(first_episode) == ["ORCHESTRATOR_STARTED", "EXECUTION_STARTED", "TASK_SCHEDULED", "TASK_SCHEDULED",
                                    "TASK_SCHEDULED", "ORCHESTRATOR_COMPLETED"]
    assert [e["EventId"] for e in of_type(first_episode, T.TASK_SCHEDULED)] == [0, 1, 2]


def test_activity_exception_reaches_the_orchestrator_as_the_extension_reports_it(hub):
    failures = []
    hub.observe(lambda r: failures.append(r) if r["kind"] == "activity_failed" else None)
    hub.start("catcher", "x1")
    status = run_to_end(hub, "x1")

    reason = "Activity function 'explode' failed:  RuntimeError: boom"
    caught = status["output"]["caught"]
    assert caught.startswith(f"{reason} \n Traceback")  # the SDK raises "<Reason> \n <Details>"
    assert "raise RuntimeError(message)" in caught and "taskhub.py" not in caught
    [failed] = of_type(hub.stored_history("x1"), T.TASK_FAILED)
    assert failed["TaskScheduledId"] == 0 and failed["Reason"] == reason
    assert [(r["name"], r["error"]) for r in failures] == [("explode", reason)]


def test_retry_schedules_a_timer_after_each_failure_and_succeeds_on_the_third_attempt(hub, t0, flaky_service):
    flaky_service.failures["k"] = 2
    hub.start("retrying", "r1", {"key": "k"})
    status = run_to_end(hub, "r1")

    assert status["output"] == {"answer": "ok k after 2 failures", "at": iso(t0 + timedelta(seconds=10))}
    history = hub.stored_history("r1")
    assert [e["EventId"] for e in of_type(history, T.TASK_SCHEDULED)] == [0, 2, 4]
    assert [(e["EventId"], e["FireAt"]) for e in of_type(history, T.TIMER_CREATED)] == [
        (1, "2026-01-01T00:00:05Z"), (3, "2026-01-01T00:00:10Z")]
    assert [e["TaskScheduledId"] for e in of_type(history, T.TASK_FAILED)] == [0, 2]


def test_retry_gives_up_after_max_attempts_and_one_last_timer(hub, t0, flaky_service):
    flaky_service.failures["k"] = 99
    hub.start("retrying", "r2", {"key": "k"})
    status = run_to_end(hub, "r2")

    assert flaky_service.calls["k"] == 3
    assert "ConnectionError: k unavailable (call 3)" in status["output"]["error"]
    # DTFx's RetryInterceptor still creates a timer after the last failure, due at once ("Dummy timer for back-compat")
    assert status["output"]["at"] == iso(t0 + timedelta(seconds=10))
    history = hub.stored_history("r2")
    assert [e["EventId"] for e in of_type(history, T.TASK_SCHEDULED)] == [0, 2, 4]
    assert [(e["EventId"], e["FireAt"]) for e in of_type(history, T.TIMER_CREATED)] == [
        (1, "2026-01-01T00:00:05Z"), (3, "2026-01-01T00:00:10Z"), (5, "2026-01-01T00:00:10Z")]


# --- timers and events -----------------------------------------------------------------------------


def test_a_thirty_minute_timer_completes_at_once_and_the_orchestrator_reads_the_fire_time(hub, clock, t0):
    hub.start("sleeper", "s1")
    began = time.perf_counter()
    status = run_to_end(hub, "s1")

    assert time.perf_counter() - began < 1.0
    assert status["output"] == {"started": iso(t0), "woke": iso(t0 + timedelta(minutes=30))}
    assert clock.now() == t0 + timedelta(minutes=30)
    [created] = of_type(hub.stored_history("s1"), T.TIMER_CREATED)
    [fired] = of_type(hub.stored_history("s1"), T.TIMER_FIRED)
    assert created["FireAt"] == fired["FireAt"] == "2026-01-01T00:30:00Z" and fired["TimerId"] == created["EventId"]


def test_an_event_that_wins_a_race_is_seen_at_its_own_time_and_the_lost_timer_still_fires(hub, t0):
    hub.start("approval", "a1")
    hub.call_at(t0 + timedelta(minutes=5), lambda: hub.raise_event("a1", "approve", {"by": "ops"}))
    status = run_to_end(hub, "a1")

    assert status["output"] == {"winner": "approve", "data": {"by": "ops"}, "decided_at": iso(t0 + timedelta(minutes=5)),
                                "finished_at": iso(t0 + timedelta(minutes=45))}
    fired = of_type(hub.stored_history("a1"), T.TIMER_FIRED)
    assert [(e["TimerId"], e["Timestamp"]) for e in fired] == [(0, "2026-01-01T00:30:00Z"), (1, "2026-01-01T00:45:00Z")]


def test_the_timeout_wins_a_race_when_no_event_comes(hub, t0):
    hub.start("approval", "a2")
    status = run_to_end(hub, "a2")

    assert status["output"]["winner"] == "timeout"
    assert status["output"]["decided_at"] == iso(t0 + timedelta(minutes=30))
    assert status["output"]["finished_at"] == iso(t0 + timedelta(minutes=70))


def test_an_event_raised_before_the_orchestrator_waits_is_kept_for_it(hub, t0):
    hub.start("late_listener", "l1")
    hub.call_at(t0 + timedelta(minutes=5), lambda: hub.raise_event("l1", "go", {"v": 1}))
    with pytest.warns(UserWarning, match="Potential duplicate Task completion for TaskId: go"):  # the SDK's buffering
        status = run_to_end(hub, "l1")

    assert status["output"] == {"data": {"v": 1}, "at": iso(t0 + timedelta(minutes=10))}
    [raised] = of_type(hub.stored_history("l1"), T.EVENT_RAISED)
    assert raised["Timestamp"] == "2026-01-01T00:05:00Z" and raised["Input"] == '{"v":1}'


def test_raise_event_answers_false_for_unknown_and_finished_instances(hub):
    assert hub.raise_event("nobody", "go", 1) is False
    hub.start("chain", "c2", {"n": 1})
    run_to_end(hub, "c2")
    assert hub.raise_event("c2", "go", 1) is False


def test_callbacks_run_in_clock_order_at_their_time(hub, clock, t0):
    seen = []
    hub.call_at(t0 + timedelta(minutes=2), lambda: seen.append(("b", clock.now())))
    hub.call_at(t0 + timedelta(minutes=1), lambda: seen.append(("a", clock.now())))

    assert hub.run() is True
    assert seen == [("a", t0 + timedelta(minutes=1)), ("b", t0 + timedelta(minutes=2))]


def test_run_stops_before_a_due_time_beyond_its_limit(hub, clock, t0):
    hub.start("sleeper", "s2")
    assert hub.run(until=lambda: finished(hub, "s2"), max_virtual_seconds=60) is False
    assert hub.get_status("s2")["runtimeStatus"] == "Running" and clock.now() == t0


# --- instance management ---------------------------------------------------------------------------


def test_terminate_stops_an_instance_and_closes_its_history(hub):
    records = []
    hub.observe(records.append)
    hub.start("forever", "t1")
    hub.run_until_idle()
    assert hub.get_status("t1")["runtimeStatus"] == "Running"

    assert hub.terminate("t1", "operator said stop") is True
    status = hub.get_status("t1")
    assert (status["runtimeStatus"], status["output"]) == ("Terminated", "operator said stop")
    assert types(hub.stored_history("t1"))[-3:] == ["EXECUTION_TERMINATED", "EXECUTION_COMPLETED", "ORCHESTRATOR_COMPLETED"]
    assert hub.terminate("t1", "again") is False and hub.raise_event("t1", "never") is False
    assert records[-1]["kind"] == "terminated" and records[-1]["reason"] == "operator said stop"


def test_timers_of_a_terminated_instance_are_dropped_and_do_not_move_the_clock(hub, clock, t0):
    hub.start("sleeper", "s3")
    hub.run_until_idle()
    hub.terminate("s3", "stop")

    assert hub.run() is True
    assert clock.now() == t0 and types(hub.stored_history("s3")).count("TIMER_FIRED") == 0


def test_a_suspended_instance_keeps_its_events_until_resumed(hub):
    hub.start("forever", "u1")
    hub.run_until_idle()
    assert hub.suspend("u1", "maintenance") is True
    assert hub.raise_event("u1", "never", "late") is True
    hub.run_until_idle()
    assert hub.get_status("u1")["runtimeStatus"] == "Suspended"

    assert hub.resume("u1", "done") is True
    hub.run_until_idle()
    assert hub.get_status("u1")["runtimeStatus"] == "Completed"
    assert hub.get_status("u1")["output"] == "unreachable"


def test_custom_status_follows_each_step(hub, t0):
    updates = []
    hub.observe(lambda r: updates.append((r["at"], r["custom_status"])) if r["kind"] == "custom_status" else None)
    hub.start("progress", "p1")
    status = run_to_end(hub, "p1")

    assert updates == [(t0 + timedelta(minutes=m), {"step": m + 1, "of": 3}) for m in range(3)]
    assert status["customStatus"] == {"step": 3, "of": 3} and status["output"] == 3


def test_an_orchestrator_exception_fails_the_instance_like_the_host(hub):
    hub.start("broken", "b1")
    status = run_to_end(hub, "b1")

    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == "Orchestrator function 'broken' failed: bad input"


def test_continue_as_new_restarts_the_history_with_the_new_input(hub):
    kinds = []
    hub.observe(lambda r: kinds.append(r["kind"]))
    hub.start("counter", "n1", {"n": 0})
    status = run_to_end(hub, "n1")

    assert status["runtimeStatus"] == "Completed" and status["output"] == 3
    assert json.loads(status["input"]) == {"n": 3}  # the host keeps the SDK's JSON text as a JSON string
    assert kinds.count("continued_as_new") == 3
    history = hub.stored_history("n1")
    assert [e["EventId"] for e in of_type(history, T.TASK_SCHEDULED)] == [0]
    assert json.loads(json.loads(of_type(history, T.EXECUTION_STARTED)[0]["Input"])) == {"n": 3}


def test_a_changed_orchestrator_fails_as_non_deterministic(hub, fickle_choice):
    hub.start("fickle", "d1")
    hub.run_until_idle()
    fickle_choice["activity"] = "explode"
    hub.raise_event("d1", "next")
    hub.run_until_idle()

    status = hub.get_status("d1")
    assert status["runtimeStatus"] == "Failed" and "Non-Deterministic workflow detected" in status["output"]


def test_start_refuses_the_id_of_a_running_instance_but_replaces_a_finished_one(app, clock):
    hub = TaskHub(app, clock)
    hub.start("forever", "same")
    with pytest.raises(InstanceAlreadyExists):
        hub.start("forever", "same")
    hub.terminate("same")
    hub.start("chain", "same", {"n": 2})
    assert run_to_end(hub, "same")["output"] == [4, 8]

    replacing = TaskHub(app, clock, overridable_existing_instance_states="AnyState")
    replacing.start("forever", "same")
    replacing.start("chain", "same", {"n": 1})
    assert run_to_end(replacing, "same")["output"] == [2, 4]
    with pytest.raises(UnknownFunction):
        hub.start("no_such_orchestrator")


def test_list_instances_filters_by_status_time_and_prefix(hub, clock, t0):
    hub.start("forever", "job-a")
    clock.advance(timedelta(minutes=1))
    hub.start("chain", "job-b", {"n": 1})
    hub.start("chain", "other", {"n": 1})
    hub.run_until_idle()

    assert [s["instanceId"] for s in hub.list_instances(runtime_status=["Completed"])] == ["job-b", "other"]
    assert [s["instanceId"] for s in hub.list_instances(instance_id_prefix="job-")] == ["job-a", "job-b"]
    assert [s["instanceId"] for s in hub.list_instances(created_to=t0)] == ["job-a"]
    assert hub.list_instances(created_from=t0 + timedelta(minutes=2)) == []


# --- fidelity to the replay engine --------------------------------------------------------------------


@pytest.mark.parametrize("name, instance_input, event", [
    ("chain", {"n": 5}, None),
    ("fan_out", None, None),
    ("sleeper", None, None),
    ("approval", None, ("approve", {"ok": True})),
    ("late_listener", None, ("go", "now")),
])
@pytest.mark.filterwarnings("ignore:Potential duplicate Task completion")
def test_replaying_the_final_history_from_scratch_gives_the_output_and_no_new_actions(hub, t0, name, instance_input, event):
    hub.start(name, "fid", instance_input)
    if event:
        hub.call_at(t0 + timedelta(minutes=5), lambda: hub.raise_event("fid", *event))
    status = run_to_end(hub, "fid")
    history = [{**e, "IsPlayed": True} for e in hub.history("fid")]
    context_json = json.dumps({"history": history, "input": instance_input, "instanceId": "fid", "isReplaying": True,
                               "parentInstanceId": None, "upperSchemaVersion": 1, "upperSchemaVersionNew": 2})

    state = json.loads(hub.registry.orchestrators[name](context_json))

    assert state["isDone"] is True and state["output"] == status["output"]
    actions = flatten_actions(state)
    stored = hub.stored_history("fid")
    assert [a["functionName"] for a in actions if a["actionType"] == ActionType.CALL_ACTIVITY] == [
        e["Name"] for e in of_type(stored, T.TASK_SCHEDULED)]
    assert sum(a["actionType"] == ActionType.CREATE_TIMER for a in actions) == len(of_type(stored, T.TIMER_CREATED))


def test_the_fed_history_parses_with_the_sdk_and_marks_only_the_last_episode_new(hub):
    hub.start("chain", "h1", {"n": 1})
    run_to_end(hub, "h1")
    fed = hub.history("h1")

    parsed = [HistoryEvent(**event) for event in fed]
    assert all(e.timestamp.tzinfo is not None for e in parsed)
    last_start = max(i for i, e in enumerate(parsed) if e.event_type == T.ORCHESTRATOR_STARTED)
    assert [e.is_played for e in parsed] == [True] * last_start + [False] * (len(parsed) - last_start)
    context = DurableOrchestrationContext.from_json(json.dumps({
        "history": fed, "input": {"n": 1}, "instanceId": "h1", "isReplaying": True, "parentInstanceId": None,
        "upperSchemaVersion": 1, "upperSchemaVersionNew": 2}))
    assert context.get_input() == {"n": 1} and len(context.histories) == len(fed)
    assert types(fed)[-2:] == ["ORCHESTRATOR_STARTED", "TASK_COMPLETED"]


# --- real clock ------------------------------------------------------------------------------------------


def test_the_background_worker_sleeps_until_a_real_timer_is_due(app):
    hub = TaskHub(app, RealClock())
    hub.start_background()
    try:
        hub.start("napper", "z1", {"seconds": 0.2})
        deadline = time.monotonic() + 5
        while not finished(hub, "z1") and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        hub.stop()

    status = hub.get_status("z1")
    assert status["runtimeStatus"] == "Completed"
    started, woke = (status["output"][k] for k in ("started", "woke"))
    assert datetime.fromisoformat(woke) - datetime.fromisoformat(started) >= timedelta(seconds=0.2)


def test_a_virtual_clock_never_goes_backwards(t0):
    clock = VirtualClock(t0)
    clock.advance_to(t0 - timedelta(hours=1))
    assert clock.now() == t0
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
