"""LifecyclePort and AutoscalePort over the real MLClient and MonitorManagementClient, against the fake Azure.

Each test asserts what the SDK sent (method, path, api-version, body) against the captured or spec
shapes in ``fixtures/``, and what the port made of the answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.azure_backend import AzureBackend
from rollout.autoscale import AutoscaleSpec, autoscale_setting, setting_name
from rollout.capacity import QuotaUsage, VmSize
from rollout.deployment_spec import EndpointSpec, InlineEnvironment, parse_deployment_spec, spec_differences
from rollout.errors import ServiceError
from rollout.operation import NOT_FOUND, Observed
from tests.azure.conftest import WS, StaticCredential, _served, make_backend
from tests.azure.fake_azure import fixture
from tests.azure.fake_lifecycle import LifecycleFakeAzure
from tests.azure.tls import TestPki

CLOUD = "AmlRolloutLifecycleLoopback"
DEPLOYMENTS = "/onlineendpoints/ep1/deployments"
CAPTURED = fixture("deployment_PUT_create_asset_ids.CAPTURED_FROM_SDK.json")["request"]
SPEC = parse_deployment_spec({
    "model": "azureml:m:2", "environment": "azureml:env:1",
    "code_configuration": {"code": "azureml:c:1", "scoring_script": "score.py"},
    "instance_type": "Standard_DS3_v2", "instance_count": 2,
    "request_settings": {"request_timeout_ms": 5000, "max_concurrent_requests_per_instance": 2, "max_queue_wait_ms": 500},
    "liveness_probe": {"initial_delay": 30, "period": 10, "timeout": 2, "failure_threshold": 30, "success_threshold": 1},
    "environment_variables": {"FOO": "bar"}, "app_insights_enabled": True,
})


@pytest.fixture(scope="session")
def lifecycle_server(test_pki: TestPki) -> Iterator[LifecycleFakeAzure]:
    yield from _served(LifecycleFakeAzure(test_pki, CLOUD))


@pytest.fixture
def fake(lifecycle_server: LifecycleFakeAzure) -> LifecycleFakeAzure:
    lifecycle_server.reset()
    lifecycle_server.add_workspace(WS)
    return lifecycle_server


@pytest.fixture
def backend(fake: LifecycleFakeAzure) -> AzureBackend:
    made = make_backend(fake, StaticCredential(), cloud=CLOUD,
                        cloud_metadata_url=f"{fake.base_url}/metadata/endpoints?api-version=2022-09-01")
    made.lifecycle(WS)
    return made


@pytest.fixture
def endpoint(fake: LifecycleFakeAzure, backend: AzureBackend) -> LifecycleFakeAzure:
    """ep1 serving blue 100%; nothing recorded yet."""
    fake.add_endpoint(WS, "ep1", {"blue": 100})
    fake.add_deployment(WS, "ep1", "blue", capacity=3)
    fake.requests.clear()
    return fake


def until(check: Any, timeout: float = 5.0) -> Any:
    """Poll ``check`` until it returns something true (the operation ends when the SDK's poller polls it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_create_deployment_sends_the_captured_put_and_is_polled_to_succeeded(backend: AzureBackend,
                                                                           endpoint: LifecycleFakeAzure) -> None:
    port = backend.lifecycle(WS)
    started = port.begin_create_deployment("ep1", "green", SPEC)
    puts = endpoint.calls("PUT", DEPLOYMENTS + "/green$")
    assert len(puts) == 1 and puts[0].api_version == "2023-04-01-preview"
    assert puts[0].body == CAPTURED["body"]
    assert started.started and started.operation_url and "mfeOperationsStatus" in started.operation_url
    assert until(lambda: port.deployment_status("ep1", "green").state == "Succeeded")
    assert port.deployment_status("ep1", "green") == Observed("Succeeded", 2)


def test_create_deployment_twice_puts_once(backend: AzureBackend, endpoint: LifecycleFakeAzure) -> None:
    port = backend.lifecycle(WS)
    port.begin_create_deployment("ep1", "green", SPEC)
    again = port.begin_create_deployment("ep1", "green", SPEC)
    assert not again.started and len(endpoint.calls("PUT", DEPLOYMENTS + "/green$")) == 1


def test_created_deployment_reads_back_as_the_same_spec(backend: AzureBackend, endpoint: LifecycleFakeAzure) -> None:
    port = backend.lifecycle(WS)
    port.begin_create_deployment("ep1", "green", SPEC)
    observed = port.read_deployment("ep1", "green")
    assert observed is not None and spec_differences(SPEC, observed) == []
    other = parse_deployment_spec({**SPEC.to_dict(), "model": "azureml:m:3"})
    assert [d.split(":")[0] for d in spec_differences(other, observed)] == ["model"]
    assert port.read_deployment("ep1", "nothing") is None


