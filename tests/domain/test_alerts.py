"""Common-alert-schema parsing and routing, against Microsoft's published samples."""

import json
from pathlib import Path

import pytest

from rollout.alerts import (
    Alert,
    AlertDecision,
    AlertTarget,
    ManagedScope,
    RunningRollout,
    decide,
    locate,
    parse_alert,
    strongest,
)
from rollout.errors import InvalidAlert
from rollout.model import WorkspaceRef

FIXTURES = Path(__file__).parent.parent / "fixtures" / "alerts"
WS1 = WorkspaceRef("00000000-1111-2222-3333-444444444444", "RG1", "WS1")   # case differs from the ids
OTHER = WorkspaceRef("00000000-1111-2222-3333-444444444444", "rg1", "ws2")
LOGS = ("/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG/providers"
        "/Microsoft.OperationalInsights/workspaces/test-logAnalyticsWorkspace")
SCOPE = ManagedScope((WS1,))


def sample(name):
    return json.loads((FIXTURES / name).read_text())


@pytest.mark.parametrize("name, condition, rule, signal", [
    pytest.param("metric_alert_static_threshold_fired_common_schema.json", "Fired", "test-metricAlertRule", "Metric",
                 id="metric-static-fired"),
    pytest.param("metric_alert_dynamic_threshold_fired_common_schema.json", "Fired", "test-dynamicMetricAlertRule",
                 "Metric", id="metric-dynamic-fired"),
    pytest.param("metric_alert_resolved_common_schema.json", "Resolved", "WCUS-R2-Gen2", "Metric",
                 id="metric-resolved"),
    pytest.param("log_search_alert_v2_fired_common_schema.json", "Fired", "test-logAlertRule-v2", "Log",
                 id="log-search-v2"),
    pytest.param("activity_log_alert_administrative_fired_common_schema.json", "Fired", "test-activityLogAlertRule",
                 "Activity Log", id="activity-log"),
])
def test_parses_microsofts_samples(name, condition, rule, signal):
    alert = parse_alert(sample(name))
    assert (alert.monitor_condition, alert.rule, alert.signal_type) == (condition, rule, signal)
    assert alert.target_ids


def test_dimensions_come_from_every_criterion():
    alert = parse_alert(sample("ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json"))
    assert alert.dimensions == (("deployment", "green"), ("statusCodeClass", "5xx"))


NOT_COMMON = ("payload is not the Azure Monitor common alert schema (schemaId 'azureMonitorCommonAlertSchema'); "
              "turn on 'Enable the common alert schema' for this webhook in the action group")


@pytest.mark.parametrize("payload, message", [
    pytest.param({"data": {}}, NOT_COMMON, id="no-schema-id"),
    pytest.param({"schemaId": "AzureMonitorMetricAlert", "data": {}}, NOT_COMMON, id="legacy-metric-schema"),
    pytest.param("text", NOT_COMMON, id="not-an-object"),
    pytest.param({"schemaId": "azureMonitorCommonAlertSchema"}, "data is missing or not an object", id="no-data"),
    pytest.param({"schemaId": "azureMonitorCommonAlertSchema", "data": {}},
                 "data.essentials is missing or not an object", id="no-essentials"),
    pytest.param({"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {"alertRule": "r",
                 "monitorCondition": "Fired"}}}, "data.essentials.alertTargetIDs is missing", id="no-targets"),
    pytest.param({"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {"alertRule": "r",
                 "alertTargetIDs": ["/x"]}}}, "data.essentials.monitorCondition is missing", id="no-condition"),
    pytest.param({"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {
                 "monitorCondition": "Fired", "alertTargetIDs": ["/x"]}}}, "data.essentials.alertRule is missing",
                 id="no-rule"),
    pytest.param({"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {"alertRule": "r",
                 "monitorCondition": "Acknowledged", "alertTargetIDs": ["/x"]}}},
                 "data.essentials.monitorCondition must be Fired or Resolved", id="unknown-condition"),
])
def test_invalid_payloads_say_what_is_wrong(payload, message):
    with pytest.raises(InvalidAlert) as caught:
        parse_alert(payload)
    assert str(caught.value) == message


