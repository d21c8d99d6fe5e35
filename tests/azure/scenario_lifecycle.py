"""The deployment lifecycle's REST surface for ``ScenarioAzure``, served from the scenario's simulated world.

``LifecycleRoutes`` is a ``FakeAzure`` whose lifecycle requests go to the world's own
``SimulatedLifecycle`` and ``SimulatedAutoscale`` (``emulator/simulated_lifecycle.py``,
``emulator/simulated_autoscale.py``): the same rules, durations, quota, failures and logs as the
in-memory run, on the same virtual clock. This layer only translates between Azure's REST shapes and
those calls (``tests/azure/scenario_rest.py``):

- **Endpoint create** (PUT of a missing endpoint; body needs ``location`` and ``authMode``):
  ``begin_create_endpoint`` with the SDK's ``authMode`` mapped back (``AADToken`` -> ``aad_token``);
  201 + ``Azure-AsyncOperation``.
- **Deployment create** (PUT of a missing deployment): the body (``properties.model``,
  ``environmentId``, ``codeConfiguration``, ``instanceType``, ``sku.capacity``, probes, request
  settings; ``endpointComputeType`` must be ``Managed``) becomes a ``DeploymentSpec`` (an
  anonymous environment is read back from the version the SDK PUT before) for
  ``begin_create_deployment``; 201 + ``Azure-AsyncOperation``. Refused with 400 while the
  endpoint is not ``Succeeded`` or a traffic update of this fake is still in progress, as the
  world refuses it. The deployment's GET then serves the body as sent, with the world's
  ``provisioningState`` and ``sku.capacity`` (and ``scaleSettings``, which Azure always returns).
- **Deployment scale** (PUT of an existing deployment changing nothing but ``sku.capacity``: 201 +
  ``Azure-AsyncOperation``; or PATCH ``{"sku": {"capacity"}}``: 202 + ``Location``): ``begin_scale``;
  any other change is refused (the world models no rolling update). Same count: 200, nothing started.
- **Deployment delete**: ``begin_delete`` (refused while it holds live or mirror traffic); 202 +
  ``Location`` (``mfeOperationResults``, integer ``Retry-After``), 202 while the world's deletion
  runs, then 200; a deployment already gone: 204.
- **Operations** (``mfeOperationsStatus``): ``InProgress`` until the world's operation ends on the
  virtual clock, then ``Succeeded`` or ``Failed`` with Azure's error body: ``{code, message}``,
  and for ``OutOfQuota`` code ``BadRequest`` with the quota text in ``details[0]`` (code
  ``InferencingClientCreateDeploymentFailed``), on the PUT's 400 or in the operation.
- **Asset versions** (GET ``models/{name}/versions``, ``environments/{name}/versions``): the
  world's registry (``SimulatedLifecycle.assets``), newest first, as azure-ai-ml lists them to
  resolve ``name@latest``; an empty list for a name the workspace lacks.
- **getLogs** (POST, ``containerType`` ``InferenceServer``/``StorageInitializer``, ``tail``):
  ``get_logs``; 200 ``{"content"}``.
- **Region reads**: ``usages`` and ``vmSizes`` of the world's region (another region: 400),
  rendered from ``quota_usages`` and ``VM_SIZES`` in the REST spec's shapes.
- **Autoscale settings** (PUT/GET/DELETE ``Microsoft.Insights/autoscalesettings``): the world's
  ``SimulatedAutoscale``, validated as it validates (400 ``BadRequest``), synchronous.

Every lifecycle request first lets the world complete the operations whose end the virtual
clock has passed, as every in-memory lifecycle call does.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any, Callable

from emulator.simulated_azure import SimulatedBackend
from emulator.simulated_lifecycle import VM_SIZES, SimulatedLifecycle
from rollout.capacity import TOTAL_DEDICATED
from rollout.deployment_spec import EndpointSpec
from rollout.errors import AzureError
from tests.azure.fake_azure import _EP, _WS, FakeAzure, Reply, arm_error, fixture
from tests.azure.scenario_rest import AUTH_MODES, CONTAINER_TYPES, deployment_spec, lifecycle_error, world_error_reply

_REGION = r"^/subscriptions/(?P<sub>[^/]+)/providers/microsoft\.machinelearningservices/locations/(?P<loc>[^/]+)"
_AUTOSCALE = (r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.insights"
              r"/autoscalesettings/(?P<name>[^/]+)$")
class LifecycleRoutes(FakeAzure):
    """The lifecycle routes over ``world`` (set by ``ScenarioAzure.load``); see the module docstring."""

    world: SimulatedBackend | None

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self.world_operations: dict[str, str] = {}
            """mfe token -> the world's operation URL."""
            self.deployment_bodies: dict[str, dict[str, Any]] = {}
            """Deployment path -> the body its create PUT sent (what its GET serves back)."""

    def _lifecycle_routes(self) -> list[tuple[str, str, Callable[..., Reply]]]:
        dep = _EP + "/deployments/(?P<dep>[^/]+)$"
        return [
            ("PUT", dep, self._put_deployment_lifecycle),
            ("PATCH", dep, self._patch_deployment),
            ("DELETE", dep, self._delete_deployment),
            ("POST", _EP + "/deployments/(?P<dep>[^/]+)/getlogs$", self._get_logs),
            ("GET", _REGION + r"/mfeoperationresults/(?P<op>[^/]+)$", self._operation_result),
            ("GET", _REGION + "/usages$", self._usages),
            ("GET", _REGION + "/vmsizes$", self._vm_sizes),
            ("GET", _WS + "/environments/(?P<env>[^/]+)/versions/(?P<ver>[^/]+)$", self._get_environment_version),
            ("GET", _WS + "/(?P<kind>models|environments)/(?P<name>[^/]+)/versions$", self._list_asset_versions),
            ("PUT", _AUTOSCALE, self._put_autoscale),
            ("GET", _AUTOSCALE, self._get_autoscale),
            ("DELETE", _AUTOSCALE, self._delete_autoscale),
        ]

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        if self.world is not None and not path.startswith(self.anonymous_prefixes):
            self._lifecycle()     # the world first completes what the virtual clock has ended
        return super()._route(method, path, query, body)

    def _lifecycle(self) -> SimulatedLifecycle:
        """The world's lifecycle, with every operation whose end has passed completed."""
        assert self.world is not None
        lifecycle = self.world.lifecycle(None)
        with self.world.workspace.lock:
            lifecycle._tick()
        return lifecycle

    def _operation_headers(self, sim_url: str | None, sub: str, location: str, query: dict[str, str],
                           kind: str = "mfeOperationsStatus") -> dict[str, str]:
        """The header naming the world's operation: ``Azure-AsyncOperation`` or (deletes) ``Location``."""
        token = f"oeidp:{uuid.uuid4()}"
        self.world_operations[token] = sim_url or ""
        url = (f"{self.base_url}/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/locations/{location}/"
               f"{kind}/{token}?api-version={query.get('api-version')}")
        if kind == "mfeOperationResults":
            return {"Location": url, "Retry-After": "1"}
        # The SDK's own poller polls in the background on the real clock: once a second is plenty.
        return {"Azure-AsyncOperation": url, "x-ms-async-operation-timeout": "PT2H", "x-ms-retry-after-ms": "1000"}

    def _world_operation(self, op: str) -> tuple[str, tuple[str, str] | None] | None:
        """(status, error) of the world's operation behind token ``op``; None when not the world's."""
        sim_url = self.world_operations.get(op)
        if sim_url is None:
            return None
        found = self._lifecycle().operations.get(sim_url)
        if found is None or not found.done:
            return "InProgress", None
        return found.outcome, found.error

    def _get_operation(self, op: str, **kw: Any) -> Reply:
        state = self._world_operation(op) if self.world is not None else None
        if state is None:
            return super()._get_operation(op=op, **kw)
        status, error = state
        if status == "InProgress":
            return 200, {**fixture("mfeOperationsStatus_InProgress.SYNTHETIC.json"), "id": op, "name": op}, {}
        body: dict[str, Any] = {"id": op, "name": op, "status": status}
        if error is not None:
            body["error"] = lifecycle_error(*error)
        return 200, body, {}

    def _operation_result(self, op: str, **_: Any) -> Reply:
        state = self._world_operation(op)
        if state is None:
            return 404, arm_error("NotFound", "No such operation."), {}
        if state[0] == "InProgress":
            return 202, None, {"Retry-After": "1"}
        if state[1] is not None:
            return 400, {"error": lifecycle_error(*state[1])}, {}
        return 200, None, {}

    # ---- endpoints ---------------------------------------------------------------------------

    def _create_endpoint(self, path: str, sub: str, ep: str, query: dict[str, str], body: Any) -> Reply:
        """PUT of an endpoint that does not exist: the world creates it (``Creating`` for virtual minutes)."""
        assert self.world is not None
        props = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict) or "location" not in body or "authMode" not in props:
            return 400, arm_error("BadArgument", "The request body must carry location and properties.authMode."), {}
        mode = AUTH_MODES.get(str(props["authMode"]).lower())
        if mode is None:
            return 400, arm_error("BadArgument", f"authMode {props['authMode']!r} is not Key, AMLToken or AADToken."), {}
        if props.get("traffic") or props.get("mirrorTraffic"):
            return 400, arm_error("BadArgument", "Traffic can be set only once the endpoint's deployments exist."), {}
        try:
            start = self._lifecycle().begin_create_endpoint(ep, EndpointSpec(mode, props.get("description")))
        except AzureError as error:
            return world_error_reply(error)
        created = fixture("endpoint_get_200.SYNTHETIC.json")
        ws = self.world.workspace.workspace
        created.update(id=ws.endpoint_id(ep), name=ep, location=body["location"], tags=body.get("tags") or {},
                       identity=body.get("identity") or {"type": "SystemAssigned"})
        created["properties"] = {**created["properties"], **props, "provisioningState": "Creating"}
        self.endpoints[path] = created
        return 201, created, self._operation_headers(start.operation_url, sub, body["location"], query)

    # ---- deployments -------------------------------------------------------------------------

    def _deployment_body(self, endpoint_path: str, deployment: Any) -> dict[str, Any]:
        """The body the create PUT sent, with the world's state; a scenario's own deployment from the fixture."""
        sent = self.deployment_bodies.get(f"{endpoint_path}/deployments/{deployment.name}")
        if sent is None:
            return self._fixture_deployment(endpoint_path, deployment)
        body = copy.deepcopy(sent)
        body["sku"]["capacity"] = deployment.instance_count
        body["properties"]["provisioningState"] = deployment.provisioning_state
        return body

    def _fixture_deployment(self, endpoint_path: str, deployment: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _world_deployment(self, endpoint_path: str, dep: str) -> Any:
        assert self.world is not None
        if endpoint_path not in self.endpoints:
            return None
        return self.world.workspace.endpoint(self.endpoints[endpoint_path]["name"]).deployments.get(dep)

    def _put_deployment_lifecycle(self, path: str, sub: str, ep: str, dep: str, query: dict[str, str], body: Any,
                                  **_: Any) -> Reply:
        endpoint_path = path.rsplit("/deployments/", 1)[0]
        if endpoint_path not in self.endpoints:
            return 404, arm_error("UserError", f"Could not find online endpoint '{ep}'."), {}
        self._lifecycle()
        current = self._world_deployment(endpoint_path, dep)
        if current is not None:
            return self._update_deployment(endpoint_path, dep, sub, query, current, body)
        if self._busy(endpoint_path):   # this fake's own traffic update still running
            return 400, arm_error("BadRequest", f"Cannot create a deployment in endpoint {ep} because it is in "
                                                "Updating provisioning state."), {}
        try:
            spec = deployment_spec(body, self.environments)
        except (KeyError, TypeError, ValueError) as problem:
            return 400, arm_error("BadArgument", f"The deployment body is not valid: {problem}"), {}
        try:
            start = self._lifecycle().begin_create_deployment(ep, dep, spec)
        except AzureError as error:
            return world_error_reply(error)
        ws = self.scenario_workspace()
        stored = {"id": f"{ws.endpoint_id(ep)}/deployments/{dep}", "name": dep,
                  "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
                  "location": body["location"], "kind": "Managed", "tags": body.get("tags") or {},
                  "sku": {**body["sku"], "tier": "Standard"},
                  "properties": {**copy.deepcopy(body["properties"]), "scaleSettings": {"scaleType": "Default"},
                                 "provisioningState": "Creating"}}
        self.deployment_bodies[path] = stored
        reply = self._deployment_body(endpoint_path, self._world_deployment(endpoint_path, dep))
        return 201, reply, self._operation_headers(start.operation_url, sub, body["location"], query)

    def scenario_workspace(self) -> Any:
        assert self.world is not None
        return self.world.workspace.workspace

    def _update_deployment(self, endpoint_path: str, dep: str, sub: str, query: dict[str, str], current: Any,
                           body: Any) -> Reply:
        """A PUT of an existing deployment: only a new ``sku.capacity`` is modelled (a scale)."""
        served = self._deployment_body(endpoint_path, current)
        sent = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(sent, dict):
            return 400, arm_error("BadArgument", "The request body must carry properties."), {}
        changed = [k for k in ("instanceType", "model", "environmentId", "codeConfiguration")
                   if k in served["properties"] and sent.get(k) != served["properties"][k]]
        if changed:
            return 400, arm_error("BadArgument", f"the scenario fake only scales an existing deployment; the PUT "
                                                 f"changes {', '.join(changed)}"), {}
        return self._scale(endpoint_path, dep, sub, query, (body.get("sku") or {}).get("capacity"), served)

    def _patch_deployment(self, path: str, sub: str, dep: str, query: dict[str, str], body: Any, **_: Any) -> Reply:
        endpoint_path = path.rsplit("/deployments/", 1)[0]
        current = self._world_deployment(endpoint_path, dep) if self.world is not None else None
        if current is None:
            return 404, arm_error("UserError", f"Could not find online deployment '{dep}'."), {}
        if set((body or {}).keys()) - {"sku", "tags"}:
            return 400, arm_error("BadArgument", "the scenario fake patches sku.capacity only"), {}
        served = self._deployment_body(endpoint_path, current)
        return self._scale(endpoint_path, dep, sub, query, ((body or {}).get("sku") or {}).get("capacity"), served,
                           patch=True)

    def _scale(self, endpoint_path: str, dep: str, sub: str, query: dict[str, str], capacity: Any,
               served: dict[str, Any], patch: bool = False) -> Reply:
        """Scale through the world: a PUT answers 201 + ``Azure-AsyncOperation``, a PATCH 202 + ``Location``."""
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            return 400, arm_error("BadArgument", f"sku.capacity must be an integer of at least 1, not {capacity!r}"), {}
        try:
            start = self._lifecycle().begin_scale(self.endpoints[endpoint_path]["name"], dep, capacity)
        except AzureError as error:
            return world_error_reply(error)
        reply = self._deployment_body(endpoint_path, self._world_deployment(endpoint_path, dep))
        if not start.started:
            return 200, reply, {}
        if patch:
            return 202, None, self._operation_headers(start.operation_url, sub, served["location"], query,
                                                      "mfeOperationResults")
        return 201, reply, self._operation_headers(start.operation_url, sub, served["location"], query)

    def _delete_deployment(self, path: str, sub: str, ep: str, dep: str, query: dict[str, str], **_: Any) -> Reply:
        endpoint_path = path.rsplit("/deployments/", 1)[0]
        if endpoint_path not in self.endpoints:
            return 404, arm_error("UserError", f"Could not find online endpoint '{ep}'."), {}
        try:
            start = self._lifecycle().begin_delete(ep, dep)
        except AzureError as error:
            return world_error_reply(error)
        if not start.started:
            return 204, None, {}
        location = self.endpoints[endpoint_path]["location"]
        return 202, None, self._operation_headers(start.operation_url, sub, location, query, "mfeOperationResults")

    def _get_logs(self, ep: str, dep: str, body: Any, **_: Any) -> Reply:
        sent = body if isinstance(body, dict) else {}
        kind = CONTAINER_TYPES.get(str(sent.get("containerType", "InferenceServer")).lower())
        tail = sent.get("tail")
        if kind is None:
            return 400, arm_error("BadArgument", f"containerType {sent.get('containerType')!r} is not InferenceServer "
                                                 "or StorageInitializer."), {}
        if tail is not None and (isinstance(tail, bool) or not isinstance(tail, int)):
            return 400, arm_error("BadArgument", f"tail must be an integer, not {tail!r}"), {}
        try:
            content = self._lifecycle().get_logs(ep, dep, 10**6 if tail is None else tail, kind)
        except AzureError as error:
            return world_error_reply(error)
        return 200, {"content": content}, {}

    def _get_environment_version(self, path: str, env: str, ver: str, **_: Any) -> Reply:
        found = self.environments.get(path)
        return (200, found, {}) if found else (404, arm_error("UserError", f"Environment {env}:{ver} not found."), {})

    def _list_asset_versions(self, kind: str, name: str, query: dict[str, str], **_: Any) -> Reply:
        """The versions of a model or environment the world has registered, newest first (``$top`` cuts them),
        as azure-ai-ml lists them to resolve ``name@latest``; none for a name the workspace lacks."""
        assets = self._lifecycle().assets
        known = () if assets is None else assets.versions.get(kind[:-1], {}).get(name.lower(), ())
        newest = list(reversed(known))[:int(query.get("$top", len(known) or 1))]
        arm = self.scenario_workspace().arm_id()
        image = "mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest"
        props: dict[str, Any] = ({"modelType": "custom_model", "modelUri": f"azureml://models/{name}", "flavors": {}}
                                 if kind == "models" else {"image": image, "osType": "Linux"})
        return 200, {"value": [{"id": f"{arm}/{kind}/{name}/versions/{version}", "name": version,
                                "type": f"Microsoft.MachineLearningServices/workspaces/{kind}/versions",
                                "properties": {**props, "isArchived": False, "isAnonymous": False, "properties": {},
                                               "tags": {}}} for version in newest]}, {}

    # ---- the region ---------------------------------------------------------------------------

    def _region_problem(self, sub: str, loc: str) -> Reply | None:
        ws = self.scenario_workspace()
        if sub != ws.subscription_id.lower():
            return 404, arm_error("SubscriptionNotFound", f"The subscription '{sub}' could not be found."), {}
        if loc != self._lifecycle().location().lower():
            return 400, arm_error("BadRequest", f"the scenario fake serves region {self._lifecycle().location()} "
                                                f"only, not {loc}"), {}
        return None

    def _usages(self, sub: str, loc: str, **_: Any) -> Reply:
        problem = self._region_problem(sub, loc)
        if problem:
            return problem
        value = []
        for usage in self._lifecycle().quota_usages():
            kind = "dedicatedCores" if usage.name == TOTAL_DEDICATED else "vmFamily"
            value.append({"id": f"/subscriptions/{sub}/usages/{usage.name.replace(' ', '_')}",
                          "type": f"Microsoft.MachineLearningServices/{kind}/usages", "unit": "Count",
                          "currentValue": usage.current, "limit": usage.limit,
                          "name": {"value": usage.name, "localizedValue": usage.name}})
        return 200, {"value": value}, {}

    def _vm_sizes(self, sub: str, loc: str, **_: Any) -> Reply:
        problem = self._region_problem(sub, loc)
        if problem:
            return problem
        return 200, {"value": [{"name": s.name, "family": s.family, "vCPUs": s.vcpus, "gpus": 0,
                                "memoryGB": 3.5 * s.vcpus, "lowPriorityCapable": True, "premiumIO": True,
                                "supportedComputeTypes": ["AmlCompute", "ComputeInstance", "MIR"]}
                               for s in VM_SIZES.values()]}, {}

    # ---- autoscale ----------------------------------------------------------------------------

    def _autoscale_problem(self, sub: str, rg: str) -> Reply | None:
        ws = self.scenario_workspace()
        if (sub, rg) != (ws.subscription_id.lower(), ws.resource_group.lower()):
            return 404, arm_error("ResourceGroupNotFound", f"Resource group '{rg}' could not be found."), {}
        return None

    def _autoscale_id(self, sub: str, rg: str, name: str) -> str:
        return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/microsoft.insights/autoscalesettings/{name}"

    def _put_autoscale(self, sub: str, rg: str, name: str, body: Any, **_: Any) -> Reply:
        assert self.world is not None
        problem = self._autoscale_problem(sub, rg)
        if problem:
            return problem
        if not isinstance(body, dict) or "location" not in body:
            return 400, arm_error("BadRequest", "An autoscale setting needs a location and properties."), {}
        settings = self.world.autoscale(None)
        created = settings.get_setting(name) is None
        try:
            stored = settings.put_setting(name, body)
        except AzureError as error:
            return world_error_reply(error)
        return (201 if created else 200), {**stored, "id": self._autoscale_id(sub, rg, name)}, {}

    def _get_autoscale(self, sub: str, rg: str, name: str, **_: Any) -> Reply:
        assert self.world is not None
        found = self._autoscale_problem(sub, rg) is None and self.world.autoscale(None).get_setting(name)
        if not found:
            return 404, arm_error("ResourceNotFound", f"The autoscale setting {name} was not found."), {}
        return 200, {**found, "id": self._autoscale_id(sub, rg, name)}, {}

    def _delete_autoscale(self, sub: str, rg: str, name: str, **_: Any) -> Reply:
        assert self.world is not None
        problem = self._autoscale_problem(sub, rg)
        if problem:
            return problem
        settings = self.world.autoscale(None)
        existed = settings.get_setting(name) is not None
        settings.delete_setting(name)
        return (200 if existed else 204), None, {}
