"""The deployment and endpoint specs: validation naming each field, and same-spec comparison."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rollout.autoscale import AutoscaleSpec
from rollout.capacity import CapacitySpec
from rollout.deployment_spec import (
    CodeConfiguration,
    DeploymentSpec,
    InlineEnvironment,
    ObservedDeployment,
    Probe,
    RequestSettings,
    parse_asset,
    parse_deployment_spec,
    parse_endpoint_spec,
    spec_differences,
)
from rollout.errors import InvalidRequest
from rollout.lifecycle_request import LifecycleRequest, parse_lifecycle

ARM = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.MachineLearningServices/workspaces/ws1"
SPEC = {"model": "azureml:fraud-model:2", "environment": "azureml:sklearn-env:1", "instance_type": "Standard_DS3_v2"}
CONDA = {"name": "x", "dependencies": ["python=3.10", {"pip": ["azureml-inference-server-http"]}]}


def problems(data: object) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as caught:
        parse_deployment_spec(data)
    return {p.field: p.message for p in caught.value.problems}


def test_minimal_spec_gets_the_documented_defaults() -> None:
    spec = parse_deployment_spec(SPEC)
    assert (spec.instance_count, spec.app_insights_enabled, spec.request_settings, spec.liveness_probe) == (1, False, None,
                                                                                                            None)
    assert spec.model.name == "fraud-model" and spec.model.version == "2"


def test_full_spec_round_trips_through_its_wire_form() -> None:
    data = {**SPEC, "instance_count": 3, "code_configuration": {"code": "azureml:score-code:4", "scoring_script": "src/score.py"},
            "request_settings": {"request_timeout_ms": 5000, "max_concurrent_requests_per_instance": 2},
            "liveness_probe": {"initial_delay": 30, "period": 10}, "readiness_probe": {"failure_threshold": 3},
            "environment_variables": {"FOO": "bar"}, "app_insights_enabled": True}
    spec = parse_deployment_spec(data)
    assert parse_deployment_spec(spec.to_dict()) == spec
    assert spec.request_settings == RequestSettings(5000, 2, None)
    assert spec.liveness_probe == Probe(initial_delay=30, period=10)


def test_inline_environment_keeps_the_conda_content() -> None:
    spec = parse_deployment_spec({**SPEC, "environment": {"image": "mcr.microsoft.com/x:1", "conda_file": CONDA}})
    assert spec.environment == InlineEnvironment("mcr.microsoft.com/x:1", CONDA)


@pytest.mark.parametrize("text, kind, key", [
    pytest.param("azureml:fraud-model:2", "model", ("model", "fraud-model", "2", None, None), id="short-version"),
    pytest.param("azureml:fraud-model@latest", "model", ("model", "fraud-model", None, "latest", None), id="short-label"),
    pytest.param("azureml://registries/Reg1/models/m/versions/2", "model", ("model", "m", "2", None, "reg1"),
                 id="registry-version"),
    pytest.param("azureml://registries/azureml/environments/sklearn-1.5/labels/latest", "environment",
                 ("environment", "sklearn-1.5", None, "latest", "azureml"), id="registry-label"),
    pytest.param(f"{ARM}/models/Fraud-Model/versions/2", "model", ("model", "fraud-model", "2", None, None),
                 id="arm-id-case-insensitive-name"),
    pytest.param(f"{ARM}/codes/c/versions/1", "code", ("code", "c", "1", None, None), id="arm-code"),
])
def test_asset_references_normalise(text: str, kind: str, key: tuple[object, ...]) -> None:
    assert parse_asset(text, kind).key() == key


@pytest.mark.parametrize("change, field, message", [
    pytest.param({"model": None}, "deployment.model", "is required", id="model-missing"),
    pytest.param({"model": "./model"}, "deployment.model", "Register it first", id="model-relative-path"),
    pytest.param({"model": "/home/me/model.pkl"}, "deployment.model", "Register it first", id="model-absolute-path"),
    pytest.param({"model": "model.pkl"}, "deployment.model", "Register it first", id="model-bare-file"),
    pytest.param({"model": "C:\\models\\m"}, "deployment.model", "Register it first", id="model-windows-path"),
    pytest.param({"model": "azureml:sklearn-env:1x/"}, "deployment.model", "not a model asset id", id="model-garbled"),
    pytest.param({"model": "azureml://registries/r/environments/e/versions/1"}, "deployment.model",
                 "names a environments asset", id="model-names-an-environment"),
    pytest.param({"model": 2}, "deployment.model", "asset id", id="model-not-a-string"),
    pytest.param({"environment": None}, "deployment.environment", "is required", id="environment-missing"),
    pytest.param({"environment": "./env"}, "deployment.environment", "Register it first", id="environment-path"),
    pytest.param({"environment": {"conda_file": CONDA}}, "deployment.environment.image", "is required",
                 id="inline-environment-without-image"),
    pytest.param({"environment": {"image": "x:1", "conda_file": "conda.yaml"}}, "deployment.environment.conda_file",
                 "not a file name", id="conda-file-is-a-file-name"),
    pytest.param({"environment": {"image": "x:1", "build": "."}}, "deployment.environment.build", "not a known field",
                 id="inline-environment-unknown-field"),
    pytest.param({"instance_type": None}, "deployment.instance_type", "is required", id="instance-type-missing"),
    pytest.param({"instance_type": "DS3_v2"}, "deployment.instance_type", "Standard_DS3_v2", id="instance-type-bad"),
    pytest.param({"instance_count": 0}, "deployment.instance_count", "between 1 and 50", id="count-zero"),
    pytest.param({"instance_count": 51}, "deployment.instance_count", "between 1 and 50", id="count-above-azure-limit"),
    pytest.param({"instance_count": True}, "deployment.instance_count", "integer", id="count-bool"),
    pytest.param({"code_configuration": {"code": "./src", "scoring_script": "score.py"}},
                 "deployment.code_configuration.code", "Register it first", id="code-local-path"),
    pytest.param({"code_configuration": {"code": "azureml:c:1"}}, "deployment.code_configuration.scoring_script",
                 "is required", id="code-without-script"),
    pytest.param({"code_configuration": {"code": "azureml:c:1", "scoring_script": "../score.py"}},
                 "deployment.code_configuration.scoring_script", "relative path", id="script-escapes"),
    pytest.param({"request_settings": {"request_timeout_ms": 180001}}, "deployment.request_settings.request_timeout_ms",
                 "between 1 and 180000", id="timeout-above-limit"),
    pytest.param({"request_settings": {"max_concurrent_requests_per_instance": 0}},
                 "deployment.request_settings.max_concurrent_requests_per_instance", "at least 1", id="concurrency-zero"),
    pytest.param({"request_settings": {"timeout": 1}}, "deployment.request_settings.timeout", "not a known field",
                 id="request-settings-unknown"),
    pytest.param({"liveness_probe": {"period": 0}}, "deployment.liveness_probe.period", "at least 1", id="probe-period-zero"),
    pytest.param({"readiness_probe": "fast"}, "deployment.readiness_probe", "must be an object", id="probe-not-object"),
    pytest.param({"environment_variables": {"1X": "a"}}, "deployment.environment_variables", "not an environment variable",
                 id="env-var-bad-name"),
    pytest.param({"environment_variables": {"WORKERS": 4}}, "deployment.environment_variables", "quote it",
                 id="env-var-number"),
    pytest.param({"app_insights_enabled": "yes"}, "deployment.app_insights_enabled", "true or false", id="insights-string"),
    pytest.param({"scale_settings": {}}, "deployment.scale_settings", "not a known field", id="unknown-field"),
])
def test_bad_fields_are_named(change: dict[str, object], field: str, message: str) -> None:
    data = {**SPEC, **change}
    found = problems({k: v for k, v in data.items() if v is not None})
    assert message in found[field]


def test_every_bad_field_is_reported_at_once() -> None:
    assert set(problems({"model": "./m", "instance_type": "x"})) == {
        "deployment.model", "deployment.environment", "deployment.instance_type"}


def test_not_an_object_is_refused() -> None:
    assert "deployment" in problems(["model"])


@pytest.mark.parametrize("data, mode, description", [
    pytest.param({}, "key", None, id="defaults"),
    pytest.param({"auth_mode": "AAD_Token", "description": "fraud"}, "aad_token", "fraud", id="case-insensitive"),
    pytest.param({"auth_mode": "aml_token"}, "aml_token", None, id="aml-token"),
])
def test_endpoint_spec(data: dict[str, object], mode: str, description: str | None) -> None:
    spec = parse_endpoint_spec(data)
    assert (spec.auth_mode, spec.description) == (mode, description)


@pytest.mark.parametrize("data, field", [
    pytest.param({"auth_mode": "password"}, "endpoint.auth_mode", id="auth-mode-unknown"),
    pytest.param({"description": 3}, "endpoint.description", id="description-not-string"),
    pytest.param({"traffic": {}}, "endpoint.traffic", id="unknown-field"),
])
def test_endpoint_spec_bad_fields(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_endpoint_spec(data)
    assert [p.field for p in caught.value.problems] == [field]


FULL = parse_deployment_spec({**SPEC, "code_configuration": {"code": "azureml:c:1", "scoring_script": "score.py"},
                              "request_settings": {"request_timeout_ms": 5000},
                              "environment_variables": {"FOO": "bar"}})
SAME = ObservedDeployment(
    model=f"{ARM}/models/fraud-model/versions/2", environment=f"{ARM}/environments/sklearn-env/versions/1",
    instance_type="standard_ds3_v2", code=f"{ARM}/codes/c/versions/1", scoring_script="score.py",
    request_settings=RequestSettings(5000, 1, 500), liveness_probe=Probe(600, 10, 2, 30, 1),
    environment_variables={"FOO": "bar"})


def observed(**change: object) -> ObservedDeployment:
    return ObservedDeployment(**{**vars(SAME), **change})  # type: ignore[arg-type]


@pytest.mark.parametrize("spec, seen, differing", [
    pytest.param(FULL, SAME, [], id="same-spec-azure-defaults-not-compared"),
    pytest.param(FULL, observed(model=f"{ARM}/models/fraud-model/versions/3"), ["model"], id="other-model-version"),
    pytest.param(FULL, observed(environment="azureml://registries/azureml/environments/sklearn-env/versions/1"),
                 ["environment"], id="registry-vs-workspace-environment"),
    pytest.param(FULL, observed(instance_type="Standard_F4s_v2"), ["instance_type"], id="other-instance-type"),
    pytest.param(FULL, observed(scoring_script="main.py"), ["code_configuration"], id="other-scoring-script"),
    pytest.param(FULL, observed(request_settings=RequestSettings(9000, 1, 500)), ["request_settings"],
                 id="other-request-timeout"),
    pytest.param(FULL, observed(environment_variables={}), ["environment_variables"], id="env-vars-missing"),
    pytest.param(FULL, observed(app_insights_enabled=True), ["app_insights_enabled"], id="insights-differs"),
    pytest.param(parse_deployment_spec({**SPEC, "environment": {"image": "x:1", "conda_file": CONDA}}),
                 observed(environment=InlineEnvironment("x:1", CONDA)), [], id="inline-environment-same"),
    pytest.param(parse_deployment_spec({**SPEC, "environment": {"image": "x:1", "conda_file": CONDA}}),
                 observed(environment=InlineEnvironment("x:2", CONDA)), ["environment"], id="inline-environment-other-image"),
])
def test_spec_differences(spec: DeploymentSpec, seen: ObservedDeployment, differing: list[str]) -> None:
    assert [d.split(":")[0] for d in spec_differences(spec, seen)] == differing


def test_instance_count_is_not_compared() -> None:
    assert spec_differences(parse_deployment_spec({**SPEC, "instance_count": 5}), observed(code=None)) == []


# --- the request's lifecycle fields ------------------------------------------------------------



def test_lifecycle_fields_default_to_todays_behaviour() -> None:
    assert parse_lifecycle({"endpoint_name": "ep"}) == LifecycleRequest()


def test_lifecycle_fields_round_trip() -> None:
    data = {"deployment": SPEC, "endpoint": {"auth_mode": "aml_token"}, "mirror": {"percent": 20, "window": "PT15M"},
            "capacity": {"max_instances": 8}, "autoscale": {"max_instances": 6}, "cleanup": "delete",
            "revert_window": "PT1H", "create_timeout": "PT1H", "scale_timeout": "PT10M"}
    parsed = parse_lifecycle(data)
    assert parse_lifecycle(parsed.to_dict()) == parsed
    assert parsed.cleanup.mode == "delete" and parsed.mirror is not None and parsed.mirror.percent == 20


@pytest.mark.parametrize("data, fields", [
    pytest.param({"endpoint": {}}, ["rollout.endpoint"], id="endpoint-needs-deployment"),
    pytest.param({"deployment": {**SPEC, "model": "./m"}, "mirror": {"percent": 70}},
                 ["rollout.deployment.model", "rollout.mirror.percent"], id="nested-fields-prefixed"),
    pytest.param({"create_timeout": "PT10S"}, ["rollout.create_timeout"], id="timeout-too-short"),
    pytest.param({"cleanup": "drop", "revert_window": "P3D"}, ["rollout.cleanup", "rollout.revert_window"],
                 id="cleanup-and-window"),
    pytest.param({"autoscale": {"min_instances": 0}}, ["rollout.autoscale.min_instances"], id="autoscale"),
])
def test_lifecycle_problems_name_every_field(data: dict[str, object], fields: list[str]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_lifecycle(data, "rollout.")
    assert [p.field for p in caught.value.problems] == fields


@pytest.mark.parametrize("data, problem", [
    pytest.param({"endpoint": {}}, ("rollout.endpoint", "needs 'deployment': a new endpoint is created with the new "
                                    "deployment"), id="endpoint-without-deployment"),
    pytest.param({"deployment": SPEC, "endpoint": {"auth_mode": "x"}},
                 ("rollout.endpoint.auth_mode", "must be one of key, aml_token, aad_token"), id="endpoint-field-prefixed"),
    pytest.param({"capacity": {"max_instances": 0}}, ("rollout.capacity.max_instances", "must be an integer from 1 to 50"),
                 id="capacity-field-prefixed"),
    pytest.param({"create_timeout": "PT59S"}, ("rollout.create_timeout", "must be between PT1M and PT6H"),
                 id="create-timeout-under-a-minute"),
    pytest.param({"scale_timeout": "PT10S"}, ("rollout.scale_timeout", "must be between PT1M and PT6H"),
                 id="scale-timeout-under-a-minute"),
    pytest.param({"scale_timeout": "PT6H1S"}, ("rollout.scale_timeout", "must be at most PT6H"),
                 id="scale-timeout-over-six-hours"),
    pytest.param({"create_timeout": 30}, ("rollout.create_timeout", "must be an ISO 8601 duration such as 'PT5M'"),
                 id="timeout-not-a-string"),
])
def test_lifecycle_problem_text(data: dict[str, object], problem: tuple[str, str]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_lifecycle(data, "rollout.")
    assert [(p.field, p.message) for p in caught.value.problems] == [problem]


def test_lifecycle_problems_without_prefix_are_the_bare_field() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_lifecycle({"create_timeout": "PT10S"})
    assert [p.field for p in caught.value.problems] == ["create_timeout"]


def test_problems_of_a_nested_spec_and_of_cleanup_are_all_kept() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_lifecycle({"deployment": {**SPEC, "model": "./m"}, "cleanup": "drop"}, "rollout.")
    assert [p.field for p in caught.value.problems] == ["rollout.deployment.model", "rollout.cleanup"]


@pytest.mark.parametrize("data, parsed", [
    pytest.param({"deployment": SPEC, "endpoint": {"auth_mode": "aml_token"}},
                 {"endpoint": parse_endpoint_spec({"auth_mode": "aml_token"})}, id="endpoint-parsed"),
    pytest.param({"capacity": {"max_instances": 8, "headroom": 2}}, {"capacity": CapacitySpec(8, 2.0)},
                 id="capacity-parsed"),
    pytest.param({"autoscale": True}, {"autoscale": AutoscaleSpec()}, id="autoscale-true-is-the-default-profile"),
    pytest.param({"autoscale": False}, {"autoscale": None}, id="autoscale-false-is-none"),
    pytest.param({"create_timeout": "PT1M", "scale_timeout": "PT6H"},
                 {"create_timeout": timedelta(minutes=1), "scale_timeout": timedelta(hours=6)}, id="timeout-bounds-inclusive"),
])
def test_lifecycle_fields_parsed(data: dict[str, object], parsed: dict[str, object]) -> None:
    request = parse_lifecycle(data)
    assert {name: getattr(request, name) for name in parsed} == parsed


# --- code_configuration and the comparison, parsed inside each test (mutation testing sees it run) ------


SCRIPT_RULE = "must be the scoring script's relative path inside the code asset, such as score.py"


@pytest.mark.parametrize("script", [
    pytest.param("score.py", id="plain"), pytest.param("src/score.py", id="in-a-folder"),
    pytest.param("src/..score.py", id="dots-inside-a-name"),
])
def test_code_configuration_parsed(script: str) -> None:
    spec = parse_deployment_spec({**SPEC, "code_configuration": {"code": "azureml:c:1", "scoring_script": script}})
    assert spec.code_configuration == CodeConfiguration(parse_asset("azureml:c:1", "code"), script)


@pytest.mark.parametrize("value, found", [
    pytest.param("score.py", [("deployment.code_configuration", "must be an object with code and scoring_script")],
                 id="not-an-object"),
    pytest.param({"code": "azureml:c:1", "scoring_script": "s.py", "entry": 1},
                 [("deployment.code_configuration.entry", "is not a known field")], id="unknown-field"),
    pytest.param({"scoring_script": "s.py"}, [("deployment.code_configuration.code", "is required")], id="code-required"),
    pytest.param({"code": "azureml:c:1", "scoring_script": " "},
                 [("deployment.code_configuration.scoring_script", SCRIPT_RULE)], id="script-blank"),
    pytest.param({"code": "azureml:c:1", "scoring_script": "/srv/score.py"},
                 [("deployment.code_configuration.scoring_script", SCRIPT_RULE)], id="script-absolute"),
    pytest.param({"code": "azureml:c:1", "scoring_script": "\\srv\\score.py"},
                 [("deployment.code_configuration.scoring_script", SCRIPT_RULE)], id="script-windows-absolute"),
    pytest.param({"code": "azureml:c:1", "scoring_script": "src/../../score.py"},
                 [("deployment.code_configuration.scoring_script", SCRIPT_RULE)], id="script-climbs-out"),
    pytest.param({"code": "azureml:c:1", "scoring_script": 3},
                 [("deployment.code_configuration.scoring_script", SCRIPT_RULE)], id="script-not-text"),
])
def test_code_configuration_problems(value: object, found: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_deployment_spec({**SPEC, "code_configuration": value})
    assert [(p.field, p.message) for p in caught.value.problems] == found


@pytest.mark.parametrize("code, seen, differing", [
    pytest.param({"code": "azureml:c:1", "scoring_script": "score.py"}, {}, [], id="same-code"),
    pytest.param({"code": "azureml:c:1", "scoring_script": "score.py"}, {"code": None}, ["code_configuration"],
                 id="deployment-without-code"),
    pytest.param({"code": "azureml:c:1", "scoring_script": "score.py"}, {"code": "not an asset id"},
                 ["code_configuration"], id="unreadable-code-id"),
    pytest.param({"code": "azureml:c:2", "scoring_script": "score.py"}, {}, ["code_configuration"], id="other-version"),
    pytest.param(None, {"code": None, "scoring_script": None}, [], id="no-code-asked"),
])
def test_code_differences(code: dict[str, str] | None, seen: dict[str, object], differing: list[str]) -> None:
    spec = parse_deployment_spec({**SPEC, "code_configuration": code, "request_settings": {"request_timeout_ms": 5000},
                                  "environment_variables": {"FOO": "bar"}})
    assert [d.split(":")[0] for d in spec_differences(spec, observed(**seen))] == differing


@pytest.mark.parametrize("settings, seen, differing", [
    pytest.param({"request_timeout_ms": 5000}, None, ["request_settings"], id="deployment-reports-none"),
    pytest.param(None, None, [], id="none-asked-none-seen"),
    pytest.param({"request_timeout_ms": 5000}, RequestSettings(5000, None, None), [], id="unknown-read-back-field"),
])
def test_settings_differences(settings: dict[str, int] | None, seen: RequestSettings | None,
                              differing: list[str]) -> None:
    spec = parse_deployment_spec({**SPEC, "request_settings": settings, "environment_variables": {"FOO": "bar"}})
    assert [d.split(":")[0] for d in spec_differences(spec, observed(request_settings=seen, code=None))] == differing


@pytest.mark.parametrize("environment, wire", [
    pytest.param({"image": "x:1", "conda_file": CONDA}, {"image": "x:1", "conda_file": CONDA}, id="inline-with-conda"),
    pytest.param({"image": " x:1 "}, {"image": "x:1"}, id="inline-image-only"),
    pytest.param("azureml:sklearn-env:1", "azureml:sklearn-env:1", id="asset"),
])
def test_environment_wire_form(environment: object, wire: object) -> None:
    spec = parse_deployment_spec({**SPEC, "environment": environment})
    assert spec.to_dict()["environment"] == wire
    assert parse_deployment_spec(spec.to_dict()) == spec


@pytest.mark.parametrize("change, found", [
    pytest.param({"request_settings": 5}, ("deployment.request_settings", "must be an object"), id="settings-not-an-object"),
    pytest.param({"environment_variables": ["A=1"]}, ("deployment.environment_variables", "must be an object"),
                 id="env-vars-not-an-object"),
    pytest.param({"app_insights_enabled": "yes"}, ("deployment.app_insights_enabled", "must be true or false"),
                 id="insights-not-a-bool"),
])
def test_bad_field_text(change: dict[str, object], found: tuple[str, str]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_deployment_spec({**SPEC, **change})
    assert [(p.field, p.message) for p in caught.value.problems] == [found]


def test_app_insights_difference_text() -> None:
    spec = parse_deployment_spec({**SPEC, "app_insights_enabled": True, "environment_variables": {"FOO": "bar"}})
    assert spec_differences(spec, observed(code=None, scoring_script=None)) == [
        "app_insights_enabled: wanted true, the deployment has false"]


def test_every_field_of_a_full_spec_is_parsed() -> None:
    spec = parse_deployment_spec({
        **SPEC, "instance_count": 50, "code_configuration": {"code": "azureml:c:1", "scoring_script": "score.py"},
        "request_settings": {"request_timeout_ms": 5000, "max_concurrent_requests_per_instance": 2, "max_queue_wait_ms": 0},
        "liveness_probe": {"initial_delay": 0, "period": 10}, "readiness_probe": {"failure_threshold": 3},
        "environment_variables": {"FOO": "bar"}, "app_insights_enabled": True})
    assert spec == DeploymentSpec(
        parse_asset("azureml:fraud-model:2", "model"), parse_asset("azureml:sklearn-env:1", "environment"),
        "Standard_DS3_v2", 50, CodeConfiguration(parse_asset("azureml:c:1", "code"), "score.py"),
        RequestSettings(5000, 2, 0), Probe(0, 10, None, None, None), Probe(None, None, None, 3, None), {"FOO": "bar"}, True)


@pytest.mark.parametrize("value, kind, text", [
    pytest.param(" azureml:m:1 ", "model", "azureml:m:1", id="short-stripped"),
    pytest.param("azureml://registries/azureml/environments/e/labels/latest", "environment",
                 "azureml://registries/azureml/environments/e/labels/latest", id="registry"),
    pytest.param(f"{ARM}/codes/c/versions/1", "code", f"{ARM}/codes/c/versions/1", id="arm-id"),
])
def test_asset_text_is_kept_as_given(value: str, kind: str, text: str) -> None:
    assert parse_asset(value, kind).text == text


@pytest.mark.parametrize("change, found", [
    pytest.param({"model": None}, ("deployment.model", "is required"), id="model-required"),
    pytest.param({"color": "red"}, ("deployment.color", "is not a known field"), id="unknown-field"),
    pytest.param({"environment": None}, ("deployment.environment", "is required (an asset id, or image and conda_file)"),
                 id="environment-required"),
    pytest.param({"environment": {"conda_file": CONDA}}, ("deployment.environment.image", "is required (a container "
                 "image such as mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest)"), id="inline-needs-image"),
    pytest.param({"environment": {"image": "x:1", "conda_file": "conda.yml"}},
                 ("deployment.environment.conda_file", "must be the conda file's content as an object (name, channels, "
                  "dependencies), not a file name: the app cannot read local files"), id="conda-file-name"),
    pytest.param({"instance_type": "DS3"}, ("deployment.instance_type", "must be an Azure VM size such as Standard_DS3_v2"),
                 id="instance-type"),
    pytest.param({"instance_count": "3"}, ("deployment.instance_count", "must be an integer"), id="count-not-integer"),
    pytest.param({"instance_count": 51}, ("deployment.instance_count", "must be between 1 and 50"), id="count-above-50"),
    pytest.param({"model": "./model"}, ("deployment.model", "is a local path: the app runs in Azure Functions and "
                 "cannot upload it. Register it first (az ml model create ...) and give its asset id, such as "
                 "azureml:fraud-model:2"), id="local-model-hint"),
    pytest.param({"request_settings": {"max_queue_wait_ms": -1}},
                 ("deployment.request_settings.max_queue_wait_ms", "must be at least 0"), id="queue-wait-negative"),
])
def test_deployment_problem_text(change: dict[str, object], found: tuple[str, str]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_deployment_spec({**SPEC, **change})
    assert [(p.field, p.message) for p in caught.value.problems] == [found]


@pytest.mark.parametrize("data, prefix, found", [
    pytest.param("key", "endpoint.", [("endpoint", "must be an object")], id="not-an-object"),
    pytest.param(["x"], "rollout.endpoint.", [("rollout.endpoint", "must be an object")], id="not-an-object-prefixed"),
    pytest.param({"description": 5}, "endpoint.", [("endpoint.description", "must be a string")], id="description"),
])
def test_endpoint_problem_text(data: object, prefix: str, found: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_endpoint_spec(data, prefix)
    assert [(p.field, p.message) for p in caught.value.problems] == found


def test_deployment_not_an_object_default_prefix() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_deployment_spec("spec")
    assert [(p.field, p.message) for p in caught.value.problems] == [("deployment", "must be an object")]