def test_every_field_routing_and_status_need_is_parsed():
    payload = sample("ml_endpoint_metric_alert_deployment_dimension_resolved.SYNTHETIC.json")
    essentials = payload["data"]["essentials"]
    alert = parse_alert(payload)
    assert alert == Alert(
        alert_id=essentials["alertId"], rule="ep1-green-5xx", monitor_condition="Resolved", signal_type="Metric",
        target_ids=tuple(essentials["alertTargetIDs"]), dimensions=(("deployment", "green"), ("statusCodeClass", "5xx")),
        fired_at=essentials["firedDateTime"], resolved_at=essentials["resolvedDateTime"], severity=essentials["severity"])
    assert alert.summary() == {"alert_id": essentials["alertId"], "rule": "ep1-green-5xx",
                               "monitor_condition": "Resolved", "signal_type": "Metric",
                               "fired_at": essentials["firedDateTime"], "resolved_at": essentials["resolvedDateTime"]}


@pytest.mark.parametrize("ids, expected", [
    pytest.param({"alertId": "a", "originAlertId": "o"}, "a", id="alert-id"),
    pytest.param({"alertId": None, "originAlertId": "o"}, "o", id="origin-when-no-alert-id"),
    pytest.param({"alertId": "", "originAlertId": None}, "", id="neither"),
])
def test_alert_id_falls_back_to_the_origin_id(ids, expected):
    payload = sample("ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json")
    payload["data"]["essentials"].update(ids)
    payload["data"]["essentials"]["signalType"] = None
    alert = parse_alert(payload)
    assert (alert.alert_id, alert.signal_type) == (expected, "")


def _malformed(**changes):
    """The managed metric sample with ``data`` fields replaced (``essentials`` and ``dimensions`` by path)."""
    payload = sample("ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json")
    for key, value in changes.items():
        if key == "data":
            payload["data"] = value
        elif key == "dimensions":
            payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"] = value
        elif key in ("alertContext",):
            payload["data"][key] = value
        elif key == "condition":
            payload["data"]["alertContext"]["condition"] = value
        elif key == "allOf":
            payload["data"]["alertContext"]["condition"]["allOf"] = value
        else:
            payload["data"]["essentials"][key] = value
    return payload


TARGETS_NOT_IDS = "data.essentials.alertTargetIDs must be a list of resource ids"
ALLOF_NOT_OBJECTS = "data.alertContext.condition.allOf must be a list of objects"
BAD_DIMENSION = "each dimension must be an object with a string name and a value"


@pytest.mark.parametrize("payload, message", [
    pytest.param(_malformed(data=[]), "data is missing or not an object", id="data-a-list"),
    pytest.param(_malformed(data="text"), "data is missing or not an object", id="data-a-string"),
    pytest.param(_malformed(data={"essentials": []}), "data.essentials is missing or not an object",
                 id="essentials-a-list"),
    pytest.param(_malformed(alertRule={"name": "r"}), "data.essentials.alertRule must be a string", id="rule-an-object"),
    pytest.param(_malformed(alertId=7), "data.essentials.alertId must be a string", id="alert-id-a-number"),
    pytest.param(_malformed(firedDateTime=[]), "data.essentials.firedDateTime must be a string", id="fired-a-list"),
    pytest.param(_malformed(alertTargetIDs="/subscriptions/x"), TARGETS_NOT_IDS, id="targets-a-string"),
    pytest.param(_malformed(alertTargetIDs=[7]), TARGETS_NOT_IDS, id="target-a-number"),
    pytest.param(_malformed(alertContext="text"), "data.alertContext must be an object", id="context-a-string"),
    pytest.param(_malformed(condition=[1]), "data.alertContext.condition must be an object", id="condition-a-list"),
    pytest.param(_malformed(allOf={"a": 1}), ALLOF_NOT_OBJECTS, id="allof-an-object"),
    pytest.param(_malformed(allOf=[7]), ALLOF_NOT_OBJECTS, id="criterion-a-number"),
    pytest.param(_malformed(dimensions=7), "data.alertContext.condition.allOf[].dimensions must be a list",
                 id="dimensions-a-number"),
    pytest.param(_malformed(dimensions=["deployment"]), BAD_DIMENSION, id="dimension-a-string"),
    pytest.param(_malformed(dimensions=[{"name": 7, "value": "green"}]), BAD_DIMENSION, id="dimension-name-a-number"),
    pytest.param(_malformed(dimensions=[{"name": "deployment", "value": ["green"]}]), BAD_DIMENSION,
                 id="dimension-value-a-list"),
])
def test_malformed_payloads_are_refused_for_good(payload, message):
    with pytest.raises(InvalidAlert) as caught:
        parse_alert(payload)
    assert str(caught.value) == message


