"""Hand-built orchestration histories, replayed by the real azure-functions-durable executor.

The host delivers new events to an orchestrator in batches, between the events the SDK
already saw; these helpers build such histories event by event (the JSON the host sends), so a
test can put control events exactly where it wants them: while an activity runs, twice in a
batch, before any waiter could have been created. ``replay`` calls the registered orchestrator
as the worker does and returns its state, or raises as the worker would report a failure.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as T

from emulator.worker import registered_functions
from function_app import app
from rollout.safety import versioned_input

ORCHESTRATOR = {f.get_function_name(): f.get_user_function() for f in registered_functions(app)}["rollout_orchestrator"]
START = datetime(2026, 1, 1, tzinfo=UTC)
REQUEST = {"endpoint_name": "fraud-detection-endpoint", "new_deployment": "green-v2",
           "traffic_steps": [10, 50, 100], "observation_window": "PT5M"}
ENDPOINT = {"name": "fraud-detection-endpoint", "provisioning_state": "Succeeded",
            "traffic": {"blue-v1": 100}, "mirror_traffic": {}}
DEPLOYMENTS = [{"name": "blue-v1", "provisioning_state": "Succeeded", "instance_count": 3, "instance_type": None},
               {"name": "green-v2", "provisioning_state": "Succeeded", "instance_count": 1, "instance_type": None}]
PREFLIGHT_OK = {"ok": True, "endpoint": ENDPOINT, "deployments": DEPLOYMENTS}


def _ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class History:
    """A history under construction; ``at`` is the time of the next episode."""

    def __init__(self, orchestration_input: Any = None, at: datetime = START) -> None:
        self.at = at
        self.events: list[dict[str, Any]] = []
        self.episode()
        self.add(T.EXECUTION_STARTED, Name="rollout_orchestrator", Version="",
                 Input=json.dumps(versioned_input(REQUEST) if orchestration_input is None else orchestration_input))

    def add(self, event_type: T, event_id: int = -1, **fields: Any) -> History:
        self.events.append({"EventType": int(event_type), "EventId": event_id, "IsPlayed": False,
                            "Timestamp": _ts(self.at), **fields})
        return self

    def episode(self, seconds: float = 0) -> History:
        """End the episode so far (if any) and start the next, ``seconds`` later."""
        if self.events:
            self.add(T.ORCHESTRATOR_COMPLETED)
        self.at += timedelta(seconds=seconds)
        return self.add(T.ORCHESTRATOR_STARTED)

    def scheduled(self, event_id: int, name: str) -> History:
        return self.add(T.TASK_SCHEDULED, event_id, Name=name)

    def completed(self, event_id: int, result: Any) -> History:
        return self.add(T.TASK_COMPLETED, TaskScheduledId=event_id, Result=json.dumps(result))

    def timer(self, event_id: int, fire_at: datetime) -> History:
        return self.add(T.TIMER_CREATED, event_id, FireAt=_ts(fire_at))

    def fired(self, event_id: int, fire_at: datetime) -> History:
        return self.add(T.TIMER_FIRED, TimerId=event_id, FireAt=_ts(fire_at))

    def event(self, name: str, payload: Any = None) -> History:
        return self.add(T.EVENT_RAISED, Name=name, Input=json.dumps(payload or {"reason": f"{name} by test"}))


def replay(history: History) -> dict[str, Any]:
    """Run the orchestrator over ``history`` as the worker does; returns its state (raises on failure)."""
    played = history.events
    context = json.dumps({"history": played, "input": played[1]["Input"], "instanceId": "rollout-fraud-detection-endpoint",
                          "isReplaying": False, "parentInstanceId": None, "upperSchemaVersion": 1,
                          "upperSchemaVersionNew": 2})
    return json.loads(ORCHESTRATOR(context))


def scheduled_names(state: dict[str, Any]) -> list[str]:
    """The activities a state asks for, in order (compound actions flattened)."""
    names: list[str] = []

    def walk(action: dict[str, Any]) -> None:
        for child in action.get("compoundActions") or []:
            walk(child)
        if action.get("functionName"):
            names.append(action["functionName"])

    for group in state["actions"]:
        for action in group if isinstance(group, list) else [group]:
            walk(action)
    return names


class Driver:
    """A minimal host over ``History``. Each turn: the SDK replays the history (``replay``); the
    host's own replay of the actions it answered (``emulator.replay.replay``, the extension's shim
    and the Durable Task Framework's determinism check) says what gets scheduled, and fails the
    test on non-determinism; then the turn's injected events are delivered, followed by every
    pending activity's result (from ``respond``) or, with no activity pending, the earliest timer
    (cancelled ones too: the host still creates them and they fire).

    Events injected at turn ``k`` arrive in the same batch as, and before, that turn's completions:
    while the activity or timer scheduled before them is still pending; ``inject_after`` ones arrive
    in the same batch after them. ``hang``: activities never answered (a worker that hangs); timers
    fire when nothing else is answered, except at a turn with events to inject while one hangs: those
    arrive at once, in a batch of their own. On ``ContinueAsNew`` the next execution's history starts with the
    events the host carried over (``emulator.replay``: those played after the action); the turns at
    which an execution continued as new are in ``handovers``.
    """

    def __init__(self, respond: Any, orchestration_input: Any = None, history: History | None = None,
                 hang: Any = None) -> None:
        self.history = history or History(orchestration_input)
        self.respond = respond
        self.hang = hang or (lambda name, payload: False)    # (activity, input) -> never answered (a hung worker)
        self.pending: dict[int, tuple[str | None, Any, datetime | None]] = {}   # id -> (activity, input, fire_at)
        self.state: dict[str, Any] = {}
        self.statuses: list[Any] = []                 # the custom status after each turn
        self.handovers: list[int] = []
        self._pending_from_history()

    def _pending_from_history(self) -> None:
        """What a history built by hand has scheduled and not completed."""
        self.pending = {}
        for event in self.history.events:
            if event["EventType"] == T.TASK_SCHEDULED:
                self.pending[event["EventId"]] = (event["Name"], None, None)
            elif event["EventType"] == T.TIMER_CREATED:
                self.pending[event["EventId"]] = (None, None, _parse(event["FireAt"]))
            elif event["EventType"] in (T.TASK_COMPLETED, T.TASK_FAILED):
                self.pending.pop(event["TaskScheduledId"], None)
            elif event["EventType"] == T.TIMER_FIRED:
                self.pending.pop(event["TimerId"], None)

    def run(self, inject: dict[int, list[tuple[str, Any]]] | None = None, max_turns: int = 400,
            inject_after: dict[int, list[tuple[str, Any]]] | None = None) -> dict[str, Any]:
        from emulator.replay import replay as host_replay
        from emulator.replay import top_level_actions

        inject, inject_after = inject or {}, inject_after or {}
        for turn in range(max_turns):
            self.state = replay(self.history)
            self.statuses.append(self.state.get("customStatus"))
            actions, refusal = top_level_actions(self.state)
            assert refusal is None, refusal
            host = host_replay(self.history.events, actions)
            assert host.non_deterministic is None, host.non_deterministic
            if host.continue_as_new is not None:
                self.history = History(decoded_input(host.continue_as_new["input"]), at=self.history.at)
                self.history.events += [{**event, "IsPlayed": False} for event in host.carryover]
                self.handovers.append(turn)
                self._pending_from_history()
                continue
            if self.state.get("isDone") and host.can_complete:
                return self.state
            for task in host.new_tasks:
                if task.name is None:
                    assert task.fire_at is not None
                    self.history.timer(task.event_id, task.fire_at)
                else:
                    self.history.scheduled(task.event_id, task.name)
                self.pending[task.event_id] = (task.name, decoded_input(task.input_json), task.fire_at)
            activities = sorted(i for i, (name, payload, _) in self.pending.items()
                                if name is not None and not self.hang(name, payload))
            timers = sorted((i for i, (name, _, _) in self.pending.items() if name is None),
                            key=lambda i: (self.pending[i][2], i))
            assert activities or timers or inject.get(turn), f"stuck: nothing pending at turn {turn}"
            hung = len(activities) < sum(name is not None for name, _, _ in self.pending.values())
            if hung and not activities and inject.get(turn):     # the events come while the hung one runs
                timers = []
            if not activities and timers:
                fire_at = self.pending[timers[0]][2]
                assert fire_at is not None
                self.history.episode(max((fire_at - self.history.at).total_seconds(), 0))
            else:
                self.history.episode()
            for name, payload in inject.get(turn, []):
                self.history.event(name, payload)
            for i in activities:
                name, payload, _ = self.pending.pop(i)
                self.history.completed(i, self.respond(name, payload))
            if not activities and timers:
                _, _, fire_at = self.pending.pop(timers[0])
                assert fire_at is not None
                self.history.fired(timers[0], fire_at)
            for name, payload in inject_after.get(turn, []):
                self.history.event(name, payload)
        raise AssertionError("the orchestration did not finish")


def _parse(text: str) -> datetime:
    from dateutil.parser import isoparse

    value = isoparse(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def decoded_input(value: Any) -> Any:
    while isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            break
    return value


class SimpleEndpoint:
    """Activity results for ``Driver``: an endpoint whose traffic the rollout sets, healthy metrics,
    and ``faults`` (activity name -> list of error dicts, or None for a call that succeeds, used in order)."""

    def __init__(self, faults: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.traffic = dict(ENDPOINT["traffic"])
        self.faults = {name: list(errors) for name, errors in (faults or {}).items()}
        self.calls: list[str] = []
        self.seen: list[dict[str, int]] = []      # every traffic set, in order

    def __call__(self, name: str, payload: Any) -> Any:
        self.calls.append(name)
        error = self.faults[name].pop(0) if self.faults.get(name) else None
        if error is not None:
            return {"ok": False, "error": error, "endpoint": {**ENDPOINT, "traffic": dict(self.traffic)}}
        if name == "preflight":
            return {"ok": True, "endpoint": {**ENDPOINT, "traffic": dict(self.traffic)}, "deployments": DEPLOYMENTS}
        if name == "read_traffic":
            return {"ok": True, "endpoint": {**ENDPOINT, "traffic": dict(self.traffic)}}
        if name == "set_traffic":
            self.traffic = {k: v for k, v in payload["traffic"].items() if v}
            self.seen.append(dict(self.traffic))
            return {"ok": True, "endpoint": {**ENDPOINT, "traffic": dict(self.traffic)}}
        if name == "check_health":
            return {"ok": True, "metrics": {"green-v2": {"requests": 1000, "errors": 0, "latency_p99_ms": 100.0},
                                            "blue-v1": {"requests": 1000, "errors": 0, "latency_p99_ms": 100.0}}}
        raise AssertionError(name)


def transient(message: str = "simulated 503", retry_after: float | None = None) -> dict[str, Any]:
    return {"kind": "TransientError", "message": message, "retryable": True, "retry_after": retry_after}
