"""The simulated Azure ML deployment lifecycle, composed with a ``SimulatedWorkspace``.

``SimulatedLifecycle`` implements ``LifecyclePort`` (and ``emulator.simulated_autoscale``'s
``SimulatedAutoscale`` ``AutoscalePort``) over the same workspace (its endpoints, deployments,
traffic and clock). Long operations take virtual minutes and complete when the clock passes
their end (checked on every call):

- endpoint creation ``endpoint_minutes`` (default 2), deployment creation ``create_minutes``
  (default 12; Azure documents up to 15), scaling ``scale_minutes`` (default 4), deletion
  ``delete_minutes`` (default 2).

The rules Azure enforces, with its error kinds:

- no deployment is created while the endpoint is not ``Succeeded`` (``Creating``, or ``Updating``
  while a traffic update runs: ``ServiceError`` "Cannot create a deployment in endpoint X because
  it is in Updating provisioning state", as reported in Azure/azure-sdk-for-net#36961);
- no scale of a deployment that is not ``Succeeded``, no delete of one being created or updated
  (``UpdateConflict``, Azure's 409 ``OperationDuplicationConflict``: ``simulated_azure.CONFLICT_TEXT``);
- quota per VM family: a deployment holds ``ceil(1.2 x instances) x vCPUs`` of its family's
  limit (``quota_limits``, default 48 cores a family) and the regional total (default 200); a
  create or scale beyond it fails ``BadRequest`` with the quota text in its detail, on the PUT
  (``quota_failure_on`` "put", default) or in the operation ("operation"): both happen in Azure;
- failure kinds per deployment (``failures``): ``image_build`` (``ImageBuildFailure`` after 8
  minutes), ``crash_loop`` (the container crash-loops: ``ResourceNotReady`` at the end of the
  create), ``out_of_quota`` (whatever the quota says);
- a deployment naming a model or environment the workspace has not registered is refused on the
  PUT (``assets``, ``emulator.simulated_assets``; ``UserError`` "The specified resource was not
  found.", ``ModelNotFound``/``EnvironmentNotFound``); ``name@latest`` resolves to the last version;
- a deployment with live or mirror traffic cannot be deleted (``ServiceError``, before anything);
- autoscale settings as the service validates them (``emulator.simulated_autoscale``).

A scenario's ``lifecycle`` section is parsed in ``emulator.lifecycle_world`` and applied by
``configure``. Container logs (``get_logs``) are synthetic per deployment and container type; a failed
deployment's show why (a traceback for a crash loop, the build error for an image build).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable, Mapping

from emulator.simulated_assets import AssetRegistry

if TYPE_CHECKING:
    from emulator.lifecycle_world import LifecycleWorld
from emulator.simulated_azure import IN_PROGRESS, SimulatedEndpoint, SimulatedWorkspace, conflict
from rollout.capacity import TOTAL_DEDICATED, QuotaUsage, VmSize, family_key, quota_cores
from rollout.deployment_spec import (
    AssetRef,
    DeploymentSpec,
    EndpointSpec,
    InlineEnvironment,
    ObservedDeployment,
)
from rollout.errors import ResourceNotFound, ServiceError
from rollout.model import DeploymentState, WorkspaceRef, normalize_traffic
from rollout.operation import NOT_FOUND, Observed, OperationStart

VM_SIZES: Mapping[str, VmSize] = {size.name.lower(): size for size in (
    VmSize("Standard_DS2_v2", "standardDSv2Family", 2),
    VmSize("Standard_DS3_v2", "standardDSv2Family", 4),
    VmSize("Standard_DS4_v2", "standardDSv2Family", 8),
    VmSize("Standard_F2s_v2", "standardFSv2Family", 2),
    VmSize("Standard_F4s_v2", "standardFSv2Family", 4),
    VmSize("Standard_F8s_v2", "standardFSv2Family", 8),
    VmSize("Standard_E4s_v3", "standardESv3Family", 4),
    VmSize("Standard_NC6s_v3", "standardNCSv3Family", 6),
)}
FAILURE_KINDS = ("image_build", "crash_loop", "out_of_quota")
FAMILY_LINE = "Standard {key} Family Cluster Dedicated vCPUs"


@dataclass
class _Operation:
    """One long operation in flight: ends at ``ends_at`` with ``outcome`` (Succeeded or Failed) and ``apply``."""

    url: str
    ends_at: datetime
    outcome: str
    apply: Callable[[], None]
    error: tuple[str, str] | None = None
    done: bool = False


@dataclass
class _DeploymentInfo:
    """What the simulation knows of a deployment beyond ``DeploymentState``: its spec and its logs."""

    observed: ObservedDeployment | None = None
    logs: dict[str, list[str]] = field(default_factory=dict)


def _family_name(size: VmSize) -> str:
    key = size.family[len("standard"):-len("family")] if size.family.lower().startswith("standard") else size.family
    return FAMILY_LINE.format(key=key)


class SimulatedLifecycle:
    """``LifecyclePort`` over a simulated workspace; thread-safe through the workspace's lock."""

    def __init__(self, workspace: SimulatedWorkspace, location: str = "eastus", *,
                 create_minutes: float = 12, scale_minutes: float = 4, delete_minutes: float = 2,
                 endpoint_minutes: float = 2, quota_limits: Mapping[str, int] | None = None,
                 total_limit: int = 200, quota_failure_on: str = "put") -> None:
        self.workspace = workspace
        self._location = location
        self.durations = {"create": timedelta(minutes=create_minutes), "scale": timedelta(minutes=scale_minutes),
                          "delete": timedelta(minutes=delete_minutes), "endpoint": timedelta(minutes=endpoint_minutes)}
        self.quota_limits = {family_key(k): v for k, v in (quota_limits or {}).items()}
        self.default_family_limit = 48
        self.total_limit = total_limit
        self.quota_failure_on = quota_failure_on
        self.failures: dict[str, str] = {}
        self.assets: AssetRegistry | None = None
        """The workspace's registered models and environments (``emulator.simulated_assets``); None: unchecked."""
        self.info: dict[tuple[str, str], _DeploymentInfo] = {}
        self.operations: dict[str, _Operation] = {}
        self.writes: list[tuple[str, str, str]] = []
        """Every write Azure would have received: (operation, endpoint, deployment)."""
        self.pending: dict[tuple[str, str], int] = {}
        """Instance counts of scale operations in flight (their quota is held from the start)."""
        self._ids = itertools.count(1)

    # --- clock ----------------------------------------------------------------------------------

    def _tick(self) -> None:
        """Complete every operation whose end has passed, in order."""
        now = self.workspace.now()
        for operation in sorted(self.operations.values(), key=lambda o: o.ends_at):
            if not operation.done and operation.ends_at <= now:
                operation.done = True
                operation.apply()

    def _start(self, kind: str, outcome: str, apply: Callable[[], None], error: tuple[str, str] | None = None,
               after: timedelta | None = None) -> str:
        url = f"sim://operations/{kind}/{next(self._ids)}"
        self.operations[url] = _Operation(url, self.workspace.now() + (after or self.durations[kind]), outcome, apply,
                                          error)
        return url

    def _endpoint(self, name: str) -> SimulatedEndpoint:
        return self.workspace.endpoint(name)

    # --- quota ----------------------------------------------------------------------------------

    def _held(self) -> dict[str, int]:
        """Cores held per family key (and "total"), by every deployment of every endpoint."""
        held: dict[str, int] = {"total": 0}
        for endpoint in self.workspace.endpoints.values():
            for deployment in endpoint.deployments.values():
                size = VM_SIZES.get((deployment.instance_type or "").lower())
                if size is None:
                    continue
                count = max(deployment.instance_count, self.pending.get((endpoint.name, deployment.name), 0))
                cores = quota_cores(count, size.vcpus)
                held[family_key(size.family)] = held.get(family_key(size.family), 0) + cores
                held["total"] += cores
        return held

    def _family_limit(self, size: VmSize) -> int:
        return self.quota_limits.get(family_key(size.family), self.default_family_limit)

    def _quota_error(self, size: VmSize, extra_cores: int) -> tuple[str, str] | None:
        """Azure's OutOfQuota error when ``extra_cores`` more of ``size``'s family do not fit."""
        held = self._held()
        family, limit = held.get(family_key(size.family), 0), self._family_limit(size)
        if family + extra_cores <= limit and held["total"] + extra_cores <= self.total_limit:
            return None
        detail = (f"InferencingClient HttpRequest error, error detail: {{\"errors\":{{\"VmSize\":[\"Not enough quota "
                  f"available for {size.name} in SubscriptionId {self.workspace.workspace.subscription_id}. Current "
                  f"usage/limit: {family}/{limit}. Additional needed: {extra_cores} Please see troubleshooting guide, "
                  f"available here: https://aka.ms/oe-tsg#error-outofquota\"]}}}}")
        return "BadRequest", f"The request is invalid. (InferencingClientCreateDeploymentFailed: {detail})"

    def quota_usages(self) -> list[QuotaUsage]:
        with self.workspace.lock:
            self._tick()
            held = self._held()
            lines = [QuotaUsage(TOTAL_DEDICATED, held["total"], self.total_limit)]
            seen = set()
            for size in VM_SIZES.values():
                key = family_key(size.family)
                if key not in seen:
                    seen.add(key)
                    lines.append(QuotaUsage(_family_name(size), held.get(key, 0), self._family_limit(size)))
            return lines

    def vm_size(self, instance_type: str) -> VmSize | None:
        return VM_SIZES.get(instance_type.lower())

    def location(self) -> str:
        return self._location

    def arm_workspace(self) -> WorkspaceRef:
        return self.workspace.workspace

    # --- endpoints ------------------------------------------------------------------------------

    def begin_create_endpoint(self, endpoint: str, spec: EndpointSpec) -> OperationStart:
        with self.workspace.lock:
            self._tick()
            if endpoint.lower() in self.workspace.endpoints:
                return OperationStart(False, None, f"endpoint {endpoint!r} exists")
            created = self.workspace.add_endpoint(endpoint, [], {})
            created.provisioning_state = "Creating"
            created.auth_mode, created.description = spec.auth_mode, spec.description
            self.writes.append(("create_endpoint", endpoint.lower(), ""))

            def finish() -> None:
                created.provisioning_state = "Succeeded"
            return OperationStart(True, self._start("endpoint", "Succeeded", finish))

    def endpoint_status(self, endpoint: str, operation_url: str | None = None) -> Observed:
        with self.workspace.lock:
            self._tick()
            found = self.workspace.endpoints.get(endpoint.lower())
            return Observed(NOT_FOUND) if found is None else Observed(found.provisioning_state)

    # --- deployments ----------------------------------------------------------------------------

    def read_deployment(self, endpoint: str, deployment: str) -> ObservedDeployment | None:
        with self.workspace.lock:
            self._tick()
            found = self._endpoint(endpoint).deployments.get(deployment.lower())
            if found is None:
                return None
            info = self.info.get((endpoint.lower(), deployment.lower()))
            if info is not None and info.observed is not None:
                return _as_azure_returns(info.observed, self.workspace.workspace)
            # Made by the scenario, not from a spec: its assets are unknown (a spec never matches it).
            return _as_azure_returns(ObservedDeployment("azureml:unknown-model:0", "azureml:unknown-environment:0",
                                                        found.instance_type or ""), self.workspace.workspace)

    def begin_create_deployment(self, endpoint: str, deployment: str, spec: DeploymentSpec) -> OperationStart:
        with self.workspace.lock:
            self._tick()
            target = self._endpoint(endpoint)
            name = deployment.lower()
            if name in target.deployments:
                return OperationStart(False, None, f"deployment {deployment!r} exists")
            if target.provisioning_state != "Succeeded":
                raise ServiceError(f"BadRequest: Cannot create a deployment in endpoint {target.name} because it is in "
                                   f"{target.provisioning_state} provisioning state.")
            spec = self._with_registered_assets(spec)
            size = VM_SIZES.get(spec.instance_type.lower())
            if size is None:
                raise ServiceError(f"BadArgument: instance type {spec.instance_type} is not supported for managed online "
                                   "endpoints in this region")
            failure = self.failures.get(name)
            quota = self._quota_error(size, quota_cores(spec.instance_count, size.vcpus))
            if quota is not None and self.quota_failure_on == "put":
                raise ServiceError(f"{quota[0]}: {quota[1]}")
            self.writes.append(("create", target.name, name))
            target.deployments[name] = DeploymentState(name, "Creating", spec.instance_count, spec.instance_type)
            self.info[(target.name, name)] = _DeploymentInfo(_observed(spec), _healthy_logs(name))
            outcome, error, after = "Succeeded", None, None
            if quota is not None:
                outcome, error, after = "Failed", quota, timedelta(minutes=1)
            elif failure == "image_build":
                outcome, after = "Failed", timedelta(minutes=8)
                error = ("ImageBuildFailure", "Image build failed. Please check the build log under the storage account "
                         "'simstorage' in the container 'azureml' at the path 'ImageLogs/sim/build.log'.")
            elif failure == "crash_loop":
                outcome = "Failed"
                error = ("ResourceNotReady", "User container has crashed or terminated. Please see troubleshooting guide, "
                         "available here: https://aka.ms/oe-tsg#error-resourcenotready")
            info = self.info[(target.name, name)]
            if failure in ("image_build", "crash_loop"):
                info.logs = _failed_logs(name, failure)

            def finish() -> None:
                current = target.deployments.get(name)
                if current is not None:
                    state = "Succeeded" if outcome == "Succeeded" else "Failed"
                    count = current.instance_count if outcome == "Succeeded" else 0
                    target.deployments[name] = DeploymentState(name, state, count, current.instance_type)
            return OperationStart(True, self._start("create", outcome, finish, error, after))

    def _with_registered_assets(self, spec: DeploymentSpec) -> DeploymentSpec:
        """``spec`` with ``@latest`` resolved; ``ServiceError`` for a model or environment the workspace lacks."""
        if self.assets is None:
            return spec
        name = self.workspace.workspace.workspace_name
        env = spec.environment
        return replace(spec, model=self.assets.resolved(spec.model, name),
                       environment=self.assets.resolved(env, name) if isinstance(env, AssetRef) else env)

    def deployment_status(self, endpoint: str, deployment: str, operation_url: str | None = None) -> Observed:
        with self.workspace.lock:
            self._tick()
            found = self._endpoint(endpoint).deployments.get(deployment.lower())
            if found is None:
                return Observed(NOT_FOUND)
            operation = self.operations.get(operation_url or "")
            if found.provisioning_state in ("Failed", "Canceled") and operation is not None and operation.error:
                return Observed(found.provisioning_state, found.instance_count, *operation.error)
            return Observed(found.provisioning_state, found.instance_count)

    def begin_scale(self, endpoint: str, deployment: str, instance_count: int) -> OperationStart:
        with self.workspace.lock:
            self._tick()
            target = self._endpoint(endpoint)
            current = target.deployments.get(deployment.lower())
            if current is None:
                raise ResourceNotFound("deployment", deployment)
            if current.instance_count == instance_count:
                return OperationStart(False, None, f"{deployment!r} already has {instance_count} instances")
            if current.provisioning_state != "Succeeded":
                raise conflict(self.workspace.workspace, f"deployment {current.name!r} is {current.provisioning_state}")
            size = VM_SIZES.get((current.instance_type or "").lower())
            if size is not None and instance_count > current.instance_count:
                extra = quota_cores(instance_count, size.vcpus) - quota_cores(current.instance_count, size.vcpus)
                quota = self._quota_error(size, extra)
                if quota is not None:
                    raise ServiceError(f"{quota[0]}: {quota[1]}")
            self.writes.append(("scale", target.name, current.name))
            # The new instances hold quota from the start; the count reads back once the update ends.
            target.deployments[current.name] = DeploymentState(current.name, "Updating", current.instance_count,
                                                               current.instance_type)
            self.pending[(target.name, current.name)] = instance_count

            def finish() -> None:
                self.pending.pop((target.name, current.name), None)
                now = target.deployments.get(current.name)
                if now is not None:
                    target.deployments[current.name] = DeploymentState(current.name, "Succeeded", instance_count,
                                                                       now.instance_type)
            return OperationStart(True, self._start("scale", "Succeeded", finish))

    def begin_delete(self, endpoint: str, deployment: str) -> OperationStart:
        with self.workspace.lock:
            self._tick()
            target = self._endpoint(endpoint)
            name = deployment.lower()
            held = {**normalize_traffic(target.mirror_traffic), **normalize_traffic(target.traffic)}.get(name)
            if held:
                raise ServiceError(f"BadRequest: deployment {deployment!r} has {held}% of the traffic; set it to 0 "
                                   "before deleting it")
            current = target.deployments.get(name)
            if current is None:
                return OperationStart(False, None, f"deployment {deployment!r} does not exist")
            if current.provisioning_state == "Deleting":
                return OperationStart(False, None, f"deployment {deployment!r} is being deleted")
            if current.provisioning_state in IN_PROGRESS:
                raise conflict(self.workspace.workspace, f"deployment {current.name!r} is {current.provisioning_state}")
            self.writes.append(("delete", target.name, name))
            target.deployments[name] = DeploymentState(name, "Deleting", current.instance_count, current.instance_type)

            def finish() -> None:
                target.deployments.pop(name, None)
            return OperationStart(True, self._start("delete", "Succeeded", finish))

    def get_logs(self, endpoint: str, deployment: str, lines: int, container_type: str = "inference-server") -> str:
        if container_type not in ("inference-server", "storage-initializer"):
            raise ServiceError(f"Invalid container type '{container_type}'. Supported container types are "
                               "inference-server and storage-initializer")
        with self.workspace.lock:
            self._tick()
            if deployment.lower() not in self._endpoint(endpoint).deployments:
                raise ResourceNotFound("deployment", deployment)
            info = self.info.get((endpoint.lower(), deployment.lower())) or _DeploymentInfo(None, _healthy_logs(deployment))
            kept = info.logs.get(container_type, [])
            return "\n".join(kept[-lines:] if lines > 0 else [])


