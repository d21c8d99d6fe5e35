"""Mirror traffic limits, instances the new deployment needs per step, and the quota check. Pure.

- ``MirrorSpec`` ``{percent, window}``: Azure mirrors to **one** deployment, **at most 50%**, and
  never to a deployment that has live traffic (``mirror_plan`` refuses what Azure would).
- ``CapacitySpec`` ``{max_instances, headroom}``: before each step the new deployment gets
  ``ceil(old instances x step / old's share x headroom)`` instances, clamped to
  ``[instance_count, max_instances]`` (``instances_per_step``).
- ``check_quota``: a managed deployment holds ``ceil(1.2 x instances) x cores`` of its VM family's
  quota (Azure reserves 20% for upgrades), and old and new both hold theirs until the old one is
  deleted. A plan the quota cannot cover is refused before any traffic moves, with the cores
  needed and free. ``autoscale_quota_warning``: autoscale's ``max_instances`` above the plan is
  checked too, and only warned about (Azure autoscale fails soft: a scale-out the quota cannot
  cover fails and the deployment keeps serving at what it has).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Mapping, Sequence

from rollout.deployment_spec import MAX_INSTANCES_PER_DEPLOYMENT
from rollout.durations import format_duration, parse_duration
from rollout.errors import FieldProblem, InvalidRequest
from rollout.model import normalize_traffic

MAX_MIRROR_PERCENT = 50
UPGRADE_RESERVE = 1.2
"""Azure ML reserves 20% extra quota per managed deployment for upgrades."""
DEFAULT_HEADROOM = 1.2
DEFAULT_MIRROR_WINDOW = timedelta(minutes=10)


class CapacityRejected(Exception):
    """The plan cannot run as asked (quota, mirror limits); the message says why with figures."""


# --- mirror ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MirrorSpec:
    """Copy ``percent`` (1-50) of live traffic to the new deployment for ``window`` (default PT10M) before any live step."""

    percent: int
    window: timedelta = DEFAULT_MIRROR_WINDOW

    def to_dict(self) -> dict[str, Any]:
        return {"percent": self.percent, "window": format_duration(self.window)}


def parse_mirror(data: Any, prefix: str = "mirror.") -> MirrorSpec:
    """Validate ``{percent, window}``; ``InvalidRequest`` names each bad field."""
    if not isinstance(data, Mapping):
        raise InvalidRequest([FieldProblem(prefix.rstrip("."), "must be an object with percent and window")])
    problems = [FieldProblem(prefix + str(k), "is not a known field") for k in data if k not in ("percent", "window")]
    percent = data.get("percent")
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= MAX_MIRROR_PERCENT:
        problems.append(FieldProblem(prefix + "percent", f"must be an integer from 1 to {MAX_MIRROR_PERCENT} "
                                                         "(Azure mirrors at most 50% of traffic)"))
    window = DEFAULT_MIRROR_WINDOW
    if data.get("window") is not None:
        try:
            window = parse_duration(data["window"], timedelta(days=1))
            if not timedelta(minutes=1) <= window <= timedelta(days=1):
                raise ValueError("must be between PT1M and P1D")
        except ValueError as exc:
            problems.append(FieldProblem(prefix + "window", str(exc)))
    if problems:
        raise InvalidRequest(problems)
    assert isinstance(percent, int)
    return MirrorSpec(percent, window)


def mirror_plan(traffic: Mapping[str, int], mirror_traffic: Mapping[str, int], new: str, percent: int) -> dict[str, int]:
    """The endpoint's mirror traffic while mirroring ``percent`` to ``new``; ``CapacityRejected`` when Azure would refuse.

    Refused: ``new`` holds live traffic; the endpoint already mirrors to another deployment
    (Azure mirrors to one only); ``percent`` outside 1-50; nothing is served live to copy.
    """
    live, mirrored, target = normalize_traffic(traffic), normalize_traffic(mirror_traffic), new.lower()
    if not 1 <= percent <= MAX_MIRROR_PERCENT:
        raise CapacityRejected(f"mirror: {percent}% is outside 1-{MAX_MIRROR_PERCENT}%")
    if live.get(target):
        raise CapacityRejected(f"mirror: {new!r} has {live[target]}% live traffic; Azure mirrors only to a deployment "
                               "with none")
    others = sorted(name for name in mirrored if name != target)
    if others:
        raise CapacityRejected(f"mirror: the endpoint already mirrors to {', '.join(others)}; Azure mirrors to one "
                               "deployment only")
    if not sum(live.values()):
        raise CapacityRejected("mirror: the endpoint serves no live traffic to copy")
    return {target: percent}


# --- instances per step ----------------------------------------------------------------------


@dataclass(frozen=True)
class CapacitySpec:
    """Pre-scaling of the new deployment: ``headroom`` (default 1.2) over the old's instances per share,
    at most ``max_instances`` (default 50, Azure's limit per deployment)."""

    max_instances: int = MAX_INSTANCES_PER_DEPLOYMENT
    headroom: float = DEFAULT_HEADROOM

    def to_dict(self) -> dict[str, Any]:
        return {"max_instances": self.max_instances, "headroom": self.headroom}


def parse_capacity(data: Any, prefix: str = "capacity.") -> CapacitySpec:
    """Validate ``{max_instances, headroom}``; ``InvalidRequest`` names each bad field."""
    if not isinstance(data, Mapping):
        raise InvalidRequest([FieldProblem(prefix.rstrip("."), "must be an object")])
    problems = [FieldProblem(prefix + str(k), "is not a known field") for k in data if k not in ("max_instances", "headroom")]
    spec = CapacitySpec()
    top = data.get("max_instances", spec.max_instances)
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_INSTANCES_PER_DEPLOYMENT:
        problems.append(FieldProblem(prefix + "max_instances",
                                     f"must be an integer from 1 to {MAX_INSTANCES_PER_DEPLOYMENT}"))
    headroom = data.get("headroom", spec.headroom)
    if isinstance(headroom, bool) or not isinstance(headroom, (int, float)) or not 1.0 <= headroom <= 10.0:
        problems.append(FieldProblem(prefix + "headroom", "must be a number from 1 to 10"))
    if problems:
        raise InvalidRequest(problems)
    return CapacitySpec(int(top), float(headroom))


def required_instances(old_instances: int, old_share: int, step: int, instance_count: int, spec: CapacitySpec) -> int:
    """Instances the new deployment needs to carry ``step`` percent.

    ``ceil(old_instances x step / old_share x headroom)``, clamped to ``[instance_count, max_instances]``
    (``instance_count`` wins over ``max_instances`` should they cross). ``old_share`` is the
    percentage the old deployment's instances carried when the rollout started.
    """
    exact = old_instances * step / old_share * spec.headroom if old_share > 0 else 0.0
    needed = math.ceil(round(exact, 9))  # round: 3 x 40 / 100 x 1.25 is 1.5000000000000002 in floats
    return max(instance_count, min(needed, spec.max_instances))


def instances_per_step(old_instances: int, old_share: int, steps: Sequence[int], instance_count: int,
                       spec: CapacitySpec) -> tuple[int, ...]:
    """``required_instances`` for every step; never fewer than the step before (no scale-in mid-rollout)."""
    planned: list[int] = []
    for step in steps:
        need = required_instances(old_instances, old_share, step, instance_count, spec)
        planned.append(max(need, planned[-1]) if planned else need)
    return tuple(planned)


# --- quota -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VmSize:
    """A VM size as Azure ML lists it: name, family (``standardDSv2Family``) and vCPUs."""

    name: str
    family: str
    vcpus: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "vcpus": self.vcpus}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VmSize:
        return cls(str(data["name"]), str(data["family"]), int(data["vcpus"]))


