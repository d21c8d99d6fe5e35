"""The rollout's record: what the custom status shows while it runs and the output when it ends.

The orchestrator owns one ``RolloutRecord`` and appends to it; ``to_dict`` is the JSON shape of
both the custom status and the orchestration output. Traffic changes land in ``history``
with the time, the traffic requested, the traffic read back, and the reason. Each health check
set as ``last_health`` is also kept, compactly, in ``checks`` (the newest ``MAX_CHECKS_KEPT``):
what the report's timeline draws. Every check is also counted in ``step_summaries`` (one per step
and phase: checks, verdict counts, new's and old's requests and errors), so the checks older than
the kept ones still say why each step passed. ``baseline`` is what pre-flight measured of the old
deployment.

Bounded whatever operators and alerts do: the Durable extension fails an orchestration whose
custom status is above 16 KB of UTF-16 JSON (``STATUS_LIMIT_BYTES``). Every list that grows
with what people send keeps its newest entries and counts the rest: alert notes (newest
``MAX_ALERTS_KEPT``, ``alerts_received`` counts all), pause/resume entries in ``history``
(newest ``MAX_HOLDS_KEPT``), and free text is clipped to ``MAX_TEXT_CHARS``. When the status
would still be longer than ``STATUS_BUDGET_CHARS``, the oldest ``checks`` go first (down to
``MIN_CHECKS_SHOWN``), then the oldest ``step_summaries``, then the oldest ``history`` entries
(``history_dropped`` counts every history entry left out). A rollback
that is retried records its failed attempts and last error in ``rollback`` rather than one
history entry per attempt; once it succeeds only the number of failed attempts and when they
began stay.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping

from rollout.model import normalize_traffic

OUTCOMES = ("promoted", "rolled_back", "aborted", "failed", "reverted")
STATUS_LIMIT_BYTES = 16 * 1024     # the Durable extension's custom-status limit, UTF-16 JSON
STATUS_BUDGET_CHARS = 7600         # what to_dict aims for (ASCII JSON chars, 2 UTF-16 bytes each), with margin
MAX_ALERTS_KEPT = 10
MAX_CHECKS_KEPT = 24           # about 110 characters each
MIN_CHECKS_SHOWN = 4           # the newest checks shown in full before summaries and history are left out
MAX_NOTIFICATIONS_KEPT = 10
MAX_HOLDS_KEPT = 6
MAX_TEXT_CHARS = 300
MAX_PHASES_KEPT = 6      # lifecycle phases shown in the status: the first (creating) and the newest
HOLD_KINDS = ("pause", "resume")


def clip(text: str | None, limit: int = MAX_TEXT_CHARS) -> str | None:
    """``text`` cut so that its JSON form (non-ASCII escaped, as the worker sends it) holds at most
    ``limit`` characters, ending in ``...`` when cut; None stays None."""
    if text is None or len(json.dumps(text)) - 2 <= limit:
        return text
    size, end = 0, 0
    while size + len(json.dumps(text[end])) - 2 <= limit - 3:
        size, end = size + len(json.dumps(text[end])) - 2, end + 1
    return text[:end] + "..."


def status_size_bytes(status: Any) -> int:
    """Bytes of ``status`` as UTF-16 JSON, the way the Durable extension measures custom status."""
    return len(json.dumps(status, default=str).encode("utf-16-le"))


class RolloutRecord:
    """Accumulates the state of one rollout; not thread-safe, owned by one orchestrator."""

    def __init__(self, request: Mapping[str, Any], instance_id: str, started_at: datetime) -> None:
        self.request = dict(request)
        self.instance_id = instance_id
        self.started_at = started_at.isoformat()
        self.phase = "preflight"
        self.paused = False
        self.plan: dict[str, Any] | None = None
        self.step_index: int | None = None
        self.traffic: dict[str, int] = {}
        self._last_health: dict[str, Any] | None = None
        self.checks: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.history_dropped = 0
        self.alerts: list[dict[str, Any]] = []
        self.alerts_received = 0
        self.rollback: dict[str, Any] | None = None
        self.baseline: dict[str, Any] | None = None
        self.step_summaries: list[dict[str, Any]] = []
        self.summaries_dropped = 0
        self.steps_completed: list[int] = []
        self.phases: list[dict[str, Any]] = []
        """One entry per lifecycle phase (creating, mirroring, scaling, autoscaling, cleaning_up) with its times and figures."""
        self.revert_until: str | None = None
        self.outcome: str | None = None
        self.reason: str | None = None
        self.ended_at: str | None = None

    def snapshot(self) -> dict[str, Any]:
        """Everything the record holds, as JSON (unlike ``to_dict``, nothing left out): what an
        execution carries into the next when the orchestrator continues as new."""
        snapshot: dict[str, Any] = json.loads(json.dumps(vars(self)))
        return snapshot

    @classmethod
    def restore(cls, snapshot: Mapping[str, Any]) -> RolloutRecord:
        """The record ``snapshot`` was taken of."""
        record = cls(snapshot["request"], snapshot["instance_id"], datetime.fromisoformat(snapshot["started_at"]))
        for key, value in snapshot.items():
            setattr(record, key, json.loads(json.dumps(value)))
        return record

    @property
    def last_health(self) -> dict[str, Any] | None:
        """The latest health check (or error checking), as the orchestrator set it."""
        return self._last_health

    @last_health.setter
    def last_health(self, health: dict[str, Any] | None) -> None:
        """Set the latest health check and keep it in ``checks`` (``compact_check``), newest last."""
        self._last_health = health
        if health is not None:
            check = compact_check(health)
            self.checks.append(check)
            del self.checks[:-MAX_CHECKS_KEPT]
            self._summarize(check)

    def _summarize(self, check: Mapping[str, Any]) -> None:
        """Count ``check`` into its step's summary (``step_summaries``: one per step and phase, in order)."""
        key = (check.get("step"), self.phase)
        if not self.step_summaries or (self.step_summaries[-1]["step"], self.step_summaries[-1]["phase"]) != key:
            self.step_summaries.append({"step": key[0], "phase": key[1], "from": check.get("at"), "checks": 0,
                                        "verdicts": {}, "new": [0, 0], "old": [0, 0]})
        summary = self.step_summaries[-1]
        summary["checks"] += 1
        verdict = str(check.get("verdict"))
        summary["verdicts"][verdict] = summary["verdicts"].get(verdict, 0) + 1
        for side in ("new", "old"):
            numbers = check.get(side)
            if isinstance(numbers, list):
                summary[side] = [summary[side][0] + int(numbers[0] or 0), summary[side][1] + int(numbers[1] or 0)]

    def observe(self, traffic: Mapping[str, int]) -> None:
        """Remember the endpoint's traffic as last read (no history entry: nothing changed)."""
        self.traffic = normalize_traffic(traffic)

    def traffic_change(self, at: datetime, kind: str, requested: Mapping[str, int] | None,
                       observed: Mapping[str, int] | None, reason: str) -> None:
        """Record a traffic change (or a failed attempt at one) with what was read back."""
        if observed is not None:
            self.traffic = normalize_traffic(observed)
        self.history.append({
            "at": at.isoformat(), "kind": kind, "reason": clip(reason),
            "requested": None if requested is None else normalize_traffic(requested),
            "traffic": None if observed is None else normalize_traffic(observed),
        })

    def hold_change(self, at: datetime, kind: str, reason: str) -> None:
        """Record a pause or resume (the traffic stays as it is); only the newest are kept."""
        self.paused = kind == "pause"
        self.history.append({"at": at.isoformat(), "kind": kind, "reason": clip(reason),
                             "requested": None, "traffic": dict(self.traffic)})
        holds = [i for i, entry in enumerate(self.history) if entry["kind"] in HOLD_KINDS]
        for index in reversed(holds[:-MAX_HOLDS_KEPT]):
            del self.history[index]
            self.history_dropped += 1

    def note_alert(self, at: datetime, alert: Mapping[str, Any], action: str, count: int = 1) -> None:
        """Record an alert delivered to this rollout and what was done about it (the newest are kept).

        ``count`` is how many deliveries this note stands for (coalesced duplicates included).
        """
        self.alerts_received += max(int(count), 1)
        self.alerts.append({"at": at.isoformat(), "action": action, "rule": clip(_text(alert.get("rule")), 120),
                            "monitor_condition": clip(_text(alert.get("monitor_condition")), 20)})
        del self.alerts[:-MAX_ALERTS_KEPT]

    def rollback_attempt_failed(self, at: datetime, attempts: int, error: str, next_attempt_at: datetime) -> None:
        """Record that rollback try ``attempts`` failed with ``error`` and when the next one is due."""
        first = self.rollback["failing_since"] if self.rollback else at.isoformat()
        self.rollback = {"attempts": attempts, "failing_since": first, "last_error": clip(error),
                         "next_attempt_at": next_attempt_at.isoformat()}

    def rollback_succeeded(self) -> None:
        """The rollback's traffic is in place: keep how many tries failed before, not the last error."""
        if self.rollback is not None:
            self.rollback = {"attempts": self.rollback["attempts"], "failing_since": self.rollback["failing_since"]}

    def note_notifications(self, result: Mapping[str, Any]) -> None:
        """Record what ``send_notifications`` reported (URLs already redacted; the newest are kept)."""
        for sent in result.get("sent") or []:
            self.notifications.append({key: clip(sent.get(key)) if isinstance(sent.get(key), str) else sent.get(key)
                                       for key in ("at", "event", "target", "format", "delivered", "attempts", "error")})
        del self.notifications[:-MAX_NOTIFICATIONS_KEPT]

    def finish(self, at: datetime, outcome: str, reason: str) -> dict[str, Any]:
        """End the rollout; returns the final record (the orchestration output): ``to_dict`` with the
        phases' container logs in full (the custom status carries only their line counts)."""
        assert outcome in OUTCOMES, outcome
        self.phase, self.outcome, self.reason, self.ended_at = "done", outcome, clip(reason, 1000), at.isoformat()
        return {**self.to_dict(), "phases": [dict(entry) for entry in self.phases]}

    def current_step(self) -> int | None:
        """The new deployment's share at the current step, or None before the first step."""
        if self.plan is None or self.step_index is None:
            return None
        return int(self.plan["steps"][self.step_index])

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of custom status and output, within ``STATUS_BUDGET_CHARS`` as JSON: while
        longer, the oldest ``checks`` are left out down to the newest ``MIN_CHECKS_SHOWN``, then the
        oldest ``step_summaries`` (counted in ``summaries_dropped``), then the oldest ``history``
        entries (counted in ``history_dropped``), then the remaining checks; the record keeps them all."""
        record = self._fields()

        def too_long() -> bool:
            return len(json.dumps(record, default=str)) >= STATUS_BUDGET_CHARS

        while len(record["checks"]) > MIN_CHECKS_SHOWN and too_long():
            del record["checks"][:min(max(1, len(record["checks"]) // 4), len(record["checks"]) - MIN_CHECKS_SHOWN)]
        while record["step_summaries"] and too_long():
            del record["step_summaries"][0]
            record["summaries_dropped"] += 1
        while record["history"] and too_long():
            del record["history"][0]
            record["history_dropped"] += 1
        while record["checks"] and too_long():
            del record["checks"][0]
        return record

    def _fields(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "endpoint_name": self.request.get("endpoint_name"),
            "new_deployment": self.request.get("new_deployment"),
            "phase": self.phase,
            "paused": self.paused,
            "plan": self.plan,
            "step_index": self.step_index,
            "current_step": self.current_step(),
            "traffic": dict(self.traffic),
            "last_health": self.last_health,
            "history": list(self.history),
            "history_dropped": self.history_dropped,
            "alerts": list(self.alerts),
            "alerts_received": self.alerts_received,
            "checks": list(self.checks),
            "step_summaries": [dict(summary, verdicts=dict(summary["verdicts"])) for summary in self.step_summaries],
            "summaries_dropped": self.summaries_dropped,
            "baseline": self.baseline,
            "notifications": list(self.notifications),
            "rollback": self.rollback,
            "steps_completed": list(self.steps_completed),
            "phases": [_without_logs(entry) for entry in _kept_phases(self.phases)],
            "phases_dropped": max(0, len(self.phases) - MAX_PHASES_KEPT),
            "revert_until": self.revert_until,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "outcome": self.outcome,
            "reason": self.reason,
            "final_traffic": dict(self.traffic) if self.outcome else None,
        }


def compact_check(health: Mapping[str, Any]) -> dict[str, Any]:
    """A health check in ``checks``: at, step, verdict, and new's and old's ``[requests, errors,
    p99 ms]`` (None when not measured)."""

    def numbers(metrics: Any) -> list[Any] | None:
        if not isinstance(metrics, Mapping):
            return None
        return [metrics.get("requests"), metrics.get("errors"), metrics.get("latency_p99_ms")]

    return {"at": health.get("at"), "step": health.get("step"), "verdict": health.get("verdict"),
            "new": numbers(health.get("new")), "old": numbers(health.get("old"))}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _without_logs(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A phase entry for the custom status: container logs replaced by their line counts (the output has them)."""
    logs = entry.get("logs")
    if not isinstance(logs, Mapping):
        return dict(entry)
    return {**entry, "logs": {name: f"{len(lines)} lines, in the output" for name, lines in logs.items()}}


def _kept_phases(phases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The phases the status shows: all of them up to ``MAX_PHASES_KEPT``, else the first and the newest."""
    if len(phases) <= MAX_PHASES_KEPT:
        return phases
    return [phases[0], *phases[-(MAX_PHASES_KEPT - 1):]]
