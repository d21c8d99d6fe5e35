"""A small Durable Functions app for the task hub and management API tests, and fixtures around it.

The orchestrators exercise one Durable feature each; ``FLAKY`` is a hand-written fake that makes
the ``flaky`` activity fail a set number of times; ``REPLAY_LOG`` records what orchestrator code
did when it was not replaying.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import azure.durable_functions as df
import pytest

from emulator.clock import VirtualClock
from emulator.taskhub import TaskHub

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=5000, max_number_of_attempts=3)


class FlakyService:
    """Fails the first ``failures`` calls for a key, then answers ``"ok <key> after <n> failures"``."""

    def __init__(self) -> None:
        self.failures: dict[str, int] = {}
        self.calls: dict[str, int] = {}

    def call(self, key: str) -> str:
        self.calls[key] = self.calls.get(key, 0) + 1
        if self.calls[key] <= self.failures.get(key, 0):
            raise ConnectionError(f"{key} unavailable (call {self.calls[key]})")
        return f"ok {key} after {self.calls[key] - 1} failures"


FLAKY = FlakyService()
REPLAY_LOG: list[str] = []
FICKLE = {"activity": "double"}
"""The activity ``fickle`` calls first; a test changes it mid-orchestration to break determinism."""

app = df.DFApp()


@app.activity_trigger(input_name="n")
def double(n: int) -> int:
    return n * 2


@app.activity_trigger(input_name="message")
def explode(message: str) -> None:
    raise RuntimeError(message)


@app.activity_trigger(input_name="key")
def flaky(key: str) -> str:
    return FLAKY.call(key)


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    """double(n) twice; logs each step once, when not replaying."""
    n = context.get_input()["n"]
    first = yield context.call_activity("double", n)
    if not context.is_replaying:
        REPLAY_LOG.append(f"first={first}")
    second = yield context.call_activity("double", first)
    if not context.is_replaying:
        REPLAY_LOG.append(f"second={second}")
    return [first, second]


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    """double(1..3) in parallel."""
    results = yield context.task_all([context.call_activity("double", n) for n in (1, 2, 3)])
    return results


@app.orchestration_trigger(context_name="context")
def sleeper(context: df.DurableOrchestrationContext):
    """Sleeps 30 minutes; returns when it started and woke."""
    started = context.current_utc_datetime
    yield context.create_timer(started + timedelta(minutes=30))
    return {"started": started.isoformat(), "woke": context.current_utc_datetime.isoformat()}


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    """An ``approve`` event raced against a 30-minute timeout, then a 40-minute cool-down."""
    timeout = context.create_timer(context.current_utc_datetime + timedelta(minutes=30))
    approved = context.wait_for_external_event("approve")
    winner = yield context.task_any([timeout, approved])
    decided_at = context.current_utc_datetime.isoformat()
    if winner == approved:
        timeout.cancel()
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=40))
    return {"winner": "approve" if winner == approved else "timeout", "data": approved.result if winner == approved else None,
            "decided_at": decided_at, "finished_at": context.current_utc_datetime.isoformat()}


@app.orchestration_trigger(context_name="context")
def late_listener(context: df.DurableOrchestrationContext):
    """Waits 10 minutes, then for ``go`` (which may have been raised already)."""
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=10))
    data = yield context.wait_for_external_event("go")
    return {"data": data, "at": context.current_utc_datetime.isoformat()}


@app.orchestration_trigger(context_name="context")
def catcher(context: df.DurableOrchestrationContext):
    """Calls ``explode`` and returns the error it saw."""
    try:
        yield context.call_activity("explode", "boom")
    except Exception as exc:
        return {"caught": str(exc)}
    return {"caught": None}


@app.orchestration_trigger(context_name="context")
def retrying(context: df.DurableOrchestrationContext):
    """``flaky`` with 3 attempts 5 s apart; returns its answer or the error."""
    try:
        answer = yield context.call_activity_with_retry("flaky", RETRY, context.get_input()["key"])
    except Exception as exc:
        return {"error": str(exc), "at": context.current_utc_datetime.isoformat()}
    return {"answer": answer, "at": context.current_utc_datetime.isoformat()}


@app.orchestration_trigger(context_name="context")
def forever(context: df.DurableOrchestrationContext):
    """Waits for an event that never comes."""
    context.set_custom_status({"phase": "waiting"})
    yield context.wait_for_external_event("never")
    return "unreachable"


@app.orchestration_trigger(context_name="context")
def progress(context: df.DurableOrchestrationContext):
    """Reports each step in its custom status, one minute apart; returns the number of steps."""
    for step in range(1, 4):
        context.set_custom_status({"step": step, "of": 3})
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
    return 3


@app.orchestration_trigger(context_name="context")
def broken(context: df.DurableOrchestrationContext):
    """Fails after its first activity."""
    yield context.call_activity("double", 1)
    raise ValueError("bad input")


@app.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext):
    """Continues as new until ``n`` reaches 3, one activity per generation."""
    n = context.get_input()["n"]
    yield context.call_activity("double", n)
    if n < 3:
        context.continue_as_new({"n": n + 1})
        return None
    return n


@app.orchestration_trigger(context_name="context")
def listener(context: df.DurableOrchestrationContext):
    """Returns the payload of the ``note`` event as it arrived."""
    context.set_custom_status("listening")
    note = yield context.wait_for_external_event("note")
    return {"note": note, "type": type(note).__name__}


@app.orchestration_trigger(context_name="context")
def fickle(context: df.DurableOrchestrationContext):
    """Calls the activity ``FICKLE`` names, then waits for ``next``: not deterministic if FICKLE changes."""
    yield context.call_activity(FICKLE["activity"], 1)
    yield context.wait_for_external_event("next")
    return "done"


@app.orchestration_trigger(context_name="context")
def napper(context: df.DurableOrchestrationContext):
    """Sleeps ``seconds`` (for real clocks); returns when it started and woke."""
    started = context.current_utc_datetime
    yield context.create_timer(started + timedelta(seconds=context.get_input()["seconds"]))
    return {"started": started.isoformat(), "woke": context.current_utc_datetime.isoformat()}


@app.orchestration_trigger(context_name="context")
def big_status(context: df.DurableOrchestrationContext):
    """Sets a custom status of ``repeat`` copies of ``text``, waits a minute, then returns "done"."""
    spec = context.get_input()
    context.set_custom_status(spec["text"] * spec["repeat"])
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
    return "done"


@app.orchestration_trigger(context_name="context")
def watcher(context: df.DurableOrchestrationContext):
    """Up to 3 ten-minute windows racing one ``stop`` waiter; on ``stop``, cancels the window's timer when
    the input says so, then calls ``double`` - the shape of a rollout's waits."""
    cancel = context.get_input()["cancel"]
    stop = context.wait_for_external_event("stop")
    for window in range(3):
        timer = context.create_timer(context.current_utc_datetime + timedelta(minutes=10))
        winner = yield context.task_any([stop, timer])
        if winner == stop:
            if cancel:
                timer.cancel()
            doubled = yield context.call_activity("double", window)
            return {"window": window, "doubled": doubled, "at": context.current_utc_datetime.isoformat()}
    return {"window": None}


