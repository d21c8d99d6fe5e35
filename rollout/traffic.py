"""Absolute traffic weights for each step of a plan, and drift detection.

Every function returns the endpoint's whole traffic map (absolute weights, as flagger and
argo-rollouts set them), never a delta, so applying one twice is harmless.
"""

from __future__ import annotations

from typing import Mapping

from rollout.model import Traffic, normalize_traffic
from rollout.plan import Plan


def step_traffic(plan: Plan, step: int) -> dict[str, int]:
    """The endpoint's traffic at ``step``: new holds ``step``, old the rest of the shared share.

    Every other deployment keeps its share.
    """
    if not 0 <= step <= plan.shared:
        raise ValueError(f"step {step} is outside 0..{plan.shared}")
    return normalize_traffic({**plan.others, plan.old: plan.shared - step, plan.new: step})


def rollback_traffic(plan: Plan) -> dict[str, int]:
    """The endpoint's traffic after a rollback: old holds the whole shared share, new none."""
    return step_traffic(plan, 0)


def same_traffic(a: Traffic, b: Traffic) -> bool:
    """Whether two traffic maps route the same way (names compared case-insensitively, zeros ignored)."""
    return normalize_traffic(a) == normalize_traffic(b)


def mirror_without(mirror: Traffic, deployment: str) -> dict[str, int] | None:
    """Mirror traffic with ``deployment`` removed, or None when nothing needs to change.

    Azure refuses live traffic to a deployment that receives mirrored traffic, so the new
    deployment's mirror share must go before it takes live traffic.
    """
    current = normalize_traffic(mirror)
    if deployment.lower() not in current:
        return None
    return {name: share for name, share in current.items() if name != deployment.lower()}


def describe(traffic: Mapping[str, int]) -> str:
    """A short human form, largest share first: ``blue-v1=90 green-v2=10``."""
    items = sorted(normalize_traffic(traffic).items(), key=lambda kv: (-kv[1], kv[0]))
    return " ".join(f"{name}={share}" for name, share in items) or "(no traffic)"