@dataclass(frozen=True)
class QuotaUsage:
    """One quota line of the region: its name, cores in use and the limit (negative: no limit)."""

    name: str
    current: int
    limit: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "current": self.current, "limit": self.limit}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuotaUsage:
        return cls(str(data["name"]), int(data["current"]), int(data["limit"]))


TOTAL_DEDICATED = "Total Cluster Dedicated Regional vCPUs"


def family_key(text: str) -> str:
    """A VM family's comparable key: ``standardDSv2Family`` and "Standard DSv2 Family Cluster
    Dedicated vCPUs" both give ``dsv2``."""
    squashed = re.sub(r"[\s_]", "", text).lower()
    match = re.match(r"^standard(?P<key>.*?)family", squashed)
    return match["key"] if match else squashed


def quota_cores(instances: int, vcpus: int) -> int:
    """Cores a managed deployment of ``instances`` holds: ``ceil(1.2 x instances) x vcpus``."""
    return math.ceil(round(UPGRADE_RESERVE * instances, 9)) * vcpus if instances > 0 else 0


@dataclass(frozen=True)
class QuotaCheck:
    """The outcome of ``check_quota``: cores the plan still needs, cores free on the tightest line."""

    needed: int
    free: int | None
    line: str | None

    @property
    def ok(self) -> bool:
        return self.free is None or self.needed <= self.free

    def to_dict(self) -> dict[str, Any]:
        return {"needed_cores": self.needed, "free_cores": self.free, "quota": self.line, "ok": self.ok}


