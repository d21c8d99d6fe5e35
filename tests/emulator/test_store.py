"""The task hub in a SQLite file: instances carry on after the hub is rebuilt from it, as after a crash."""

from __future__ import annotations

from datetime import timedelta

from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as T

from emulator.store import SqliteStore
from emulator.taskhub import TaskHub
from tests.emulator.test_taskhub import of_type, run_to_end


def crash_and_restart(app, clock, path) -> TaskHub:
    """A new hub on the same file: what a new process after ``kill -9`` would have."""
    return TaskHub(app, clock, store=SqliteStore(path))


def test_a_timer_set_before_the_crash_still_fires_after_it(app, clock, t0, tmp_path):
    first = TaskHub(app, clock, store=SqliteStore(tmp_path / "hub.sqlite"))
    first.start("sleeper", "s1")
    first.run_until_idle()  # TimerCreated for 00:30 stored; the process dies here

    second = crash_and_restart(app, clock, tmp_path / "hub.sqlite")
    status = run_to_end(second, "s1")

    assert status["output"] == {"started": t0.isoformat(), "woke": (t0 + timedelta(minutes=30)).isoformat()}
    assert len(of_type(second.stored_history("s1"), T.TIMER_FIRED)) == 1


def test_an_activity_scheduled_but_not_run_before_the_crash_runs_after_it(app, clock, tmp_path, replay_log):
    first = TaskHub(app, clock, store=SqliteStore(tmp_path / "hub.sqlite"))
    first.start("chain", "c1", {"n": 3})
    first._scheduler.step()  # the first episode only: TaskScheduled(double) stored, the activity never ran

    second = crash_and_restart(app, clock, tmp_path / "hub.sqlite")
    status = run_to_end(second, "c1")

    assert status["output"] == [6, 12]
    assert [e["EventId"] for e in of_type(second.stored_history("c1"), T.TASK_SCHEDULED)] == [0, 1]


def test_an_event_raised_before_the_crash_is_delivered_after_it(app, clock, tmp_path):
    first = TaskHub(app, clock, store=SqliteStore(tmp_path / "hub.sqlite"))
    first.start("listener", "l1")
    first.run_until_idle()
    first.raise_event("l1", "note", "kept")  # in the stored inbox; no episode ran

    second = crash_and_restart(app, clock, tmp_path / "hub.sqlite")
    assert run_to_end(second, "l1")["output"] == {"note": "kept", "type": "str"}


def test_finished_purged_and_continued_instances_are_stored_as_they_are(app, clock, tmp_path):
    first = TaskHub(app, clock, store=SqliteStore(tmp_path / "hub.sqlite"))
    first.start("counter", "n1", {"n": 0})
    first.start("chain", "gone", {"n": 1})
    first.run()
    first.purge("gone")

    second = crash_and_restart(app, clock, tmp_path / "hub.sqlite")

    assert second.get_status("gone") is None
    status = second.get_status("n1")
    assert status["runtimeStatus"] == "Completed" and status["output"] == 3
    assert second.stored_history("n1") == first.stored_history("n1")  # the last execution's history only