@pytest.mark.parametrize("context, dimensions", [
    pytest.param(None, (), id="no-context"),
    pytest.param({"properties": {}}, (), id="context-without-condition"),
    pytest.param({"condition": {"allOf": []}}, (), id="no-criteria"),
    pytest.param({"condition": {"allOf": [{"dimensions": None}]}}, (), id="criterion-without-dimensions"),
    pytest.param({"condition": {"allOf": [{"dimensions": [{"name": "deployment", "value": None}]}]}}, (),
                 id="dimension-without-value-skipped"),
    pytest.param({"condition": {"allOf": [{"dimensions": [{"name": "instance", "value": 3}]}]}},
                 (("instance", "3"),), id="number-value-as-text"),
])
def test_well_formed_contexts_without_dimensions(context, dimensions):
    payload = sample("ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json")
    payload["data"]["alertContext"] = context
    assert parse_alert(payload).dimensions == dimensions


@pytest.mark.parametrize("name, scope, expected", [
    pytest.param("ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json", SCOPE,
                 (AlertTarget("ep1", WS1, ("green",)),), id="endpoint-id-lower-cased-by-azure"),
    pytest.param("ml_workspace_log_search_alert_fired.SYNTHETIC.json", SCOPE,
                 (AlertTarget("ep1", WS1, ("green",)),), id="log-search-on-workspace-uses-dimensions"),
    pytest.param("ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json", ManagedScope((OTHER,)),
                 (), id="other-workspace"),
    pytest.param("metric_alert_static_threshold_fired_common_schema.json", SCOPE, (), id="not-an-ml-resource"),
    pytest.param("log_search_alert_v2_fired_common_schema.json", ManagedScope((WS1,), (LOGS,)), (),
                 id="log-analytics-scope-without-endpoint-dimension"),
])
def test_locate(name, scope, expected):
    assert locate(parse_alert(sample(name)), scope) == expected


ARM_WS1 = ("/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg1/providers"
           "/Microsoft.MachineLearningServices/workspaces/ws1")


def _targeted(ids, dimensions=None):
    """The managed metric sample (dimension deployment=green) with these target ids and dimensions."""
    payload = sample("ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json")
    payload["data"]["essentials"]["alertTargetIDs"] = ids
    if dimensions is not None:
        payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"] = [
            {"name": n, "value": v} for n, v in dimensions]
    return parse_alert(payload)


