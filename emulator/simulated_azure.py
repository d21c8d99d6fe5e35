"""A simulated Azure ML workspace: endpoints that enforce the service's rules, and synthetic metrics.

Rules enforced on every traffic update, as the service does (its error kinds in brackets):
- live traffic values are integers 0..100 that add up to 100, or to 0 when nothing is served
  [ServiceError, 400 BadRequest];
- only existing deployments may hold live or mirror traffic [ServiceError];
- mirror traffic is at most 50 and only to a deployment with no live traffic [ServiceError];
- no update while the endpoint is ``Creating``, ``Updating`` or ``Deleting`` (an update of this
  world keeps it ``Updating`` for ``update_seconds``) [UpdateConflict, 409: Azure's
  ``OperationDuplicationConflict``, ``CONFLICT_TEXT``];
- no live or mirror share above 0 for a deployment being created or deleted [UpdateConflict, 409],
  nor for one whose creation failed [ServiceError, 400: ``FAILED_DEPLOYMENT_TEXT``].
Deployment names are lower-cased, as azure-ai-ml does before sending.

Metrics are synthetic: requests per minute split by the traffic in force at each moment, and
per deployment a piecewise error rate and p99 latency over time; seeded noise on top
(``SyntheticMetrics``).
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from emulator import noise
from rollout.errors import AzureError, ResourceNotFound, ServiceError, TrafficDrift, UpdateConflict
from rollout.model import DeploymentMetrics, DeploymentState, EndpointState, WorkspaceRef, normalize_traffic
from rollout.ports import MetricsPort

if TYPE_CHECKING:
    from emulator.simulated_autoscale import SimulatedAutoscale
    from emulator.simulated_lifecycle import SimulatedLifecycle

# An endpoint set up by a scenario has served its initial traffic this long before the simulation
# starts, as a live endpoint has before anyone rolls out to it: pre-flight measures the old
# deployment over the window before the rollout (its baseline).
SERVED_BEFORE = timedelta(hours=1)

Now = Callable[[], datetime]

IN_PROGRESS = ("Creating", "Updating", "Deleting")
"""Provisioning states of an operation still running: Azure refuses another write to the resource."""
CONFLICT_TEXT = "Conflict of operation, another operation on same entity is already running in workspace {workspace}."
"""Azure's 409 for a write while another operation on the resource runs: error ``Conflict``/"Conflict"
with ``details[0]`` ``OperationDuplicationConflict`` and this text, as azure-core rendered a real
answer in Azure/carnegie-mop ``doc/troubleshooting/model_wrapper/AmlEndpoint.md``."""
FAILED_DEPLOYMENT_TEXT = ("Specified deployment [{deployment}] failed during initial provisioning and is in an "
                          "unrecoverable state. Delete and re-create.")
"""Azure's 400 (``BadRequest``, ``details[0]`` ``InferencingClientCallFailed``) naming a deployment whose
creation failed, as rendered in Azure/carnegie-mop ``doc/troubleshooting/model_wrapper/AmlEndpointDeployment.md``
(the report does not say which write drew it; the world gives it to a traffic share for such a deployment)."""


def conflict(workspace: WorkspaceRef, what: str) -> UpdateConflict:
    """Azure's conflict for a write to ``what`` while another operation on it runs."""
    return UpdateConflict(f"{CONFLICT_TEXT.format(workspace=workspace.workspace_name)} ({what})")


@dataclass(frozen=True)
class HealthSegment:
    """From ``start`` (offset from the simulation's start) on, a deployment answers with these."""

    start: timedelta
    error_rate: float = 0.0
    latency_p99_ms: float = 100.0


@dataclass(frozen=True)
class TrafficChange:
    """One applied traffic update: when, the resulting live and mirror traffic, and who made it."""

    at: datetime
    traffic: Mapping[str, int]
    mirror_traffic: Mapping[str, int]
    by: str


