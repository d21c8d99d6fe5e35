"""The rollout request: parsing with field-named errors, defaults, and resolution against live traffic.

``parse_request`` checks a request on its own (shape, types, ranges) and fills the defaults;
``resolve_plan`` checks it against the endpoint as it is (which deployments exist, who holds
traffic) and returns the concrete ``Plan`` the orchestrator walks, or the reason it cannot run.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Mapping, Sequence, TypeGuard

from rollout.durations import format_duration, parse_duration
from rollout.errors import FieldProblem, InvalidRequest
from rollout.lifecycle_request import LIFECYCLE_FIELDS, LifecycleRequest, parse_lifecycle
from rollout.model import DeploymentState, EndpointState, WorkspaceRef, normalize_traffic
from rollout.notify import NotifyTarget, parse_targets

DEFAULT_STEPS = (10, 25, 50, 75, 100)
METRICS_SOURCES = ("platform", "log_analytics")
# The Durable extension's Azure Storage provider takes timers of at most 6 days
# (``AzureStorageDurabilityProvider.MaximumDelayTime``); longer ones it splits. Every duration of a
# request is bounded by it, so no wait of a rollout ever relies on that splitting.
MAX_DURATION = timedelta(days=6)
MIN_WAIT = timedelta(seconds=1)
MAX_LATENCY_MS = 600_000.0          # 10 minutes
MAX_MIN_REQUESTS = 1_000_000_000
MAX_INCONCLUSIVE_WINDOWS = 100
MIN_CONFIDENCE, MAX_CONFIDENCE = 0.5, 0.9999     # the judge's whole-rollout guarantee (rollout/judge.py)
MAX_LATENCY_RATIO = 100.0
BASELINE_POLICIES = ("refuse", "proceed")         # on_unhealthy_baseline
# Azure ML's own rule for online endpoint and deployment names (azure-ai-ml,
# ``validate_endpoint_or_deployment_name``): 3-32 characters, ASCII letters, digits and hyphens,
# starting with a letter and ending with a letter or digit. Matched whole (``fullmatch``), so a
# trailing newline is refused too (the SDK's own pattern ends in ``$`` and lets one through).
_NAME = re.compile(r"[A-Za-z][-A-Za-z0-9]{1,30}[A-Za-z0-9]")
NAME_RULE = ("must be 3-32 characters: ASCII letters, digits and hyphens, starting with a letter and "
             "ending with a letter or digit")


@dataclass(frozen=True)
class RolloutRequest:
    """A validated rollout request with every default filled in."""

    endpoint_name: str
    new_deployment: str
    old_deployment: str | None = None
    traffic_steps: tuple[int, ...] | None = None
    observation_window: timedelta = timedelta(minutes=5)
    check_interval: timedelta = timedelta(minutes=1)
    error_threshold: float = 0.01
    latency_p99_threshold_ms: float | None = None
    max_error_rate_increase: float | None = None
    min_requests: int = 100
    max_inconclusive_windows: int = 2
    bake_time: timedelta = timedelta(0)
    metrics_source: str = "platform"
    workspace: WorkspaceRef | None = None
    lifecycle: LifecycleRequest = field(default_factory=LifecycleRequest)
    """deployment, endpoint, mirror, capacity, autoscale, cleanup and their timeouts (``rollout.lifecycle_request``)."""
    notify: tuple[NotifyTarget, ...] = ()        # webhooks to tell (``rollout.notify``)
    confidence: float = 0.95                     # 1 - the chance of rolling back a healthy deployment
    max_latency_ratio: float | None = None       # new's p99 at most this times old's
    on_unhealthy_baseline: str = "refuse"        # old already failing at pre-flight: refuse | proceed

    def to_dict(self) -> dict[str, Any]:
        """The JSON wire form (durations as ISO 8601), accepted back by ``parse_request``."""
        return {
            "endpoint_name": self.endpoint_name,
            "new_deployment": self.new_deployment,
            "old_deployment": self.old_deployment,
            "traffic_steps": None if self.traffic_steps is None else list(self.traffic_steps),
            "observation_window": format_duration(self.observation_window),
            "check_interval": format_duration(self.check_interval),
            "error_threshold": self.error_threshold,
            "latency_p99_threshold_ms": self.latency_p99_threshold_ms,
            "max_error_rate_increase": self.max_error_rate_increase,
            "min_requests": self.min_requests,
            "max_inconclusive_windows": self.max_inconclusive_windows,
            "bake_time": format_duration(self.bake_time),
            "metrics_source": self.metrics_source,
            "workspace": None if self.workspace is None else self.workspace.to_dict(),
            **self.lifecycle.to_dict(),
            "notify": [target.to_dict() for target in self.notify],
            "confidence": self.confidence,
            "max_latency_ratio": self.max_latency_ratio,
            "on_unhealthy_baseline": self.on_unhealthy_baseline,
        }


@dataclass(frozen=True)
class Plan:
    """What a rollout will do to a particular endpoint.

    ``shared`` is the share old and new hold together (100 unless a third deployment holds
    traffic); ``others`` is the traffic of every other deployment, kept unchanged throughout.
    Deployment names are lower-cased, as Azure stores traffic keys.
    """

    old: str
    new: str
    steps: tuple[int, ...]
    shared: int
    others: Mapping[str, int] = field(default_factory=dict)


def instance_id_for(endpoint_name: str) -> str:
    """The Durable instance id of an endpoint's rollout: one rollout per endpoint at a time."""
    return f"rollout-{endpoint_name.lower()}"


