"""Pure rules for recovering traffic: orchestration versions, rollback targets, unsafe endings.

**Versioning.** The orchestration input carries ``orchestration_version`` beside the rollout
request (``versioned_input``). A deployment of this app replays only instances started with
its own ``ORCHESTRATION_VERSION`` (an input without the key is version 1, the code before the
rule). Bump ``ORCHESTRATION_VERSION`` whenever a change alters the sequence of activities or
timers the orchestrator schedules, or what it decides from the same history.
``tests/rollout/test_schedule_digest.py`` enforces the first half: it digests what the canonical
scenarios schedule and fails when the digest recorded for this version
(``tests/rollout/schedule_digests.json``) differs; after bumping, record the new one with
``./dev python -m tests.rollout.schedule_digest --record``. Version 4: notifications go one
activity call per target (3 until then; nothing was deployed between them).

**Rollback targets.** ``rollback_from`` gives the new deployment's whole share to the old one,
from traffic as read now (every other deployment keeps its share). A first rollout has no old
deployment (its plan's ``old`` is ``new``, ``rollout.lifecycle_plan.first_rollout_plan``): its
rollback takes the new deployment's share away, back to 0% everywhere as before it; when another
deployment has since been given traffic, the share goes to the largest such (Azure's traffic adds
up to 0 or 100).

**Unsafe endings.** ``ended_unsafe`` says whether a rollout's final record leaves the new
deployment holding traffic after a non-successful end, a first rollout's too (its record's plan
has ``old`` null and ``first_rollout`` true): an alert for that endpoint then starts a
rollback-only run rather than being ignored, whose plan ``rollback_plan`` rebuilds from the record.
"""

from __future__ import annotations

from typing import Any, Mapping

from rollout.model import normalize_traffic
from rollout.plan import Plan

ORCHESTRATION_VERSION = 4
VERSION_KEY = "orchestration_version"
ROLLBACK_KEY = "rollback_only"
CARRY_KEY = "carried"          # what an execution hands the next one when it continues as new


def versioned_input(request: Mapping[str, Any], rollback_only: Mapping[str, Any] | None = None,
                    carried: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The orchestration input: the request, this code's version, and for a rollback-only run
    ``{"plan": {"old", "new", ...}, "reason": str}``; ``carried``: the state an execution hands the
    next when it continues as new (``orchestrators.rollout``)."""
    value = {**request, VERSION_KEY: ORCHESTRATION_VERSION}
    if rollback_only is not None:
        value[ROLLBACK_KEY] = dict(rollback_only)
    if carried is not None:
        value[CARRY_KEY] = dict(carried)
    return value


def carried_of(raw: Any) -> dict[str, Any] | None:
    """The state carried into this execution by ``continue_as_new``, or None for a first execution."""
    carried = raw.get(CARRY_KEY) if isinstance(raw, Mapping) else None
    return dict(carried) if isinstance(carried, Mapping) else None


def split_input(raw: Any) -> tuple[int, dict[str, Any], dict[str, Any] | None]:
    """(version, request, rollback_only or None) of an orchestration input; version 1 when absent."""
    if not isinstance(raw, Mapping):
        return 1, {}, None
    request = {k: v for k, v in raw.items() if k not in (VERSION_KEY, ROLLBACK_KEY, CARRY_KEY)}
    version = raw.get(VERSION_KEY, 1)
    rollback = raw.get(ROLLBACK_KEY)
    return (version if isinstance(version, int) and not isinstance(version, bool) else 0,
            request, dict(rollback) if isinstance(rollback, Mapping) else None)


def can_replay(version: int) -> bool:
    """Whether this code may replay an instance started with ``version``."""
    return version == ORCHESTRATION_VERSION


def rollback_from(traffic: Mapping[str, int], old: str, new: str) -> dict[str, int]:
    """Traffic with the new deployment's share moved to the old one; others unchanged.

    ``old`` equal to ``new`` (a first rollout: no old deployment) takes the new deployment's share
    away: 0% everywhere when nothing else holds traffic, else the share goes to the deployment
    holding the most (ties: the first name), so that traffic still adds up to 100.
    """
    current = normalize_traffic(traffic)
    moved = current.pop(new.lower(), 0)
    if old.lower() == new.lower():
        if not current:
            return {}
        old = max(sorted(current), key=lambda name: current[name])
    current[old.lower()] = current.get(old.lower(), 0) + moved
    return normalize_traffic(current)


def is_first_rollout_plan(plan: Mapping[str, Any]) -> bool:
    """Whether a record's ``plan`` is a first rollout's: ``first_rollout`` true, ``old`` null, ``new`` named."""
    return plan.get("first_rollout") is True and plan.get("old") is None and isinstance(plan.get("new"), str)


def rollback_plan(plan: Mapping[str, Any]) -> Plan:
    """The ``Plan`` a rollback-only run applies, from a record's ``plan`` (``{"old", "new", "steps", "shared"}``).

    A first rollout's (``is_first_rollout_plan``) has no old deployment: the plan's ``old`` is its
    ``new`` and ``shared`` 100, as the first rollout itself ran, so its rollback is to 0% everywhere
    (``rollback_from``). ``KeyError``/``ValueError`` on a plan that names no deployments.
    """
    new, old = str(plan["new"]).lower(), plan.get("old")
    if is_first_rollout_plan(plan):
        old = new
    elif not isinstance(old, str) or not old or not new or old.lower() == new:
        raise ValueError(f"a rollback needs an old and a new deployment, not {dict(plan)}")
    else:
        old = old.lower()
    return Plan(old, new, tuple(int(s) for s in plan.get("steps") or ()), int(plan.get("shared") or 100))


def holds_traffic(traffic: Mapping[str, Any] | None, deployment: str) -> bool:
    """Whether ``deployment`` has a non-zero share of ``traffic``."""
    if not isinstance(traffic, Mapping):
        return False
    return any(str(name).lower() == deployment.lower() and _positive(share) for name, share in traffic.items())


def ended_unsafe(record: Mapping[str, Any] | None) -> bool:
    """Whether a rollout's record ends without success and with the new deployment holding traffic.

    ``record`` is what the status shows (output, or the last custom status of an orchestration
    that failed outside the record). A promoted rollout is safe by definition; one with no plan
    never moved traffic. A first rollout's plan (``old`` null, ``first_rollout`` true) counts: its
    rollback is to 0% everywhere.
    """
    if not isinstance(record, Mapping) or record.get("outcome") == "promoted":
        return False
    plan = record.get("plan")
    if not isinstance(plan, Mapping) or not isinstance(plan.get("new"), str):
        return False
    if not isinstance(plan.get("old"), str) and not is_first_rollout_plan(plan):
        return False
    traffic = record.get("final_traffic") or record.get("traffic")
    return holds_traffic(traffic, plan["new"])


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
