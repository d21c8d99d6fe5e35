"""Rollout request validation and plan resolution: one named row per case."""

from datetime import timedelta

import pytest

from rollout.errors import InvalidRequest
from rollout.model import DeploymentState, EndpointState
from rollout.plan import DEFAULT_STEPS, PlanRejected, instance_id_for, parse_request, resolve_plan

BASE = {"endpoint_name": "fraud-ep", "new_deployment": "green-v2"}


def test_defaults_are_the_seed_designs_values():
    request = parse_request(BASE)
    assert request.old_deployment is None and request.traffic_steps is None
    assert request.observation_window == timedelta(minutes=5)
    assert request.check_interval == timedelta(minutes=1)
    assert (request.error_threshold, request.min_requests, request.max_inconclusive_windows) == (0.01, 100, 2)
    assert request.bake_time == timedelta(0) and request.metrics_source == "platform"
    assert (request.confidence, request.max_latency_ratio, request.on_unhealthy_baseline) == (0.95, None, "refuse")


def test_wire_form_of_the_defaults_round_trips():
    request = parse_request(BASE)
    assert request.to_dict()["traffic_steps"] is None and request.to_dict()["workspace"] is None
    assert parse_request(request.to_dict()) == request


def test_wire_form_round_trips():
    request = parse_request({**BASE, "traffic_steps": [5, 100], "observation_window": "PT1H30M",
                             "latency_p99_threshold_ms": 250, "bake_time": "PT10M", "confidence": 0.99,
                             "max_latency_ratio": 1.5, "on_unhealthy_baseline": "proceed",
                             "workspace": {"subscription_id": "s", "resource_group": "r", "workspace_name": "w"}})
    assert parse_request(request.to_dict()) == request


