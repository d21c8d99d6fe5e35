"""The fake Azure, extended with what the deployment lifecycle calls (a subclass: the base stays as it is).

Added routes, in the REST API's shapes (bodies from ``fixtures/``):

- endpoint PUT of a missing endpoint: created (``Creating``), 201 + ``Azure-AsyncOperation``;
- deployment PUT of a missing deployment: created (``Creating``) with the body's properties and
  ``scaleSettings`` (the service always returns it; azure-ai-ml fails without it); refused with 400
  while the endpoint is ``Updating``/``Creating``, as Azure refuses it;
- environment version PUT/GET (the anonymous environment azure-ai-ml registers for an inline one);
- deployment DELETE: 202 + ``Location`` (integer ``Retry-After``, as the generated code parses),
  refused with 400 while the deployment holds live or mirror traffic;
- ``getLogs`` POST: ``{"content": ...}`` tailing ``logs[deployment]`` to the requested lines;
- region ``usages`` and ``vmSizes`` GETs (from the spec examples' extracts);
- autoscale settings PUT/GET/DELETE (``Microsoft.Insights/autoscalesettings``, synchronous).

``failures[deployment]`` makes that deployment's create operation end ``Failed`` with the given
operation-status body (e.g. ``ImageBuildFailure``).
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from tests.azure.fake_azure import _EP, _WS, FakeAzure, Reply, arm_error, fixture

_REGION = r"^/subscriptions/(?P<sub>[^/]+)/providers/microsoft\.machinelearningservices/locations/(?P<loc>[^/]+)"
def _arm_id(sub: str, rg: str, ws: str, tail: str) -> str:
    """An ARM id in the service's own casing (the SDK validates it)."""
    return (f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"
            f"{tail}")


_AUTOSCALE = r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.insights" \
             r"/autoscalesettings/(?P<name>[^/]+)$"


