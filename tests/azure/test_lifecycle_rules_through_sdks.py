"""The lifecycle's single calls through the real SDKs against the scenario-backed fake Azure.

The rules the fake enforces as Azure does (and the in-memory world too), call by call through
``AzureBackend``'s ports: OutOfQuota on the PUT or in the operation, no deployment while the
endpoint is updating or being created, traffic and mirror rules, no delete of a deployment with
traffic, autoscale validation; and a created deployment read back as its spec both ways.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from emulator.clock import VirtualClock
from emulator.scenario import Scenario
from emulator.simulate import SIMULATION_START, build_workspace
from rollout.deployment_spec import parse_deployment_spec, parse_endpoint_spec, spec_differences
from rollout.errors import ServiceError, UpdateConflict
from tests.azure.conftest import StaticCredential, scenario_backend
from tests.azure.fake_azure import TOKEN
from tests.azure.scenario_azure import ScenarioAzure
from tests.azure.test_lifecycle_through_sdks import BLUE, ENDPOINT, GREEN, example
from tests.azure.test_scenarios_through_sdks import fresh

SHORT_OF_QUOTA = {"model": "azureml:fraud-model:2", "environment": "azureml:fraud-scoring-env:3",
                  "instance_type": "Standard_DS3_v2", "instance_count": 4}
"""Blue holds 20 of the family's 32 cores; 4 more instances need ceil(4.8) x 4 = 20."""


@pytest.mark.parametrize("where", [pytest.param("put", id="on-the-put"),
                                   pytest.param("operation", id="in-the-operation")])
def test_out_of_quota_reads_the_same_through_the_sdk_on_the_put_or_in_the_operation(
        where: str, scenario_azure: ScenarioAzure) -> None:
    """Azure answers OutOfQuota as ``BadRequest`` with the quota text in ``details[0]``; the adapter reads it
    from the PUT's 400 or from the failed operation, and says what the in-memory world says."""
    chosen = example("out-of-quota")
    assert chosen.lifecycle is not None
    chosen = replace(chosen, lifecycle=replace(chosen.lifecycle, quota_failure_on=where))
    spec = parse_deployment_spec(SHORT_OF_QUOTA)
    memory_clock, sdk_clock = VirtualClock(SIMULATION_START), VirtualClock(SIMULATION_START)
    in_memory = build_workspace(fresh(chosen), memory_clock.now).lifecycle(None)
    scenario_azure.load(chosen, sdk_clock.now)
    port = scenario_backend(scenario_azure, chosen, StaticCredential()).lifecycle(None)
    quota = "Current usage/limit: 20/32. Additional needed: 20"
    if where == "put":
        with pytest.raises(ServiceError) as memory_refusal:
            in_memory.begin_create_deployment(ENDPOINT, GREEN, spec)
        with pytest.raises(ServiceError) as sdk_refusal:
            port.begin_create_deployment(ENDPOINT, GREEN, spec)
        [put] = scenario_azure.calls("PUT", "/deployments/green-v2$")
        assert str(sdk_refusal.value) == (f"creating deployment 'green-v2' of endpoint '{ENDPOINT}': "
                                          f"{memory_refusal.value}")
        assert quota in str(sdk_refusal.value) and "(InferencingClientCreateDeploymentFailed: " in str(sdk_refusal.value)
        assert put.body["sku"]["capacity"] == 4
        answered = sdk_refusal.value.__cause__            # azure-core's HttpResponseError, as Azure's body parsed
        assert isinstance(answered, HttpResponseError) and answered.status_code == 400
        assert answered.error is not None
        assert (answered.error.code, answered.error.message) == ("BadRequest", "The request is invalid.")
        [detail] = answered.error.details
        assert detail.code == "InferencingClientCreateDeploymentFailed" and quota in detail.message
        return
    memory_start = in_memory.begin_create_deployment(ENDPOINT, GREEN, spec)
    sdk_start = port.begin_create_deployment(ENDPOINT, GREEN, spec)
    assert memory_start.started and sdk_start.started and sdk_start.operation_url
    assert "/mfeOperationsStatus/" in sdk_start.operation_url
    for clock in (memory_clock, sdk_clock):
        clock.advance(timedelta(minutes=1))
    memory_seen = in_memory.deployment_status(ENDPOINT, GREEN, memory_start.operation_url)
    sdk_seen = port.deployment_status(ENDPOINT, GREEN, sdk_start.operation_url)
    assert sdk_seen == memory_seen
    assert (sdk_seen.state, sdk_seen.error_code) == ("Failed", "BadRequest")
    assert sdk_seen.error_message is not None and quota in sdk_seen.error_message
    assert sdk_seen.error_message.startswith("The request is invalid. (InferencingClientCreateDeploymentFailed: ")
    # the failed operation's body, as Azure writes it: the quota text in details[0]
    operation = sdk_start.operation_url.split(scenario_azure.base_url, 1)[1]
    (status, body, _), _ = scenario_azure.handle("GET", operation, {"authorization": f"Bearer {TOKEN}"}, b"")
    assert (status, body["status"], body["error"]["code"], body["error"]["message"]) == (
        200, "Failed", "BadRequest", "The request is invalid.")
    assert body["error"]["details"][0]["code"] == "InferencingClientCreateDeploymentFailed"
    assert quota in body["error"]["details"][0]["message"]


