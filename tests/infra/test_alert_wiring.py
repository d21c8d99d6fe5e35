"""The alert path as code: action group webhook -> POST /api/alerts, and the rules on an endpoint."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
import pytest

from rollout import alerts as app_alerts
from tests.infra.templates import ROOT, expression_text, parse, resource_config, resources

ACTION_GROUP = "modules/action-group.bicep"
ENDPOINT_ALERTS = "modules/endpoint-alerts.bicep"


def _alert_function() -> tuple[str, str, Any]:
    """(function name, route, auth level) of the app's alert webhook, from the registered functions."""
    from emulator.worker import registered_functions
    from function_app import app

    for function in registered_functions(app):
        for binding in function.get_bindings():
            if binding.type == "httpTrigger" and binding.route == "alerts":
                return function.get_function_name(), binding.route, binding.auth_level
    raise AssertionError("no HTTP function serves the alerts route")


def _route_prefix() -> str:
    return str(json.loads((ROOT / "host.json").read_text())["extensions"]["http"]["routePrefix"])


def _resolve(template: str, value: Any) -> Any:
    """A variable reference replaced by its value (one level)."""
    variables = parse(template).get("variables", {})
    return variables[value]["value"] if isinstance(value, str) and value in variables else value


KEYED = "${alertUrl}?code=${listKeys(resourceId('Microsoft.Web/sites/functions', functionAppName, alertFunctionName), " \
        "'2024-04-01')[alertKeyName]}"


def _receivers(mode: str) -> list[dict[str, Any]]:
    """The action group's receivers in ``mode`` ("keyed": function key, "secure": Entra ID)."""
    found = []
    for receiver in resource_config(resources(ACTION_GROUP)["actionGroup"])["properties"]["webhookReceivers"]:
        choice = receiver["operator"]["operands"]
        assert choice["condition"] == "useKey"
        found.append(_resolve(ACTION_GROUP, choice["true_value" if mode == "keyed" else "false_value"]))
    return found


# --- the action group ---------------------------------------------------------------------------


def test_the_webhook_targets_the_function_serving_the_alert_route() -> None:
    variables = parse(ACTION_GROUP)["variables"]
    name, route, _ = _alert_function()
    assert variables["alertFunctionName"]["value"] == name
    assert variables["alertRoute"]["value"] == f"{_route_prefix()}/{route}"
    assert variables["alertUrl"]["value"] == "https://${app.properties.defaultHostName}/${alertRoute}"


@pytest.mark.parametrize("mode", ["keyed", "secure"])
def test_both_receivers_use_the_common_alert_schema(mode: str) -> None:
    receiver, = _receivers(mode)
    assert receiver["useCommonAlertSchema"] is True
    assert receiver["serviceUri"] == {"keyed": KEYED, "secure": "alertUrl"}[mode]


def test_function_key_mode_reads_the_alert_functions_own_key_with_list_keys() -> None:
    receiver, = _receivers("keyed")
    assert receiver["useAadAuth"] is False
    assert receiver["serviceUri"] == KEYED
    assert parse(ACTION_GROUP)["variables"]["alertKeyName"]["value"] == "azuremonitor"
    hook = (ROOT / "infra/hooks/postdeploy.sh").read_text()
    assert "alert_function=alert_webhook" in hook and "key_name=azuremonitor" in hook


def test_entra_mode_is_a_secure_webhook_without_a_key() -> None:
    receiver, = _receivers("secure")
    assert receiver["serviceUri"] == "alertUrl"          # the variable itself: no query string
    assert receiver["useAadAuth"] is True
    assert receiver["objectId"] == "entraAppObjectId" and receiver["identifierUri"] == "entraAppIdentifierUri"
    assert expression_text(receiver["tenantId"]) == "property_accessor(tenant(), tenantId)"


def test_one_action_group_whose_receiver_the_mode_picks() -> None:
    groups = [r for r in resources(ACTION_GROUP).values() if r["type"] == "Microsoft.Insights/actionGroups"
              and not r["existing"]]
    assert len(groups) == 1 and "condition" not in groups[0]["config"]
    group = resource_config(groups[0])
    assert group["name"] == "name" and group["location"] == "global"
    assert group["properties"]["enabled"] is True and group["properties"]["groupShortName"] == "shortName"
    use_key = parse(ACTION_GROUP)["variables"]["useKey"]["value"]
    assert expression_text(use_key) == "equals(webhookAuth, functionKey)"