@pytest.mark.parametrize("change, field, message", [
    pytest.param({"endpoint_name": None}, "endpoint_name", "is required", id="endpoint-missing"),
    pytest.param({"new_deployment": None}, "new_deployment", "is required", id="new-missing"),
    pytest.param({"endpoint_name": "x"}, "endpoint_name", "3-32 characters", id="endpoint-too-short"),
    pytest.param({"endpoint_name": "1abc"}, "endpoint_name", "starting with a letter", id="endpoint-starts-with-digit"),
    pytest.param({"new_deployment": 7}, "new_deployment", "3-32", id="new-not-a-string"),
    pytest.param({"old_deployment": "green-v2"}, "old_deployment", "must differ", id="old-equals-new"),
    pytest.param({"old_deployment": "GREEN-V2"}, "old_deployment", "must differ", id="old-equals-new-other-case"),
    pytest.param({"traffic_steps": []}, "traffic_steps", "non-empty", id="steps-empty"),
    pytest.param({"traffic_steps": "10,100"}, "traffic_steps", "non-empty list", id="steps-not-a-list"),
    pytest.param({"traffic_steps": [10, 10, 100]}, "traffic_steps", "strictly increasing", id="steps-repeat"),
    pytest.param({"traffic_steps": [50, 20, 100]}, "traffic_steps", "strictly increasing", id="steps-decrease"),
    pytest.param({"traffic_steps": [0, 100]}, "traffic_steps", "between 1 and 100", id="steps-zero"),
    pytest.param({"traffic_steps": [10, 101]}, "traffic_steps", "between 1 and 100", id="steps-over-100"),
    pytest.param({"traffic_steps": [10.5, 100]}, "traffic_steps", "only integers", id="steps-float"),
    pytest.param({"traffic_steps": [True, 100]}, "traffic_steps", "only integers", id="steps-bool"),
    pytest.param({"observation_window": "5 minutes"}, "observation_window", "ISO 8601", id="window-not-iso"),
    pytest.param({"observation_window": "P1M"}, "observation_window", "ISO 8601", id="window-months"),
    pytest.param({"observation_window": "PT0S"}, "observation_window", "at least 1 second", id="window-zero"),
    pytest.param({"observation_window": "P7D"}, "observation_window", "at most", id="window-too-long"),
    pytest.param({"check_interval": 60}, "check_interval", "ISO 8601", id="interval-number"),
    pytest.param({"check_interval": "PT10M"}, "check_interval", "not be longer", id="interval-longer-than-window"),
    pytest.param({"error_threshold": 1.5}, "error_threshold", "between 0 and 1", id="threshold-over-1"),
    pytest.param({"error_threshold": -0.1}, "error_threshold", "between", id="threshold-negative"),
    pytest.param({"error_threshold": "0.01"}, "error_threshold", "must be a number", id="threshold-string"),
    pytest.param({"latency_p99_threshold_ms": 0}, "latency_p99_threshold_ms", "between 1 and 600000", id="latency-zero"),
    pytest.param({"max_error_rate_increase": 2}, "max_error_rate_increase", "between", id="increase-over-1"),
    pytest.param({"min_requests": 0}, "min_requests", "between 1 and 1000000000", id="min-requests-zero"),
    pytest.param({"min_requests": 10.0}, "min_requests", "integer", id="min-requests-float"),
    pytest.param({"max_inconclusive_windows": -1}, "max_inconclusive_windows", "between 0 and 100", id="extensions-negative"),
    pytest.param({"bake_time": "soon"}, "bake_time", "ISO 8601", id="bake-not-iso"),
    pytest.param({"metrics_source": "prometheus"}, "metrics_source", "platform, log_analytics", id="source-unknown"),
    pytest.param({"workspace": {"subscription_id": "s"}}, "workspace", "exactly subscription_id", id="workspace-partial"),
    pytest.param({"workspace": {"subscription_id": 7, "resource_group": "r", "workspace_name": "w"}}, "workspace",
                 "(strings)", id="workspace-part-a-number"),
    pytest.param({"workspace": {"subscription_id": "", "resource_group": "r", "workspace_name": "w"}}, "workspace",
                 "(strings)", id="workspace-part-empty"),
    pytest.param({"workspace": ["s", "r", "w"]}, "workspace", "(strings)", id="workspace-a-list"),
    pytest.param({"trafic_steps": [10, 100]}, "trafic_steps", "not a known field", id="unknown-field"),
    pytest.param({"error_threshold": float("nan")}, "error_threshold", "finite", id="threshold-nan"),
    pytest.param({"error_threshold": float("inf")}, "error_threshold", "finite", id="threshold-infinity"),
    pytest.param({"max_error_rate_increase": float("nan")}, "max_error_rate_increase", "finite", id="increase-nan"),
    pytest.param({"latency_p99_threshold_ms": float("nan")}, "latency_p99_threshold_ms", "finite", id="latency-nan"),
    pytest.param({"latency_p99_threshold_ms": float("-inf")}, "latency_p99_threshold_ms", "finite",
                 id="latency-minus-infinity"),
    pytest.param({"latency_p99_threshold_ms": 10 ** 400}, "latency_p99_threshold_ms", "between 1 and 600000",
                 id="latency-too-large-for-a-float"),
    pytest.param({"latency_p99_threshold_ms": 600_000.5}, "latency_p99_threshold_ms", "between", id="latency-over"),
    pytest.param({"error_threshold": 10 ** 400}, "error_threshold", "between 0 and 1", id="threshold-huge-int"),
    pytest.param({"min_requests": 10 ** 310}, "min_requests", "between 1 and 1000000000", id="min-requests-huge"),
    pytest.param({"min_requests": 1_000_000_001}, "min_requests", "between", id="min-requests-just-over"),
    pytest.param({"max_inconclusive_windows": 101}, "max_inconclusive_windows", "between 0 and 100",
                 id="extensions-just-over"),
    pytest.param({"max_inconclusive_windows": True}, "max_inconclusive_windows", "integer", id="extensions-bool"),
    pytest.param({"error_threshold": True}, "error_threshold", "must be a number", id="threshold-bool"),
    pytest.param({"observation_window": "P99999999999W"}, "observation_window", "at most P6D", id="window-overflow"),
    pytest.param({"bake_time": "P99999999999W"}, "bake_time", "at most P6D", id="bake-overflow"),
    pytest.param({"bake_time": "P6DT1S"}, "bake_time", "at most P6D", id="bake-just-over"),
    pytest.param({"bake_time": "-PT1M"}, "bake_time", "ISO 8601", id="bake-negative"),
    pytest.param({"observation_window": "PT\uff15M"}, "observation_window", "ISO 8601", id="window-unicode-digit"),
    pytest.param({"observation_window": "PT0.999S"}, "observation_window", "at least 1 second", id="window-under-1s"),
    pytest.param({"endpoint_name": "fraud-ep\n"}, "endpoint_name", "3-32 characters", id="name-trailing-newline"),
    pytest.param({"endpoint_name": "fraud-"}, "endpoint_name", "ending with a letter or digit",
                 id="name-trailing-hyphen"),
    pytest.param({"endpoint_name": "a" * 33}, "endpoint_name", "3-32", id="name-33-characters"),
    pytest.param({"new_deployment": "gr_en"}, "new_deployment", "3-32", id="name-underscore"),
    pytest.param({"new_deployment": "gr\u00e9en"}, "new_deployment", "ASCII", id="name-non-ascii-letter"),
    pytest.param({"old_deployment": "b\u0661\u0662"}, "old_deployment", "ASCII", id="name-unicode-digits"),
])
def test_bad_field_is_named(change, field, message):
    with pytest.raises(InvalidRequest) as caught:
        parse_request({**BASE, **change})
    problems = {p.field: p.message for p in caught.value.problems}
    assert field in problems, problems
    assert message in problems[field]