def _loaded(fake: ScenarioAzure, chosen: Scenario) -> tuple[Any, Any, VirtualClock]:
    clock = VirtualClock(SIMULATION_START)
    world = fake.load(chosen, clock.now)
    return world, scenario_backend(fake, chosen, StaticCredential()), clock


def test_no_deployment_is_created_while_the_endpoint_is_updating(scenario_azure: ScenarioAzure) -> None:
    chosen = replace(example("create-and-roll-out"), update_seconds=60)
    world, backend, clock = _loaded(scenario_azure, chosen)
    spec = parse_deployment_spec(SHORT_OF_QUOTA | {"instance_count": 1})
    world.workspace.update_traffic(ENDPOINT, {BLUE: 100}, {}, by="someone else")      # busy for 60 s
    with pytest.raises(ServiceError, match="Cannot create a deployment in endpoint fraud-detection-endpoint because "
                                           "it is in Updating provisioning state"):
        backend.lifecycle(None).begin_create_deployment(ENDPOINT, GREEN, spec)
    assert GREEN not in world.workspace.endpoint(ENDPOINT).deployments
    clock.advance(timedelta(seconds=60))
    assert backend.lifecycle(None).begin_create_deployment(ENDPOINT, GREEN, spec).started


def test_no_deployment_is_created_while_the_endpoint_is_being_created(scenario_azure: ScenarioAzure) -> None:
    chosen = example("first-rollout")
    world, backend, clock = _loaded(scenario_azure, chosen)
    port = backend.lifecycle(None)
    spec = parse_deployment_spec(SHORT_OF_QUOTA | {"instance_count": 1, "environment": "azureml:fraud-env:3"})
    assert port.begin_create_endpoint(ENDPOINT, parse_endpoint_spec({"auth_mode": "key"})).started
    with pytest.raises(ServiceError, match="because it is in Creating provisioning state"):
        port.begin_create_deployment(ENDPOINT, GREEN, spec)
    clock.advance(timedelta(minutes=2))         # the scenario's endpoint_minutes
    assert port.endpoint_status(ENDPOINT).state == "Succeeded"
    assert port.begin_create_deployment(ENDPOINT, GREEN, spec).started
    assert world.workspace.endpoint(ENDPOINT).deployments[GREEN].provisioning_state == "Creating"