def test_inline_environment_is_registered_then_compared_by_content(backend: AzureBackend,
                                                                    endpoint: LifecycleFakeAzure) -> None:
    captured = fixture("deployment_create_inline_environment_sequence.CAPTURED_FROM_SDK.json")["requests"][0]
    conda = {"name": "x", "dependencies": ["python=3.10", {"pip": ["azureml-inference-server-http"]}]}
    spec = parse_deployment_spec({"model": "azureml:m:2", "instance_type": "Standard_DS3_v2",
                                  "environment": {"image": captured["body"]["properties"]["image"], "conda_file": conda}})
    port = backend.lifecycle(WS)
    port.begin_create_deployment("ep1", "green", spec)
    env_put = endpoint.calls("PUT", "/environments/")
    assert len(env_put) == 1 and env_put[0].body == captured["body"] and env_put[0].path.lower() == \
        captured["url"].split("management.azure.com", 1)[1].split("?")[0].lower()
    observed = port.read_deployment("ep1", "green")
    assert observed is not None and isinstance(observed.environment, InlineEnvironment)
    assert spec_differences(spec, observed) == []


def test_image_build_failure_reports_azures_error(backend: AzureBackend, endpoint: LifecycleFakeAzure) -> None:
    failure = fixture("mfeOperationsStatus_Failed_ImageBuildFailure.SYNTHETIC.json")
    endpoint.failures["green"] = {k: v for k, v in failure.items() if not k.startswith("_")}
    port = backend.lifecycle(WS)
    started = port.begin_create_deployment("ep1", "green", SPEC)
    seen = until(lambda: (lambda s: s if s.state == "Failed" else None)(
        port.deployment_status("ep1", "green", started.operation_url)))
    assert seen.error_code == "ImageBuildFailure" and "build log" in (seen.error_message or "")
    without_url = port.deployment_status("ep1", "green")
    assert (without_url.state, without_url.error_code) == ("Failed", None)


def test_out_of_quota_on_the_put_keeps_the_quota_text(backend: AzureBackend, endpoint: LifecycleFakeAzure) -> None:
    body = {k: v for k, v in fixture("error_OutOfQuota_deployment_create_400.RECONSTRUCTED.json").items()
            if not k.startswith("_")}
    endpoint.fail("PUT", DEPLOYMENTS + "/green$", 400, body=body)
    with pytest.raises(ServiceError, match="Not enough quota available for Standard_F4s_v2") as caught:
        backend.lifecycle(WS).begin_create_deployment("ep1", "green", SPEC)
    assert "InferencingClientCreateDeploymentFailed" in str(caught.value)


def test_create_while_endpoint_updating_is_refused(backend: AzureBackend, fake: LifecycleFakeAzure) -> None:
    fake.add_endpoint(WS, "ep1", {}, provisioningState="Updating")
    with pytest.raises(ServiceError, match="Updating provisioning state"):
        backend.lifecycle(WS).begin_create_deployment("ep1", "green", SPEC)


def test_create_endpoint_puts_auth_mode_and_no_traffic_once(backend: AzureBackend, fake: LifecycleFakeAzure) -> None:
    port = backend.lifecycle(WS)
    fake.requests.clear()
    started = port.begin_create_endpoint("ep2", EndpointSpec("aad_token", "d"))
    puts = fake.calls("PUT", "/onlineendpoints/ep2$")
    assert started.started and len(puts) == 1 and puts[0].api_version == "2022-02-01-preview"
    props = puts[0].body["properties"]
    assert (props["authMode"], props["description"], props.get("traffic") or {}) == ("AADToken", "d", {})
    assert until(lambda: port.endpoint_status("ep2").state == "Succeeded")
    assert not port.begin_create_endpoint("ep2", EndpointSpec()).started
    assert len(fake.calls("PUT", "/onlineendpoints/ep2$")) == 1
    assert port.endpoint_status("nothing").state == NOT_FOUND


def test_scale_puts_the_new_capacity_once(backend: AzureBackend, endpoint: LifecycleFakeAzure) -> None:
    port = backend.lifecycle(WS)
    assert port.begin_scale("ep1", "blue", 5).started
    puts = endpoint.calls("PUT", DEPLOYMENTS + "/blue$")
    assert len(puts) == 1 and puts[0].body["sku"] == {"name": "Default", "capacity": 5}
    until(lambda: port.deployment_status("ep1", "blue").instance_count == 5)
    assert not port.begin_scale("ep1", "blue", 5).started
    assert len(endpoint.calls("PUT", DEPLOYMENTS + "/blue$")) == 1


def test_delete_refuses_a_deployment_with_traffic_without_sending_it(backend: AzureBackend,
                                                                     endpoint: LifecycleFakeAzure) -> None:
    with pytest.raises(ServiceError, match="still holds 100%"):
        backend.lifecycle(WS).begin_delete("ep1", "blue")
    assert endpoint.calls("DELETE") == []