@pytest.mark.parametrize("change, expected", [
    pytest.param({"endpoint_name": "abc"}, ("endpoint_name", "abc"), id="name-3-characters"),
    pytest.param({"endpoint_name": "a" * 32}, ("endpoint_name", "a" * 32), id="name-32-characters"),
    pytest.param({"new_deployment": "G-2"}, ("new_deployment", "G-2"), id="name-ends-with-digit"),
    pytest.param({"error_threshold": 0}, ("error_threshold", 0.0), id="threshold-0"),
    pytest.param({"error_threshold": 1}, ("error_threshold", 1.0), id="threshold-1"),
    pytest.param({"latency_p99_threshold_ms": 1}, ("latency_p99_threshold_ms", 1.0), id="latency-1"),
    pytest.param({"latency_p99_threshold_ms": 600000}, ("latency_p99_threshold_ms", 600000.0), id="latency-max"),
    pytest.param({"max_error_rate_increase": 0}, ("max_error_rate_increase", 0.0), id="increase-0"),
    pytest.param({"max_error_rate_increase": 1}, ("max_error_rate_increase", 1.0), id="increase-1"),
    pytest.param({"min_requests": 1}, ("min_requests", 1), id="min-requests-1"),
    pytest.param({"min_requests": 1_000_000_000}, ("min_requests", 1_000_000_000), id="min-requests-max"),
    pytest.param({"max_inconclusive_windows": 0}, ("max_inconclusive_windows", 0), id="extensions-0"),
    pytest.param({"max_inconclusive_windows": 100}, ("max_inconclusive_windows", 100), id="extensions-max"),
    pytest.param({"observation_window": "PT1S", "check_interval": "PT1S"}, ("check_interval", timedelta(seconds=1)),
                 id="interval-1s-equal-to-window"),
    pytest.param({"observation_window": "PT1H", "check_interval": "PT10M"}, ("check_interval", timedelta(minutes=10)),
                 id="interval-longer-than-the-default-window-but-not-this-one"),
    pytest.param({"observation_window": "P6D"}, ("observation_window", timedelta(days=6)), id="window-max"),
    pytest.param({"bake_time": "P6D"}, ("bake_time", timedelta(days=6)), id="bake-max"),
    pytest.param({"bake_time": "PT0S"}, ("bake_time", timedelta(0)), id="bake-zero"),
    pytest.param({"traffic_steps": [1, 100]}, ("traffic_steps", (1, 100)), id="steps-at-the-bounds"),
    pytest.param({"metrics_source": "log_analytics"}, ("metrics_source", "log_analytics"), id="source-logs"),
    pytest.param({"confidence": 0.5}, ("confidence", 0.5), id="confidence-min"),
    pytest.param({"confidence": 0.9999}, ("confidence", 0.9999), id="confidence-max"),
    pytest.param({"max_latency_ratio": 1}, ("max_latency_ratio", 1.0), id="latency-ratio-1"),
    pytest.param({"max_latency_ratio": 100}, ("max_latency_ratio", 100.0), id="latency-ratio-max"),
    pytest.param({"on_unhealthy_baseline": "proceed"}, ("on_unhealthy_baseline", "proceed"), id="baseline-proceed"),
])
def test_values_at_the_edges_of_their_ranges_are_accepted(change, expected):
    field, value = expected
    assert getattr(parse_request({**BASE, **change}), field) == value


