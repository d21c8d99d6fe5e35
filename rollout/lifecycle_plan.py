"""What the lifecycle phases will do, decided from what pre-flight gathered. Pure.

``creation_decision``: whether to create the endpoint and the new deployment, or why the rollout
cannot run (a deployment that exists with another spec is never rebuilt; a missing one needs a
``deployment`` spec; a missing endpoint needs both ``deployment`` and ``endpoint``, so that a
mistyped ``endpoint_name`` never creates a new endpoint).

``is_first_rollout``: whether the new deployment is the endpoint's first (there is no old
deployment to shift from). ``first_rollout_plan``, ``first_rollout_judge``, ``first_rollout_notes``
and ``first_rollout_next`` decide how such a rollout runs: one step to 100%, judged in the
request's ``observation_window`` and ``bake_time`` on the absolute thresholds only, and rolled back
to 0% everywhere (the traffic before it) on a failed verdict, an alert or an abort.

``capacity_decision``: the new deployment's instances before each step and whether the region's
quota covers the largest of them (and, only as a warning, autoscale's ``max_instances``), decided
before any traffic moves or anything is created;
``first_rollout_capacity`` the same for a first rollout (no old deployment to size from).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from rollout.capacity import (
    CapacitySpec,
    QuotaUsage,
    VmSize,
    autoscale_quota_warning,
    check_quota,
    instances_per_step,
    quota_refusal,
)
from rollout.judge import JudgeConfig
from rollout.operation import NOT_FOUND
from rollout.plan import Plan


@dataclass(frozen=True)
class CreationDecision:
    """Create the endpoint and/or the deployment, or ``refusal`` (the rollout ends failed, nothing touched)."""

    create_endpoint: bool = False
    create_deployment: bool = False
    refusal: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"create_endpoint": self.create_endpoint, "create_deployment": self.create_deployment,
                "refusal": self.refusal}


def creation_decision(endpoint_state: str, new_state: str, new: str, has_spec: bool,
                      differences: Sequence[str], has_endpoint_spec: bool = False) -> CreationDecision:
    """Decide creation from the endpoint's and the new deployment's provisioning states (``NotFound`` when missing).

    ``differences`` are the spec's fields that differ from the existing deployment (empty: the
    same spec, or no spec given). ``has_endpoint_spec``: the request carries ``endpoint``, which a
    missing endpoint needs (without it the rollout is refused: the name may be a typo).
    """
    if endpoint_state == NOT_FOUND:
        if not (has_spec and has_endpoint_spec):
            missing = " and ".join(f"'{f}'" for f, given in (("endpoint", has_endpoint_spec), ("deployment", has_spec))
                                   if not given)
            return CreationDecision(refusal=f"the endpoint does not exist; give {missing} to create it with the new "
                                            "deployment (or check endpoint_name)")
        return CreationDecision(create_endpoint=True, create_deployment=True)
    if endpoint_state != "Succeeded":
        return CreationDecision(refusal=f"the endpoint is {endpoint_state}, not Succeeded")
    if new_state == NOT_FOUND:
        if not has_spec:
            return CreationDecision(refusal=f"new_deployment {new!r} does not exist; give 'deployment' to create it")
        return CreationDecision(create_deployment=True)
    if has_spec and differences:
        return CreationDecision(refusal=f"new_deployment {new!r} exists with a different spec ({'; '.join(differences)}); "
                                        "it is never rebuilt in place: use a new deployment name")
    if has_spec and new_state == "Failed":
        return CreationDecision(refusal=f"new_deployment {new!r} exists but is Failed; delete it or use a new name")
    return CreationDecision()


def is_first_rollout(endpoint_state: str, traffic: Mapping[str, int], deployments: Sequence[str], new: str,
                     old: str | None) -> bool:
    """Whether this rollout is the endpoint's first: the endpoint does not exist yet (``NotFound``), or it
    exists with no live traffic and no deployment but ``new`` (what an interrupted first rollout leaves
    behind). A request naming ``old`` is never a first rollout. Names compare case-insensitively.
    """
    if old:
        return False
    if endpoint_state == NOT_FOUND:
        return True
    return not any(traffic.values()) and {d.lower() for d in deployments} <= {new.lower()}


@dataclass(frozen=True)
class CapacityDecision:
    """Instances of the new deployment before each step, and the quota verdict (``refusal`` None: it fits)."""

    instances: tuple[int, ...]
    needed_cores: int
    free_cores: int | None
    refusal: str | None = None
    note: str | None = None
    """How the instances were sized when not by the formula (a first rollout); in ``to_dict`` only when set."""
    autoscale_warning: str | None = None
    """The quota cannot cover autoscale's ``max_instances`` (``rollout.capacity.autoscale_quota_warning``): a
    warning, not a refusal; in ``to_dict`` only when set."""

    def to_dict(self) -> dict[str, Any]:
        sized = {"note": self.note} if self.note else {}
        warned = {"autoscale_warning": self.autoscale_warning} if self.autoscale_warning else {}
        return {"instances": list(self.instances), "needed_cores": self.needed_cores, "free_cores": self.free_cores,
                "refusal": self.refusal, **sized, **warned}


def capacity_decision(spec: CapacitySpec | None, steps: Sequence[int], old_instances: int, old_share: int,
                      instance_count: int, held_instances: int, size: VmSize | None,
                      usages: Sequence[QuotaUsage], autoscale_ceiling: int | None = None) -> CapacityDecision:
    """Plan the new deployment's instances per step and check the quota for the largest.

    Without ``capacity`` every step keeps ``instance_count``. ``held_instances`` are the new
    deployment's instances now (0 when it is still to be created). ``size`` None (the VM size is
    not offered in the region) refuses: Azure would refuse the deployment. ``autoscale_ceiling``:
    autoscale's ``max_instances`` (None: no autoscale); when the plan fits but the quota cannot
    cover that ceiling, ``autoscale_warning`` says so (``rollout.capacity.autoscale_quota_warning``).
    """
    planned = tuple(instance_count for _ in steps) if spec is None else instances_per_step(
        old_instances, old_share, steps, instance_count, spec)
    peak = max(planned, default=instance_count)
    if size is None:
        return CapacityDecision(planned, 0, None, "the instance type is not offered for managed online endpoints in "
                                                  "the workspace's region")
    check = check_quota(size, peak, held_instances, usages)
    if not check.ok:
        return CapacityDecision(planned, check.needed, check.free, quota_refusal(size, peak, check))
    return CapacityDecision(planned, check.needed, check.free,
                            autoscale_warning=_autoscale_warning(size, autoscale_ceiling, peak, held_instances, usages))


def _autoscale_warning(size: VmSize, ceiling: int | None, peak: int, held: int,
                       usages: Sequence[QuotaUsage]) -> str | None:
    return None if ceiling is None else autoscale_quota_warning(size, ceiling, peak, held, usages)


# --- the first rollout (no old deployment) --------------------------------------------------------

FIRST_ROLLOUT_STEPS: tuple[int, ...] = (100,)
"""A first rollout's one step: the new deployment gets the whole endpoint at once (there is nothing to shift from)."""