@app.orchestration_trigger(context_name="context")
def quitter(context: df.DurableOrchestrationContext):
    """Returns as soon as ``stop`` beats a 30-minute timer, cancelling the timer when the input says so."""
    timer = context.create_timer(context.current_utc_datetime + timedelta(minutes=30))
    stop = context.wait_for_external_event("stop")
    winner = yield context.task_any([stop, timer])
    if winner == stop and context.get_input()["cancel"]:
        timer.cancel()
    return "stopped" if winner == stop else "timed out"


@app.orchestration_trigger(context_name="context")
def collector(context: df.DurableOrchestrationContext):
    """Waits for events ``a``, ``b`` and ``c`` in turn; returns their payloads."""
    seen = []
    for name in ("a", "b", "c"):
        seen.append((yield context.wait_for_external_event(name)))
    return seen


REDEPLOYED = {"version": "v1"}
"""Which code ``redeployable`` runs; a test changes it mid-orchestration, as a redeploy would."""


@app.orchestration_trigger(context_name="context")
def redeployable(context: df.DurableOrchestrationContext):
    """v1: double(1), a 10-minute window raced against ``go``, double(2). Other versions change one thing."""
    version = REDEPLOYED["version"]
    if version == "timer first":
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
    if version == "activity wrapped in task_all":
        yield context.task_all([context.call_activity("double", 1)])
    elif version != "first activity removed":
        name = {"activity renamed": "explode", "activity name cased": "DOUBLE"}.get(version, "double")
        yield context.call_activity(name, 5 if version == "activity input changed" else 1)
    minutes = 20 if version == "timer length changed" else 10
    timer = context.create_timer(context.current_utc_datetime + timedelta(minutes=minutes))
    go = context.wait_for_external_event("proceed" if version == "event renamed" else "go")
    if version == "extra event waiter":
        yield context.task_any([go, timer, context.wait_for_external_event("skip")])
    else:
        yield context.task_any([go, timer])
    result = yield context.call_activity("double", 2)
    return {"version": version, "result": result}


@pytest.fixture(autouse=True)
def fresh_fakes():
    """Each test starts with no flaky failures configured, an empty replay log and a deterministic FICKLE."""
    FLAKY.failures.clear()
    FLAKY.calls.clear()
    REPLAY_LOG.clear()
    FICKLE["activity"] = "double"
    REDEPLOYED["version"] = "v1"


@pytest.fixture(name="app")
def test_app() -> df.DFApp:
    """The app above, with every orchestrator and activity of these tests."""
    return app


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def hub(clock: VirtualClock) -> TaskHub:
    return TaskHub(app, clock)


@pytest.fixture
def t0() -> datetime:
    """When the virtual clock starts."""
    return T0


@pytest.fixture
def flaky_service() -> FlakyService:
    return FLAKY


@pytest.fixture
def replay_log() -> list[str]:
    return REPLAY_LOG


@pytest.fixture
def fickle_choice() -> dict[str, str]:
    return FICKLE


@pytest.fixture
def redeployed() -> dict[str, str]:
    return REDEPLOYED