def test_the_fake_refuses_what_azure_refuses_through_the_sdks(scenario_azure: ScenarioAzure) -> None:
    chosen = example("create-and-roll-out")
    world, backend, _ = _loaded(scenario_azure, chosen)
    endpoints, lifecycle = backend.endpoints(None), backend.lifecycle(None)
    spec = parse_deployment_spec(SHORT_OF_QUOTA | {"instance_count": 1})
    lifecycle.begin_create_deployment(ENDPOINT, GREEN, spec)
    # traffic can name only deployments that exist; mirror traffic: one deployment, at most 50 %, never a live one
    for traffic, mirror, says in [
        ({BLUE: 90, "red": 10}, {}, "names deployment 'red', which does not exist"),
        ({BLUE: 100}, {GREEN: 60}, "at most 50 percent"),
        ({BLUE: 90, GREEN: 10}, {GREEN: 10}, "cannot receive mirror traffic while it has live traffic"),
    ]:
        with pytest.raises(ServiceError, match=says):
            endpoints.set_traffic(ENDPOINT, traffic, mirror)
    assert world.workspace.endpoint(ENDPOINT).traffic == {BLUE: 100}
    # a deployment with live traffic is not deleted, even when the adapter's own guard is bypassed
    with pytest.raises(HttpResponseError) as refused:
        lifecycle._ml.online_deployments.begin_delete(name=BLUE, endpoint_name=ENDPOINT)
    assert refused.value.status_code == 400 and "has 100% of the traffic" in str(refused.value)
    assert world.workspace.endpoint(ENDPOINT).deployments[BLUE].provisioning_state == "Succeeded"
    # an autoscale setting must target a deployment that exists, with a sensible capacity
    body = {"location": "eastus", "properties": {"enabled": True, "targetResourceUri":
            f"{chosen.workspace.endpoint_id(ENDPOINT)}/deployments/red", "profiles": [
                {"name": "p", "capacity": {"minimum": "1", "maximum": "2", "default": "1"}, "rules": []}]}}
    with pytest.raises(ServiceError, match="does not exist"):
        backend.autoscale(None).put_setting("s", body)
    with pytest.raises(ServiceError, match="minimum <= default <= maximum"):
        backend.autoscale(None).put_setting("s", {**body, "properties": {
            **body["properties"], "targetResourceUri": f"{chosen.workspace.endpoint_id(ENDPOINT)}/deployments/{BLUE}",
            "profiles": [{"name": "p", "capacity": {"minimum": "3", "maximum": "2", "default": "1"}, "rules": []}]}})
    assert world.autoscale(None).settings == {}


FULL_SPEC = {
    "model": "azureml:fraud-model:2", "code_configuration": {"code": "azureml:fraud-code:1", "scoring_script": "score.py"},
    "environment": {"image": "mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest",
                    "conda_file": {"name": "fraud", "dependencies": ["python=3.10", {"pip": ["scikit-learn==1.5.2"]}]}},
    "instance_type": "Standard_DS3_v2", "instance_count": 1,
    "request_settings": {"request_timeout_ms": 3000, "max_concurrent_requests_per_instance": 2, "max_queue_wait_ms": 500},
    "liveness_probe": {"initial_delay": 30, "period": 10, "timeout": 2, "failure_threshold": 30, "success_threshold": 1},
    "readiness_probe": {"initial_delay": 10, "period": 10, "failure_threshold": 30},
    "environment_variables": {"MODEL_THRESHOLD": "0.72"}, "app_insights_enabled": True,
}


@pytest.mark.parametrize("asked, differences", [
    pytest.param(FULL_SPEC, [], id="the-same-spec"),
    pytest.param(FULL_SPEC | {"model": "azureml:fraud-model:3", "app_insights_enabled": False}, [
        "model: wanted azureml:fraud-model:3, the deployment has {model}",
        "app_insights_enabled: wanted false, the deployment has true"], id="another-model-and-insights"),
    pytest.param(FULL_SPEC | {"environment": "azureml:fraud-env:3"}, ["environment: differs from the deployment's"],
                 id="a-registered-environment-instead"),
])
def test_a_deployment_created_through_the_sdk_reads_back_as_its_spec(
        asked: dict[str, Any], differences: list[str], scenario_azure: ScenarioAzure) -> None:
    """What decides "use it as is" or "refuse it" (``spec_differences``) reads the same deployment the same way
    in memory and through the SDK: every field, an inline environment read back from its anonymous version."""
    chosen = example("create-and-roll-out")
    created = parse_deployment_spec(FULL_SPEC)
    memory_clock, sdk_clock = VirtualClock(SIMULATION_START), VirtualClock(SIMULATION_START)
    in_memory = build_workspace(fresh(chosen), memory_clock.now).lifecycle(None)
    scenario_azure.load(chosen, sdk_clock.now)
    port = scenario_backend(scenario_azure, chosen, StaticCredential()).lifecycle(None)
    for lifecycle_port, clock in ((in_memory, memory_clock), (port, sdk_clock)):
        assert lifecycle_port.begin_create_deployment(ENDPOINT, GREEN, created).started
        clock.advance(timedelta(minutes=12))
    memory_seen, sdk_seen = in_memory.read_deployment(ENDPOINT, GREEN), port.read_deployment(ENDPOINT, GREEN)
    assert memory_seen is not None and sdk_seen is not None
    # the same deployment both ways (asset ids as Azure returns them: workspace ARM ids), except the queue
    # wait azure-ai-ml 1.35.2 cannot read back (the adapter leaves it unknown)
    assert sdk_seen.model == f"{chosen.workspace.arm_id()}/models/fraud-model/versions/2"
    assert sdk_seen.request_settings is not None and sdk_seen.request_settings.max_queue_wait_ms is None
    assert replace(memory_seen, request_settings=None) == replace(sdk_seen, request_settings=None)
    assert memory_seen.request_settings == replace(sdk_seen.request_settings, max_queue_wait_ms=500)
    spec = parse_deployment_spec(asked)
    assert spec_differences(spec, sdk_seen) == [d.format(model=sdk_seen.model) for d in differences]
    assert spec_differences(spec, memory_seen) == [d.format(model=memory_seen.model) for d in differences]