@dataclass
class Fault:
    """Make an operation fail with ``error`` from ``start`` to ``end`` (offsets), ``times`` times at most."""

    operation: str                      # get_endpoint, list_deployments, set_traffic or metrics
    error: AzureError
    start: timedelta = timedelta(0)
    end: timedelta | None = None
    times: int | None = None


@dataclass
class SimulatedEndpoint:
    """One managed online endpoint and its deployments."""

    name: str
    deployments: dict[str, DeploymentState]
    traffic: dict[str, int]
    mirror_traffic: dict[str, int] = field(default_factory=dict)
    provisioning_state: str = "Succeeded"
    busy_until: datetime | None = None
    changes: list[TrafficChange] = field(default_factory=list)
    auth_mode: str = "key"
    description: str | None = None

    def state(self) -> EndpointState:
        return EndpointState(self.name, self.provisioning_state, dict(self.traffic), dict(self.mirror_traffic))


class SimulatedWorkspace:
    """The endpoints of one workspace, on a clock; thread-safe."""

    def __init__(self, workspace: WorkspaceRef, now: Now, update_seconds: float = 0.0) -> None:
        self.workspace = workspace
        self.now = now
        self.started_at = now()
        self.update_seconds = update_seconds
        self.endpoints: dict[str, SimulatedEndpoint] = {}
        self.faults: list[Fault] = []
        self.lock = threading.RLock()

    def add_endpoint(self, name: str, deployments: Sequence[DeploymentState], traffic: Mapping[str, int],
                     mirror_traffic: Mapping[str, int] | None = None) -> SimulatedEndpoint:
        """Create an endpoint; its initial traffic must obey the same rules as any update."""
        endpoint = SimulatedEndpoint(name.lower(), {d.name.lower(): d for d in deployments}, {})
        self.endpoints[endpoint.name] = endpoint
        self._apply(endpoint, traffic, mirror_traffic or {}, by="setup", at=self.now() - SERVED_BEFORE)
        return endpoint

    def endpoint(self, name: str) -> SimulatedEndpoint:
        """The endpoint named (case-insensitive); ``ResourceNotFound`` otherwise. An update of this world
        whose ``update_seconds`` have passed has ended: the endpoint is ``Succeeded`` again."""
        found = self.endpoints.get(name.lower())
        if found is None:
            raise ResourceNotFound("endpoint", name)
        if found.busy_until is not None and self.now() >= found.busy_until:
            found.busy_until = None
            if found.provisioning_state == "Updating":
                found.provisioning_state = "Succeeded"
        return found

    def update_traffic(self, name: str, traffic: Mapping[str, int], mirror_traffic: Mapping[str, int] | None,
                       by: str) -> EndpointState:
        """Apply a traffic update as the service would, refusing what it refuses."""
        with self.lock:
            endpoint = self.endpoint(name)
            now = self.now()
            if endpoint.provisioning_state in IN_PROGRESS:
                raise conflict(self.workspace, f"endpoint {endpoint.name!r} is {endpoint.provisioning_state}")
            mirror = endpoint.mirror_traffic if mirror_traffic is None else mirror_traffic
            _validated(endpoint, traffic, mirror)        # the traffic rules first, then the deployments' states
            self._check_deployment_states(endpoint, traffic, mirror)
            self._apply(endpoint, traffic, mirror, by)
            if self.update_seconds:
                endpoint.busy_until = now + timedelta(seconds=self.update_seconds)
                endpoint.provisioning_state = "Updating"
            return endpoint.state()

    def _check_deployment_states(self, endpoint: SimulatedEndpoint, traffic: Mapping[str, int],
                                 mirror: Mapping[str, int]) -> None:
        """Refuse a share above 0 for a deployment being created or deleted, or whose creation failed."""
        for values in (traffic, mirror):
            for name, share in values.items():
                found = endpoint.deployments[str(name).lower()]
                if share <= 0:
                    continue
                if found.provisioning_state in ("Creating", "Deleting"):
                    raise conflict(self.workspace, f"deployment {found.name!r} is {found.provisioning_state}")
                if found.provisioning_state == "Failed":
                    raise ServiceError("BadRequest: The request is invalid. (InferencingClientCallFailed: "
                                       f"{FAILED_DEPLOYMENT_TEXT.format(deployment=found.name)})")

    def _apply(self, endpoint: SimulatedEndpoint, traffic: Mapping[str, int], mirror: Mapping[str, int],
               by: str, at: datetime | None = None) -> None:
        live, mirrored = _validated(endpoint, traffic, mirror)
        endpoint.traffic, endpoint.mirror_traffic = live, mirrored
        endpoint.changes.append(TrafficChange(self.now() if at is None else at, dict(live), dict(mirrored), by))

    def check_fault(self, operation: str) -> None:
        """Raise the first active fault injected for ``operation``."""
        offset = self.now() - self.started_at
        for fault in self.faults:
            active = fault.start <= offset and (fault.end is None or offset < fault.end)
            if fault.operation == operation and active and (fault.times is None or fault.times > 0):
                if fault.times is not None:
                    fault.times -= 1
                raise fault.error