def check_quota(size: VmSize, peak_instances: int, held_instances: int, usages: Sequence[QuotaUsage]) -> QuotaCheck:
    """Whether the region's quota covers growing the new deployment from ``held_instances`` to ``peak_instances``.

    The cores already held (``held_instances``, 0 when the deployment does not exist yet) are in
    Azure's current usage; the old deployment's are too, and it keeps them. Checked against the
    VM family's line and the regional dedicated total; a line with a negative limit has none, and
    with no line to check (Azure listed neither) the check passes and Azure has the last word.
    """
    needed = max(0, quota_cores(peak_instances, size.vcpus) - quota_cores(held_instances, size.vcpus))
    family = family_key(size.family)
    lines = [u for u in usages if u.limit >= 0 and (family_key(u.name) == family or u.name == TOTAL_DEDICATED)]
    if not lines:
        return QuotaCheck(needed, None, None)
    tightest = min(lines, key=lambda u: u.limit - u.current)
    return QuotaCheck(needed, max(0, tightest.limit - tightest.current), tightest.name)


def quota_refusal(size: VmSize, peak_instances: int, check: QuotaCheck, lower: str = "capacity.max_instances") -> str:
    """The reason a plan is refused for quota, with the figures a person needs to ask for more; ``lower``
    names the request field that sets the peak (``deployment.instance_count`` on a first rollout)."""
    return (f"not enough quota for {peak_instances} x {size.name}: needs {check.needed} more cores "
            f"(ceil(1.2 x {peak_instances}) x {size.vcpus} vCPUs, Azure's 20% upgrade reserve included), "
            f"{check.free} free in '{check.line}'. Request more quota for the family or lower {lower}")


def autoscale_quota_warning(size: VmSize, ceiling: int, planned_peak: int, held_instances: int,
                            usages: Sequence[QuotaUsage]) -> str | None:
    """A warning when the quota cannot cover autoscale scaling the new deployment to ``ceiling``
    (its ``max_instances``) once promoted; None when it can, or when ``ceiling`` is not above the
    plan's peak (``planned_peak``, which ``check_quota`` covers already).

    A warning, not a refusal: the rollout itself fits, and Azure autoscale fails soft (a scale-out
    the quota cannot cover fails in the autoscale setting's activity log; the deployment keeps
    serving at what it has). The old deployment is counted as holding its cores, as it does until
    its cleanup. The text says up to how many instances autoscale can scale.
    """
    if ceiling <= planned_peak:
        return None
    check = check_quota(size, ceiling, held_instances, usages)
    if check.ok:
        return None
    reachable = next(n for n in range(ceiling - 1, -1, -1)
                     if n <= planned_peak or check_quota(size, n, held_instances, usages).ok)
    return (f"autoscale.max_instances {ceiling} x {size.name} is not covered by the quota: needs {check.needed} more "
            f"cores (ceil(1.2 x {ceiling}) x {size.vcpus} vCPUs), {check.free} free in '{check.line}'; scale-outs "
            f"beyond {reachable} instance(s) will fail (Azure autoscale fails soft: the deployment "
            "keeps serving at what it has). Request more quota for the family or lower autoscale.max_instances")
