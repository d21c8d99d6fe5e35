"""Emulator fidelity: the history the emulator builds replays to the same decisions.

After a rollout ends, its last execution's whole history is fed from scratch (every event marked
played) to the registered orchestrator, as the host would on a new worker: it must finish with the
same output and ask for no work beyond what the history already records. The rollout continues as
new at every step boundary, so that execution starts from the state the one before carried over
(``carried`` in its input): the replay rebuilds it from there.
"""

import json

import pytest
from azure.durable_functions.models.actions.ActionType import ActionType
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as T

from emulator.simulate import run_simulation
from emulator.taskhub import flatten_actions
from tests.rollout.sdk_history import ORCHESTRATOR
from tests.rollout.test_orchestrator import scenario


@pytest.mark.parametrize("overrides", [
    pytest.param({}, id="promotion"),
    pytest.param({"alerts": [{"at": "PT7M", "payload": "alerts/endpoint-5xx-fired.json"}]}, id="alert-rollback"),
    pytest.param({"controls": [{"at": "PT2M", "action": "pause"}, {"at": "PT9M", "action": "resume"}]}, id="pause-resume"),
    pytest.param({"faults": [{"operation": "set_traffic", "error": "transient", "times": 2}]}, id="retries"),
    pytest.param({"load": {"requests_per_minute": 150}}, id="inconclusive"),
])
@pytest.mark.filterwarnings("ignore:Potential duplicate Task completion")
def test_full_history_replays_to_the_same_output_with_no_new_work(overrides):
    result = run_simulation(scenario(rollout={"bake_time": "PT3M"}, **overrides))   # the last execution bakes
    history = [{**event, "IsPlayed": True} for event in result.history]
    started = next(e for e in history if e["EventType"] == T.EXECUTION_STARTED)
    context = json.dumps({"history": history, "input": started["Input"], "instanceId": result.record["instance_id"],
                          "isReplaying": True, "parentInstanceId": None,
                          "upperSchemaVersion": 1, "upperSchemaVersionNew": 2})

    state = json.loads(ORCHESTRATOR(context))

    assert state["isDone"] is True
    assert state["output"] == result.record
    actions = flatten_actions(state)
    scheduled = [e["Name"] for e in history if e["EventType"] == T.TASK_SCHEDULED]
    timers = [e for e in history if e["EventType"] == T.TIMER_CREATED]
    assert [a["functionName"] for a in actions if a["actionType"] == ActionType.CALL_ACTIVITY] == scheduled
    assert sum(a["actionType"] == ActionType.CREATE_TIMER for a in actions) == len(timers)
    assert "carried" in json.loads(started["Input"]), "the last execution is a continuation"
    assert len(scheduled) >= 3 and len(timers) >= 3