def _validated(endpoint: SimulatedEndpoint, traffic: Mapping[str, int],
               mirror: Mapping[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    for kind, values in (("traffic", traffic), ("mirror traffic", mirror)):
        for name, share in values.items():
            if isinstance(share, bool) or not isinstance(share, int) or not 0 <= share <= 100:
                raise ServiceError(f"BadRequest: {kind} for {name!r} must be an integer from 0 to 100")
            if name.lower() not in endpoint.deployments:
                raise ServiceError(f"BadRequest: {kind} names deployment {name!r}, which does not exist")
    live, mirrored = normalize_traffic(traffic), normalize_traffic(mirror)
    if sum(live.values()) not in (0, 100):
        raise ServiceError(f"BadRequest: traffic must add up to 100 (or 0), not {sum(live.values())}")
    if len(mirrored) > 1 or sum(mirrored.values()) > 50:
        raise ServiceError("BadRequest: mirror traffic goes to one deployment, at most 50 percent")
    for name in mirrored:
        if live.get(name):
            raise ServiceError(f"BadRequest: {name!r} cannot receive mirror traffic while it has live traffic")
    return live, mirrored


class SimulatedEndpointPort:
    """``EndpointPort`` over a simulated workspace."""

    def __init__(self, workspace: SimulatedWorkspace) -> None:
        self.workspace = workspace

    def get_endpoint(self, endpoint: str) -> EndpointState:
        """The endpoint as it is now."""
        with self.workspace.lock:
            self.workspace.check_fault("get_endpoint")
            return self.workspace.endpoint(endpoint).state()

    def list_deployments(self, endpoint: str) -> list[DeploymentState]:
        """Every deployment behind the endpoint."""
        with self.workspace.lock:
            self.workspace.check_fault("list_deployments")
            return list(self.workspace.endpoint(endpoint).deployments.values())

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int],
                    mirror_traffic: Mapping[str, int] | None = None,
                    expected: Mapping[str, int] | None = None) -> EndpointState:
        """Apply the update (the simulation completes it at once) and read it back; no write when in
        place; ``TrafficDrift`` and no write when traffic is neither as asked nor as ``expected``.
        It reads the endpoint first, as azure-ai-ml does, so a ``get_endpoint`` fault fails it too."""
        with self.workspace.lock:
            self.workspace.check_fault("get_endpoint")
            current = self.workspace.endpoint(endpoint)
            in_place = normalize_traffic(current.traffic) == normalize_traffic(traffic) and (
                mirror_traffic is None or normalize_traffic(current.mirror_traffic) == normalize_traffic(mirror_traffic))
            if in_place:
                return current.state()
            if expected is not None and normalize_traffic(current.traffic) != normalize_traffic(expected):
                raise TrafficDrift(current.state())
            self.workspace.check_fault("set_traffic")
            self.workspace.update_traffic(endpoint, traffic, mirror_traffic, by="aml-rollout")
            return self.workspace.endpoint(endpoint).state()