def first_rollout_plan(new: str) -> Plan:
    """The plan a first rollout applies: one step to 100%, nothing kept for others.

    There is no old deployment, so ``old`` is ``new`` itself: ``rollout.traffic.step_traffic(plan, s)``
    is ``{new: s}`` and ``rollback_traffic(plan)`` is ``{}``, 0% everywhere, which is the traffic
    before the rollout (``is_first_rollout`` requires that nothing was served) and what Azure allows
    ("total traffic has to either be 0 or sum up to 100").
    """
    name = new.lower()
    return Plan(old=name, new=name, steps=FIRST_ROLLOUT_STEPS, shared=100)


def first_rollout_record_plan(new: str) -> dict[str, Any]:
    """The ``plan`` a first rollout's record shows: ``old`` None (no old deployment), one step to 100%."""
    return {"old": None, "new": new.lower(), "steps": list(FIRST_ROLLOUT_STEPS), "shared": 100, "first_rollout": True}


def first_rollout_judge(config: JudgeConfig) -> JudgeConfig:
    """The judge of a first rollout: the absolute thresholds only (``error_threshold``,
    ``latency_p99_threshold_ms``); ``max_error_rate_increase`` and ``max_latency_ratio`` compare with an old
    deployment there is not, and are off."""
    return replace(config, max_error_rate_increase=None, max_latency_ratio=None, relative_only=False)


def first_rollout_baseline(config: JudgeConfig, asked_relative: bool) -> dict[str, Any]:
    """The record's ``baseline`` on a first rollout: nothing measured, and what the new deployment is judged on.

    ``config`` is ``first_rollout_judge``'s; ``asked_relative``: the request gave ``max_error_rate_increase``
    or ``max_latency_ratio`` (the record says they were not applied)."""
    tests = {"errors": f"error rate above error_threshold {config.error_threshold}",
             "latency": f"p99 above latency_p99_threshold_ms {config.latency_p99_threshold_ms}"}
    judged = [tests[t] for t in config.tests() if t in tests]
    text = "on the absolute thresholds only: " + ("; ".join(judged) if judged else "none is on (no verdict can fail)")
    if asked_relative:
        text += " (max_error_rate_increase and max_latency_ratio not applied: no old deployment to compare with)"
    return {"verdict": "none", "reason": "no old deployment: the endpoint's first rollout", "judged": text}


