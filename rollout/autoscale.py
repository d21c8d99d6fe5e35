"""The autoscale profile applied to the new deployment once promoted. Pure.

``parse_autoscale`` validates the request's ``autoscale`` object; ``autoscale_setting`` builds the
Azure Monitor autoscale setting body (``Microsoft.Insights/autoscalesettings``, api-version
2022-10-01) targeting the deployment, in the REST API's camelCase names with capacities and scale
values as strings, as the service stores them.

The default profile (every field optional): ``min_instances`` 1 (at least the deployment's
instance count), ``max_instances`` 10, ``default_instances`` = minimum, and

- scale **out fast**: +1 instance when average CPU over 5 minutes is above 70%
  (``cpu_out_percent``), or when the endpoint's average request latency over 5 minutes is above
  ``latency_out_ms`` (only when given), cooldown PT5M (``scale_out_cooldown``);
- scale **in slowly**: -1 instance when average CPU over 30 minutes is below 25%
  (``cpu_in_percent``), cooldown PT30M (``scale_in_cooldown``). Scale-in uses direction
  ``Decrease`` (the public docs' Python sample wrongly says ``Increase``).

``memory_out_percent`` adds a memory rule and ``requests_out_per_minute`` a request-rate rule
(endpoint ``RequestsPerMinute`` per instance), both scaling out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Mapping

from rollout.deployment_spec import MAX_INSTANCES_PER_DEPLOYMENT
from rollout.durations import format_duration, parse_duration
from rollout.errors import FieldProblem, InvalidRequest


@dataclass(frozen=True)
class AutoscaleSpec:
    """What the request asks for; see the module docstring for the defaults."""

    min_instances: int = 1
    max_instances: int = 10
    default_instances: int | None = None
    cpu_out_percent: float | None = 70.0
    cpu_in_percent: float | None = 25.0
    memory_out_percent: float | None = None
    requests_out_per_minute: float | None = None
    latency_out_ms: float | None = None
    scale_out_cooldown: timedelta = timedelta(minutes=5)
    scale_in_cooldown: timedelta = timedelta(minutes=30)

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_instances": self.min_instances, "max_instances": self.max_instances,
            "default_instances": self.default_instances, "cpu_out_percent": self.cpu_out_percent,
            "cpu_in_percent": self.cpu_in_percent, "memory_out_percent": self.memory_out_percent,
            "requests_out_per_minute": self.requests_out_per_minute, "latency_out_ms": self.latency_out_ms,
            "scale_out_cooldown": format_duration(self.scale_out_cooldown),
            "scale_in_cooldown": format_duration(self.scale_in_cooldown),
        }


_COUNTS = ("min_instances", "max_instances", "default_instances")
_PERCENTS = ("cpu_out_percent", "cpu_in_percent", "memory_out_percent")
_RATES = ("requests_out_per_minute", "latency_out_ms")
_COOLDOWNS = ("scale_out_cooldown", "scale_in_cooldown")
_FIELDS = _COUNTS + _PERCENTS + _RATES + _COOLDOWNS


def parse_autoscale(data: Any, prefix: str = "autoscale.") -> AutoscaleSpec:
    """Validate an ``autoscale`` object (``true``: the default profile); ``InvalidRequest`` names each bad field.

    Rules: counts 1-50, minimum <= default <= maximum, percentages 1-100 with the scale-in CPU
    threshold below the scale-out one, cooldowns PT1M-P7D (Azure's range), at least one rule.
    """
    if data is True:
        return AutoscaleSpec()
    if not isinstance(data, Mapping):
        raise InvalidRequest([FieldProblem(prefix.rstrip("."), "must be an object (or true for the default profile)")])
    problems = [FieldProblem(prefix + str(k), "is not a known field") for k in data if k not in _FIELDS]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _FIELDS:
            continue
        if value is None:
            values[key] = None if key in _PERCENTS + _RATES + ("default_instances",) else getattr(AutoscaleSpec, key)
            continue
        try:
            values[key] = _parse_field(key, value)
        except ValueError as exc:
            problems.append(FieldProblem(prefix + key, str(exc)))
    if problems:
        raise InvalidRequest(problems)
    spec = AutoscaleSpec(**values)
    problems = _cross_problems(spec, prefix)
    if problems:
        raise InvalidRequest(problems)
    return spec


def _parse_field(key: str, value: Any) -> Any:
    if key in _COUNTS:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INSTANCES_PER_DEPLOYMENT:
            raise ValueError(f"must be an integer from 1 to {MAX_INSTANCES_PER_DEPLOYMENT}")
        return value
    if key in _COOLDOWNS:
        delta = parse_duration(value, timedelta(days=7))
        if not timedelta(minutes=1) <= delta <= timedelta(days=7):
            raise ValueError("must be between PT1M and P7D")
        return delta
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    if key in _PERCENTS and not 1 <= value <= 100:
        raise ValueError("must be a percentage from 1 to 100")
    if key in _RATES and value <= 0:
        raise ValueError("must be above 0")
    return float(value)


def _cross_problems(spec: AutoscaleSpec, prefix: str) -> list[FieldProblem]:
    problems = []
    if spec.min_instances > spec.max_instances:
        problems.append(FieldProblem(prefix + "min_instances", "must not be above max_instances"))
    default = spec.default_instances
    if default is not None and not spec.min_instances <= default <= spec.max_instances:
        problems.append(FieldProblem(prefix + "default_instances", "must be between min_instances and max_instances"))
    if spec.cpu_in_percent is not None and spec.cpu_out_percent is not None and spec.cpu_in_percent >= spec.cpu_out_percent:
        problems.append(FieldProblem(prefix + "cpu_in_percent", "must be below cpu_out_percent (else it flaps)"))
    if all(getattr(spec, k) is None for k in ("cpu_out_percent", "memory_out_percent", "requests_out_per_minute",
                                              "latency_out_ms")):
        problems.append(FieldProblem(prefix.rstrip("."), "needs at least one scale-out rule"))
    return problems


def setting_name(endpoint: str, deployment: str) -> str:
    """The autoscale setting's name for a deployment: ``aml-rollout-<endpoint>-<deployment>`` (lower case)."""
    return f"aml-rollout-{endpoint}-{deployment}".lower()


def _rule(metric: str, resource: str, operator: str, threshold: float, window: timedelta, direction: str,
          cooldown: timedelta, divide_per_instance: bool = False) -> dict[str, Any]:
    trigger: dict[str, Any] = {
        "metricName": metric, "metricResourceUri": resource, "timeGrain": "PT1M", "statistic": "Average",
        "timeWindow": format_duration(window), "timeAggregation": "Average", "operator": operator,
        "threshold": float(threshold),
    }
    if divide_per_instance:
        trigger["dividePerInstance"] = True
    return {"metricTrigger": trigger,
            "scaleAction": {"direction": direction, "type": "ChangeCount", "value": "1",
                            "cooldown": format_duration(cooldown)}}


def autoscale_setting(spec: AutoscaleSpec, deployment_id: str, endpoint_id: str, location: str,
                      instance_count: int) -> dict[str, Any]:
    """The autoscale setting resource body for ``deployment_id`` (REST names, as ``create_or_update`` takes them).

    The default capacity is ``default_instances`` or, when not given, the deployment's current
    ``instance_count`` clamped into [minimum, maximum], so that enabling autoscale does not resize
    the deployment at once. Deployment metrics (CPU, memory) are read from ``deployment_id``;
    endpoint metrics (request rate divided per instance, latency) from ``endpoint_id``, as the
    Azure ML autoscale docs do (endpoint metrics are not split by deployment).
    """
    default = spec.default_instances
    if default is None:
        default = max(spec.min_instances, min(instance_count, spec.max_instances))
    out_cd, in_cd = spec.scale_out_cooldown, spec.scale_in_cooldown
    five, thirty = timedelta(minutes=5), timedelta(minutes=30)
    rules = []
    if spec.cpu_out_percent is not None:
        rules.append(_rule("CpuUtilizationPercentage", deployment_id, "GreaterThan", spec.cpu_out_percent, five,
                           "Increase", out_cd))
    if spec.memory_out_percent is not None:
        rules.append(_rule("MemoryUtilizationPercentage", deployment_id, "GreaterThan", spec.memory_out_percent, five,
                           "Increase", out_cd))
    if spec.requests_out_per_minute is not None:
        rules.append(_rule("RequestsPerMinute", endpoint_id, "GreaterThan", spec.requests_out_per_minute, five,
                           "Increase", out_cd, divide_per_instance=True))
    if spec.latency_out_ms is not None:
        rules.append(_rule("RequestLatency", endpoint_id, "GreaterThan", spec.latency_out_ms, five, "Increase", out_cd))
    if spec.cpu_in_percent is not None:
        rules.append(_rule("CpuUtilizationPercentage", deployment_id, "LessThan", spec.cpu_in_percent, thirty,
                           "Decrease", in_cd))
    return {
        "location": location,
        "properties": {
            "enabled": True,
            "targetResourceUri": deployment_id,
            "profiles": [{
                "name": "aml-rollout",
                "capacity": {"minimum": str(spec.min_instances), "maximum": str(spec.max_instances),
                             "default": str(default)},
                "rules": rules,
            }],
        },
    }
