"""Role assignments of the app's identity: which role, on which scope, and the custom role's actions."""

from __future__ import annotations

import pytest

from tests.infra.templates import expression_text, parse, resource_config, resources, role_comments, role_guid_vars

# Built-in role definition ids, from Microsoft's "Azure built-in roles" reference
# (MicrosoftDocs/azure-docs articles/role-based-access-control/built-in-roles/*.md), one by one.
BUILT_IN = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "43d0d8ad-25c7-4714-9337-8ba259a9fe05": "Monitoring Reader",
    "73c42c96-874c-492b-b04d-ab87d138a893": "Log Analytics Reader",
    "0ad04412-c4d5-4796-b79c-f76d14c8d402": "Durable Task Data Contributor",
}

# (template, assignment) -> (role name, scope symbol, condition or None)
ASSIGNMENTS = {
    ("modules/app-rbac.bicep", "blobOwner"): ("Storage Blob Data Owner", "storage", None),
    ("modules/app-rbac.bicep", "queueContributor"): ("Storage Queue Data Contributor", "storage", None),
    ("modules/app-rbac.bicep", "tableContributor"): ("Storage Table Data Contributor", "storage", None),
    ("modules/app-rbac.bicep", "metricsPublisher"): ("Monitoring Metrics Publisher", "appInsights", None),
    ("modules/app-rbac.bicep", "logAnalyticsReader"): ("Log Analytics Reader", "logAnalytics", "logAnalyticsMetrics"),
    ("modules/app-rbac.bicep", "durableTaskContributor"): ("Durable Task Data Contributor", "scheduler",
                                                           "not(empty(schedulerName))"),
    ("modules/aml-access.bicep", "monitoringReaderOnWorkspace"): ("Monitoring Reader", "workspace", None),
    ("modules/aml-access.bicep", "endpointOperatorOnWorkspace"): ("custom:endpointOperator", "workspace", None),
    ("modules/aml-access.bicep", "autoscaleOperatorOnGroup"): ("custom:autoscaleOperator", None, "lifecycleActions"),
    # None: the module's own scope, the workspace's subscription (its module is deployed only with lifecycleActions)
    ("modules/aml-location-access.bicep", "locationReaderOnSubscription"): ("custom:locationReader", None, None),
}

# The custom role: exactly what the app calls today (docs/azure.md, "Roles created by azd up").
ROLLOUT_ACTIONS = [
    "Microsoft.MachineLearningServices/workspaces/read",
    "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/read",
    "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write",
    "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/read",
    "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/write",
    "Microsoft.MachineLearningServices/workspaces/onlineendpoints/operationsstatus/read",
    "Microsoft.MachineLearningServices/workspaces/onlineendpoints/operationresults/read",
    "Microsoft.MachineLearningServices/workspaces/onlineendpoints/deployments/operationsstatus/read",
    "Microsoft.MachineLearningServices/workspaces/onlineendpoints/deployments/operationresults/read",
]
# What the lifecycle adds (each traced to an adapter call in test_lifecycle_rbac.py).
LIFECYCLE_WORKSPACE_ACTIONS = [
    "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/delete",
    "Microsoft.MachineLearningServices/workspaces/onlineendpoints/deployments/getlogs/action",
    "Microsoft.MachineLearningServices/workspaces/environments/versions/read",
    "Microsoft.MachineLearningServices/workspaces/environments/versions/write",
]
LIFECYCLE_AUTOSCALE_ACTIONS = ["Microsoft.Insights/autoscalesettings/read", "Microsoft.Insights/autoscalesettings/write",
                               "Microsoft.Insights/autoscalesettings/delete"]
LIFECYCLE_LOCATION_ACTIONS = [
    "Microsoft.MachineLearningServices/locations/usages/read",
    "Microsoft.MachineLearningServices/locations/vmsizes/read",
    "Microsoft.MachineLearningServices/locations/mfeOperationsStatus/read",
    "Microsoft.MachineLearningServices/locations/mfeOperationResults/read",
]
# The only /action any custom role holds: reading a deployment's container logs (no secret in them
# that the deployment's own definition does not already show to deployments/read).
ALLOWED_POST_ACTIONS = {"microsoft.machinelearningservices/workspaces/onlineendpoints/deployments/getlogs/action"}
# Every custom role's action list: (template, variable) -> the actions, in order.
ROLE_VARIABLES = {
    ("modules/aml-access.bicep", "rolloutActions"): ROLLOUT_ACTIONS,
    ("modules/aml-access.bicep", "lifecycleWorkspaceActions"): LIFECYCLE_WORKSPACE_ACTIONS,
    ("modules/aml-access.bicep", "lifecycleAutoscaleActions"): LIFECYCLE_AUTOSCALE_ACTIONS,
    ("modules/aml-location-access.bicep", "lifecycleLocationActions"): LIFECYCLE_LOCATION_ACTIONS,
}


def _role_of(template: str, assignment: dict) -> str:
    """The role an assignment grants: a built-in role's name, or ``custom:<roleDefinition symbol>``."""
    role_id = assignment["properties"]["roleDefinitionId"]
    text = expression_text(role_id)
    if text.startswith("subscription_resource_id(Microsoft.Authorization/roleDefinitions, "):
        symbol = role_id["function"]["parameters"]["resource_name_1"]["operator"]["operands"]["operand_2"]
        return BUILT_IN[role_guid_vars(template)[symbol]]
    return "custom:" + text.removeprefix("property_accessor(").split(",")[0]