def test_group_short_name_fits_twelve_characters() -> None:
    for template in (ACTION_GROUP, "alerts.bicep"):
        decorators = parse(template)["parameters"]["shortName" if template == ACTION_GROUP else "actionGroupShortName"]
        assert {"type": "max_length", "argument": 12} in decorators["decorators"]
    default = parse("alerts.bicep")["parameters"]["actionGroupShortName"]["default"]
    assert len(default) <= 12


# --- the rules on an endpoint -------------------------------------------------------------------


METRIC_RULES = {  # rule -> (metric, dimensions other than deployment)
    "errors5xx": ("RequestsPerMinute", {"statusCodeClass": ["5xx"]}),
    "errors424": ("RequestsPerMinute", {"statusCode": ["424"]}),
    "latencyP99": ("RequestLatency_P99", {}),
}


@pytest.mark.parametrize("rule", list(METRIC_RULES))
def test_metric_rules_split_by_deployment_every_minute(rule: str) -> None:
    metric, others = METRIC_RULES[rule]
    alert = resource_config(resources(ENDPOINT_ALERTS)[rule])
    props = alert["properties"]
    assert alert["location"] == "global"
    assert props["evaluationFrequency"] == "PT1M"
    assert props["scopes"] == [{"operator": {"type": "property_accessor", "operands": {"operand_1": "endpoint",
                                                                                      "operand_2": "id"}}}]
    criterion, = props["criteria"]["allOf"]
    assert props["criteria"]["'odata.type'"] == "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
    assert criterion["metricName"] == metric
    assert _resolve(ENDPOINT_ALERTS, criterion["metricNamespace"]) == \
        "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
    dimensions = {d["name"]: d["values"] for d in map(lambda d: _resolve(ENDPOINT_ALERTS, d), criterion["dimensions"])}
    assert dimensions == {"deployment": ["*"], **others}
    assert all(_resolve(ENDPOINT_ALERTS, d)["operator"] == "Include" for d in criterion["dimensions"])
    assert props["actions"] == [{"actionGroupId": "actionGroupId"}]


def test_the_dimension_the_rules_split_by_is_the_one_the_app_reads() -> None:
    assert "deployment" in app_alerts._DEPLOYMENT_DIMENSIONS
    log_rule = resource_config(resources(ENDPOINT_ALERTS)["loggedErrors"])
    names = {d["name"].lower() for d in log_rule["properties"]["criteria"]["allOf"][0]["dimensions"]}
    assert names == {"endpointname", "deploymentname"}
    assert "endpointname" in app_alerts._ENDPOINT_DIMENSIONS and "deploymentname" in app_alerts._DEPLOYMENT_DIMENSIONS


def test_traffic_log_and_its_log_search_alert_are_optional_and_wired() -> None:
    found = resources(ENDPOINT_ALERTS)
    for name in ("trafficLog", "loggedErrors"):
        assert expression_text(found[name]["config"]["condition"]) == "not(empty(trafficLogWorkspaceId))" \
            or expression_text(found[name]["config"]["condition"]) == "logical_not(empty(trafficLogWorkspaceId))"
    setting = resource_config(found["trafficLog"])
    assert setting["scope"] == "endpoint"
    assert setting["properties"]["logs"] == [{"category": "AmlOnlineEndpointTrafficLog", "enabled": True}]
    rule = resource_config(found["loggedErrors"])
    assert rule["kind"] == "LogAlert"
    query = rule["properties"]["criteria"]["allOf"][0]["query"]
    assert query.startswith("AmlOnlineEndpointTrafficLog") and "toint(ResponseCode)" in query and "== 424" in query
    assert rule["properties"]["actions"] == {"actionGroups": ["actionGroupId"]}


def test_alerts_template_attaches_each_listed_endpoint_in_the_workspace_group() -> None:
    module = parse("alerts.bicep")["modules"]["endpointAlerts"]["config"]
    assert module["loop_type"]["detail"]["item_name"] == "endpoint"
    body = module["config"]
    assert expression_text(body["scope"]) == "resource_group(amlResourceGroupName, amlSubscriptionId)"
    assert body["params"]["endpointName"] == "endpoint"
    assert expression_text(body["params"]["actionGroupId"]) == \
        "property_accessor(actionGroup, property_accessor(outputs, id))"


def test_alert_route_keeps_function_auth_unless_entra_is_configured() -> None:
    _, _, level = _alert_function()
    assert level == func.AuthLevel.FUNCTION
