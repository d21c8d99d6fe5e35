"""MetricsPort over the real MonitorManagementClient and LogsQueryClient, against the fake Azure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.azure_backend import AzureBackend
from adapters.azure_monitor import is_error_status, minute_window, traffic_query
from rollout.errors import PermissionDenied, ServiceError, Throttled, TransientError
from rollout.model import DeploymentMetrics
from tests.azure.conftest import LA_WORKSPACE, WS
from tests.azure.fake_azure import FakeAzure, arm_error, fixture

METRICS = fixture("metrics_list_RequestsPerMinute_RequestLatency_P99_by_deployment_statusCode.SYNTHETIC.json")
LOGS = fixture("loganalytics_query_AmlOnlineEndpointTrafficLog.SYNTHETIC.json")
START = datetime(2025, 1, 1, 12, 0, 30, tzinfo=UTC)
END = datetime(2025, 1, 1, 12, 6, 30, tzinfo=UTC)


@pytest.fixture
def platform(fake: FakeAzure, backend: AzureBackend) -> FakeAzure:
    """The fake serving the synthetic metrics, with the backend's port already built."""
    backend.metrics(WS, "platform")
    fake.metrics_body = METRICS
    fake.requests.clear()
    return fake


@pytest.fixture
def logs(fake: FakeAzure, backend: AzureBackend) -> FakeAzure:
    backend.metrics(WS, "log_analytics")
    fake.logs_body = LOGS
    fake.requests.clear()
    return fake


def test_platform_metrics_is_one_request_shaped_for_both_metrics(backend: AzureBackend, platform: FakeAzure) -> None:
    backend.metrics(WS, "platform").deployment_metrics("ep1", ["blue", "green"], START, END)
    [request] = platform.requests
    assert request.method == "GET"
    assert request.path == f"{WS.endpoint_id('ep1')}/providers/Microsoft.Insights/metrics"
    assert request.query == {
        "api-version": "2024-02-01",
        "metricnames": "RequestsPerMinute,RequestLatency_P99",
        "aggregation": "average",
        "interval": "PT1M",
        "$filter": "deployment eq '*' and statusCode eq '*'",
        "top": "200",
        "ValidateDimensions": "false",
        "metricnamespace": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
        # from the minute START falls in, to the last minute ended 60 s (the lag) before END
        "timespan": "2025-01-01T12:00:00Z/2025-01-01T12:05:00Z",
    }


def test_platform_metrics_counts_5xx_and_424_and_bounds_p99(backend: AzureBackend, platform: FakeAzure) -> None:
    found = backend.metrics(WS, "platform").deployment_metrics("ep1", ["blue", "Green", "idle"], START, END)
    assert found == {
        # 4516 answered 200, one 503; a minute without a value is not a zero
        "blue": DeploymentMetrics(4517, 1, 125.2),
        # 470 x 200, 21 x 500 (last minute empty), 4 x 424, 5 x 404, 3 x 429: errors are 5xx and 424 only
        "Green": DeploymentMetrics(503, 25, 210.7),
        "idle": DeploymentMetrics(0, 0, None),
    }


def test_no_whole_minute_left_after_the_lag_means_no_request_and_no_requests(
        backend: AzureBackend, platform: FakeAzure) -> None:
    found = backend.metrics(WS, "platform").deployment_metrics(
        "ep1", ["green"], START, START + timedelta(seconds=75))
    assert found == {"green": DeploymentMetrics(0, 0, None)}
    assert platform.requests == []


def test_minute_window_rounds_to_whole_minutes_before_the_lag() -> None:
    naive = datetime(2025, 1, 1, 12, 0, 30)
    assert minute_window(naive, naive + timedelta(minutes=5), 60) == (
        datetime(2025, 1, 1, 12, 0, tzinfo=UTC), datetime(2025, 1, 1, 12, 4, tzinfo=UTC))
    assert minute_window(naive, naive + timedelta(minutes=1), 60) is None


def test_latency_without_the_deployment_split_fails_the_check(backend: AzureBackend, platform: FakeAzure) -> None:
    unsplit = fixture("metrics_list_RequestsPerMinute_RequestLatency_P99_by_deployment_statusCode.SYNTHETIC.json")
    for series in unsplit["value"][1]["timeseries"]:
        series["metadatavalues"] = []
    platform.metrics_body = unsplit
    with pytest.raises(ServiceError, match="without the deployment dimension"):
        backend.metrics(WS, "platform").deployment_metrics("ep1", ["green"], START, END)


def test_a_metric_the_service_could_not_read_is_an_error(backend: AzureBackend, platform: FakeAzure) -> None:
    broken = fixture("metrics_list_RequestsPerMinute_RequestLatency_P99_by_deployment_statusCode.SYNTHETIC.json")
    broken["value"][0].update(errorCode="InternalError", errorMessage="Metric store unavailable", timeseries=[])
    platform.metrics_body = broken
    with pytest.raises(ServiceError, match="InternalError: Metric store unavailable"):
        backend.metrics(WS, "platform").deployment_metrics("ep1", ["green"], START, END)