@pytest.mark.parametrize("template", ["modules/app-rbac.bicep", "modules/aml-access.bicep"])
def test_every_role_id_is_the_role_its_comment_names(template: str) -> None:
    comments = role_comments(template)
    for symbol, guid in role_guid_vars(template).items():
        assert guid in BUILT_IN, f"{template}: {symbol} = {guid} is not a built-in role we know"
        assert comments[guid] == BUILT_IN[guid], f"{template}: {guid} is {BUILT_IN[guid]}, the comment says {comments[guid]}"


@pytest.mark.parametrize(("template", "name"), list(ASSIGNMENTS), ids=[n for _, n in ASSIGNMENTS])
def test_each_assignment_grants_its_role_on_its_scope_to_the_app(template: str, name: str) -> None:
    role, scope, condition = ASSIGNMENTS[(template, name)]
    resource = resources(template)[name]
    assignment = resource_config(resource)
    assert _role_of(template, assignment) == role
    assert assignment.get("scope") == scope          # None: the template's own resource group
    assert assignment["properties"]["principalId"] == "principalId"
    assert assignment["properties"]["principalType"] == "ServicePrincipal"
    found = expression_text(resource["config"]["condition"]) if "condition" in resource["config"] else None
    assert found == condition


def test_no_other_role_assignments_exist() -> None:
    for template in ("main.bicep", "alerts.bicep", "modules/app-rbac.bicep", "modules/aml-access.bicep",
                     "modules/function-app.bicep", "modules/storage.bicep", "modules/monitoring.bicep",
                     "modules/endpoint-alerts.bicep", "modules/action-group.bicep", "modules/identity.bicep",
                     "modules/durable-task-scheduler.bicep", "modules/aml-location-access.bicep"):
        for name, resource in resources(template).items():
            if resource["type"] == "Microsoft.Authorization/roleAssignments":
                assert (template, name) in ASSIGNMENTS


def _variable(template: str, name: str) -> list[str]:
    return list(parse(template)["variables"][name]["value"])


def test_custom_role_has_exactly_the_rollout_actions() -> None:
    assert _variable("modules/aml-access.bicep", "rolloutActions") == ROLLOUT_ACTIONS
    role = resource_config(resources("modules/aml-access.bicep")["endpointOperator"])["properties"]
    permissions, = role["permissions"]
    assert expression_text(permissions["actions"]) == \
        "conditional(lifecycleActions, concat(rolloutActions, lifecycleWorkspaceActions), rolloutActions)"
    assert permissions["notActions"] == []
    assert role["type"] == "CustomRole"
    assert expression_text(role["assignableScopes"]) == "[property_accessor(resource_group(None, None), id)]"


@pytest.mark.parametrize(("template", "variable"), list(ROLE_VARIABLES), ids=[v for _, v in ROLE_VARIABLES])
def test_each_custom_role_list_holds_exactly_its_actions_in_order(template: str, variable: str) -> None:
    assert _variable(template, variable) == ROLE_VARIABLES[(template, variable)]


@pytest.mark.parametrize(("template", "variable", "action"),
                         [pytest.param(t, v, a, id=a.split("/", 1)[1]) for (t, v), actions in ROLE_VARIABLES.items()
                          for a in actions])
def test_each_action_is_in_its_role_list(template: str, variable: str, action: str) -> None:
    assert action in _variable(template, variable)


def test_nothing_in_the_custom_roles_can_read_keys_or_act_on_the_workspace() -> None:
    every = [a for actions in ROLE_VARIABLES.values() for a in actions]
    for action in every:
        assert "*" not in action and "listkeys" not in action.lower() and "secret" not in action.lower()
        assert not action.endswith("/action") or action.lower() in ALLOWED_POST_ACTIONS, action
        assert action.lower() not in {"microsoft.machinelearningservices/workspaces/write",
                                      "microsoft.machinelearningservices/workspaces/delete",
                                      "microsoft.machinelearningservices/workspaces/onlineendpoints/delete"}


def test_workspace_access_is_deployed_into_the_workspace_resource_group() -> None:
    module = parse("main.bicep")["modules"]["amlAccess"]["config"]
    assert expression_text(module["scope"]) == "resource_group(amlResourceGroupName, amlSubscription)"
    assert module["params"]["workspaceName"] == "amlWorkspaceName"
    assert expression_text(module["params"]["principalId"]) == \
        "property_accessor(identity, property_accessor(outputs, principalId))"


def test_app_runs_after_its_storage_roles_exist() -> None:
    assert "appRbac" in parse("main.bicep")["modules"]["app"]["config"]["dependsOn"]


def test_location_reads_get_their_own_role_on_the_workspace_subscription_only_with_lifecycle_actions() -> None:
    module = parse("main.bicep")["modules"]["amlLocationAccess"]["config"]
    assert expression_text(module["condition"]) == "lifecycleActions"
    assert expression_text(module["config"]["scope"]) == "subscription(amlSubscription)"
    assert expression_text(module["config"]["params"]["principalId"]) == \
        "property_accessor(identity, property_accessor(outputs, principalId))"
    assert parse("modules/aml-location-access.bicep")["globals"]["scope"]["value"] == "subscription"
    role = resource_config(resources("modules/aml-location-access.bicep")["locationReader"])["properties"]
    permissions, = role["permissions"]
    assert permissions["actions"] == "lifecycleLocationActions"
    assert permissions["notActions"] == []
    assert role["type"] == "CustomRole"
    assert expression_text(role["assignableScopes"]) == "[property_accessor(subscription(None), id)]"


def test_location_actions_are_reads_under_locations() -> None:
    for action in LIFECYCLE_LOCATION_ACTIONS:
        assert action.startswith("Microsoft.MachineLearningServices/locations/") and action.endswith("/read")