@pytest.mark.parametrize("alert, expected", [
    pytest.param(_targeted([ARM_WS1 + "/onlineEndpoints/EP1/deployments/blue"]),
                 (AlertTarget("ep1", WS1, ("blue", "green")),), id="deployment-id-and-dimension-both-count"),
    pytest.param(_targeted([ARM_WS1, ARM_WS1 + "/onlineEndpoints/ep1"]),
                 (AlertTarget("ep1", WS1, ("green",)),), id="workspace-id-then-endpoint-id"),
    pytest.param(_targeted([ARM_WS1 + "/onlineEndpoints/other", ARM_WS1 + "/onlineEndpoints/ep1"]),
                 (AlertTarget("other", WS1, ("green",)), AlertTarget("ep1", WS1, ("green",))),
                 id="every-endpoint-id"),
    pytest.param(_targeted([ARM_WS1 + "/onlineEndpoints/ep1"], [("deployment", "blue"), ("Deployment", "GREEN")]),
                 (AlertTarget("ep1", WS1, ("blue", "green")),), id="every-deployment-dimension"),
    pytest.param(_targeted([ARM_WS1 + "/onlineEndpoints/ep1/deployments/blue", ARM_WS1 + "/onlineEndpoints/ep1"], []),
                 (AlertTarget("ep1", WS1, ()),), id="endpoint-wide-target-wins-the-merge"),
    pytest.param(_targeted([ARM_WS1 + "/onlineEndpoints/ep1/deployments/blue",
                            ARM_WS1 + "/onlineEndpoints/ep1/deployments/green"], []),
                 (AlertTarget("ep1", WS1, ("blue", "green")),), id="two-deployment-ids-merge"),
    pytest.param(_targeted([ARM_WS1], [("EndpointName", "ep1"), ("EndpointName", "EP2"), ("DeploymentName", "g")]),
                 (AlertTarget("ep1", WS1, ("g",)), AlertTarget("ep2", WS1, ("g",))),
                 id="every-endpoint-dimension"),
    pytest.param(_targeted([ARM_WS1.upper() + "/ONLINEENDPOINTS/EP1"]), (AlertTarget("ep1", WS1, ("green",)),),
                 id="subscription-with-letters-any-case"),
    pytest.param(_targeted(["/subscriptions/x/resourceGroups/rg1/providers/Microsoft.MachineLearningServices"
                            "/workspaces/ws1/onlineEndpoints/ep1"]), (), id="other-subscription"),
    pytest.param(_targeted([ARM_WS1 + "/onlineEndpoints/ep1/extra"]), (), id="not-an-endpoint-or-deployment-id"),
    pytest.param(_targeted([ARM_WS1 + "/onlineEndpoints/ep1", ARM_WS1], [("EndpointName", "ep2")]),
                 (AlertTarget("ep1", WS1, ()), AlertTarget("ep2", WS1, ())), id="endpoint-id-then-workspace-id"),
    pytest.param(_targeted([ARM_WS1 + "/"], [("EndpointName", "ep2")]), (AlertTarget("ep2", WS1, ()),),
                 id="workspace-id-with-trailing-slash"),
    pytest.param(_targeted([ARM_WS1], [("deployment", "green")]), (), id="workspace-id-without-endpoint-dimension"),
])
def test_locate_routes_on_every_target_and_dimension(alert, expected):
    assert locate(alert, SCOPE) == expected


def test_log_analytics_scoped_alert_routes_by_endpoint_dimension():
    payload = sample("log_search_alert_v2_fired_common_schema.json")
    payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"] = [
        {"name": "EndpointName", "value": "EP1"}, {"name": "DeploymentName", "value": "green"}]
    assert locate(parse_alert(payload), ManagedScope((WS1,), (LOGS.lower() + "/",))) == (AlertTarget("ep1", None, ("green",)),)
    payload["data"]["essentials"]["alertTargetIDs"] = [LOGS.upper() + "/"]
    assert locate(parse_alert(payload), ManagedScope((WS1,), (LOGS,))) == (AlertTarget("ep1", None, ("green",)),)


FIRED = parse_alert(sample("ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json"))
RESOLVED = parse_alert(sample("ml_endpoint_metric_alert_deployment_dimension_resolved.SYNTHETIC.json"))
ROLLOUT = RunningRollout("rollout-ep1", "green")
WS1_OTHER_CASE = WorkspaceRef("00000000-1111-2222-3333-444444444444".upper(), "rg1", "ws1")