def test_delete_sends_one_delete_and_ends_not_found(backend: AzureBackend, endpoint: LifecycleFakeAzure) -> None:
    endpoint.add_deployment(WS, "ep1", "old", capacity=2)
    port = backend.lifecycle(WS)
    assert port.begin_delete("ep1", "old").started
    deletes = endpoint.calls("DELETE", DEPLOYMENTS + "/old$")
    assert len(deletes) == 1 and deletes[0].api_version == "2023-04-01-preview" and deletes[0].body is None
    until(lambda: port.deployment_status("ep1", "old").state == NOT_FOUND)
    assert not port.begin_delete("ep1", "old").started
    assert len(endpoint.calls("DELETE")) == 1


def test_get_logs_sends_the_sdk_spelling_and_tail(backend: AzureBackend, endpoint: LifecycleFakeAzure) -> None:
    captured = fixture("getLogs_POST_requests.CAPTURED_FROM_SDK.json")["requests"]
    endpoint.logs["blue"] = "".join(f"line {n}\n" for n in range(300))
    port = backend.lifecycle(WS)
    text = port.get_logs("ep1", "blue", 100)
    posts = endpoint.calls("POST", DEPLOYMENTS + "/blue/getlogs$")
    assert posts[0].body == {"containerType": "InferenceServer", "tail": 100}
    assert posts[0].api_version == "2023-04-01-preview" == captured[1]["url"].rsplit("=", 1)[1]
    assert text.splitlines()[0] == "line 200" and len(text.splitlines()) == 100
    port.get_logs("ep1", "blue", 50, container_type="storage-initializer")
    assert endpoint.calls("POST", "/getlogs$")[-1].body == captured[1]["body"]


def test_vm_size_and_quota_from_the_region(backend: AzureBackend, endpoint: LifecycleFakeAzure) -> None:
    port = backend.lifecycle(WS)
    assert port.vm_size("standard_ds3_v2") == VmSize("Standard_DS3_v2", "standardDSv2Family", 4)
    assert port.vm_size("Standard_NC96") is None
    usages = port.quota_usages()
    assert QuotaUsage("Standard DSv2 Family Cluster Dedicated vCPUs", 2, 24) in usages
    gets = [r for r in endpoint.calls("GET") if r.path.lower().endswith(("/usages", "/vmsizes"))]
    assert {r.path.lower().rsplit("/", 1)[1] for r in gets} == {"usages", "vmsizes"}
    assert all("/locations/eastus/" in r.path.lower() and r.api_version == "2023-08-01-preview" for r in gets)


def test_autoscale_setting_put_get_delete(backend: AzureBackend, endpoint: LifecycleFakeAzure) -> None:
    deployment_id = f"{WS.endpoint_id('ep1')}/deployments/green"
    body = autoscale_setting(AutoscaleSpec(latency_out_ms=70), deployment_id, WS.endpoint_id("ep1"), "eastus", 2)
    port = backend.autoscale(WS)
    name = setting_name("ep1", "green")
    assert port.get_setting(name) is None
    written = port.put_setting(name, body)
    puts = endpoint.calls("PUT", "autoscalesettings")
    assert len(puts) == 1 and puts[0].api_version == "2022-10-01"
    assert f"/resourcegroups/{WS.resource_group}/providers/Microsoft.Insights/autoscalesettings/{name}" in puts[0].path
    assert puts[0].body == body
    assert [r["scaleAction"]["direction"] for r in puts[0].body["properties"]["profiles"][0]["rules"]] == [
        "Increase", "Increase", "Decrease"]
    assert written["properties"]["targetResourceUri"] == deployment_id
    assert port.get_setting(name)["properties"]["profiles"] == body["properties"]["profiles"]
    port.delete_setting(name)
    port.delete_setting(name)
    assert port.get_setting(name) is None and len(endpoint.calls("DELETE", "autoscalesettings")) == 2


def test_create_endpoint_body_is_the_sdks_captured_one(backend: AzureBackend, fake: LifecycleFakeAzure) -> None:
    """The whole PUT body the real MLClient sends, against one captured from azure-ai-ml 1.35.2: the workspace's
    location, a system-assigned identity (the SDK's default), no live or mirror traffic. The capture's call also
    set ``tags={'owner': 'aml-rollout'}``; the adapter sets no tags, so they are empty here."""
    captured = fixture("endpoint_PUT_create_aad_token.CAPTURED_FROM_SDK.json")["request"]
    fake.requests.clear()
    assert backend.lifecycle(WS).begin_create_endpoint("ep2", EndpointSpec("aad_token", "d")).started
    put = fake.calls("PUT", "/onlineendpoints/ep2$")[0]
    path, version = captured["url"].split("management.azure.com")[1].split("?api-version=")
    assert (put.path.lower(), put.api_version) == (path.lower(), version)
    assert put.body == {**captured["body"], "tags": {}}
