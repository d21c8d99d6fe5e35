"""Common-alert-schema parsing and routing, against Microsoft's published samples."""

import json
from pathlib import Path

import pytest

from rollout.alerts import (
    AlertTarget,
    ManagedScope,
    RunningRollout,
    decide,
    locate,
    parse_alert,
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


@pytest.mark.parametrize("payload, message", [
    pytest.param({"data": {}}, "common alert schema", id="no-schema-id"),
    pytest.param({"schemaId": "AzureMonitorMetricAlert", "data": {}}, "Enable the common alert schema",
                 id="legacy-metric-schema"),
    pytest.param("text", "common alert schema", id="not-an-object"),
    pytest.param({"schemaId": "azureMonitorCommonAlertSchema"}, "data.essentials is missing", id="no-essentials"),
    pytest.param({"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {"alertRule": "r",
                 "monitorCondition": "Fired"}}}, "alertTargetIDs is missing", id="no-targets"),
    pytest.param({"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {"alertRule": "r",
                 "monitorCondition": "Acknowledged", "alertTargetIDs": ["/x"]}}}, "Fired or Resolved",
                 id="unknown-condition"),
])
def test_invalid_payloads_say_what_is_wrong(payload, message):
    with pytest.raises(InvalidAlert) as caught:
        parse_alert(payload)
    assert message in str(caught.value)


@pytest.mark.parametrize("name, scope, expected", [
    pytest.param("ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json", SCOPE,
                 AlertTarget("ep1", WS1, "green"), id="endpoint-id-lower-cased-by-azure"),
    pytest.param("ml_workspace_log_search_alert_fired.SYNTHETIC.json", SCOPE,
                 AlertTarget("ep1", WS1, "green"), id="log-search-on-workspace-uses-dimensions"),
    pytest.param("ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json", ManagedScope((OTHER,)),
                 None, id="other-workspace"),
    pytest.param("metric_alert_static_threshold_fired_common_schema.json", SCOPE, None, id="not-an-ml-resource"),
    pytest.param("log_search_alert_v2_fired_common_schema.json", ManagedScope((WS1,), (LOGS,)), None,
                 id="log-analytics-scope-without-endpoint-dimension"),
])
def test_locate(name, scope, expected):
    assert locate(parse_alert(sample(name)), scope) == expected


def test_deployment_in_target_id_wins():
    payload = sample("ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json")
    payload["data"]["essentials"]["alertTargetIDs"] = [
        "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg1/providers/Microsoft.MachineLearningServices"
        "/workspaces/ws1/onlineEndpoints/EP1/deployments/blue"]
    assert locate(parse_alert(payload), SCOPE) == AlertTarget("ep1", WS1, "blue")


def test_log_analytics_scoped_alert_routes_by_endpoint_dimension():
    payload = sample("log_search_alert_v2_fired_common_schema.json")
    payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"] = [
        {"name": "EndpointName", "value": "EP1"}, {"name": "DeploymentName", "value": "green"}]
    assert locate(parse_alert(payload), ManagedScope((WS1,), (LOGS.lower(),))) == AlertTarget("ep1", None, "green")


FIRED = parse_alert(sample("ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json"))
RESOLVED = parse_alert(sample("ml_endpoint_metric_alert_deployment_dimension_resolved.SYNTHETIC.json"))
ROLLOUT = RunningRollout("rollout-ep1", "green")


@pytest.mark.parametrize("alert, target, rollout, action, reason", [
    pytest.param(FIRED, AlertTarget("ep1", WS1, "green"), ROLLOUT, "rollback", "'ep1-green-5xx' fired",
                 id="fired-on-new"),
    pytest.param(FIRED, AlertTarget("ep1", WS1, None), ROLLOUT, "rollback", "fired", id="fired-no-deployment"),
    pytest.param(FIRED, AlertTarget("ep1", WS1, "GREEN"), ROLLOUT, "rollback", "fired", id="deployment-case"),
    pytest.param(FIRED, AlertTarget("ep1", WS1, "blue"), ROLLOUT, "record", "not the new deployment",
                 id="fired-on-old"),
    pytest.param(RESOLVED, AlertTarget("ep1", WS1, "green"), ROLLOUT, "record", "resolved", id="resolved"),
    pytest.param(FIRED, AlertTarget("ep1", WS1, "green"), None, "ignore", "no running rollout", id="no-rollout"),
    pytest.param(FIRED, None, ROLLOUT, "ignore", "workspace this app manages", id="outside-scope"),
    pytest.param(FIRED, AlertTarget("ep1", WS1, "green"), RunningRollout("rollout-ep1", "green", OTHER), "ignore",
                 "another workspace", id="rollout-in-other-workspace"),
])
def test_decide(alert, target, rollout, action, reason):
    decision = decide(alert, target, rollout, WS1)
    assert decision.action == action
    assert reason in decision.reason
    assert decision.instance_id == (None if action == "ignore" else "rollout-ep1")


def test_custom_properties_cannot_choose_the_target():
    payload = sample("ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json")
    payload["data"]["customProperties"] = {"instanceId": "rollout-other", "endpoint": "other"}
    payload["data"]["alertContext"]["properties"] = {"instanceId": "rollout-other"}
    assert locate(parse_alert(payload), SCOPE) == AlertTarget("ep1", WS1, "green")