@pytest.mark.parametrize("alert, target, rollout, action, reason", [
    pytest.param(FIRED, AlertTarget("ep1", WS1, ("green",)), ROLLOUT, "rollback", "'ep1-green-5xx' fired",
                 id="fired-on-new"),
    pytest.param(FIRED, AlertTarget("ep1", WS1), ROLLOUT, "rollback", "fired", id="fired-no-deployment"),
    pytest.param(FIRED, AlertTarget("ep1", WS1, ("green",)), RunningRollout("rollout-ep1", "GREEN"), "rollback",
                 "fired", id="new-deployment-named-in-another-case"),
    pytest.param(FIRED, AlertTarget("ep1", WS1, ("blue",)), ROLLOUT, "record", "deployment 'blue', not the new",
                 id="fired-on-old"),
    pytest.param(FIRED, AlertTarget("ep1", WS1, ("blue", "green")), ROLLOUT, "rollback", "fired",
                 id="new-named-among-others"),
    pytest.param(FIRED, AlertTarget("ep1", WS1, ("blue", "red")), ROLLOUT, "record", "'blue', 'red', not the new",
                 id="only-others-named"),
    pytest.param(RESOLVED, AlertTarget("ep1", WS1, ("blue",)), ROLLOUT, "record", "resolved",
                 id="resolved-on-old"),
    pytest.param(FIRED, AlertTarget("ep1", WS1_OTHER_CASE, ("green",)), RunningRollout("rollout-ep1", "green", WS1),
                 "rollback", "fired", id="workspace-named-in-another-case"),
    pytest.param(FIRED, AlertTarget("ep1", WS1_OTHER_CASE, ("green",)), ROLLOUT, "rollback", "fired",
                 id="default-workspace-named-in-another-case"),
    pytest.param(FIRED, AlertTarget("ep1", None, ("green",)), RunningRollout("rollout-ep1", "green", OTHER),
                 "rollback", "fired", id="log-analytics-target-has-no-workspace"),
    pytest.param(RESOLVED, AlertTarget("ep1", WS1, ("green",)), ROLLOUT, "record", "resolved", id="resolved"),
    pytest.param(FIRED, AlertTarget("ep1", WS1, ("green",)), None, "ignore", "no running rollout", id="no-rollout"),
    pytest.param(FIRED, None, ROLLOUT, "ignore", "workspace this app manages", id="outside-scope"),
    pytest.param(FIRED, AlertTarget("ep1", WS1, ("green",)), RunningRollout("rollout-ep1", "green", OTHER), "ignore",
                 "another workspace", id="rollout-in-other-workspace"),
])
def test_decide(alert, target, rollout, action, reason):
    decision = decide(alert, target, rollout, WS1)
    assert decision.action == action
    assert reason in decision.reason
    assert decision.instance_id == (None if action == "ignore" else "rollout-ep1")


@pytest.mark.parametrize("target, rollout, reason", [
    pytest.param(None, ROLLOUT, "alert is not about an online endpoint in a workspace this app manages",
                 id="outside-scope"),
    pytest.param(AlertTarget("ep1", WS1), None, "endpoint 'ep1' has no running rollout", id="no-rollout"),
    pytest.param(AlertTarget("ep1", WS1), RunningRollout("rollout-ep1", "green", OTHER),
                 "the running rollout of 'ep1' is in another workspace", id="other-workspace"),
    pytest.param(AlertTarget("ep1", WS1, ("blue", "red")), ROLLOUT,
                 "alert 'ep1-green-5xx' fired for deployment 'blue', 'red', not the new deployment", id="others-named"),
    pytest.param(AlertTarget("ep1", WS1, ("green",)), ROLLOUT, "alert 'ep1-green-5xx' fired", id="rollback"),
])
def test_decide_says_exactly_why(target, rollout, reason):
    assert decide(FIRED, target, rollout, WS1).reason == reason


def test_decide_without_a_default_workspace_trusts_the_target():
    decision = decide(FIRED, AlertTarget("ep1", OTHER, ("green",)), ROLLOUT, None)
    assert decision.action == "rollback"


IGNORE, RECORD, ROLLBACK = (AlertDecision("ignore", "i"), AlertDecision("record", "r", "x"),
                            AlertDecision("rollback", "b", "x"))


@pytest.mark.parametrize("decisions, expected", [
    pytest.param([], None, id="none"),
    pytest.param([IGNORE, RECORD], RECORD, id="record-over-ignore"),
    pytest.param([RECORD, ROLLBACK, IGNORE], ROLLBACK, id="rollback-over-all"),
    pytest.param([RECORD, AlertDecision("record", "second", "y")], RECORD, id="first-among-equals"),
])
def test_strongest(decisions, expected):
    assert strongest(decisions) is expected


def test_custom_properties_cannot_choose_the_target():
    payload = sample("ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json")
    payload["data"]["customProperties"] = {"instanceId": "rollout-other", "endpoint": "other"}
    payload["data"]["alertContext"]["properties"] = {"instanceId": "rollout-other"}
    assert locate(parse_alert(payload), SCOPE) == (AlertTarget("ep1", WS1, ("green",)),)
