"""Every Azure request the ML and autoscale adapters make, the RBAC action it needs, and the Bicep
role that grants it at that scope.

``CALLS`` is the table: per adapter class and SDK call (as written in the adapter), the REST
requests azure-ai-ml 1.35.2 / azure-mgmt-monitor 7.0.0 send for it (captured sequences in
docs/azure.md, "Roles created by azd up") and the action each needs. Action strings are Microsoft's
("Azure permissions for AI + machine learning" and "... for monitor"); the request → action
mapping is ARM's rule (resource type of the path; GET read, PUT write, DELETE delete, POST
``<name>/action``), inferred, not observed on Azure.

The table is checked against the adapters' source (a call the adapters make and the table lacks
fails) and against the templates (an action the table needs and the roles lack fails).
"""

from __future__ import annotations

import ast
from typing import Any

import pytest

from tests.infra.templates import ROOT, expression_text, parse, resource_config, resources

MLS = "Microsoft.MachineLearningServices/"
WS = "{ws}"                 # /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{w}
LOC = "{loc}"               # /subscriptions/{s}/providers/Microsoft.MachineLearningServices/locations/{region}
WORKSPACE, GROUP, SUBSCRIPTION = "workspace", "resource group", "subscription"

_GET_WS = ("GET {ws}", MLS + "workspaces/read", WORKSPACE)
_GET_EP = ("GET {ws}/onlineEndpoints/{e}", MLS + "workspaces/onlineEndpoints/read", WORKSPACE)
_GET_DEP = ("GET {ws}/onlineEndpoints/{e}/deployments/{d}", MLS + "workspaces/onlineEndpoints/deployments/read", WORKSPACE)
# The Azure-AsyncOperation URL of an endpoint or deployment PUT: {loc}/mfeOperationsStatus/{id}.
_POLL_STATUS = ("GET {loc}/mfeOperationsStatus/{id}", MLS + "locations/mfeOperationsStatus/read", SUBSCRIPTION)
# The Location URL of a deployment DELETE (202): {loc}/mfeOperationResults/{id} (inferred from the
# resource type list; the spec's example shows a placeholder).
_POLL_RESULT = ("GET {loc}/mfeOperationResults/{id}", MLS + "locations/mfeOperationResults/read", SUBSCRIPTION)
_ENDPOINT_PUT = [_GET_WS, ("PUT {ws}/onlineEndpoints/{e}", MLS + "workspaces/onlineEndpoints/write", WORKSPACE),
                 _POLL_STATUS, _GET_EP]
_AUTOSCALE = "GET|PUT|DELETE /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Insights/autoscalesettings/{name}"