class LifecycleFakeAzure(FakeAzure):
    """``FakeAzure`` plus deployment creation, deletion, logs, quota and autoscale settings."""

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.environments: dict[str, dict[str, Any]] = {}
            self.autoscale: dict[str, dict[str, Any]] = {}
            self.logs: dict[str, str] = {}
            self.failures: dict[str, dict[str, Any]] = {}
            self.failure_bodies: dict[str, dict[str, Any]] = {}
            self.deletes: dict[str, int] = {}
            self.deleting: dict[str, str] = {}
            self.usages_body = fixture("Usages_List.spec-example.2024-10-01.EXTRACT.json")["responses"]["200"]["body"]
            self.sizes_body = fixture("VirtualMachineSizes_List.spec-example.2024-10-01.EXTRACT.json")["responses"]["200"][
                "body"]

    def _routes(self) -> list[tuple[str, str, Callable[..., Reply]]]:
        return [
            ("PUT", _EP + "$", self._put_endpoint_or_create),
            ("PUT", _EP + "/deployments/(?P<dep>[^/]+)$", self._put_deployment_or_create),
            ("DELETE", _EP + "/deployments/(?P<dep>[^/]+)$", self._delete_deployment),
            ("GET", r"^/deletes/(?P<token>[^/]+)$", self._poll_delete),
            ("POST", _EP + "/deployments/(?P<dep>[^/]+)/getlogs$", self._get_logs),
            ("PUT", _WS + "/environments/(?P<env>[^/]+)/versions/(?P<ver>[^/]+)$", self._put_environment),
            ("GET", _WS + "/environments/(?P<env>[^/]+)/versions/(?P<ver>[^/]+)$", self._get_environment),
            ("GET", _REGION + "/usages$", lambda **_: (200, self.usages_body, {})),
            ("GET", _REGION + "/vmsizes$", lambda **_: (200, self.sizes_body, {})),
            ("PUT", _AUTOSCALE, self._put_autoscale),
            ("GET", _AUTOSCALE, self._get_autoscale),
            ("DELETE", _AUTOSCALE, self._delete_autoscale),
            *super()._routes(),
        ]

    # ---- endpoints and deployments ----------------------------------------------------------

    def _put_endpoint_or_create(self, path: str, sub: str, rg: str, ws: str, ep: str, query: dict[str, str], body: Any,
                                **kw: Any) -> Reply:
        if path in self.endpoints:
            return self._put_endpoint(path=path, sub=sub, rg=rg, ws=ws, ep=ep, query=query, body=body, **kw)
        problem = self._endpoint_problem(path, body)
        if problem:
            return 400, arm_error("BadArgument", problem), {}
        created = fixture("endpoint_get_200.SYNTHETIC.json")
        created.update(id=_arm_id(sub, rg, ws, f"/onlineEndpoints/{ep}"), name=ep, location=body["location"],
                       tags=body.get("tags") or {}, identity=body.get("identity") or {"type": "SystemAssigned"})
        created["properties"] = {**created["properties"], **body["properties"], "provisioningState": "Creating"}
        self.endpoints[path] = created

        def finish(outcome: str) -> None:
            if outcome == "Succeeded":
                self.endpoints[path]["properties"]["provisioningState"] = "Succeeded"
            else:
                self.endpoints[path]["properties"]["provisioningState"] = "Failed"

        return 201, created, self._start_operation(path, sub, body["location"], query, finish)

    def _put_deployment_or_create(self, path: str, sub: str, rg: str, ws: str, ep: str, dep: str, query: dict[str, str],
                                  body: Any, **kw: Any) -> Reply:
        if path in self.deployments:
            return self._put_deployment(path=path, sub=sub, rg=rg, ws=ws, ep=ep, dep=dep, query=query, body=body, **kw)
        endpoint_path = path.rsplit("/deployments/", 1)[0]
        endpoint = self.endpoints.get(endpoint_path)
        if endpoint is None:
            return 404, arm_error("UserError", "Could not find online endpoint."), {}
        state = endpoint["properties"].get("provisioningState")
        if state != "Succeeded" or self._busy(endpoint_path):
            return 400, arm_error("BadArgument", f"Cannot create a deployment in endpoint {endpoint['name']} because "
                                                 f"it is in {state or 'Updating'} provisioning state."), {}
        created = {"id": _arm_id(sub, rg, ws, f"/onlineEndpoints/{ep}/deployments/{dep}"), "name": dep,
                   "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
                   "location": body["location"], "kind": "Managed", "tags": body.get("tags") or {},
                   "sku": {**body.get("sku", {}), "tier": "Standard"},
                   "properties": {**body["properties"], "scaleSettings": {"scaleType": "Default"},
                                  "provisioningState": "Creating"}}
        self.deployments[path] = created
        failure = self.failures.get(dep.lower())
        if failure is not None:
            self.next_outcomes.insert(0, "Failed")

        def finish(outcome: str) -> None:
            self.deployments[path]["properties"]["provisioningState"] = "Succeeded" if outcome == "Succeeded" else "Failed"

        headers = self._start_operation(endpoint_path, sub, body["location"], query, finish)
        if failure is not None:
            self.failure_bodies[list(self.operations)[-1]] = failure
        return 201, created, headers

    def _get_operation(self, op: str, **kw: Any) -> Reply:
        status, body, headers = super()._get_operation(op=op, **kw)
        found = next((o for o in self.operations.values() if o.id.endswith("|" + op)), None)
        failure = self.failure_bodies.get(found.id) if found is not None else None
        if failure is not None and isinstance(body, dict) and body.get("status") == "Failed":
            body = {**failure, "id": op, "name": op}
        return status, body, headers

    def _delete_deployment(self, path: str, dep: str, **_: Any) -> Reply:
        endpoint = self.endpoints.get(path.rsplit("/deployments/", 1)[0])
        if path not in self.deployments:
            return 204, None, {}
        props = (endpoint or {}).get("properties", {})
        held = {k.lower(): v for k, v in {**(props.get("mirrorTraffic") or {}), **(props.get("traffic") or {})}.items()}
        if held.get(dep.lower()):
            return 400, arm_error("BadArgument", f"Deployment {dep} has traffic allocated; set it to 0 first."), {}
        token = f"d{len(self.deletes) + 1}"
        self.deletes[token] = self.polls_before_done
        self.deployments[path]["properties"]["provisioningState"] = "Deleting"
        self.deleting[token] = path
        return 202, None, {"Location": f"{self.base_url}/deletes/{token}", "Retry-After": "0"}

    def _poll_delete(self, token: str, **_: Any) -> Reply:
        left = self.deletes.get(token)
        if left is None:
            return 404, arm_error("NotFound", "No such operation."), {}
        if left > 0:
            self.deletes[token] = left - 1
            return 202, None, {"Location": f"{self.base_url}/deletes/{token}", "Retry-After": "0"}
        self.deployments.pop(self.deleting.get(token, ""), None)
        return 200, None, {}

    def _get_logs(self, dep: str, body: Any, **_: Any) -> Reply:
        text = self.logs.get(dep.lower(), "")
        tail = int((body or {}).get("tail") or 0)
        lines = text.splitlines()[-tail:] if tail else text.splitlines()
        return 200, {"content": "\n".join(lines)}, {}

    def _put_environment(self, path: str, sub: str, rg: str, ws: str, env: str, ver: str, body: Any, **_: Any) -> Reply:
        stored = {"id": _arm_id(sub, rg, ws, f"/environments/{env}/versions/{ver}"), "name": ver,
                  "type": "Microsoft.MachineLearningServices/workspaces/environments/versions",
                  "properties": copy.deepcopy(body["properties"])}
        self.environments[path] = stored
        return 201, stored, {}

    def _get_environment(self, path: str, **_: Any) -> Reply:
        found = self.environments.get(path)
        return (200, found, {}) if found else (404, arm_error("UserError", "Environment not found."), {})

    # ---- autoscale ---------------------------------------------------------------------------

    def _put_autoscale(self, path: str, sub: str, rg: str, name: str, body: Any, **_: Any) -> Reply:
        stored = {**copy.deepcopy(body), "name": name, "type": "Microsoft.Insights/autoscaleSettings",
                  "id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/microsoft.insights/autoscalesettings/{name}"}
        created = path not in self.autoscale
        self.autoscale[path] = stored
        return (201 if created else 200), stored, {}

    def _get_autoscale(self, path: str, name: str, **_: Any) -> Reply:
        found = self.autoscale.get(path)
        return (200, found, {}) if found else (404, arm_error("ResourceNotFound", f"{name} not found"), {})

    def _delete_autoscale(self, path: str, **_: Any) -> Reply:
        return (200 if self.autoscale.pop(path, None) is not None else 204), None, {}
