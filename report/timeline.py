"""The rollout record as series over time: what the report's chart draws (pure, no HTML).

Times are seconds since the rollout started. Built from ``RolloutRecord.to_dict`` (plus the
``request`` the API adds): ``history`` gives traffic and pauses, ``checks`` the health numbers,
``alerts`` the alerts, ``outcome``/``reason``/``ended_at`` the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Mapping


def parse_time(text: Any) -> datetime | None:
    """An ISO 8601 time as aware UTC, or None."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass(frozen=True)
class Check:
    """One health check: when, at which step, the verdict, and each side's error rate and p99."""

    at: float
    step: Any
    verdict: str
    new_rate: float | None
    old_rate: float | None
    new_p99: float | None
    old_p99: float | None
    new_requests: int | None
    old_requests: int | None


@dataclass(frozen=True)
class Mark:
    """A moment on the timeline (a step, an alert, the outcome) and its label."""

    at: float
    kind: str
    label: str


@dataclass
class Timeline:
    """Everything the chart draws."""

    start: datetime
    end: float
    old: str
    new: str
    traffic: list[tuple[float, int, int]] = field(default_factory=list)    # (at, new %, old %) from that time on
    checks: list[Check] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    pauses: list[tuple[float, float]] = field(default_factory=list)
    error_threshold: float | None = None
    p99_threshold: float | None = None
    outcome: str | None = None
    reason: str | None = None


def _rate(numbers: Any) -> float | None:
    if not isinstance(numbers, list) or len(numbers) < 2 or not numbers[0]:
        return None
    return float(numbers[1]) / float(numbers[0])


def _at(numbers: Any, index: int) -> Any:
    return numbers[index] if isinstance(numbers, list) and len(numbers) > index else None


def build_timeline(view: Mapping[str, Any], now: datetime | None = None) -> Timeline:
    """The timeline of a record; a running rollout's ends at ``now`` (default: the latest time it mentions)."""
    plan = view.get("plan") or {}
    request = view.get("request") or {}
    start = parse_time(view.get("started_at")) or datetime.now(UTC)

    def since(text: Any) -> float | None:
        moment = parse_time(text)
        return None if moment is None else (moment - start).total_seconds()

    old, new = str(plan.get("old") or "old"), str(plan.get("new") or view.get("new_deployment") or "new")
    line = Timeline(start=start, end=0.0, old=old, new=new, outcome=view.get("outcome"), reason=view.get("reason"),
                    error_threshold=request.get("error_threshold"), p99_threshold=request.get("latency_p99_threshold_ms"))
    line.traffic.append((0.0, 0, int(plan.get("shared") or 100)))
    paused_at: float | None = None
    for entry in view.get("history") or []:
        at = since(entry.get("at"))
        if at is None:
            continue
        traffic = entry.get("traffic")
        if isinstance(traffic, Mapping) and entry.get("kind") not in ("pause", "resume"):
            line.traffic.append((at, int(traffic.get(new, 0)), int(traffic.get(old, 0))))
        kind = entry.get("kind")
        if kind == "step":
            share = (entry.get("requested") or {}).get(new)
            line.marks.append(Mark(at, "step", f"{share}%" if share is not None else "step"))
        elif kind == "pause":
            paused_at = at
        elif kind == "resume" and paused_at is not None:
            line.pauses.append((paused_at, at))
            paused_at = None
        elif kind in ("rollback", "promote", "drift"):
            line.marks.append(Mark(at, kind, kind))
    for check in view.get("checks") or []:
        at = since(check.get("at"))
        if at is None:
            continue
        n, o = check.get("new"), check.get("old")
        line.checks.append(Check(at, check.get("step"), str(check.get("verdict")), _rate(n), _rate(o),
                                 _at(n, 2), _at(o, 2), _at(n, 0), _at(o, 0)))
    for alert in view.get("alerts") or []:
        at = since(alert.get("at"))
        if at is not None:
            line.marks.append(Mark(at, "alert", f"alert {alert.get('rule')} {alert.get('monitor_condition')}"))
    ended = since(view.get("ended_at"))
    if ended is not None and view.get("outcome"):
        line.marks.append(Mark(ended, "outcome", str(view.get("outcome"))))
    latest = max([0.0, *(t for t, _, _ in line.traffic), *(c.at for c in line.checks), *(m.at for m in line.marks)])
    line.end = ended if ended is not None else max(latest, since((now or start).isoformat()) or 0.0)
    if paused_at is not None:
        line.pauses.append((paused_at, line.end))
    return line