@pytest.mark.parametrize("change, field, message", [
    pytest.param({"observation_window": "PT0.5S"}, "observation_window", "must be at least 1 second", id="wait"),
    pytest.param({"error_threshold": "x"}, "error_threshold", "must be a number", id="number"),
    pytest.param({"error_threshold": float("nan")}, "error_threshold", "must be a finite number", id="finite"),
    pytest.param({"error_threshold": 2}, "error_threshold", "must be between 0 and 1", id="number-range"),
    pytest.param({"min_requests": 1.5}, "min_requests", "must be an integer", id="integer"),
    pytest.param({"min_requests": 0}, "min_requests", "must be between 1 and 1000000000", id="integer-range"),
    pytest.param({"traffic_steps": []}, "traffic_steps", "must be a non-empty list of integers", id="steps-empty"),
    pytest.param({"traffic_steps": ["10"]}, "traffic_steps", "must contain only integers", id="steps-text"),
    pytest.param({"traffic_steps": [0]}, "traffic_steps", "each step must be between 1 and 100", id="steps-range"),
    pytest.param({"traffic_steps": [50, 50]}, "traffic_steps", "must be strictly increasing", id="steps-order"),
    pytest.param({"workspace": 1}, "workspace", "must be an object with exactly subscription_id, resource_group and "
                 "workspace_name (strings)", id="workspace"),
    pytest.param({"old_deployment": "green-v2"}, "old_deployment", "must differ from new_deployment", id="old-is-new"),
    pytest.param({"check_interval": "PT6M"}, "check_interval", "must not be longer than observation_window",
                 id="interval"),
    pytest.param({"metrics_source": "x"}, "metrics_source", "must be one of platform, log_analytics", id="source"),
    pytest.param({"confidence": 1}, "confidence", "must be between 0.5 and 0.9999", id="confidence-certain"),
    pytest.param({"confidence": 0.4}, "confidence", "must be between 0.5 and 0.9999", id="confidence-low"),
    pytest.param({"confidence": "high"}, "confidence", "must be a number", id="confidence-text"),
    pytest.param({"max_latency_ratio": 0.9}, "max_latency_ratio", "must be between 1 and 100", id="latency-ratio"),
    pytest.param({"on_unhealthy_baseline": "ignore"}, "on_unhealthy_baseline", "must be one of refuse, proceed",
                 id="baseline-policy"),
    pytest.param({"endpoint_name": None}, "endpoint_name", "is required", id="required"),
])
def test_messages_say_exactly_what_is_wrong(change, field, message):
    with pytest.raises(InvalidRequest) as caught:
        parse_request({**BASE, **change})
    assert [p.to_dict() for p in caught.value.problems] == [{"field": field, "message": message}]


def test_the_instance_id_is_the_lower_cased_endpoint():
    assert instance_id_for("Fraud-EP") == "rollout-fraud-ep"


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(InvalidRequest) as caught:
        parse_request({"new_deployment": "g", "error_threshold": 3, "extra": 1})
    assert {p.field for p in caught.value.problems} == {"endpoint_name", "new_deployment", "error_threshold", "extra"}