def _observed(spec: DeploymentSpec) -> ObservedDeployment:
    env = spec.environment
    code = spec.code_configuration
    return ObservedDeployment(
        model=spec.model.text, environment=env.text if isinstance(env, AssetRef) else InlineEnvironment(
            env.image, env.conda_file), instance_type=spec.instance_type,
        code=None if code is None else code.code.text, scoring_script=None if code is None else code.scoring_script,
        request_settings=spec.request_settings, liveness_probe=spec.liveness_probe, readiness_probe=spec.readiness_probe,
        environment_variables=dict(spec.environment_variables or {}), app_insights_enabled=spec.app_insights_enabled)


def _as_azure_returns(observed: ObservedDeployment, workspace: WorkspaceRef) -> ObservedDeployment:
    """Asset ids as Azure returns them: azure-ai-ml sends ``azureml:NAME:VERSION`` as the workspace's ARM id
    (``.../models/NAME/versions/VERSION``) and the service reads that back; other forms stay as sent."""
    def arm(text: str | None, kind: str) -> str | None:
        found = re.fullmatch(r"azureml:([^:@/]+):([^:@/]+)", text or "")
        return text if found is None else f"{workspace.arm_id()}/{kind}/{found[1]}/versions/{found[2]}"
    env = observed.environment
    return replace(observed, model=arm(observed.model, "models") or "", code=arm(observed.code, "codes"),
                   environment=env if isinstance(env, InlineEnvironment) else arm(env, "environments") or "")


