"""The real-clock task hub dispatches work items concurrently, as the Durable extension does.

Activities run beside each other and beside orchestrator episodes, at most host.json's
``maxConcurrentActivityFunctions`` at once; an instance still runs one episode at a time; an
activity's result joins history when it ends (completion order); an activity running when the hub
stops is run again (at least once). ``Gates`` is a hand-written fake service whose calls block
until the test opens their gate, so that "running at the same time" is observed, not timed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import azure.durable_functions as df
import pytest
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as T

from emulator.clock import RealClock, VirtualClock
from emulator.scheduler import DEFAULT_MAX_CONCURRENT, Concurrency
from emulator.taskhub import TaskHub
from tests.emulator.conftest import T0
from tests.emulator.conftest import app as conformance_app

ROOT = Path(__file__).resolve().parents[2]
WAIT = 10.0


class Gates:
    """Each ``call(key)`` records that it started, blocks until ``open(key)``, and returns the key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: dict[str, threading.Event] = {}
        self.started: list[str] = []
        self.finished: list[str] = []
        self.running = 0
        self.peak = 0

    def _gate(self, key: str) -> threading.Event:
        with self._lock:
            return self._gates.setdefault(key, threading.Event())

    def open(self, key: str) -> None:
        self._gate(key).set()

    def call(self, key: str) -> str:
        gate = self._gate(key)
        with self._lock:
            self.started.append(key)
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            if not gate.wait(WAIT):
                raise TimeoutError(f"gate {key} never opened")
            return key
        finally:
            with self._lock:
                self.running -= 1
                self.finished.append(key)