@pytest.mark.parametrize("prefix, field", [pytest.param("", "body", id="http-body"),
                                           pytest.param("rollout.", "rollout", id="scenario-section")])
def test_body_that_is_not_an_object(prefix, field):
    with pytest.raises(InvalidRequest) as caught:
        parse_request([1, 2], prefix)
    assert [p.to_dict() for p in caught.value.problems] == [{"field": field, "message": "must be a JSON object"}]


def test_fields_are_named_with_the_prefix():
    with pytest.raises(InvalidRequest) as caught:
        parse_request({"new_deployment": "green-v2", "extra": 1}, "rollout.")
    assert {p.field: p.message for p in caught.value.problems} == {
        "rollout.extra": "is not a known field", "rollout.endpoint_name": "is required"}


def _deployment(name, state="Succeeded", count=1):
    return DeploymentState(name, state, count)


def _endpoint(traffic, state="Succeeded"):
    return EndpointState("fraud-ep", state, traffic)


BLUE_GREEN = [_deployment("blue-v1"), _deployment("green-v2")]


@pytest.mark.parametrize("request_extra, traffic, deployments, expected", [
    pytest.param({}, {"blue-v1": 100}, BLUE_GREEN, ("blue-v1", DEFAULT_STEPS, 100, {}), id="defaults"),
    pytest.param({}, {"BLUE-V1": 100}, BLUE_GREEN, ("blue-v1", DEFAULT_STEPS, 100, {}), id="names-case-insensitive"),
    pytest.param({}, {"blue-v1": 70, "red": 20, "green-v2": 10}, BLUE_GREEN + [_deployment("red")],
                 None, id="third-deployment-needs-steps"),
    pytest.param({"traffic_steps": [20, 80]}, {"blue-v1": 70, "red": 20, "green-v2": 10},
                 BLUE_GREEN + [_deployment("red")], ("blue-v1", (20, 80), 80, {"red": 20}), id="third-keeps-share"),
    pytest.param({}, {"blue-v1": 60, "red": 40}, BLUE_GREEN + [_deployment("red")], None, id="old-defaults-to-largest"),
    pytest.param({"old_deployment": "red", "traffic_steps": [40]}, {"blue-v1": 60, "red": 40},
                 BLUE_GREEN + [_deployment("red")], ("red", (40,), 40, {"blue-v1": 60}), id="old-named"),
    pytest.param({}, {"green-v2": 60, "blue-v1": 40}, BLUE_GREEN, ("blue-v1", DEFAULT_STEPS, 100, {}),
                 id="new-already-holds-the-most"),
    pytest.param({"traffic_steps": [80]}, {"green-v2": 50, "red": 30, "blue-v1": 20},
                 BLUE_GREEN + [_deployment("red")], ("red", (80,), 80, {"blue-v1": 20}),
                 id="new-holds-the-most-old-is-the-next-largest"),
    pytest.param({"traffic_steps": [70]}, {"green-v2": 40, "blue-v1": 30, "red": 30},
                 BLUE_GREEN + [_deployment("red")], ("red", (70,), 70, {"blue-v1": 30}),
                 id="tie-goes-to-the-name-last-in-order"),
    pytest.param({"traffic_steps": [100]}, {"green-v2": 100}, BLUE_GREEN, None, id="only-new-holds-traffic"),
])
def test_resolve_plan(request_extra, traffic, deployments, expected):
    request = parse_request({**BASE, **request_extra})
    if expected is None:
        with pytest.raises(PlanRejected):
            resolve_plan(request, _endpoint(traffic), deployments)
        return
    plan = resolve_plan(request, _endpoint(traffic), deployments)
    assert (plan.old, plan.steps, plan.shared, dict(plan.others)) == expected
    assert plan.new == "green-v2"