class SyntheticMetrics:
    """``MetricsPort`` computing what each deployment served from the traffic history.

    Requests arrive at ``requests_per_minute``; each deployment gets its live share, with the
    error rate and p99 in force. With a ``seed`` (what scenarios use) the counts are noisy, as
    real ones are: per deployment and whole minute of the simulation, requests are Poisson
    around the expected count, errors binomial at the minute's error rate and the measured p99
    log-normal around the p99 in force (``emulator.noise``); each minute's draw depends only on
    the seed, the deployment and the minute, so any query sees the same minutes and a run
    reproduces. A query covering part of a minute gets a binomial thinning of that minute.
    With ``seed=None`` the counts are the exact expectations (errors = rate x requests).
    Mirrored requests are not counted (Azure does not document that its per-deployment metrics
    include them); ``count_mirrored`` True counts a deployment's mirror share as well, for a
    scenario that assumes they are (``lifecycle.mirror_in_metrics``).
    """

    count_mirrored = False

    def __init__(self, workspace: SimulatedWorkspace, requests_per_minute: float,
                 health: Mapping[str, Sequence[HealthSegment]], seed: int | None = None) -> None:
        self.workspace = workspace
        self.requests_per_minute = requests_per_minute
        self.health = {name.lower(): sorted(segments, key=lambda s: s.start) for name, segments in health.items()}
        self.seed = seed

    def deployment_metrics(self, endpoint: str, deployments: Sequence[str], start: datetime,
                           end: datetime) -> dict[str, DeploymentMetrics]:
        """What each named deployment served in [start, end), in whole requests."""
        with self.workspace.lock:
            self.workspace.check_fault("metrics")
        found = {}
        for name in deployments:
            requests, errors, p99 = self.served(endpoint, name, start, end)
            found[name] = DeploymentMetrics(int(round(requests)), int(round(errors)), p99)
        return found

    def served(self, endpoint: str, deployment: str, start: datetime, end: datetime) -> tuple[float, float, float | None]:
        """Requests and errors and the highest (measured) p99 while ``deployment`` served in
        [start, end); no faults apply. Whole numbers with a seed, exact expectations (not rounded)
        without. The fake Azure of the tests answers metric queries from it."""
        if self.seed is None:
            return self.expected(endpoint, deployment, start, end)
        origin = self.workspace.started_at
        first = math.floor((start - origin).total_seconds() / 60)
        requests = errors = 0
        p99: float | None = None
        minute = first
        while origin + timedelta(minutes=minute) < end:
            lo, hi = origin + timedelta(minutes=minute), origin + timedelta(minutes=minute + 1)
            served, failed, measured = self._minute(endpoint, deployment, minute)
            part_lo, part_hi = max(lo, start), min(hi, end)
            if served and (part_lo, part_hi) != (lo, hi):
                rng = random.Random(f"{self.seed}:{deployment.lower()}:{minute}:{part_lo}:{part_hi}")
                kept = noise.binomial(rng, served, (part_hi - part_lo) / (hi - lo))
                failed, served = noise.binomial(rng, failed, kept / served), kept
            requests, errors = requests + served, errors + failed
            if served and measured is not None:
                p99 = measured if p99 is None else max(p99, measured)
            minute += 1
        return float(requests), float(errors), p99

    def _minute(self, endpoint: str, deployment: str, minute: int) -> tuple[int, int, float | None]:
        """One whole minute's noisy requests, errors and measured p99, drawn from its own seed."""
        lo = self.workspace.started_at + timedelta(minutes=minute)
        requests, errors, p99 = self.expected(endpoint, deployment, lo, lo + timedelta(minutes=1))
        rng = random.Random(f"{self.seed}:{deployment.lower()}:{minute}")
        served = noise.poisson(rng, requests)
        failed = noise.binomial(rng, served, errors / requests) if requests else 0
        return served, failed, None if p99 is None or not served else noise.latency(rng, p99)

    def expected(self, endpoint: str, deployment: str, start: datetime, end: datetime) -> tuple[float, float, float | None]:
        """Expected requests and errors (not rounded) and the highest p99 in force while
        ``deployment`` served in [start, end)."""
        with self.workspace.lock:
            changes = list(self.workspace.endpoint(endpoint).changes)
        name = deployment.lower()
        requests = errors = 0.0
        p99: float | None = None
        for seg_start, seg_end, share in _share_periods(name, changes, start, end, self.count_mirrored):
            for h_start, h_end, segment in self._health_periods(name, seg_start, seg_end):
                served = self.requests_per_minute * share / 100 * (h_end - h_start).total_seconds() / 60
                if served <= 0:
                    continue
                requests += served
                errors += served * segment.error_rate
                p99 = segment.latency_p99_ms if p99 is None else max(p99, segment.latency_p99_ms)
        return requests, errors, p99

    def _health_periods(self, name: str, start: datetime, end: datetime):
        segments = self.health.get(name) or [HealthSegment(timedelta(0))]
        origin = self.workspace.started_at
        for index, segment in enumerate(segments):
            # The first segment also covers anything before its start.
            seg_start = origin + segment.start if index else min(start, origin + segment.start)
            seg_end = origin + segments[index + 1].start if index + 1 < len(segments) else end
            lo, hi = max(start, seg_start), min(end, seg_end)
            if lo < hi:
                yield lo, hi, segment