# (adapter class, SDK call as written after ``self._ml.`` / ``self._client.``, or ``_read_operation``)
#   -> [(request, action, scope the action must be granted at)]
CALLS: dict[tuple[str, str], list[tuple[str, str, str]]] = {
    # rollout (adapters/azure_ml/endpoints.py AzureMLEndpoints): granted without lifecycleActions, except the poll
    ("AzureMLEndpoints", "online_endpoints._online_operation.get"): [_GET_EP],   # the plain GET (_plain_get)
    ("AzureMLEndpoints", "online_deployments.list"): [
        ("GET {ws}/onlineEndpoints/{e}/deployments", MLS + "workspaces/onlineEndpoints/deployments/read", WORKSPACE)],
    ("AzureMLEndpoints", "online_endpoints.begin_create_or_update"): _ENDPOINT_PUT,
    # lifecycle (adapters/azure_ml/lifecycle.py AzureMLLifecycle)
    ("AzureMLLifecycle", "workspaces.get"): [_GET_WS],
    ("AzureMLLifecycle", "online_endpoints.get"): [_GET_EP],
    ("AzureMLLifecycle", "online_endpoints.begin_create_or_update"): _ENDPOINT_PUT,
    ("AzureMLLifecycle", "online_deployments.get"): [_GET_DEP],
    ("AzureMLLifecycle", "environments.get"): [
        ("GET {ws}/environments/CliV2AnonymousEnvironment/versions/{hash}",
         MLS + "workspaces/environments/versions/read", WORKSPACE)],
    ("AzureMLLifecycle", "online_deployments.begin_create_or_update"): [
        _GET_EP,
        ("PUT {ws}/environments/CliV2AnonymousEnvironment/versions/{hash} (inline environment only)",
         MLS + "workspaces/environments/versions/write", WORKSPACE),
        _GET_WS,
        ("PUT {ws}/onlineEndpoints/{e}/deployments/{d}", MLS + "workspaces/onlineEndpoints/deployments/write", WORKSPACE),
        _POLL_STATUS, _GET_DEP],
    ("AzureMLLifecycle", "online_deployments.begin_delete"): [
        ("DELETE {ws}/onlineEndpoints/{e}/deployments/{d}", MLS + "workspaces/onlineEndpoints/deployments/delete",
         WORKSPACE),
        _POLL_RESULT],
    ("AzureMLLifecycle", "online_deployments.get_logs"): [
        ("POST {ws}/onlineEndpoints/{e}/deployments/{d}/getLogs",
         MLS + "workspaces/onlineendpoints/deployments/getlogs/action", WORKSPACE)],
    ("AzureMLLifecycle", "compute.list_sizes"): [
        ("GET {loc}/vmSizes", MLS + "locations/vmsizes/read", SUBSCRIPTION)],
    ("AzureMLLifecycle", "compute.list_usage"): [
        ("GET {loc}/usages", MLS + "locations/usages/read", SUBSCRIPTION)],
    ("AzureMLLifecycle", "_read_operation"): [_POLL_STATUS, _POLL_RESULT],
    # autoscale (adapters/azure_monitor.py AzureAutoscale), in the workspace's resource group
    ("AzureAutoscale", "autoscale_settings.get"): [(_AUTOSCALE, "Microsoft.Insights/autoscalesettings/read", GROUP)],
    ("AzureAutoscale", "autoscale_settings.create_or_update"): [
        (_AUTOSCALE, "Microsoft.Insights/autoscalesettings/write", GROUP)],
    ("AzureAutoscale", "autoscale_settings.delete"): [(_AUTOSCALE, "Microsoft.Insights/autoscalesettings/delete", GROUP)],
}

ADAPTERS = {"AzureMLEndpoints": "adapters/azure_ml/endpoints.py",
            "AzureMLLifecycle": "adapters/azure_ml/lifecycle.py",
            "AzureAutoscale": "adapters/azure_monitor.py"}


def _chain(node: ast.expr) -> list[str]:
    """``self._ml.online_deployments.get`` -> ["self", "_ml", "online_deployments", "get"] ([] otherwise)."""
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.insert(0, node.attr)
        node = node.value
    return [node.id, *names] if isinstance(node, ast.Name) else []


def azure_calls(class_name: str) -> set[str]:
    """The Azure SDK calls a class's methods make: ``self._ml.<group>.<op>(...)`` (or deeper, such as
    ``self._ml.online_endpoints._online_operation.get``), ``self._client.<group>.<op>(...)``, and
    ``self._read_operation(...)``."""
    tree = ast.parse((ROOT / ADAPTERS[class_name]).read_text(encoding="utf-8"))
    cls, = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    found = set()
    for node in ast.walk(cls):
        if isinstance(node, ast.Call):
            chain = _chain(node.func)
            if len(chain) >= 4 and chain[:2] in (["self", "_ml"], ["self", "_client"]):
                found.add(".".join(chain[2:]))
            elif chain == ["self", "_read_operation"]:
                found.add("_read_operation")
    return found


@pytest.mark.parametrize("class_name", sorted(ADAPTERS))
def test_the_table_names_every_azure_call_the_adapter_makes(class_name: str) -> None:
    in_table = {call for cls, call in CALLS if cls == class_name}
    assert azure_calls(class_name) == in_table, \
        f"{class_name}: calls missing from CALLS (add their requests and actions) or rows for calls it no longer makes"


