"""The rollout's record: what the custom status shows while it runs and the output when it ends.

The orchestrator owns one ``RolloutRecord`` and appends to it; ``to_dict`` is the JSON shape of
both the custom status and the orchestration output. Every traffic change lands in
``history`` with the time, the traffic requested, the traffic read back, and the reason.
Each health check set as ``last_health`` is also kept, compactly, in ``checks`` (the newest
``MAX_CHECKS_KEPT``, fewer when the status would not fit ``STATUS_BUDGET_CHARS`` otherwise):
what the report's timeline draws.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping

from rollout.model import normalize_traffic

OUTCOMES = ("promoted", "rolled_back", "aborted", "failed")
# Durable custom status is limited to 16 KB of UTF-16 JSON (about 8,000 characters): alert notes
# are kept compact and only the newest ones; every traffic change is always kept.
MAX_ALERTS_KEPT = 10
MAX_CHECKS_KEPT = 24           # about 110 characters each
MAX_NOTIFICATIONS_KEPT = 10
STATUS_BUDGET_CHARS = 8000


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
        self.alerts: list[dict[str, Any]] = []
        self.alerts_received = 0
        self.steps_completed: list[int] = []
        self.outcome: str | None = None
        self.reason: str | None = None
        self.ended_at: str | None = None

    @property
    def last_health(self) -> dict[str, Any] | None:
        """The latest health check (or error checking), as the orchestrator set it."""
        return self._last_health

    @last_health.setter
    def last_health(self, health: dict[str, Any] | None) -> None:
        """Set the latest health check and keep it in ``checks`` (``compact_check``), newest last."""
        self._last_health = health
        if health is not None:
            self.checks.append(compact_check(health))
            del self.checks[:-MAX_CHECKS_KEPT]

    def observe(self, traffic: Mapping[str, int]) -> None:
        """Remember the endpoint's traffic as last read (no history entry: nothing changed)."""
        self.traffic = normalize_traffic(traffic)

    def traffic_change(self, at: datetime, kind: str, requested: Mapping[str, int] | None,
                       observed: Mapping[str, int] | None, reason: str) -> None:
        """Record a traffic change (or a failed attempt at one) with what was read back."""
        if observed is not None:
            self.traffic = normalize_traffic(observed)
        self.history.append({
            "at": at.isoformat(), "kind": kind, "reason": reason,
            "requested": None if requested is None else normalize_traffic(requested),
            "traffic": None if observed is None else normalize_traffic(observed),
        })

    def hold_change(self, at: datetime, kind: str, reason: str) -> None:
        """Record a pause or resume (the traffic stays as it is)."""
        self.paused = kind == "pause"
        self.history.append({"at": at.isoformat(), "kind": kind, "reason": reason,
                             "requested": None, "traffic": dict(self.traffic)})

    def note_alert(self, at: datetime, alert: Mapping[str, Any], action: str) -> None:
        """Record an alert delivered to this rollout and what was done about it (the newest are kept)."""
        self.alerts_received += 1
        self.alerts.append({"at": at.isoformat(), "action": action, "rule": alert.get("rule"),
                            "monitor_condition": alert.get("monitor_condition")})
        del self.alerts[:-MAX_ALERTS_KEPT]

    def note_notifications(self, result: Mapping[str, Any]) -> None:
        """Record what ``send_notifications`` reported (URLs already redacted; the newest are kept)."""
        for sent in result.get("sent") or []:
            self.notifications.append({key: sent.get(key) for key in
                                       ("at", "event", "target", "format", "delivered", "attempts", "error")})
        del self.notifications[:-MAX_NOTIFICATIONS_KEPT]

    def finish(self, at: datetime, outcome: str, reason: str) -> dict[str, Any]:
        """End the rollout; returns the final record (the orchestration output)."""
        assert outcome in OUTCOMES, outcome
        self.phase, self.outcome, self.reason, self.ended_at = "done", outcome, reason, at.isoformat()
        return self.to_dict()

    def current_step(self) -> int | None:
        """The new deployment's share at the current step, or None before the first step."""
        if self.plan is None or self.step_index is None:
            return None
        return int(self.plan["steps"][self.step_index])

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of custom status and output; the oldest ``checks`` are left out while it
        would be longer than ``STATUS_BUDGET_CHARS`` as JSON."""
        record = self._fields()
        while record["checks"] and len(json.dumps(record, default=str)) >= STATUS_BUDGET_CHARS:
            del record["checks"][:max(1, len(record["checks"]) // 4)]
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
            "alerts": list(self.alerts),
            "alerts_received": self.alerts_received,
            "checks": list(self.checks),
            "notifications": list(self.notifications),
            "steps_completed": list(self.steps_completed),
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