def _share_periods(name: str, changes: Sequence[TrafficChange], start: datetime, end: datetime,
                   mirrored: bool = False):
    """(from, to, share) for ``name`` over [start, end), from the traffic history: its live share,
    plus its mirror share when ``mirrored``."""
    for index, change in enumerate(changes):
        next_at = changes[index + 1].at if index + 1 < len(changes) else end
        lo, hi = max(start, change.at), min(end, next_at)
        if lo < hi:
            yield lo, hi, change.traffic.get(name, 0) + (change.mirror_traffic.get(name, 0) if mirrored else 0)


class SimulatedBackend:
    """``Backend`` serving one simulated workspace (any workspace argument maps to it)."""

    def __init__(self, workspace: SimulatedWorkspace, metrics: MetricsPort) -> None:
        self.workspace = workspace
        self._endpoints = SimulatedEndpointPort(workspace)
        self._metrics = metrics
        self._lifecycle: SimulatedLifecycle | None = None
        self._autoscale: SimulatedAutoscale | None = None

    def endpoints(self, workspace: WorkspaceRef | None) -> SimulatedEndpointPort:
        self._check(workspace)
        return self._endpoints

    def metrics(self, workspace: WorkspaceRef | None, source: str) -> MetricsPort:
        self._check(workspace)
        return self._metrics

    def lifecycle(self, workspace: WorkspaceRef | None) -> SimulatedLifecycle:
        """The deployment lifecycle of the workspace (``emulator.simulated_lifecycle``), made on first use."""
        self._check(workspace)
        if self._lifecycle is None:
            from emulator.simulated_lifecycle import SimulatedLifecycle

            self._lifecycle = SimulatedLifecycle(self.workspace)
        return self._lifecycle

    def autoscale(self, workspace: WorkspaceRef | None) -> SimulatedAutoscale:
        """The workspace's autoscale settings (``emulator.simulated_autoscale``), made on first use."""
        self._check(workspace)
        if self._autoscale is None:
            from emulator.simulated_autoscale import SimulatedAutoscale

            self._autoscale = SimulatedAutoscale(self.workspace)
        return self._autoscale

    def _check(self, workspace: WorkspaceRef | None) -> None:
        if workspace is not None and workspace != self.workspace.workspace:
            raise ResourceNotFound("workspace", workspace.workspace_name)
