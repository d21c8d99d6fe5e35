"""The rollout request's lifecycle fields, all optional (a request without them works as before).

    deployment      the new deployment's spec (``rollout.deployment_spec``); created when missing
    endpoint        {auth_mode, description}: creates the endpoint when missing (needs ``deployment``)
    mirror          {percent, window}: mirror traffic to the new deployment before any live step
    capacity        {max_instances, headroom}: pre-scale the new deployment before each step
    autoscale       true or a profile (``rollout.autoscale``): applied to the new deployment once promoted
    cleanup         keep (default) | scale_down | delete: the old deployment, after bake_time + revert_window
    revert_window   default PT30M: how long after bake_time the old deployment stays warm for a revert
    create_timeout  default PT45M: longest wait for the endpoint or the deployment to be created
    scale_timeout   default PT20M: longest wait for a scale or a delete

``parse_lifecycle`` validates them with field-named problems (under ``prefix``); the request
parser (``rollout.plan``) calls it and merges the problems with its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Mapping

from rollout.autoscale import AutoscaleSpec, parse_autoscale
from rollout.capacity import CapacitySpec, MirrorSpec, parse_capacity, parse_mirror
from rollout.cleanup import CleanupSpec, parse_cleanup
from rollout.deployment_spec import DeploymentSpec, EndpointSpec, parse_deployment_spec, parse_endpoint_spec
from rollout.durations import format_duration, parse_duration
from rollout.errors import FieldProblem, InvalidRequest
from rollout.operation import DEFAULT_TIMEOUTS

LIFECYCLE_FIELDS = ("deployment", "endpoint", "mirror", "capacity", "autoscale", "cleanup", "revert_window",
                    "create_timeout", "scale_timeout")


@dataclass(frozen=True)
class LifecycleRequest:
    """The lifecycle fields of a rollout request, defaults filled in."""

    deployment: DeploymentSpec | None = None
    endpoint: EndpointSpec | None = None
    mirror: MirrorSpec | None = None
    capacity: CapacitySpec | None = None
    autoscale: AutoscaleSpec | None = None
    cleanup: CleanupSpec = field(default_factory=CleanupSpec)
    create_timeout: timedelta = DEFAULT_TIMEOUTS["create"]
    scale_timeout: timedelta = DEFAULT_TIMEOUTS["scale"]

    def to_dict(self) -> dict[str, Any]:
        """The wire form (request field names), accepted back by ``parse_lifecycle``."""
        return {
            "deployment": None if self.deployment is None else self.deployment.to_dict(),
            "endpoint": None if self.endpoint is None else self.endpoint.to_dict(),
            "mirror": None if self.mirror is None else self.mirror.to_dict(),
            "capacity": None if self.capacity is None else self.capacity.to_dict(),
            "autoscale": None if self.autoscale is None else self.autoscale.to_dict(),
            "cleanup": self.cleanup.mode,
            "revert_window": format_duration(self.cleanup.revert_window),
            "create_timeout": format_duration(self.create_timeout),
            "scale_timeout": format_duration(self.scale_timeout),
        }


def _timeout(value: Any) -> timedelta:
    delta = parse_duration(value, timedelta(hours=6))
    if not timedelta(minutes=1) <= delta <= timedelta(hours=6):
        raise ValueError("must be between PT1M and PT6H")
    return delta


def parse_lifecycle(data: Mapping[str, Any], prefix: str = "") -> LifecycleRequest:
    """The lifecycle fields of ``data`` (other keys ignored); ``InvalidRequest`` names every bad one.

    ``endpoint`` needs ``deployment`` (a new endpoint needs a deployment to serve).
    """
    problems: list[FieldProblem] = []
    values: dict[str, Any] = {}
    parsers: dict[str, Callable[[Any], Any]] = {
        "deployment": lambda v: parse_deployment_spec(v, prefix + "deployment."),
        "endpoint": lambda v: parse_endpoint_spec(v, prefix + "endpoint."),
        "mirror": lambda v: parse_mirror(v, prefix + "mirror."),
        "capacity": lambda v: parse_capacity(v, prefix + "capacity."),
        "autoscale": lambda v: parse_autoscale(v, prefix + "autoscale."),
    }
    for name, parse in parsers.items():
        if data.get(name) is None or data.get(name) is False:
            continue
        try:
            values[name] = parse(data[name])
        except InvalidRequest as exc:
            problems += exc.problems
    try:
        values["cleanup"] = parse_cleanup(data.get("cleanup"), data.get("revert_window"), prefix)
    except InvalidRequest as exc:
        problems += exc.problems
    for name in ("create_timeout", "scale_timeout"):
        if data.get(name) is not None:
            try:
                values[name] = _timeout(data[name])
            except ValueError as exc:
                problems.append(FieldProblem(prefix + name, str(exc)))
    if data.get("endpoint") is not None and data.get("deployment") is None:
        problems.append(FieldProblem(prefix + "endpoint", "needs 'deployment': a new endpoint is created with the new "
                                                          "deployment"))
    if problems:
        raise InvalidRequest(problems)
    return LifecycleRequest(**values)