def _healthy_logs(name: str) -> dict[str, list[str]]:
    return {
        "storage-initializer": [f"Downloading model for deployment {name}", "Model download completed"],
        "inference-server": ["Azure ML Inferencing HTTP server v1.3.0", "Initializing logger", "Users's init has completed "
                             "successfully", "Scoring timeout is set to 5000", "Listening at: http://0.0.0.0:31311"],
    }


def _failed_logs(name: str, kind: str) -> dict[str, list[str]]:
    if kind == "image_build":
        return {"storage-initializer": [], "inference-server": [
            f"Deployment {name}: the inference server container has not started (image build failed); "
            "see the build log named in the error"]}
    trace = ["Azure ML Inferencing HTTP server v1.3.0", "Initializing logger", "Traceback (most recent call last):",
             '  File "/var/azureml-app/score.py", line 12, in init', "    model = joblib.load(model_path)",
             "FileNotFoundError: [Errno 2] No such file or directory: '/var/azureml-app/azureml-models/model.pkl'",
             "Worker exiting (pid: 42)"]
    return {"storage-initializer": _healthy_logs(name)["storage-initializer"], "inference-server": trace * 20}


def configure(lifecycle: SimulatedLifecycle, world: LifecycleWorld) -> None:
    """Give a simulated lifecycle a scenario's world."""
    lifecycle.durations = {"create": timedelta(minutes=world.create_minutes),
                           "scale": timedelta(minutes=world.scale_minutes),
                           "delete": timedelta(minutes=world.delete_minutes),
                           "endpoint": timedelta(minutes=world.endpoint_minutes)}
    lifecycle.quota_limits = {family_key(k): v for k, v in world.quota.items()}
    lifecycle.total_limit = world.total_quota
    lifecycle.quota_failure_on = world.quota_failure_on
    lifecycle.failures = dict(world.failures)
    lifecycle.assets = world.assets