def test_a_patch_of_the_capacity_scales_through_the_world(scenario_azure: ScenarioAzure) -> None:
    """The REST PATCH ``{"sku": {"capacity"}}`` (202 + ``Location``) scales as the SDK's whole PUT does."""
    chosen = example("create-and-roll-out")
    world, _, clock = _loaded(scenario_azure, chosen)
    path = f"{chosen.workspace.endpoint_id(ENDPOINT)}/deployments/{BLUE}?api-version=2023-04-01-preview"
    auth = {"authorization": f"Bearer {TOKEN}"}

    def send(method: str, target: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
        raw = b"" if body is None else json.dumps(body).encode()
        return scenario_azure.handle(method, target, auth, raw)[0]

    assert send("PATCH", path, {"sku": {"capacity": 0}})[0] == 400
    assert send("PATCH", path, {"properties": {"instanceType": "Standard_DS4_v2"}})[0] == 400
    status, _, headers = send("PATCH", path, {"sku": {"capacity": 6}})
    assert status == 202 and "/mfeOperationResults/" in headers["Location"]
    result = headers["Location"].split(scenario_azure.base_url, 1)[1]
    assert send("GET", result)[0] == 202                       # scaling takes the world's scale_minutes
    assert world.workspace.endpoint(ENDPOINT).deployments[BLUE].provisioning_state == "Updating"
    assert send("PATCH", path, {"sku": {"capacity": 5}})[0] == 409   # another update is in progress
    clock.advance(timedelta(minutes=4))
    assert send("GET", result)[0] == 200
    assert world.workspace.endpoint(ENDPOINT).deployments[BLUE].instance_count == 6
    assert send("PATCH", path, {"sku": {"capacity": 6}})[:2] == (200, send("GET", path)[1])    # nothing to do



def test_no_share_for_a_deployment_being_created_and_no_delete_of_it_in_memory_or_through_the_sdks(
        scenario_azure: ScenarioAzure) -> None:
    """Azure answers 409 ``Conflict`` with ``details[0]`` ``OperationDuplicationConflict`` while an operation on
    the resource runs; the adapter reads it as ``UpdateConflict`` and the world is left as it was."""
    chosen = example("create-and-roll-out")
    spec = parse_deployment_spec(SHORT_OF_QUOTA | {"instance_count": 1})
    memory = build_workspace(fresh(chosen), VirtualClock(SIMULATION_START).now)
    world, backend, _ = _loaded(scenario_azure, chosen)
    for ports, seen in ((memory, memory), (backend, world)):
        assert ports.lifecycle(None).begin_create_deployment(ENDPOINT, GREEN, spec).started
        for traffic, mirror in (({BLUE: 90, GREEN: 10}, {}), ({BLUE: 100}, {GREEN: 10})):
            with pytest.raises(UpdateConflict, match="another update is in progress|another operation on same entity"):
                ports.endpoints(None).set_traffic(ENDPOINT, traffic, mirror)
        with pytest.raises(UpdateConflict):
            ports.lifecycle(None).begin_delete(ENDPOINT, GREEN)
        endpoint = seen.workspace.endpoint(ENDPOINT)
        assert (endpoint.traffic, endpoint.mirror_traffic, endpoint.deployments[GREEN].provisioning_state) == (
            {BLUE: 100}, {}, "Creating")
    [put, _] = [c for c in scenario_azure.calls("PUT", "/onlineendpoints/fraud-detection-endpoint$")]
    (status, body, _), _ = scenario_azure.handle(
        "DELETE", f"{chosen.workspace.endpoint_id(ENDPOINT)}/deployments/{GREEN}?api-version=2023-04-01-preview",
        {"authorization": f"Bearer {TOKEN}"}, b"")
    assert status == 409 and (body["error"]["code"], body["error"]["message"]) == ("Conflict", "Conflict")
    [detail] = body["error"]["details"]
    assert detail["code"] == "OperationDuplicationConflict"
    assert detail["message"].startswith("Conflict of operation, another operation on same entity is already running "
                                        f"in workspace {chosen.workspace.workspace_name}.")
    assert put.body["properties"]["traffic"] == {BLUE: 90, GREEN: 10}


@pytest.mark.parametrize("model, says", [
    pytest.param("azureml:fraud-model:4", "(ModelNotFound: Model azureml:fraud-model:4 does not exist in workspace",
                 id="an-unregistered-version"),
    pytest.param("azureml:churn-model:1", "(ModelNotFound: Model container with name: churn-model not found.)",
                 id="an-unregistered-model"),
    pytest.param("azureml:churn-model@latest", "Asset churn-model does not exist in workspace", id="latest-of-none"),
])
def test_an_unregistered_model_is_refused_the_same_in_memory_and_through_the_sdks(
        model: str, says: str, scenario_azure: ScenarioAzure) -> None:
    chosen = example("create-and-roll-out")
    spec = parse_deployment_spec(SHORT_OF_QUOTA | {"instance_count": 1, "model": model})
    in_memory = build_workspace(fresh(chosen), VirtualClock(SIMULATION_START).now).lifecycle(None)
    world, backend, _ = _loaded(scenario_azure, chosen)
    with pytest.raises(ServiceError) as memory_refusal:
        in_memory.begin_create_deployment(ENDPOINT, GREEN, spec)
    with pytest.raises(ServiceError) as sdk_refusal:
        backend.lifecycle(None).begin_create_deployment(ENDPOINT, GREEN, spec)
    assert says in str(memory_refusal.value) and says in str(sdk_refusal.value)
    assert GREEN not in world.workspace.endpoint(ENDPOINT).deployments
    assert scenario_azure.calls("PUT", "/deployments/green-v2$") == [] or "@" not in model


@pytest.mark.parametrize("field, asked, resolved", [
    pytest.param("model", "azureml:fraud-model@latest", "/models/fraud-model/versions/3", id="a-model"),
    pytest.param("environment", "azureml:fraud-env@latest", "/environments/fraud-env/versions/3", id="an-environment"),
])
def test_latest_resolves_to_the_last_registered_version_in_memory_and_through_the_sdks(
        field: str, asked: str, resolved: str, scenario_azure: ScenarioAzure) -> None:
    chosen = example("create-and-roll-out")      # registers fraud-model 1, 2 and 3, fraud-env 3
    spec = parse_deployment_spec(SHORT_OF_QUOTA | {"instance_count": 1, field: asked})
    memory_clock = VirtualClock(SIMULATION_START)
    in_memory = build_workspace(fresh(chosen), memory_clock.now).lifecycle(None)
    _, backend, sdk_clock = _loaded(scenario_azure, chosen)
    for port, clock in ((in_memory, memory_clock), (backend.lifecycle(None), sdk_clock)):
        assert port.begin_create_deployment(ENDPOINT, GREEN, spec).started
        clock.advance(timedelta(minutes=12))
        seen = port.read_deployment(ENDPOINT, GREEN)
        assert seen is not None and getattr(seen, field) == f"{chosen.workspace.arm_id()}{resolved}"
    [put] = scenario_azure.calls("PUT", "/deployments/green-v2$")
    assert put.body["properties"]["model" if field == "model" else "environmentId"].endswith(resolved)