@pytest.mark.parametrize("request_extra, endpoint, deployments, reason", [
    pytest.param({}, _endpoint({"blue-v1": 100}, "Updating"), BLUE_GREEN, "is Updating", id="endpoint-not-ready"),
    pytest.param({}, _endpoint({"blue-v1": 100}), [_deployment("blue-v1")], "new_deployment 'green-v2' does not exist",
                 id="new-missing"),
    pytest.param({"old_deployment": "blue-v9"}, _endpoint({"blue-v1": 100}), BLUE_GREEN,
                 "old_deployment 'blue-v9' does not exist", id="old-missing"),
    pytest.param({}, _endpoint({"blue-v1": 100}), [_deployment("blue-v1"), _deployment("green-v2", "Failed")],
                 "is Failed", id="new-failed"),
    pytest.param({}, _endpoint({"blue-v1": 100}), [_deployment("blue-v1"), _deployment("green-v2", count=0)],
                 "has no instances", id="new-no-instances"),
    pytest.param({}, _endpoint({}), BLUE_GREEN, "no deployment other than", id="nobody-has-traffic"),
    pytest.param({"old_deployment": "blue-v1"}, _endpoint({"red": 100}), BLUE_GREEN + [_deployment("red")],
                 "nothing to shift", id="old-and-new-hold-nothing"),
    pytest.param({"traffic_steps": [10, 100]}, _endpoint({"blue-v1": 50, "red": 50}), BLUE_GREEN + [_deployment("red")],
                 "larger than the 50%", id="step-larger-than-share"),
    pytest.param({"traffic_steps": [10, 40]}, _endpoint({"blue-v1": 50, "red": 50}), BLUE_GREEN + [_deployment("red")],
                 "must equal the 50%", id="last-step-short-of-share"),
    pytest.param({"traffic_steps": [5, 20, 40]}, _endpoint({"blue-v1": 50, "red": 50}),
                 BLUE_GREEN + [_deployment("red")],
                 "traffic_steps: the last step must equal the 50% old and new hold together, not 40",
                 id="names-the-last-step-when-short"),
    pytest.param({"traffic_steps": [5, 20, 60]}, _endpoint({"blue-v1": 50, "red": 50}),
                 BLUE_GREEN + [_deployment("red")],
                 "traffic_steps: step 60 is larger than the 50% old and new hold together", id="names-the-last-step-when-over"),
    pytest.param({}, _endpoint({"blue-v1": 50, "red": 50}), BLUE_GREEN + [_deployment("red")],
                 "old and new hold 50% together (another deployment holds the rest), so traffic_steps must be given, "
                 "ending at that share", id="steps-required-with-a-third-deployment"),
])
def test_plan_rejected_with_reason(request_extra, endpoint, deployments, reason):
    with pytest.raises(PlanRejected) as caught:
        resolve_plan(parse_request({**BASE, **request_extra}), endpoint, deployments)
    assert reason in str(caught.value)


def test_lifecycle_fields_are_part_of_the_request() -> None:
    data = {**BASE, "deployment": {"model": "azureml:m:2", "environment": "azureml:e:1", "instance_type": "Standard_DS3_v2"},
            "cleanup": "delete", "mirror": {"percent": 10}}
    request = parse_request(data)
    assert request.lifecycle.deployment is not None and request.lifecycle.cleanup.mode == "delete"
    assert parse_request(request.to_dict()) == request


def test_lifecycle_problems_join_the_others() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request({**BASE, "min_requests": 0, "deployment": {"model": "./model.pkl"}, "mirror": {"percent": 60}})
    fields = [p.field for p in caught.value.problems]
    assert {"min_requests", "deployment.model", "deployment.environment", "mirror.percent"} <= set(fields)


def test_every_problem_is_kept_with_the_prefix_whatever_parser_found_it() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request({"endpoint_name": "ep1", "new_deployment": "green", "colour": 1, "cleanup": "drop",
                       "notify": [{"url": "x"}]}, prefix="rollout.")
    assert [(p.field, p.message) for p in caught.value.problems] == [
        ("rollout.colour", "is not a known field"), ("rollout.cleanup", "must be one of keep, scale_down, delete"),
        ("rollout.notify[0].url", "must be an http(s) URL")]