def first_rollout_notes(mirror: bool, traffic_steps: Sequence[int] | None, cleanup: str) -> tuple[str, ...]:
    """What a first rollout's request asked for that cannot apply without an old deployment, for the reason."""
    notes = []
    if mirror:
        notes.append("mirror not applied: the endpoint had no live traffic to copy")
    if traffic_steps and tuple(traffic_steps) != FIRST_ROLLOUT_STEPS:
        notes.append(f"traffic_steps {list(traffic_steps)} not applied: no old deployment to shift from, the new "
                     "deployment got 100% at once and was judged in its window")
    if cleanup != "keep":
        notes.append(f"cleanup {cleanup} not applied: no old deployment to clean up (nor a revert window)")
    return tuple(notes)


@dataclass(frozen=True)
class FirstRolloutStep:
    """What a first rollout does next: ``observe`` (its window), ``bake``, ``promote`` (autoscale, end
    ``promoted``) or ``roll_back`` (to 0% everywhere, ending with ``outcome``); ``reason`` for the record."""

    action: str
    reason: str = ""
    outcome: str | None = None


ROLLBACK_OUTCOMES = {"rollback": "rolled_back", "revert": "rolled_back", "abort": "aborted", "failed": "failed"}


def first_rollout_next(stage: str, ended: str, reason: str, new: str, bake: bool) -> FirstRolloutStep:
    """Decide a first rollout's next move after ``stage`` ended with ``ended``.

    ``stage``: ``shift`` (the 100% write: ``passed`` when written and read back, ``failed`` when
    not), ``window`` (the ``observation_window``) or ``bake`` (``bake_time``); ``ended``: ``passed``,
    ``failed`` or a control action (``rollback``, what an alert sends, ``revert``, ``abort``,
    ``promote``). A failed verdict, an alert, a revert or an abort rolls back to 0% everywhere; the
    reason keeps the judge's (or the sender's) words and says the deployment is kept for
    inspection. ``promote`` skips what is left of the windows. ``bake``: the request has a
    ``bake_time``. Raises ``ValueError`` on a stage or action it does not know.
    """
    if stage not in ("shift", "window", "bake"):
        raise ValueError(f"unknown stage {stage!r}")
    if ended == "passed":
        if stage == "shift":
            return FirstRolloutStep("observe")
        if stage == "window" and bake:
            return FirstRolloutStep("bake")
        held = "in its window and its bake" if stage == "bake" else "in its window"
        return FirstRolloutStep("promote", f"the endpoint's first deployment: {new} serving 100%, healthy {held}")
    if ended == "promote":
        return FirstRolloutStep("promote", f"the endpoint's first deployment: {new} serving 100%, promoted on "
                                           f"request before its {stage if stage != 'shift' else 'window'} ended "
                                           f"({reason})")
    if ended not in ROLLBACK_OUTCOMES:
        raise ValueError(f"unknown action {ended!r}")
    what = f"giving {new} 100% failed: {reason}" if ended == "failed" else reason
    return FirstRolloutStep("roll_back", f"the endpoint's first deployment {new}: {what}; traffic returned to 0% "
                                         f"everywhere, as before the rollout; {new} kept for inspection (its logs, "
                                         "metrics), delete it or roll out a fix", ROLLBACK_OUTCOMES[ended])


def first_rollout_capacity(spec: CapacitySpec | None, instance_count: int, held_instances: int, size: VmSize | None,
                           usages: Sequence[QuotaUsage], autoscale: bool,
                           autoscale_ceiling: int | None = None) -> CapacityDecision:
    """The instances of a first rollout's one step and the quota verdict, before anything is created.

    There is no old deployment to size from, so ``capacity``'s formula does not apply: the new
    deployment serves at the instances it has (``held_instances``, when it exists already) or
    is created with (``instance_count``), and the quota is checked for that. ``note`` says so, and
    that ``autoscale`` (when given) takes over after promotion. ``size`` None refuses, as in
    ``capacity_decision``; ``autoscale_ceiling`` warns as there.
    """
    serving = held_instances or instance_count
    sized = f"no old deployment to size from: the new deployment serves 100% at {serving} instance(s)"
    sized += (" (its instance_count; capacity's formula, ceil(old instances x step / old's share x headroom), "
              "needs an old deployment and is not applied)" if spec is not None else " (its instance_count)")
    sized += "; autoscale takes over after promotion" if autoscale else "; no autoscale: it stays at that count"
    if size is None:
        return CapacityDecision((serving,), 0, None, "the instance type is not offered for managed online endpoints "
                                                     "in the workspace's region", sized)
    check = check_quota(size, serving, held_instances, usages)
    if not check.ok:
        return CapacityDecision((serving,), check.needed, check.free,
                                quota_refusal(size, serving, check, "deployment.instance_count"), sized)
    return CapacityDecision((serving,), check.needed, check.free, None, sized,
                            _autoscale_warning(size, autoscale_ceiling, serving, held_instances, usages))
