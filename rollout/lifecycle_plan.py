"""What the lifecycle phases will do, decided from what pre-flight gathered. Pure.

``creation_decision``: whether to create the endpoint and the new deployment, or why the rollout
cannot run (a deployment that exists with another spec is never rebuilt; a missing one needs a
``deployment`` spec; a missing endpoint needs both ``deployment`` and ``endpoint``, so that a
mistyped ``endpoint_name`` never creates a new endpoint).

``is_first_rollout``: whether the new deployment is the endpoint's first (it gets 100% once
provisioned: there is no old deployment to shift from).

``capacity_decision``: the new deployment's instances before each step and whether the region's
quota covers the largest of them, decided before any traffic moves or anything is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from rollout.capacity import CapacitySpec, QuotaUsage, VmSize, check_quota, instances_per_step, quota_refusal
from rollout.operation import NOT_FOUND


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

    def to_dict(self) -> dict[str, Any]:
        return {"instances": list(self.instances), "needed_cores": self.needed_cores, "free_cores": self.free_cores,
                "refusal": self.refusal}


def capacity_decision(spec: CapacitySpec | None, steps: Sequence[int], old_instances: int, old_share: int,
                      instance_count: int, held_instances: int, size: VmSize | None,
                      usages: Sequence[QuotaUsage]) -> CapacityDecision:
    """Plan the new deployment's instances per step and check the quota for the largest.

    Without ``capacity`` every step keeps ``instance_count``. ``held_instances`` are the new
    deployment's instances now (0 when it is still to be created). ``size`` None (the VM size is
    not offered in the region) refuses: Azure would refuse the deployment.
    """
    planned = tuple(instance_count for _ in steps) if spec is None else instances_per_step(
        old_instances, old_share, steps, instance_count, spec)
    peak = max(planned, default=instance_count)
    if size is None:
        return CapacityDecision(planned, 0, None, "the instance type is not offered for managed online endpoints in "
                                                  "the workspace's region")
    check = check_quota(size, peak, held_instances, usages)
    return CapacityDecision(planned, check.needed, check.free, None if check.ok else quota_refusal(size, peak, check))