def _eval(node: Any, variables: dict[str, Any], lifecycle: bool) -> list[str]:
    """The action list an expression yields: a list literal, a variable, ``concat`` or ``cond ? a : b``
    on ``lifecycleActions``."""
    if isinstance(node, list):
        return [str(v) for v in node]
    if isinstance(node, str):
        return _eval(variables[node]["value"], variables, lifecycle)
    if "operator" in node and node["operator"]["type"] == "conditional":
        ops = node["operator"]["operands"]
        assert ops["condition"] == "lifecycleActions", ops["condition"]
        return _eval(ops["true_value"] if lifecycle else ops["false_value"], variables, lifecycle)
    if "function" in node and node["function"]["type"] == "concat":
        return [a for arg in node["function"]["parameters"].values() for a in _eval(arg, variables, lifecycle)]
    raise AssertionError(f"unexpected expression {expression_text(node)}")


def _role_actions(template: str, role: str, lifecycle: bool) -> set[str]:
    parsed = parse(template)
    definition = resources(template)[role]
    if "condition" in definition["config"] and not lifecycle:
        assert expression_text(definition["config"]["condition"]) == "lifecycleActions"
        return set()
    permissions, = resource_config(definition)["properties"]["permissions"]
    return {a.lower() for a in _eval(permissions["actions"], parsed.get("variables", {}), lifecycle)}


def granted(lifecycle: bool) -> dict[str, set[str]]:
    """Actions the app's identity holds at each scope (lower case: RBAC compares without case),
    read from the templates with ``lifecycleActions`` set as given. The scopes of the assignments
    are asserted in test_rbac.py; here each role is taken at the scope it is assigned on."""
    location = parse("main.bicep")["modules"]["amlLocationAccess"]["config"]
    assert expression_text(location["condition"]) == "lifecycleActions"
    return {
        WORKSPACE: _role_actions("modules/aml-access.bicep", "endpointOperator", lifecycle),
        GROUP: _role_actions("modules/aml-access.bicep", "autoscaleOperator", lifecycle),
        SUBSCRIPTION: _role_actions("modules/aml-location-access.bicep", "locationReader", lifecycle) if lifecycle else set(),
    }


ROWS = [pytest.param(cls, call, request, action, scope, id=f"{cls}.{call}: {request.split(' (')[0]}")
        for (cls, call), needs in CALLS.items() for request, action, scope in needs]


@pytest.mark.parametrize(("cls", "call", "request_line", "action", "scope"), ROWS)
def test_with_lifecycle_actions_the_identity_holds_what_each_request_needs(
        cls: str, call: str, request_line: str, action: str, scope: str) -> None:
    assert action.lower() in granted(lifecycle=True)[scope], f"{cls}.{call}: {request_line} needs {action} at {scope} scope"


@pytest.mark.parametrize(("cls", "call", "request_line", "action", "scope"),
                         [row for row in ROWS if row.values[0] == "AzureMLEndpoints" and row.values[4] == WORKSPACE])
def test_without_lifecycle_actions_the_rollout_still_holds_its_workspace_actions(
        cls: str, call: str, request_line: str, action: str, scope: str) -> None:
    assert action.lower() in granted(lifecycle=False)[scope]


def test_the_lifecycle_grants_nothing_the_adapters_do_not_need() -> None:
    needed = {action.lower() for needs in CALLS.values() for _, action, _ in needs}
    for scope, actions in granted(lifecycle=True).items():
        if scope == WORKSPACE:
            # The rollout's own list (test_rbac.py) predates this table and also holds the
            # workspace-scoped operationsstatus/operationresults reads; only what lifecycleActions adds is checked.
            actions = actions - granted(lifecycle=False)[WORKSPACE]
        assert actions <= needed, f"{scope}: {sorted(actions - needed)} granted but no adapter call needs it"


def test_the_location_role_is_off_without_lifecycle_actions() -> None:
    assert granted(lifecycle=False)[SUBSCRIPTION] == set()
    assert granted(lifecycle=False)[GROUP] == set()

