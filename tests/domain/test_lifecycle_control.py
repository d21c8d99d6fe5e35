"""Control actions in the lifecycle phases, and the record's lifecycle parts: one named row per case."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from rollout.control import action_refusal, control_action, merge_intent
from rollout.record import MAX_PHASES_KEPT, STATUS_BUDGET_CHARS, RolloutRecord

WINDOW = {"phase": "cleaning_up", "revert_until": "2026-01-01T01:15:00+00:00"}


@pytest.mark.parametrize("action, status, refused", [
    pytest.param("revert", WINDOW, None, id="revert-inside-window"),
    pytest.param("revert", {"phase": "cleaning_up", "revert_until": None}, "revert window", id="revert-window-over"),
    pytest.param("revert", {"phase": "observing"}, "only after promotion", id="revert-before-promotion"),
    pytest.param("abort", WINDOW, "use revert", id="abort-after-promotion-says-revert"),
    pytest.param("promote", {"phase": "creating"}, "still in creating", id="promote-while-creating"),
    pytest.param("promote", {"phase": "mirroring"}, "still in mirroring", id="promote-while-mirroring"),
    pytest.param("abort", {"phase": "creating"}, None, id="abort-while-creating"),
    pytest.param("pause", {"phase": "creating"}, None, id="pause-while-creating"),
    pytest.param("abort", {"phase": "mirroring"}, None, id="abort-while-mirroring"),
    pytest.param("pause", {"phase": "scaling"}, None, id="pause-while-scaling"),
    pytest.param("promote", {"phase": "scaling"}, None, id="promote-while-scaling"),
    pytest.param("pause", {"phase": "autoscaling"}, "promoted", id="pause-after-promotion"),
])
def test_action_refusal_in_lifecycle_phases(action: str, status: dict[str, object], refused: str | None) -> None:
    found = action_refusal(action, status)
    assert (found is None) if refused is None else (found is not None and refused in found)


def test_revert_is_an_ending_action_that_outranks_promote() -> None:
    assert control_action("revert", {"reason": "dashboards"}, False) == ("revert", "dashboards")
    intent = merge_intent(merge_intent(None, "promote", "ship"), "revert", "dashboards")
    assert intent is not None and intent.action == "revert"


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_container_logs_are_in_the_output_and_only_counted_in_the_status() -> None:
    record = RolloutRecord({"endpoint_name": "ep", "new_deployment": "green"}, "rollout-ep", T0)
    record.phases.append({"phase": "creating", "started_at": T0.isoformat(),
                          "logs": {"inference-server": [f"line {n} " + "x" * 200 for n in range(100)]}})
    status = record.to_dict()
    assert status["phases"][0]["logs"] == {"inference-server": "100 lines, in the output"}
    assert len(json.dumps(status)) <= STATUS_BUDGET_CHARS
    output = record.finish(T0, "failed", "creation failed")
    assert len(output["phases"][0]["logs"]["inference-server"]) == 100


def test_the_status_keeps_the_first_and_the_newest_phases() -> None:
    record = RolloutRecord({"endpoint_name": "ep", "new_deployment": "green"}, "rollout-ep", T0)
    record.phases.extend({"phase": "scaling" if n else "creating", "n": n} for n in range(40))
    status = record.to_dict()
    assert [p["n"] for p in status["phases"]] == [0, *range(40 - MAX_PHASES_KEPT + 1, 40)]
    assert status["phases_dropped"] == 40 - MAX_PHASES_KEPT
    assert len(record.finish(T0, "promoted", "ok")["phases"]) == 40
