"""Scenarios for the emulator: an endpoint, its load and health over time, and what happens when.

A scenario is a YAML or JSON file::

    workspace: {subscription_id: ..., resource_group: ..., workspace_name: ...}   # optional
    endpoint:
      name: fraud-detection-endpoint
      deployments: {blue-v1: {traffic: 100}, green-v2: {traffic: 0}}
    rollout: {new_deployment: green-v2, traffic_steps: [10, 50, 100], observation_window: PT5M}
    load: {requests_per_minute: 1200}
    health:
      blue-v1: [{from: PT0S, error_rate: 0.001, latency_p99_ms: 120}]
      green-v2: [{from: PT0S, error_rate: 0.002, latency_p99_ms: 140}, {from: PT12M, error_rate: 0.08}]
    alerts: [{at: PT7M, payload: alerts/endpoint-5xx-fired.json}]

Beyond those, for exercising the rollout: a deployment may set ``instance_count`` (default 1),
``provisioning_state`` (default Succeeded), ``instance_type`` and ``mirror_traffic``; the
endpoint ``provisioning_state``, ``update_seconds`` (how long an update keeps it busy,
default 0) and ``exists`` (default true; false: the endpoint does not exist yet, no ``deployments``,
for a rollout that creates it); ``controls`` (``{at, action: pause|resume|promote|abort|rollback|resolve, reason}``, sent
as an operator would); ``changes`` (``{at, traffic}``, someone else updating traffic);
``faults`` (``{operation: get_endpoint|list_deployments|set_traffic|metrics, error:
conflict|throttled|transient|not_found|permission|service, from, until, times, retry_after}``).
A health segment omitting ``error_rate`` or ``latency_p99_ms`` keeps the previous segment's.
``lifecycle`` describes how the simulated Azure ML provisions (``emulator.lifecycle_world.LifecycleWorld``:
``create_minutes``, ``scale_minutes``, ``delete_minutes``, ``quota`` per VM family, ``total_quota``,
``quota_failure_on``, ``failures: {deployment: image_build|crash_loop|out_of_quota}``).
``assets`` (``{models: [azureml:NAME:VERSION, ...], environments: [...]}``) is what the workspace
has registered (``emulator.simulated_assets``): a deployment naming anything else is refused, as
Azure refuses it; without it, the workspace holds exactly what the rollout's ``deployment`` names.
``recorded_metrics: FILE`` replays recorded per-minute metrics instead of ``load`` and
``health`` (``emulator.recorded``: CSV, Azure Monitor metrics JSON or a Log Analytics result).
``seed`` (an integer, default ``DEFAULT_SEED``) seeds the metrics' noise: Poisson requests,
binomial errors, measured p99 around the segment's (``SyntheticMetrics``); ``seed: null``
turns the noise off (exact expected counts).
Times are ISO 8601 offsets from the start of the simulation.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Mapping, TextIO

import yaml

from emulator.lifecycle_world import LifecycleWorld, parse_world
from emulator.recorded import Recording, load_recording
from emulator.simulated_assets import named_assets, parse_assets
from emulator.simulated_azure import Fault, HealthSegment
from rollout.durations import parse_duration
from rollout.errors import (
    AzureError,
    FieldProblem,
    InvalidRequest,
    PermissionDenied,
    ResourceNotFound,
    ServiceError,
    Throttled,
    TransientError,
    UpdateConflict,
)
from rollout.model import DeploymentState, WorkspaceRef
from rollout.plan import RolloutRequest, parse_request

DEFAULT_WORKSPACE = WorkspaceRef("00000000-0000-0000-0000-000000000000", "rg-aml-rollout-local", "mlw-local")
FAULT_OPERATIONS = ("get_endpoint", "list_deployments", "set_traffic", "metrics")
CONTROL_ACTIONS = ("pause", "resume", "promote", "abort", "rollback", "resolve", "revert")
_FAULT_ERRORS: dict[str, Callable[[float | None], AzureError]] = {
    "conflict": lambda after: UpdateConflict("simulated: another update is in progress"),
    "throttled": lambda after: Throttled("simulated: too many requests", retry_after=after),
    "transient": lambda after: TransientError("simulated: 503 Service Unavailable"),
    "not_found": lambda after: ResourceNotFound("endpoint", "simulated", "simulated: resource not found"),
    "permission": lambda after: PermissionDenied("simulated: 403 AuthorizationFailed"),
    "service": lambda after: ServiceError("simulated: 400 BadRequest"),
}
_TOP_LEVEL = ("workspace", "endpoint", "rollout", "load", "health", "alerts", "controls", "changes", "faults",
              "seed", "recorded_metrics", "lifecycle", "assets")
DEFAULT_SEED = 1


@dataclass(frozen=True)
class TimedAlert:
    at: timedelta
    payload: Any
    source: str


@dataclass(frozen=True)
class TimedControl:
    at: timedelta
    action: str
    reason: str


@dataclass(frozen=True)
class TimedChange:
    at: timedelta
    traffic: Mapping[str, int]


@dataclass(frozen=True)
class Scenario:
    """A validated scenario. ``rollout`` is None for ``serve``, which takes rollouts over HTTP."""

    workspace: WorkspaceRef
    endpoint_name: str
    deployments: tuple[DeploymentState, ...]
    traffic: Mapping[str, int]
    mirror_traffic: Mapping[str, int]
    requests_per_minute: float
    health: Mapping[str, tuple[HealthSegment, ...]]
    rollout: RolloutRequest | None = None
    endpoint_provisioning_state: str = "Succeeded"
    update_seconds: float = 0.0
    alerts: tuple[TimedAlert, ...] = ()
    controls: tuple[TimedControl, ...] = ()
    changes: tuple[TimedChange, ...] = ()
    faults: tuple[Fault, ...] = field(default_factory=tuple)
    seed: int | None = DEFAULT_SEED
    recorded: Recording | None = None
    lifecycle: LifecycleWorld | None = None
    endpoint_exists: bool = True


def report_problems(source: str, error: InvalidRequest, stream: TextIO) -> None:
    """Tell a user, one line a field, what is wrong with a scenario (the CLI's exit-2 message)."""
    print(f"bad scenario {source}:", file=stream)
    for problem in error.problems:
        print(f"  {problem.field}: {problem.message}", file=stream)


def load_scenario(path: str | Path, require_rollout: bool = True, simulated_endpoint: bool = True) -> Scenario:
    """Read and validate a scenario file; raise ``InvalidRequest`` naming every bad field (see ``parse_scenario``)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InvalidRequest([FieldProblem(str(path), f"cannot be read: {exc.strerror}")]) from exc
    except yaml.YAMLError as exc:
        raise InvalidRequest([FieldProblem(str(path), f"is not valid YAML or JSON: {exc}")]) from exc
    return parse_scenario(data, path.parent, require_rollout, simulated_endpoint)


class _Problems:
    """Collects field problems while parsing; ``get`` runs a parser and records its ValueError."""

    def __init__(self) -> None:
        self.found: list[FieldProblem] = []

    def add(self, field_name: str, message: str) -> None:
        self.found.append(FieldProblem(field_name, message))

    def get(self, field_name: str, parse: Callable[[], Any], default: Any = None) -> Any:
        try:
            return parse()
        except (ValueError, TypeError, KeyError) as exc:
            self.add(field_name, str(exc).strip("'\""))
            return default


def parse_scenario(data: Any, base: Path, require_rollout: bool = True, simulated_endpoint: bool = True) -> Scenario:
    """Validate a scenario document; relative alert payload paths resolve against ``base``.

    ``simulated_endpoint`` False (``--azure``: the cloud has its own endpoint): ``endpoint.deployments``
    may be left out (they are not used); when given they are still checked.
    """
    problems = _Problems()
    if not isinstance(data, Mapping):
        raise InvalidRequest([FieldProblem("scenario", "must be a mapping")])
    for key in data:
        if key not in _TOP_LEVEL:
            problems.add(str(key), "is not a known scenario field")
    workspace = problems.get("workspace", lambda: _workspace(data.get("workspace")), DEFAULT_WORKSPACE)
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, Mapping) or not isinstance(endpoint.get("name"), str):
        problems.add("endpoint", "must be a mapping with a name and deployments")
        raise InvalidRequest(problems.found)
    exists = endpoint.get("exists", True)
    if not isinstance(exists, bool):
        problems.add("endpoint.exists", "must be true or false")
    elif not exists and endpoint.get("deployments") is not None:
        problems.add("endpoint.deployments", "must be left out when the endpoint does not exist")
    absent = exists is not True or (not simulated_endpoint and endpoint.get("deployments") is None)
    deployments, traffic, mirror = ((), {}, {}) if absent else _deployments(endpoint.get("deployments"), problems)
    rollout = _rollout(data.get("rollout"), endpoint["name"], require_rollout, problems)
    rpm = problems.get("load.requests_per_minute", lambda: _non_negative(_mapping(data.get("load", {}))
                                                                          .get("requests_per_minute", 0)), 0.0)
    scenario = Scenario(
        workspace=workspace, endpoint_name=endpoint["name"], deployments=deployments, traffic=traffic,
        mirror_traffic=mirror, requests_per_minute=rpm, rollout=rollout,
        health=_health(data.get("health") or {}, {d.name for d in deployments} | _created(rollout), problems),
        endpoint_provisioning_state=str(endpoint.get("provisioning_state", "Succeeded")),
        update_seconds=problems.get("endpoint.update_seconds", lambda: _non_negative(endpoint.get("update_seconds", 0)), 0.0),
        alerts=tuple(_timed_list(data, "alerts", problems, lambda item, name: _alert(item, name, base))),
        controls=tuple(_timed_list(data, "controls", problems, _control)),
        changes=tuple(_timed_list(data, "changes", problems, _change)),
        faults=tuple(_timed_list(data, "faults", problems, _fault)),
        seed=problems.get("seed", lambda: _seed(data.get("seed", DEFAULT_SEED)), DEFAULT_SEED),
        recorded=problems.get("recorded_metrics", lambda: _recorded(data, base)),
        lifecycle=_lifecycle(data, rollout, problems),
        endpoint_exists=exists is not False,
    )
    if problems.found:
        raise InvalidRequest(problems.found)
    return scenario


def _created(rollout: RolloutRequest | None) -> set[str]:
    """The deployment a rollout creates (it may have health before it exists)."""
    return {rollout.new_deployment} if rollout is not None and rollout.lifecycle.deployment is not None else set()


def _lifecycle(data: Mapping[str, Any], rollout: RolloutRequest | None, problems: _Problems) -> LifecycleWorld | None:
    """The ``lifecycle`` section (``emulator.lifecycle_world.LifecycleWorld``) with the workspace's ``assets``;
    None when neither is given and the rollout creates no deployment. Without ``assets`` the workspace has
    registered exactly the model and environment the rollout's ``deployment`` names."""
    world, found = (None, []) if data.get("lifecycle") is None else parse_world(data["lifecycle"])
    spec = None if rollout is None else rollout.lifecycle.deployment
    assets = None
    if data.get("assets") is not None:
        assets, more = parse_assets(data["assets"])
        found += more
    elif spec is not None:
        assets = named_assets(spec.model, spec.environment)
    for name, message in found:
        problems.add(name, message)
    if world is None and assets is None:
        return None
    return dataclasses.replace(world or LifecycleWorld(), assets=assets)


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError("must be a mapping")
    return value


def _non_negative(value: Any) -> float:
    """A finite number >= 0 (NaN, the infinities and ints too large for a float are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= sys.float_info.max:
        raise ValueError("must be a finite non-negative number")
    return float(value)


def _recorded(data: Mapping[str, Any], base: Path) -> Recording | None:
    source = data.get("recorded_metrics")
    if source is None:
        return None
    if not isinstance(source, str):
        raise ValueError("must be a file path (relative to the scenario)")
    if "load" in data or "health" in data:
        raise ValueError("replaces load and health: leave those out")
    try:
        return load_recording(base / source)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from exc


def _seed(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError("must be an integer (or null: no noise)")
    return value


def _share(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ValueError("must be an integer from 0 to 100")
    return value


def _workspace(value: Any) -> WorkspaceRef:
    if value is None:
        return DEFAULT_WORKSPACE
    data = _mapping(value)
    missing = [k for k in ("subscription_id", "resource_group", "workspace_name") if not isinstance(data.get(k), str)]
    if missing:
        raise ValueError(f"needs {', '.join(missing)}")
    return WorkspaceRef.from_dict(data)


def _deployments(value: Any, problems: _Problems) -> tuple[tuple[DeploymentState, ...], dict[str, int], dict[str, int]]:
    if not isinstance(value, Mapping) or not value:
        problems.add("endpoint.deployments", "must map each deployment name to its settings")
        return (), {}, {}
    deployments, traffic, mirror = [], {}, {}
    for name, spec in value.items():
        prefix = f"endpoint.deployments.{name}"
        spec = spec or {}
        if not isinstance(spec, Mapping):
            problems.add(prefix, "must be a mapping")
            continue
        traffic[name] = problems.get(prefix + ".traffic", lambda: _share(spec.get("traffic", 0)), 0)
        mirror[name] = problems.get(prefix + ".mirror_traffic", lambda: _share(spec.get("mirror_traffic", 0)), 0)
        count = problems.get(prefix + ".instance_count", lambda: int(_non_negative(spec.get("instance_count", 1))), 1)
        deployments.append(DeploymentState(str(name), str(spec.get("provisioning_state", "Succeeded")), count,
                                           spec.get("instance_type", "Standard_DS3_v2")))
    return tuple(deployments), traffic, mirror


def _rollout(value: Any, endpoint_name: str, required: bool, problems: _Problems) -> RolloutRequest | None:
    if value is None:
        if required:
            problems.add("rollout", "is required (new_deployment at least)")
        return None
    if not isinstance(value, Mapping):
        problems.add("rollout", "must be a mapping")
        return None
    try:
        return parse_request({"endpoint_name": endpoint_name, **value}, prefix="rollout.")
    except InvalidRequest as exc:
        problems.found.extend(exc.problems)
        return None


def _health(value: Any, deployments: set[str], problems: _Problems) -> dict[str, tuple[HealthSegment, ...]]:
    if not isinstance(value, Mapping):
        problems.add("health", "must map deployment names to lists of segments")
        return {}
    health = {}
    for name, segments in value.items():
        prefix = f"health.{name}"
        if name not in deployments:
            problems.add(prefix, "names no deployment of the endpoint")
        elif not isinstance(segments, list) or not segments:
            problems.add(prefix, "must be a non-empty list of {from, error_rate, latency_p99_ms}")
        else:
            health[name] = _segments(segments, prefix, problems)
    return health


def _segments(items: list[Any], prefix: str, problems: _Problems) -> tuple[HealthSegment, ...]:
    segments: list[HealthSegment] = []
    previous = HealthSegment(timedelta(0))
    for index, item in enumerate(items):
        where = f"{prefix}[{index}]"
        if not isinstance(item, Mapping):
            problems.add(where, "must be a mapping")
            continue
        start = problems.get(where + ".from", lambda: _offset(item.get("from", "PT0S")), timedelta(0))
        rate = problems.get(where + ".error_rate", lambda: _rate(item.get("error_rate", previous.error_rate)), 0.0)
        p99 = problems.get(where + ".latency_p99_ms",
                           lambda: _non_negative(item.get("latency_p99_ms", previous.latency_p99_ms)), 100.0)
        if segments and start <= segments[-1].start:
            problems.add(where + ".from", "must be later than the previous segment's")
        previous = HealthSegment(start, rate, p99)
        segments.append(previous)
    return tuple(segments)


def _rate(value: Any) -> float:
    rate = _non_negative(value)
    if rate > 1:
        raise ValueError("must be between 0 and 1")
    return rate


def _timed_list(data: Mapping[str, Any], key: str, problems: _Problems,
                parse: Callable[[Mapping[str, Any], str], Any]) -> list[Any]:
    items = data.get(key) or []
    if not isinstance(items, list):
        problems.add(key, "must be a list")
        return []
    parsed = []
    for index, item in enumerate(items):
        name = f"{key}[{index}]"
        if not isinstance(item, Mapping):
            problems.add(name, "must be a mapping")
            continue
        value = problems.get(name, lambda: parse(item, name))
        if value is not None:
            parsed.append(value)
    return parsed


MAX_OFFSET = timedelta(days=30)     # the latest moment a scenario can name, from its start


def _offset(text: Any) -> timedelta:
    return parse_duration(text, MAX_OFFSET)


def _at(item: Mapping[str, Any], key: str = "at") -> timedelta:
    if key not in item:
        raise ValueError(f"needs '{key}' (an ISO 8601 offset such as PT7M)")
    return _offset(item[key])


def _alert(item: Mapping[str, Any], name: str, base: Path) -> TimedAlert:
    source = item.get("payload")
    if isinstance(source, Mapping):
        return TimedAlert(_at(item), dict(source), "inline")
    if not isinstance(source, str):
        raise ValueError("payload must be a file path (relative to the scenario) or an inline object")
    path = base / source
    try:
        return TimedAlert(_at(item), json.loads(path.read_text()), source)
    except OSError as exc:
        raise ValueError(f"payload file {source!r} cannot be read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"payload file {source!r} is not JSON: {exc}") from exc


def _control(item: Mapping[str, Any], name: str) -> TimedControl:
    action = item.get("action")
    if action not in CONTROL_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(CONTROL_ACTIONS)}")
    return TimedControl(_at(item), action, str(item.get("reason") or f"{action} requested by scenario"))


def _change(item: Mapping[str, Any], name: str) -> TimedChange:
    traffic = _mapping(item.get("traffic"))
    return TimedChange(_at(item), {str(k): _share(v) for k, v in traffic.items()})


def _fault(item: Mapping[str, Any], name: str) -> Fault:
    operation, error = item.get("operation"), item.get("error")
    if operation not in FAULT_OPERATIONS:
        raise ValueError(f"operation must be one of {', '.join(FAULT_OPERATIONS)}")
    if error not in _FAULT_ERRORS:
        raise ValueError(f"error must be one of {', '.join(_FAULT_ERRORS)}")
    retry_after = item.get("retry_after")
    times = item.get("times")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ValueError("times must be a positive integer")
    return Fault(
        operation=operation, error=_FAULT_ERRORS[error](None if retry_after is None else _non_negative(retry_after)),
        start=_offset(item.get("from", "PT0S")),
        end=_offset(item["until"]) if "until" in item else None, times=times,
    )
