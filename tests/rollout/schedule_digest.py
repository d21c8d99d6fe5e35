"""The orchestrator's schedule digest: what ``ORCHESTRATION_VERSION`` must change with.

A redeploy replays every running instance with the new code; the Durable Task Framework checks
that replay against the history by the activities and timers scheduled, so a change to what the
orchestrator schedules must come with a new ``rollout.safety.ORCHESTRATION_VERSION`` (instances
of another version are then taken over by ``orchestrators.redeploy`` instead of being replayed).

This module runs a fixed set of canonical scenarios through the emulator on the virtual clock
(``emulator.simulate.run_simulation``): every shipped ``examples/*.yaml`` plus ``EXTRA_SCENARIOS``
(pause and resume, abort, revert after promotion, notifications to three targets with an alert,
retried activities, a rollback retried until a person resolves it, drift).
Each run's schedule is what its orchestrations scheduled, in order: activities by name with their
input's keys, timers by their delay from the episode that created them, continue-as-new with the
keys it carried, and the end; never timestamps, URLs or ids. The digest is the SHA-256 of all of
them. ``tests/rollout/schedule_digests.json`` maps each version to its digest, and
``tests/rollout/test_schedule_digest.py`` fails when the current version's differs.

    ./dev python -m tests.rollout.schedule_digest            # print the current version and digest
    ./dev python -m tests.rollout.schedule_digest --record   # write them into schedule_digests.json
    ./dev python -m tests.rollout.schedule_digest --show     # each scenario's schedule, for a diff
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from emulator.scenario import Scenario, load_scenario, parse_scenario
from emulator.simulate import run_simulation
from rollout.safety import CARRY_KEY, ORCHESTRATION_VERSION
from tests.rollout.sdk_history import decoded_input

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DIGESTS = Path(__file__).with_name("schedule_digests.json")
NOTIFY_TARGETS = 3

_BASE: dict[str, Any] = {
    "seed": None,
    "endpoint": {"name": "fraud-detection-endpoint",
                 "deployments": {"blue-v1": {"traffic": 100}, "green-v2": {"traffic": 0}}},
    "rollout": {"new_deployment": "green-v2", "traffic_steps": [10, 50, 100], "observation_window": "PT5M"},
    "load": {"requests_per_minute": 1200},
    "health": {"blue-v1": [{"from": "PT0S", "error_rate": 0.001, "latency_p99_ms": 120}],
               "green-v2": [{"from": "PT0S", "error_rate": 0.002, "latency_p99_ms": 140}]},
}
EXTRA_SCENARIOS: dict[str, dict[str, Any]] = {
    "pause-and-resume": {"controls": [{"at": "PT7M", "action": "pause", "reason": "look at the dashboards"},
                                      {"at": "PT9M", "action": "resume", "reason": "looks fine"}]},
    "abort": {"controls": [{"at": "PT7M", "action": "abort", "reason": "wrong model"}]},
    "revert-after-promotion": {"rollout": {"cleanup": "delete", "revert_window": "PT30M"},
                               "controls": [{"at": "PT40M", "action": "revert", "reason": "latency"}]},
    "notify-three-targets-then-alert": {"rollout": {"notify": "RECEIVERS"},
                                        "alerts": [{"at": "PT7M", "payload": "alerts/endpoint-5xx-fired.json"}]},
    "retried-updates": {"faults": [{"operation": "set_traffic", "error": "transient", "times": 2},
                                   {"operation": "metrics", "error": "throttled", "from": "PT6M", "times": 1,
                                    "retry_after": 42}]},
    "rollback-retried-then-resolved": {"faults": [{"operation": "set_traffic", "error": "conflict", "from": "PT6M"}],
                                       "controls": [{"at": "PT7M", "action": "rollback", "reason": "manual"},
                                                    {"at": "PT30M", "action": "resolve", "reason": "ticket 42"}]},
    "drift": {"changes": [{"at": "PT7M", "traffic": {"blue-v1": 80, "green-v2": 20}}]},
}


def scenarios(receiver_urls: list[str]) -> dict[str, Scenario]:
    """The canonical scenarios by name: ``examples/<name>.yaml`` and ``EXTRA_SCENARIOS``
    (notifications go to ``receiver_urls``)."""
    found = {path.stem: load_scenario(path) for path in sorted(EXAMPLES.glob("*.yaml"))}
    for name, changes in EXTRA_SCENARIOS.items():
        rollout = {**_BASE["rollout"], **changes.get("rollout", {})}
        if rollout.get("notify") == "RECEIVERS":
            rollout["notify"] = [{"url": url} for url in receiver_urls]
        found[name] = parse_scenario({**_BASE, **changes, "rollout": rollout}, EXAMPLES)
    return found


class ScheduleRecorder:
    """A task hub observer (``TaskHub.observe``) that keeps what the orchestrations scheduled."""

    def __init__(self) -> None:
        self.entries: list[str] = []
        self._instances: dict[str, int] = {}

    def __call__(self, record: dict[str, Any]) -> None:
        entry = schedule_entry(record)
        if entry is not None:
            number = self._instances.setdefault(str(record.get("instance_id")), len(self._instances))
            self.entries.append(f"{number} {entry}")


def schedule_entry(record: dict[str, Any]) -> str | None:
    """One hub record as a schedule entry, or None for what is not the orchestrator's decision
    (events raised, activity results, timers firing, status updates)."""
    kind = record.get("kind")
    if kind == "activity_scheduled":
        return f"activity {record.get('name')}({','.join(_keys(record.get('input')))})"
    if kind == "timer_created":
        fire_at, at = record.get("fire_at"), record.get("at")
        delay = (fire_at - at).total_seconds() if isinstance(fire_at, datetime) and isinstance(at, datetime) else None
        return f"timer +{delay:g}s" if delay is not None else "timer"
    if kind == "continued_as_new":
        carried = decoded_input(record.get("input"))
        return f"continue_as_new({','.join(_keys(carried.get(CARRY_KEY) if isinstance(carried, dict) else carried))})"
    if kind in ("completed", "failed", "started"):
        return kind
    if kind is not None and "orchestration" in str(kind):     # sub-orchestrations, should one appear
        return f"{kind} {record.get('name')}"
    return None


def _keys(value: Any) -> list[str]:
    """The sorted keys of a dict (or of JSON text holding one); otherwise the value's type."""
    value = decoded_input(value)
    return sorted(str(key) for key in value) if isinstance(value, dict) else [type(value).__name__]


