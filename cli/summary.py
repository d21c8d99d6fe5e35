"""What a rollout record says, in words: the lines ``status`` prints and ``watch`` shows.

Pure functions of the record the API returns (``GET /api/rollouts/{endpoint}``) and the time now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Mapping

from rollout.durations import parse_duration
from rollout.plan import MAX_DURATION


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def describe_traffic(traffic: Mapping[str, Any] | None) -> str:
    """``blue-v1 90% / green-v2 10%`` (largest share first); ``none`` when empty."""
    if not traffic:
        return "none"
    return " / ".join(f"{name} {share}%" for name, share in sorted(traffic.items(), key=lambda kv: (-int(kv[1]), kv[0])))


def step_position(view: Mapping[str, Any]) -> tuple[int, int]:
    """(steps done or under way, steps in the plan): ``(2, 3)`` while the second of three runs."""
    plan = view.get("plan") or {}
    total = len(plan.get("steps") or [])
    index = view.get("step_index")
    if view.get("outcome") == "promoted":
        return total, total
    return (0 if index is None else int(index) + 1), total


def next_step_at(view: Mapping[str, Any]) -> datetime | None:
    """When the current step's observation window ends (the last step change or resume plus the
    request's ``observation_window``), or None when not observing or paused. An inconclusive
    window is extended by the rollout, so this is the earliest the next step can come."""
    if view.get("phase") != "observing" or view.get("paused"):
        return None
    request = view.get("request") or {}
    try:
        window = parse_duration(request.get("observation_window") or "PT5M", MAX_DURATION)
    except ValueError:
        return None
    starts = [_when(e.get("at")) for e in view.get("history") or [] if e.get("kind") in ("step", "resume")]
    started = max((s for s in starts if s is not None), default=None)
    return None if started is None else started + window


def _span(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else (f"{minutes}m{secs:02d}s" if minutes else f"{secs}s")


def _rate(metrics: Mapping[str, Any] | None) -> float | None:
    if not metrics or not metrics.get("requests"):
        return None
    return float(metrics["errors"]) / float(metrics["requests"])


def check_lines(view: Mapping[str, Any]) -> list[str]:
    """The last health check: verdict and reason, then new's and old's numbers against the thresholds."""
    health = view.get("last_health")
    if not health:
        return ["no health check yet"]
    request = view.get("request") or {}
    plan = view.get("plan") or {}
    at = _when(health.get("at"))
    lines = [f"{health.get('verdict')} at {at.strftime('%H:%M:%S') if at else '?'}: {health.get('reason')}"]
    threshold, p99_limit = request.get("error_threshold"), request.get("latency_p99_threshold_ms")
    for role in ("new", "old"):
        metrics = health.get(role)
        if not metrics:
            continue
        rate = _rate(metrics)
        rate_text = "-" if rate is None else f"{rate:.4f}"
        p99 = metrics.get("latency_p99_ms")
        p99_text = "-" if p99 is None else f"{p99:.0f} ms"
        if role == "new":
            rate_text += f" (max {threshold})" if threshold is not None else ""
            p99_text += f" (max {p99_limit:.0f} ms)" if p99_limit is not None and p99 is not None else ""
        name = plan.get(role) or role
        lines.append(f"{name}: {metrics.get('requests')} requests, {metrics.get('errors')} errors, "
                     f"error rate {rate_text}, p99 {p99_text}")
    return lines


def headline(view: Mapping[str, Any]) -> str:
    """``fraud-detection-endpoint: green-v2 replacing blue-v1, observing step 2/3 (50%)``."""
    plan = view.get("plan") or {}
    new = view.get("new_deployment") or plan.get("new") or "?"
    who = f"{view.get('endpoint_name')}: {new}" + (f" replacing {plan['old']}" if plan.get("old") else "")
    if view.get("outcome"):
        return f"{who}, {view['outcome']}"
    done, total = step_position(view)
    step = view.get("current_step")
    where = f"{view.get('phase')}" + (f" step {done}/{total} ({step}%)" if total and step is not None else "")
    return f"{who}, {where}" + (" (paused)" if view.get("paused") else "")


def final_line(view: Mapping[str, Any]) -> str:
    """``promoted: green-v2 healthy at every step; traffic green-v2 100%``."""
    traffic = view.get("final_traffic") or view.get("traffic")
    return f"{view.get('outcome') or 'failed'}: {view.get('reason')}; traffic {describe_traffic(traffic)}"


def summary_lines(view: Mapping[str, Any], now: datetime | None = None) -> list[str]:
    """The human summary ``status`` prints."""
    now = now or datetime.now(UTC)
    lines = [headline(view), f"  traffic:    {describe_traffic(view.get('traffic'))}"]
    checks = check_lines(view)
    lines.append(f"  last check: {checks[0]}")
    lines.extend(f"              {line}" for line in checks[1:])
    due = next_step_at(view)
    if due is not None:
        lines.append(f"  next step:  in {_span(due - now)} at the earliest ({due.strftime('%H:%M:%S')} UTC)")
    alerts = view.get("alerts") or []
    last = f"; last: {alerts[-1].get('rule')} {alerts[-1].get('monitor_condition')} -> {alerts[-1].get('action')}" \
        if alerts else ""
    lines.append(f"  alerts:     {view.get('alerts_received', 0)} received{last}")
    if view.get("outcome"):
        lines.append(f"  outcome:    {final_line(view)}")
    return lines
