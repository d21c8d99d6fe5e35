"""What happens to the old deployment after promotion, and the revert window before it. Pure.

``cleanup``: ``keep`` (default), ``scale_down`` (to its minimum, 1 instance: a managed deployment
cannot have none) or ``delete``. It is applied after ``bake_time`` plus ``revert_window``
(default ``PT30M``), during which the old deployment stays warm and ``POST
/api/rollouts/{endpoint}/revert`` gives it its traffic back at once.

A deployment that still holds live or mirror traffic is never deleted or scaled down. Before
scaling down or deleting, the old deployment's autoscale setting (if any) is removed: autoscale
owns the instance count once enabled and would fight a manual change, and a setting targeting a
deleted deployment would be left orphaned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

from rollout.durations import format_duration, parse_duration
from rollout.errors import FieldProblem, InvalidRequest
from rollout.model import normalize_traffic

CLEANUP_MODES = ("keep", "scale_down", "delete")
DEFAULT_REVERT_WINDOW = timedelta(minutes=30)
MIN_MANAGED_INSTANCES = 1


@dataclass(frozen=True)
class CleanupSpec:
    """``mode`` (keep, scale_down or delete; default keep) and ``revert_window`` (default PT30M)."""

    mode: str = "keep"
    revert_window: timedelta = DEFAULT_REVERT_WINDOW

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "revert_window": format_duration(self.revert_window)}


def parse_cleanup(mode: Any, revert_window: Any, prefix: str = "") -> CleanupSpec:
    """Validate ``cleanup`` and ``revert_window`` (None: the defaults); ``InvalidRequest`` names each bad field."""
    problems = []
    chosen = "keep"
    if mode is not None:
        if mode not in CLEANUP_MODES:
            problems.append(FieldProblem(prefix + "cleanup", f"must be one of {', '.join(CLEANUP_MODES)}"))
        else:
            chosen = str(mode)
    window = DEFAULT_REVERT_WINDOW
    if revert_window is not None:
        try:
            window = parse_duration(revert_window, timedelta(days=1))
        except ValueError as exc:
            problems.append(FieldProblem(prefix + "revert_window", str(exc)))
    if problems:
        raise InvalidRequest(problems)
    return CleanupSpec(chosen, window)


def revert_deadline(promoted_at: datetime, bake_time: timedelta, spec: CleanupSpec) -> datetime:
    """Until when a revert is accepted: promotion plus ``bake_time`` plus ``revert_window``."""
    return promoted_at + bake_time + spec.revert_window


def revert_refusal(now: datetime, deadline: datetime | None) -> str | None:
    """Why a revert is refused now (None: allowed). Only between promotion and the deadline."""
    if deadline is None:
        return "a revert is possible only after promotion, within the revert window"
    if now >= deadline:
        return f"the revert window ended at {deadline.isoformat()}"
    return None


@dataclass(frozen=True)
class CleanupDecision:
    """What to do to the old deployment: ``none``, ``scale`` (to ``instances``) or ``delete``, and why.

    ``remove_autoscale`` is set for scale and delete.
    """

    action: str
    reason: str
    instances: int | None = None
    remove_autoscale: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "reason": self.reason, "instances": self.instances,
                "remove_autoscale": self.remove_autoscale}


def cleanup_decision(spec: CleanupSpec, old: str, traffic: Mapping[str, int], mirror: Mapping[str, int],
                     old_instances: int | None) -> CleanupDecision:
    """Decide the cleanup of ``old`` from the endpoint as read now.

    ``old_instances`` None means the old deployment no longer exists (nothing to do).
    """
    name = old.lower()
    if spec.mode == "keep":
        return CleanupDecision("none", f"cleanup is keep: {old!r} stays as it is")
    if old_instances is None:
        return CleanupDecision("none", f"{old!r} no longer exists")
    live, mirrored = normalize_traffic(traffic).get(name, 0), normalize_traffic(mirror).get(name, 0)
    if live or mirrored:
        held = f"{live}% live traffic" if live else f"{mirrored}% mirror traffic"
        return CleanupDecision("none", f"{old!r} still holds {held}: it is neither scaled down nor deleted")
    if spec.mode == "delete":
        return CleanupDecision("delete", f"cleanup is delete: deleting {old!r}", remove_autoscale=True)
    if old_instances <= MIN_MANAGED_INSTANCES:
        return CleanupDecision("none", f"{old!r} already runs {old_instances} instance(s)", remove_autoscale=True)
    return CleanupDecision("scale", f"cleanup is scale_down: {old!r} from {old_instances} to {MIN_MANAGED_INSTANCES} "
                                    "instance", MIN_MANAGED_INSTANCES, remove_autoscale=True)