# --- parsing -------------------------------------------------------------------------------

_Parser = Callable[[Any], Any]


def is_valid_name(value: Any) -> TypeGuard[str]:
    """Whether ``value`` is a valid Azure ML endpoint or deployment name."""
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def _name(value: Any) -> str:
    if not is_valid_name(value):
        raise ValueError(NAME_RULE)
    return value


def _duration(value: Any) -> timedelta:
    return parse_duration(value, MAX_DURATION)


def _wait(value: Any) -> timedelta:
    delta = _duration(value)
    if delta < MIN_WAIT:
        raise ValueError("must be at least 1 second")
    return delta


def _number_in(low: float, high: float, value: Any) -> float:
    """``value`` as a float when it is a finite number in [low, high] (ints are compared exactly, so
    10**400 is out of range, never an overflow); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if not low <= value <= high:
        raise ValueError(f"must be between {low:g} and {high:g}")
    return float(value)


def _integer_in(low: int, high: int, value: Any) -> int:
    """``value`` when it is a JSON integer in [low, high]; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer")
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}")
    return value


def _steps(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list of integers")
    if any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise ValueError("must contain only integers")
    if any(v < 1 or v > 100 for v in value):
        raise ValueError("each step must be between 1 and 100")
    if any(b <= a for a, b in zip(value, value[1:], strict=False)):
        raise ValueError("must be strictly increasing")
    return tuple(value)


def _metrics_source(value: Any) -> str:
    if value not in METRICS_SOURCES:
        raise ValueError(f"must be one of {', '.join(METRICS_SOURCES)}")
    return str(value)


def _baseline_policy(value: Any) -> str:
    if value not in BASELINE_POLICIES:
        raise ValueError(f"must be one of {', '.join(BASELINE_POLICIES)}")
    return str(value)


def _workspace(value: Any) -> WorkspaceRef:
    keys = {"subscription_id", "resource_group", "workspace_name"}
    if not isinstance(value, dict) or set(value) != keys or not all(isinstance(value[k], str) and value[k] for k in keys):
        raise ValueError("must be an object with exactly subscription_id, resource_group and workspace_name (strings)")
    return WorkspaceRef.from_dict(value)


_FIELDS: dict[str, _Parser] = {
    "endpoint_name": _name,
    "new_deployment": _name,
    "old_deployment": _name,
    "traffic_steps": _steps,
    "observation_window": _wait,
    "check_interval": _wait,
    "error_threshold": functools.partial(_number_in, 0.0, 1.0),
    "latency_p99_threshold_ms": functools.partial(_number_in, 1.0, MAX_LATENCY_MS),
    "max_error_rate_increase": functools.partial(_number_in, 0.0, 1.0),
    "min_requests": functools.partial(_integer_in, 1, MAX_MIN_REQUESTS),
    "max_inconclusive_windows": functools.partial(_integer_in, 0, MAX_INCONCLUSIVE_WINDOWS),
    "bake_time": _duration,
    "metrics_source": _metrics_source,
    "workspace": _workspace,
    "notify": parse_targets,
    "confidence": functools.partial(_number_in, MIN_CONFIDENCE, MAX_CONFIDENCE),
    "max_latency_ratio": functools.partial(_number_in, 1.0, MAX_LATENCY_RATIO),
    "on_unhealthy_baseline": _baseline_policy,
}
_REQUIRED = ("endpoint_name", "new_deployment")


def parse_request(data: Any, prefix: str = "") -> RolloutRequest:
    """Validate a rollout request and fill its defaults.

    Raises ``InvalidRequest`` naming every bad field (unknown fields included); ``prefix`` is
    prepended to field names (``"rollout."`` inside a scenario). A ``null`` value means "use
    the default".
    """
    if not isinstance(data, Mapping):
        raise InvalidRequest([FieldProblem(prefix.rstrip(".") or "body", "must be a JSON object")])
    problems = [FieldProblem(prefix + key, "is not a known field") for key in data
                if key not in _FIELDS and key not in LIFECYCLE_FIELDS]
    values: dict[str, Any] = {}
    try:
        values["lifecycle"] = parse_lifecycle(data, prefix)
    except InvalidRequest as exc:
        problems += exc.problems
    for key, parse in _FIELDS.items():
        if data.get(key) is None:
            if key in _REQUIRED:
                problems.append(FieldProblem(prefix + key, "is required"))
            continue
        try:
            values[key] = parse(data[key])
        except ValueError as exc:
            problems.append(FieldProblem(prefix + key, str(exc)))
        except InvalidRequest as exc:     # a list of objects (notify) names its own inner fields
            problems += [FieldProblem(prefix + p.field, p.message) for p in exc.problems]
    problems += _cross_field_problems(values, prefix)
    if problems:
        raise InvalidRequest(problems)
    return RolloutRequest(**values)


def _cross_field_problems(values: Mapping[str, Any], prefix: str) -> list[FieldProblem]:
    problems = []
    new, old = values.get("new_deployment"), values.get("old_deployment")
    if new and old and new.lower() == old.lower():
        problems.append(FieldProblem(prefix + "old_deployment", "must differ from new_deployment"))
    window = values.get("observation_window", RolloutRequest.observation_window)
    interval = values.get("check_interval", RolloutRequest.check_interval)
    if interval > window:
        problems.append(FieldProblem(prefix + "check_interval", "must not be longer than observation_window"))
    return problems


# --- resolution against the live endpoint ----------------------------------------------------


class PlanRejected(Exception):
    """The request cannot run against the endpoint as it is; the message says why."""


def resolve_plan(request: RolloutRequest, endpoint: EndpointState, deployments: Sequence[DeploymentState]) -> Plan:
    """Check the request against the live endpoint and return the concrete plan.

    Raises ``PlanRejected`` when the endpoint or a deployment is missing, not provisioned
    (``Succeeded``) or has no instances, when no old deployment can be chosen, or when the
    steps do not end at the share old and new hold together.
    """
    if endpoint.provisioning_state != "Succeeded":
        raise PlanRejected(f"endpoint {endpoint.name!r} is {endpoint.provisioning_state}, not Succeeded")
    by_name = {d.name.lower(): d for d in deployments}
    traffic = normalize_traffic(endpoint.traffic)
    new = _ready_deployment(by_name, request.new_deployment, "new_deployment")
    old = _ready_deployment(by_name, request.old_deployment or _default_old(traffic, new), "old_deployment")
    shared = traffic.get(old, 0) + traffic.get(new, 0)
    if shared == 0:
        raise PlanRejected(f"neither {old!r} nor {new!r} holds live traffic; there is nothing to shift")
    steps = _resolve_steps(request.traffic_steps, shared)
    others = {name: share for name, share in traffic.items() if name not in (old, new)}
    return Plan(old=old, new=new, steps=steps, shared=shared, others=others)


def _default_old(traffic: Mapping[str, int], new: str) -> str:
    candidates = sorted(((share, name) for name, share in traffic.items() if name != new), reverse=True)
    if not candidates:
        raise PlanRejected(f"no deployment other than {new!r} holds live traffic; name old_deployment")
    return candidates[0][1]


def _ready_deployment(by_name: Mapping[str, DeploymentState], name: str, role: str) -> str:
    deployment = by_name.get(name.lower())
    if deployment is None:
        raise PlanRejected(f"{role} {name!r} does not exist on the endpoint")
    if deployment.provisioning_state != "Succeeded":
        raise PlanRejected(f"{role} {name!r} is {deployment.provisioning_state}, not Succeeded")
    if deployment.instance_count < 1:
        raise PlanRejected(f"{role} {name!r} has no instances")
    return name.lower()


def _resolve_steps(steps: tuple[int, ...] | None, shared: int) -> tuple[int, ...]:
    if steps is None:
        if shared != 100:
            raise PlanRejected(
                f"old and new hold {shared}% together (another deployment holds the rest), "
                "so traffic_steps must be given, ending at that share"
            )
        return DEFAULT_STEPS
    if steps[-1] > shared:
        raise PlanRejected(f"traffic_steps: step {steps[-1]} is larger than the {shared}% old and new hold together")
    if steps[-1] != shared:
        raise PlanRejected(f"traffic_steps: the last step must equal the {shared}% old and new hold together, not {steps[-1]}")
    return steps