@contextmanager
def _receivers() -> Iterator[list[str]]:
    from tests.notify.receiver import Receiver

    made = [Receiver() for _ in range(NOTIFY_TARGETS)]
    try:
        yield [receiver.url(f"/hook{n}") for n, receiver in enumerate(made)]
    finally:
        for receiver in made:
            receiver.close()


def schedules() -> dict[str, list[str]]:
    """Each canonical scenario's schedule (``ScheduleRecorder`` entries), by scenario name."""
    result = {}
    with _receivers() as urls:
        for name, scenario in scenarios(urls).items():
            recorder = ScheduleRecorder()
            run_simulation(scenario, observer=recorder)
            result[name] = recorder.entries
    return result


def digest_of(by_scenario: dict[str, list[str]]) -> str:
    """The SHA-256 of every scenario's schedule, as ``sha256:<hex>``."""
    text = json.dumps(by_scenario, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def recorded_digests() -> dict[str, str]:
    """``schedule_digests.json``: orchestration version (as a string) -> digest."""
    return dict(json.loads(DIGESTS.read_text())) if DIGESTS.exists() else {}


def record_digest(digest: str) -> None:
    """Write ``digest`` for the current ``ORCHESTRATION_VERSION`` into ``schedule_digests.json``."""
    digests = {**recorded_digests(), str(ORCHESTRATION_VERSION): digest}
    ordered = dict(sorted(digests.items(), key=lambda item: int(item[0])))
    DIGESTS.write_text(json.dumps(ordered, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.rollout.schedule_digest", description=__doc__.split("\n")[0])
    parser.add_argument("--record", action="store_true", help="write the digest for the current version")
    parser.add_argument("--show", action="store_true", help="print each scenario's schedule")
    args = parser.parse_args(argv)
    by_scenario = schedules()
    digest = digest_of(by_scenario)
    if args.show:
        for name, entries in sorted(by_scenario.items()):
            print(f"# {name}")
            print("\n".join(entries))
    recorded = recorded_digests().get(str(ORCHESTRATION_VERSION))
    state = "recorded" if recorded == digest else "NOT recorded" if recorded is None else f"DIFFERS from recorded {recorded}"
    print(f"ORCHESTRATION_VERSION {ORCHESTRATION_VERSION}: {digest} ({state})")
    if args.record:
        record_digest(digest)
        print(f"recorded in {DIGESTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
