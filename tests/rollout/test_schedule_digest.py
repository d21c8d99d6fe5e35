"""``ORCHESTRATION_VERSION`` changes whenever what the orchestrator schedules changes.

``tests.rollout.schedule_digest`` runs the canonical scenarios through the emulator on the virtual
clock and digests what their orchestrations scheduled; ``schedule_digests.json`` holds the digest
of each version. A change that alters the schedule without a new version fails here, naming the
digest to record once the version is bumped (``./dev python -m tests.rollout.schedule_digest
--record``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulator.scenario import load_scenario
from emulator.simulate import run_simulation
from rollout.safety import ORCHESTRATION_VERSION
from tests.rollout.schedule_digest import (
    EXAMPLES,
    ScheduleRecorder,
    digest_of,
    recorded_digests,
    schedule_entry,
    schedules,
)

AT = datetime(2026, 1, 1, tzinfo=UTC)
COMMAND = "./dev python -m tests.rollout.schedule_digest --record"


def test_the_schedule_is_the_one_recorded_for_this_orchestration_version() -> None:
    by_scenario = schedules()
    assert {"healthy-promotion", "alert-rollback", "pause-and-resume", "notify-three-targets-then-alert"} <= set(
        by_scenario) and all(entries for entries in by_scenario.values())
    digest = digest_of(by_scenario)
    version = str(ORCHESTRATION_VERSION)
    recorded = recorded_digests()
    if version not in recorded:
        pytest.fail(f"no schedule digest is recorded for ORCHESTRATION_VERSION {version}: add "
                    f'"{version}": "{digest}" to tests/rollout/schedule_digests.json ({COMMAND})')
    if recorded[version] != digest:
        pytest.fail("the orchestrator's schedule changed: bump ORCHESTRATION_VERSION in rollout/safety.py and "
                    f"record the new digest: {digest} ({COMMAND}; --show prints each scenario's schedule to diff)")


@pytest.mark.parametrize("record, entry", [
    pytest.param({"kind": "activity_scheduled", "name": "set_traffic", "input": {"traffic": {"a": 1}, "endpoint_name": "e"}},
                 "activity set_traffic(endpoint_name,traffic)", id="activity-by-name-and-input-keys"),
    pytest.param({"kind": "activity_scheduled", "name": "preflight", "input": '{"workspace": null}'},
                 "activity preflight(workspace)", id="activity-input-as-json-text"),
    pytest.param({"kind": "timer_created", "at": AT, "fire_at": AT + timedelta(minutes=1)}, "timer +60s",
                 id="timer-by-delay-not-time"),
    pytest.param({"kind": "continued_as_new", "input": {"endpoint_name": "e", "carried": {"plan": {}, "record": {}}}},
                 "continue_as_new(plan,record)", id="continue-as-new-by-carried-keys"),
    pytest.param({"kind": "completed", "output": {"outcome": "promoted"}}, "completed", id="the-end"),
    pytest.param({"kind": "event_raised", "name": "rollback"}, None, id="events-are-input-not-schedule"),
    pytest.param({"kind": "activity_completed", "name": "set_traffic", "result": {}}, None, id="results-are-not-schedule"),
    pytest.param({"kind": "timer_fired", "fire_at": AT}, None, id="a-timer-firing-is-not-schedule"),
    pytest.param({"kind": "custom_status", "custom_status": {}}, None, id="status-is-not-schedule"),
])
def test_a_hub_record_as_a_schedule_entry(record: dict[str, Any], entry: str | None) -> None:
    assert schedule_entry(record) == entry


def test_a_different_timer_changes_the_digest_and_the_same_run_does_not() -> None:
    """The digest sees a timer's delay: the same example with checks every 2 minutes instead of 1."""
    scenario = load_scenario(EXAMPLES / "healthy-promotion.yaml")
    slower = replace(scenario, rollout=replace(scenario.rollout, check_interval=timedelta(minutes=2)))

    def digest(s: Any) -> str:
        recorder = ScheduleRecorder()
        run_simulation(s, observer=recorder)
        return digest_of({"x": recorder.entries})

    assert digest(scenario) == digest(scenario) != digest(slower)