def test_as_many_series_as_top_is_refused_as_possibly_cut(backend: AzureBackend, platform: FakeAzure) -> None:
    crowded = fixture("metrics_list_RequestsPerMinute_RequestLatency_P99_by_deployment_statusCode.SYNTHETIC.json")
    one = crowded["value"][0]["timeseries"][0]
    crowded["value"][0]["timeseries"] = [one] * 200
    platform.metrics_body = crowded
    with pytest.raises(ServiceError, match="could be incomplete"):
        backend.metrics(WS, "platform").deployment_metrics("ep1", ["blue"], START, END)


@pytest.mark.parametrize(("status", "headers", "error", "text"), [
    (403, {}, PermissionDenied, "'Monitoring Reader'"),
    (429, {"Retry-After": "45"}, Throttled, "throttled"),
    (503, {}, TransientError, "503"),
    (400, {}, ServiceError, "400 BadRequest: Invalid timespan"),
])
def test_platform_metric_failures_are_translated(backend: AzureBackend, platform: FakeAzure, status: int,
                                                 headers: dict[str, str], error: type, text: str) -> None:
    platform.fail("GET", r"/metrics$", status, arm_error("BadRequest" if status == 400 else "Failure",
                                                          "Invalid timespan"), headers=headers, times=None)
    with pytest.raises(error, match=text) as caught:
        backend.metrics(WS, "platform").deployment_metrics("ep1", ["green"], START, END)
    if status == 429:
        assert caught.value.retry_after == 45


def test_error_status_codes() -> None:
    assert [is_error_status(c) for c in ("200", "404", "424", "429", "500", "503", "599", "", "n/a")] == [
        False, False, True, False, True, True, True, False, False]


# ---- Log Analytics ----------------------------------------------------------------------------


def test_log_analytics_runs_one_query_over_the_window_before_the_lag(backend: AzureBackend, logs: FakeAzure) -> None:
    backend.metrics(WS, "log_analytics").deployment_metrics("ep1", ["blue", "green"], START, END)
    [request] = logs.requests
    assert (request.method, request.path) == ("POST", f"/v1/workspaces/{LA_WORKSPACE}/query")
    assert request.body["timespan"] == "2025-01-01T12:00:30.000Z/2025-01-01T12:05:30.000Z"
    assert request.body["query"] == traffic_query("ws1", "ep1", ["blue", "green"], START, END - timedelta(seconds=60))
    assert 'TimeGenerated < datetime(2025-01-01T12:05:30.000000Z)' in request.body["query"]
    assert 'DeploymentName in~ ("blue", "green")' in request.body["query"]
    assert request.headers["prefer"] == "wait=50"


def test_log_analytics_reads_requests_errors_and_p99(backend: AzureBackend, logs: FakeAzure) -> None:
    found = backend.metrics(WS, "log_analytics").deployment_metrics("ep1", ["Blue", "green", "idle"], START, END)
    assert found == {
        "Blue": DeploymentMetrics(4516, 2, 125.0),
        "green": DeploymentMetrics(495, 24, 212.0),
        "idle": DeploymentMetrics(0, 0, None),
    }


def test_names_are_quoted_as_kql_strings() -> None:
    query = traffic_query('w"s', "ep1", ['x" or 1==1 //'], START, END)
    assert 'DeploymentName in~ ("x\\" or 1==1 //")' in query
    assert 'AzureMLWorkspaceName =~ "w\\"s"' in query


def test_a_partial_log_result_is_never_read_as_counts(backend: AzureBackend, logs: FakeAzure) -> None:
    logs.logs_body = {**LOGS, "error": {"code": "PartialError", "message": "Query exceeded the limit",
                                        "details": [{"code": "E_QUERY_RESULT_SET_TOO_LARGE", "message": "too large"}]}}
    with pytest.raises(TransientError, match="partial results"):
        backend.metrics(WS, "log_analytics").deployment_metrics("ep1", ["green"], START, END)


@pytest.mark.parametrize(("status", "error", "text"), [
    (403, PermissionDenied, "'Log Analytics Reader'"),
    (400, ServiceError, "BadArgumentError: Failed to resolve table"),
    (504, TransientError, "504"),
])
def test_log_analytics_failures_are_translated(backend: AzureBackend, logs: FakeAzure, status: int,
                                               error: type, text: str) -> None:
    logs.fail("POST", r"/query$", status, {"error": {
        "code": "BadArgumentError", "message": "Failed to resolve table 'AmlOnlineEndpointTrafficLog'",
        "innererror": {"code": "SemanticError", "message": "unknown table"}}}, times=None)
    with pytest.raises(error, match=text):
        backend.metrics(WS, "log_analytics").deployment_metrics("ep1", ["green"], START, END)