class EpisodeMeter:
    """Counts orchestrator episodes running at once, per instance (entered at the top of the generator)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    def visit(self, instance_id: str) -> None:
        with self._lock:
            self.running[instance_id] = self.running.get(instance_id, 0) + 1
            self.peak[instance_id] = max(self.peak.get(instance_id, 0), self.running[instance_id])
        time.sleep(0.02)       # long enough for a second episode of the same instance to overlap, if one could
        with self._lock:
            self.running[instance_id] -= 1


GATES = Gates()
METER = EpisodeMeter()
app = df.DFApp()


@app.activity_trigger(input_name="key")
def gated(key: str) -> str:
    return GATES.call(key)


@app.activity_trigger(input_name="n")
def quick(n: int) -> int:
    return n


@app.orchestration_trigger(context_name="context")
def one_gate(context: df.DurableOrchestrationContext):
    """``gated(key)`` once."""
    return (yield context.call_activity("gated", context.get_input()["key"]))


@app.orchestration_trigger(context_name="context")
def two_gates(context: df.DurableOrchestrationContext):
    """``gated("first")`` and ``gated("second")`` side by side."""
    return (yield context.task_all([context.call_activity("gated", "first"), context.call_activity("gated", "second")]))


@app.orchestration_trigger(context_name="context")
def crowd(context: df.DurableOrchestrationContext):
    """Five ``ping`` events one after another, then a ``quick`` activity; every episode passes the meter."""
    METER.visit(context.instance_id)
    for _ in range(5):
        yield context.wait_for_external_event("ping")
        METER.visit(context.instance_id)
    return (yield context.call_activity("quick", 5))


@pytest.fixture(autouse=True)
def fresh_fakes() -> None:
    global GATES, METER
    GATES.__init__()    # type: ignore[misc]
    METER.__init__()    # type: ignore[misc]


@pytest.fixture
def running() -> Iterator[Callable[..., TaskHub]]:
    """``running(concurrency, app=...)``: a real-clock hub driven by its background worker; stopped after."""
    hubs: list[TaskHub] = []

    def make(concurrency: Concurrency | None, hub_app: df.DFApp = app) -> TaskHub:
        hubs.append(TaskHub(hub_app, RealClock(), concurrency=concurrency))
        hubs[-1].start_background()
        return hubs[-1]

    yield make
    for hub in hubs:
        hub.stop()


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def finished(hub: TaskHub, instance_id: str) -> bool:
    status = hub.get_status(instance_id)
    return status is not None and status["runtimeStatus"] in ("Completed", "Failed", "Terminated")


def completed_ids(hub: TaskHub, instance_id: str) -> list[int]:
    return [e["TaskScheduledId"] for e in hub.stored_history(instance_id) if e["EventType"] == T.TASK_COMPLETED]


# --- configuration ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    pytest.param(None, Concurrency(10, 10), id="the-app-host-json"),
    pytest.param({"extensions": {"durableTask": {"maxConcurrentActivityFunctions": 3,
                                                 "maxConcurrentOrchestratorFunctions": 7}}},
                 Concurrency(3, 7), id="both-set"),
    pytest.param({"extensions": {"durableTask": {"hubName": "x"}}},
                 Concurrency(DEFAULT_MAX_CONCURRENT, DEFAULT_MAX_CONCURRENT), id="unset-consumption-defaults"),
    pytest.param({"version": "2.0"}, Concurrency(DEFAULT_MAX_CONCURRENT, DEFAULT_MAX_CONCURRENT), id="no-extensions"),
])
def test_the_limits_come_from_host_json(tmp_path: Path, text: dict | None, expected: Concurrency) -> None:
    path = ROOT / "host.json"
    if text is not None:
        path = tmp_path / "host.json"
        path.write_text(json.dumps(text))
    assert Concurrency.from_host_json(path) == expected


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="activities must be at least 1, not 0"):
        Concurrency(activities=0)


def test_a_virtual_clock_keeps_one_work_item_at_a_time() -> None:
    with pytest.raises(ValueError, match="virtual clock"):
        TaskHub(app, VirtualClock(T0), concurrency=Concurrency())


# --- dispatching ------------------------------------------------------------------------------------------


def test_activities_of_two_instances_run_at_the_same_time(running) -> None:
    hub = running(Concurrency())
    hub.start("one_gate", "a", {"key": "a"})
    hub.start("one_gate", "b", {"key": "b"})
    wait_until(lambda: sorted(GATES.started) == ["a", "b"])   # a blocks until opened: b started beside it
    GATES.open("b")
    wait_until(lambda: finished(hub, "b"))
    assert not finished(hub, "a") and hub.get_status("b")["output"] == "b"
    GATES.open("a")
    wait_until(lambda: finished(hub, "a"))
    assert hub.get_status("a")["output"] == "a"


@pytest.mark.parametrize("concurrency", [
    pytest.param(Concurrency(activities=2), id="max-concurrent-activity-functions"),
    pytest.param(Concurrency(activities=10, worker_threads=2), id="the-worker-thread-pool"),
])
def test_no_more_activities_run_at_once_than_the_limit(running, concurrency: Concurrency) -> None:
    hub = running(concurrency)
    for key in "abcd":
        hub.start("one_gate", key, {"key": key})
    wait_until(lambda: len(GATES.started) == 2)
    time.sleep(0.2)                                      # room for a third to start, if the limit let it
    assert len(GATES.started) == 2
    for key in "abcd":
        GATES.open(key)
    wait_until(lambda: all(finished(hub, key) for key in "abcd"))
    assert GATES.peak == 2 and sorted(GATES.finished) == list("abcd")


def test_results_join_history_in_completion_order(running) -> None:
    hub = running(Concurrency())
    hub.start("two_gates", "t")
    wait_until(lambda: sorted(GATES.started) == ["first", "second"])
    GATES.open("second")
    wait_until(lambda: completed_ids(hub, "t") == [1])   # second's TaskCompleted, while first still runs
    GATES.open("first")
    wait_until(lambda: finished(hub, "t"))
    assert completed_ids(hub, "t") == [1, 0]
    assert hub.get_status("t")["output"] == ["first", "second"], "task_all answers in the order of its tasks"


def test_an_instance_runs_one_episode_at_a_time(running) -> None:
    hub = running(Concurrency())
    ids = ("c1", "c2", "c3")
    for instance_id in ids:
        hub.start("crowd", instance_id)
    wait_until(lambda: all(hub.get_status(i)["runtimeStatus"] == "Running" for i in ids))
    for _ in range(5):                                   # pings arrive while the instances' episodes run
        for instance_id in ids:
            hub.raise_event(instance_id, "ping")
        time.sleep(0.005)
    wait_until(lambda: all(finished(hub, i) for i in ids))
    assert [hub.get_status(i)["output"] for i in ids] == [5] * 3
    assert METER.peak == {"c1": 1, "c2": 1, "c3": 1}


def test_an_activity_running_when_the_hub_stops_keeps_nothing_and_runs_again(running) -> None:
    hub = running(Concurrency())
    hub.start("one_gate", "x", {"key": "x"})
    wait_until(lambda: GATES.started == ["x"])
    hub.stop()
    GATES.open("x")
    wait_until(lambda: GATES.finished == ["x"])
    time.sleep(0.1)                                      # room for a result to be recorded, if one were kept
    assert completed_ids(hub, "x") == [] and hub.get_status("x")["runtimeStatus"] == "Running"
    hub.start_background()
    wait_until(lambda: finished(hub, "x"))
    assert GATES.started == ["x", "x"], "at least once: the activity ran again"
    assert completed_ids(hub, "x") == [0] and hub.get_status("x")["output"] == "x"


def test_the_custom_status_limit_still_fails_an_instance(running) -> None:
    hub = running(Concurrency(), conformance_app)
    hub.start("big_status", "s1", {"text": "x", "repeat": 9000})
    wait_until(lambda: finished(hub, "s1"))
    status = hub.get_status("s1")
    assert status["runtimeStatus"] == "Failed" and "must not exceed 16 KB" in status["output"]


def test_run_and_run_until_idle_wait_for_the_pool() -> None:
    hub = TaskHub(app, RealClock(), concurrency=Concurrency())
    try:
        GATES.open("first")
        GATES.open("second")
        hub.start("two_gates", "r1")
        assert hub.run(until=lambda: finished(hub, "r1")) is True
        assert (hub.get_status("r1") or {}).get("output") == ["first", "second"]
        hub.start("two_gates", "r2")
        hub.run_until_idle()                             # returns only once nothing is left to do
        assert (hub.get_status("r2") or {}).get("output") == ["first", "second"]
    finally:
        hub.stop()
