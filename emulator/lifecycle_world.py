"""A scenario's ``lifecycle`` section: how the simulated Azure ML provisions (``LifecycleWorld``, ``parse_world``).

``emulator.simulated_lifecycle.configure`` gives a ``SimulatedLifecycle`` the world.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from emulator.simulated_assets import AssetRegistry
from emulator.simulated_lifecycle import FAILURE_KINDS, VM_SIZES


@dataclass(frozen=True)
class LifecycleWorld:
    """A scenario's ``lifecycle`` section: how the simulated Azure ML provisions (see the module docstring).

    ``quota`` maps a VM family (``standardDSv2Family``, or any VM size of it such as
    ``Standard_DS3_v2``) to its core limit; ``failures`` maps a deployment name to a failure kind.
    ``mirror_in_metrics`` (default false) counts mirrored requests in the per-deployment metrics:
    whether Azure does is not documented, so the default assumes it does not. ``assets`` is the
    workspace's registry (the scenario's top-level ``assets``; None leaves assets unchecked).
    """

    create_minutes: float = 12
    scale_minutes: float = 4
    delete_minutes: float = 2
    endpoint_minutes: float = 2
    quota: Mapping[str, int] = field(default_factory=dict)
    total_quota: int = 200
    quota_failure_on: str = "put"
    failures: Mapping[str, str] = field(default_factory=dict)
    mirror_in_metrics: bool = False
    assets: AssetRegistry | None = None


_WORLD_NUMBERS = ("create_minutes", "scale_minutes", "delete_minutes", "endpoint_minutes")


def parse_world(data: Any) -> tuple[LifecycleWorld, list[tuple[str, str]]]:
    """Validate a ``lifecycle`` section; returns the world and (field, problem) pairs under ``lifecycle.``."""
    problems: list[tuple[str, str]] = []
    if not isinstance(data, Mapping):
        return LifecycleWorld(), [("lifecycle", "must be a mapping")]
    known = (*_WORLD_NUMBERS, "quota", "total_quota", "quota_failure_on", "failures", "mirror_in_metrics")
    problems += [(f"lifecycle.{k}", "is not a known field") for k in data if k not in known]
    values: dict[str, Any] = {}
    for name in _WORLD_NUMBERS:
        if name in data:
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 600:
                problems.append((f"lifecycle.{name}", "must be a number of minutes above 0, at most 600"))
            else:
                values[name] = float(value)
    quota = data.get("quota", {})
    if not isinstance(quota, Mapping) or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in quota.values()):
        problems.append(("lifecycle.quota", "must map VM families (or sizes) to core limits (integers >= 0)"))
    else:
        families = {}
        for key, limit in quota.items():
            size = VM_SIZES.get(str(key).lower())
            families[size.family if size else str(key)] = limit
        values["quota"] = families
    total = data.get("total_quota", 200)
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        problems.append(("lifecycle.total_quota", "must be an integer >= 0"))
    else:
        values["total_quota"] = total
    where = data.get("quota_failure_on", "put")
    if where not in ("put", "operation"):
        problems.append(("lifecycle.quota_failure_on", "must be put or operation"))
    else:
        values["quota_failure_on"] = where
    failures = data.get("failures", {})
    if not isinstance(failures, Mapping) or any(v not in FAILURE_KINDS for v in failures.values()):
        problems.append(("lifecycle.failures", f"must map deployment names to one of {', '.join(FAILURE_KINDS)}"))
    else:
        values["failures"] = {str(k).lower(): str(v) for k, v in failures.items()}
    mirrored = data.get("mirror_in_metrics", False)
    if not isinstance(mirrored, bool):
        problems.append(("lifecycle.mirror_in_metrics", "must be true or false"))
    else:
        values["mirror_in_metrics"] = mirrored
    return LifecycleWorld(**values), problems
