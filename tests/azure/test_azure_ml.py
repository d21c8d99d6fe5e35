"""EndpointPort over the real azure-ai-ml MLClient, against the fake Azure on loopback HTTPS."""

from __future__ import annotations

import time

import pytest

from adapters.azure_backend import AzureBackend
from rollout.errors import (
    PermissionDenied,
    ResourceNotFound,
    ServiceError,
    Throttled,
    TrafficDrift,
    TransientError,
    UpdateConflict,
)
from rollout.model import DeploymentState, EndpointState
from tests.azure.conftest import WS, StaticCredential, make_backend
from tests.azure.fake_azure import DROP, TOKEN, FakeAzure, arm_error, fixture

EP = f"/subscriptions/{WS.subscription_id}/resourcegroups/{WS.resource_group}/providers/" \
     f"microsoft.machinelearningservices/workspaces/{WS.workspace_name}/onlineendpoints/ep1"
USER_IDENTITY = {
    "type": "UserAssigned",
    "userAssignedIdentities": {
        "/subscriptions/s/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ep-id":
            {"principalId": "11111111-0000-0000-0000-000000000000", "clientId": "22222222-0000-0000-0000-000000000000"},
    },
}


@pytest.fixture
def endpoint(fake: FakeAzure, backend: AzureBackend) -> FakeAzure:
    """ep1: blue 90 / green 10, token auth, a user-assigned identity and tags (what a rebuilt entity would lose).

    The backend's port is built first, so the requests recorded are the calls' own (not the
    one-time cloud metadata read).
    """
    backend.endpoints(WS)
    fake.add_endpoint(WS, "ep1", {"blue": 90, "green": 10}, authMode="AADToken", identity=USER_IDENTITY,
                      tags={"owner": "ml-platform", "cost-center": "42"})
    fake.add_deployment(WS, "ep1", "blue", capacity=3)
    fake.add_deployment(WS, "ep1", "green", capacity=1, instance_type="Standard_F4s_v2")
    fake.add_deployment(WS, "ep1", "red", capacity=1)
    fake.requests.clear()
    return fake


def shape(recorded: list) -> list[tuple[str, str, str | None]]:
    """(method, what, api-version) of recorded requests, paths shortened to their last ARM segment."""
    out = []
    for r in recorded:
        tail = r.path.lower().rsplit("/", 2)
        what = "operation" if "mfeoperationsstatus" in r.path.lower() else "/".join(tail[-2:])
        out.append((r.method, what, r.api_version))
    return out


def test_get_endpoint_reads_traffic_mirror_and_state(backend: AzureBackend, endpoint: FakeAzure) -> None:
    state = backend.endpoints(WS).get_endpoint("ep1")
    assert state == EndpointState("ep1", "Succeeded", {"blue": 90, "green": 10}, {})
    assert shape(endpoint.requests) == [       # one GET: the deployments are not listed (issue 11)
        ("GET", "onlineendpoints/ep1", "2022-02-01-preview"),
    ]
    assert endpoint.requests[0].path.lower() == EP
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in endpoint.requests)


def test_get_endpoint_parses_the_rest_spec_example(backend: AzureBackend, fake: FakeAzure) -> None:
    spec = fixture("OnlineEndpoints_Get.spec-example.2024-10-01.json")["responses"]["200"]["body"]
    fake.put_raw_endpoint(WS, "spec", spec)
    assert backend.endpoints(WS).get_endpoint("spec") == EndpointState("string", "Creating", {"string": 1}, {})


def test_list_deployments_reads_state_instances_and_type(backend: AzureBackend, endpoint: FakeAzure) -> None:
    spec = fixture("OnlineDeployments_Get_Managed.spec-example.2024-10-01.json")["responses"]["200"]["body"]
    # azure-ai-ml parses a deployment's ARM id: the spec's placeholder "string" is made a real one.
    spec.update(id=f"{WS.endpoint_id('ep1')}/deployments/string")
    endpoint.put_raw_deployment(WS, "ep1", "string", spec)
    found = sorted(backend.endpoints(WS).list_deployments("ep1"), key=lambda d: d.name)
    assert found == [
        DeploymentState("blue", "Succeeded", 3, "Standard_DS3_v2"),
        DeploymentState("green", "Succeeded", 1, "Standard_F4s_v2"),
        DeploymentState("red", "Succeeded", 1, "Standard_DS3_v2"),
        DeploymentState("string", "Creating", 1, "string"),
    ]
    assert shape(endpoint.requests) == [("GET", "ep1/deployments", "2023-04-01-preview")]


def test_set_traffic_puts_the_read_endpoint_back_and_waits_for_the_operation(
        backend: AzureBackend, endpoint: FakeAzure) -> None:
    endpoint.polls_before_done = 2
    state = backend.endpoints(WS).set_traffic("ep1", {"Blue": 70, "GREEN": 30, "red": 0})

    assert state == EndpointState("ep1", "Succeeded", {"blue": 70, "green": 30}, {})
    assert shape(endpoint.requests) == [       # one GET: the deployments are not listed (issue 11)
        ("GET", "onlineendpoints/ep1", "2022-02-01-preview"),
        ("GET", "workspaces/ws1", "2024-10-01-preview"),
        ("PUT", "onlineendpoints/ep1", "2022-02-01-preview"),
        ("GET", "operation", "2022-02-01-preview"),
        ("GET", "operation", "2022-02-01-preview"),
        ("GET", "operation", "2022-02-01-preview"),
        ("GET", "onlineendpoints/ep1", "2022-02-01-preview"),
    ]
    put = endpoint.calls("PUT")[0].body
    assert put["properties"]["traffic"] == {"blue": 70, "green": 30}  # lower-cased, zero share dropped
    assert put["properties"]["authMode"] == "AADToken"
    assert put["identity"]["type"] == "UserAssigned"
    assert list(put["identity"]["userAssignedIdentities"]) == list(USER_IDENTITY["userAssignedIdentities"])
    assert put["tags"] == {"owner": "ml-platform", "cost-center": "42"}
    assert put["location"] == "eastus"
    captured = fixture("endpoint_PUT_request_body.CAPTURED_FROM_SDK.json")
    assert set(put) == set(captured) and set(put["properties"]) == set(captured["properties"])
    after = endpoint.endpoint_state(WS, "ep1")
    assert (after["properties"]["authMode"], after["tags"]["owner"], after["identity"]["type"]) == (
        "AADToken", "ml-platform", "UserAssigned")


def test_set_traffic_does_not_put_when_the_traffic_is_already_in_place(
        backend: AzureBackend, endpoint: FakeAzure) -> None:
    state = backend.endpoints(WS).set_traffic("ep1", {"BLUE": 90, "green": 10, "red": 0})
    assert state.traffic == {"blue": 90, "green": 10}
    assert [r.method for r in endpoint.requests] == ["GET"]


def test_set_traffic_writes_mirror_traffic_only_when_given(backend: AzureBackend, fake: FakeAzure) -> None:
    fake.add_endpoint(WS, "ep1", {"blue": 100}, mirror={"green": 20})
    fake.add_deployment(WS, "ep1", "blue")
    fake.add_deployment(WS, "ep1", "green")
    port = backend.endpoints(WS)

    assert port.set_traffic("ep1", {"blue": 100}).mirror_traffic == {"green": 20}
    assert fake.calls("PUT") == []
    state = port.set_traffic("ep1", {"blue": 100}, {"green": 0})
    assert state == EndpointState("ep1", "Succeeded", {"blue": 100}, {})
    assert fake.calls("PUT")[0].body["properties"]["mirrorTraffic"] == {}


def test_a_conflicting_update_is_an_update_conflict_and_not_retried_in_process(
        backend: AzureBackend, endpoint: FakeAzure) -> None:
    endpoint.fail("PUT", r"/onlineendpoints/ep1$", 409, fixture("error_409_conflict.ILLUSTRATIVE.json"))
    with pytest.raises(UpdateConflict) as caught:
        backend.endpoints(WS).set_traffic("ep1", {"blue": 50, "green": 50})
    assert caught.value.retryable and "409" in str(caught.value)
    assert len(endpoint.calls("PUT")) == 1


def test_a_failed_operation_is_a_service_error_with_the_service_message(
        backend: AzureBackend, endpoint: FakeAzure) -> None:
    endpoint.next_outcomes = ["Failed"]
    with pytest.raises(ServiceError) as caught:
        backend.endpoints(WS).set_traffic("ep1", {"blue": 50, "green": 50})
    assert "ModelRegistryError: Could not find asset" in str(caught.value)
    assert endpoint.endpoint_state(WS, "ep1")["properties"]["traffic"] == {"blue": 90, "green": 10}


def test_a_superseded_operation_is_an_update_conflict(backend: AzureBackend, endpoint: FakeAzure) -> None:
    endpoint.next_outcomes = ["Canceled"]
    with pytest.raises(UpdateConflict, match="canceled"):
        backend.endpoints(WS).set_traffic("ep1", {"blue": 50, "green": 50})


def test_traffic_the_service_refuses_is_a_service_error(backend: AzureBackend, endpoint: FakeAzure) -> None:
    with pytest.raises(ServiceError, match="400 BadArgument: Deployment 'nope' does not exist"):
        backend.endpoints(WS).set_traffic("ep1", {"blue": 50, "nope": 50})


def test_an_operation_outliving_the_wait_is_transient(fake: FakeAzure, endpoint: FakeAzure,
                                                      credential: StaticCredential) -> None:
    from dataclasses import replace

    from tests.azure.conftest import TEST_TUNING

    backend = make_backend(fake, credential, replace(TEST_TUNING, lro_timeout=0.3))
    endpoint.polls_before_done = 10_000
    with pytest.raises(TransientError, match="still InProgress"):
        backend.endpoints(WS).set_traffic("ep1", {"blue": 50, "green": 50})


@pytest.mark.parametrize("call", ["get_endpoint", "list_deployments", "set_traffic"])
def test_a_missing_endpoint_is_named(backend: AzureBackend, fake: FakeAzure, call: str) -> None:
    port = backend.endpoints(WS)
    calls = {"get_endpoint": lambda: port.get_endpoint("nope"), "list_deployments": lambda: port.list_deployments("nope"),
             "set_traffic": lambda: port.set_traffic("nope", {"blue": 100})}
    with pytest.raises(ResourceNotFound) as caught:
        calls[call]()
    assert (caught.value.kind, caught.value.name) == ("endpoint", "nope")
    assert "Could not find online endpoint 'nope'" in str(caught.value)


def test_a_long_retry_after_is_handed_to_the_orchestrator_not_slept_on(
        backend: AzureBackend, endpoint: FakeAzure) -> None:
    endpoint.fail("GET", r"/onlineendpoints/ep1$", 429, arm_error("TooManyRequests", "Slow down."),
                  headers={"Retry-After": "30"})
    started = time.monotonic()
    with pytest.raises(Throttled) as caught:
        backend.endpoints(WS).get_endpoint("ep1")
    assert caught.value.retry_after == 30 and caught.value.retryable
    assert time.monotonic() - started < 2
    assert len(endpoint.calls("GET", r"/onlineendpoints/ep1$")) == 1


def test_retry_after_as_an_http_date_is_read_in_seconds(backend: AzureBackend, endpoint: FakeAzure) -> None:
    from email.utils import formatdate

    endpoint.fail("GET", r"/onlineendpoints/ep1$", 429, arm_error("TooManyRequests", "Slow down."),
                  headers={"Retry-After": formatdate(time.time() + 120, usegmt=True)})
    with pytest.raises(Throttled) as caught:
        backend.endpoints(WS).get_endpoint("ep1")
    assert caught.value.retry_after is not None and 100 < caught.value.retry_after <= 120


def test_a_short_retry_after_is_retried_by_azure_core(backend: AzureBackend, endpoint: FakeAzure) -> None:
    endpoint.fail("GET", r"/onlineendpoints/ep1$", 429, arm_error("TooManyRequests", "Slow down."),
                  headers={"Retry-After": "0.2"})
    assert backend.endpoints(WS).get_endpoint("ep1").traffic == {"blue": 90, "green": 10}
    assert len(endpoint.calls("GET", r"/onlineendpoints/ep1$")) == 2


def test_server_errors_are_retried_briefly_then_transient(backend: AzureBackend, endpoint: FakeAzure) -> None:
    endpoint.fail("GET", r"/onlineendpoints/ep1$", 503, arm_error("ServiceUnavailable", "Try later."), times=None)
    with pytest.raises(TransientError, match="503 ServiceUnavailable: Try later"):
        backend.endpoints(WS).get_endpoint("ep1")
    assert len(endpoint.calls("GET", r"/onlineendpoints/ep1$")) == 3  # retry_total=2


def test_one_server_error_is_absorbed_by_azure_core(backend: AzureBackend, endpoint: FakeAzure) -> None:
    endpoint.fail("GET", r"/onlineendpoints/ep1$", 500, arm_error("InternalServerError", "Oops."))
    assert backend.endpoints(WS).get_endpoint("ep1").provisioning_state == "Succeeded"


def test_a_timeout_is_transient(backend: AzureBackend, endpoint: FakeAzure) -> None:
    endpoint.fail("GET", r"/onlineendpoints/ep1$", 200, fixture("endpoint_get_200.SYNTHETIC.json"), delay=1.0,
                  times=None)
    with pytest.raises(TransientError, match="[Tt]imed? ?out"):
        backend.endpoints(WS).get_endpoint("ep1")


def test_a_broken_connection_is_transient(backend: AzureBackend, endpoint: FakeAzure) -> None:
    endpoint.fail("GET", r"/onlineendpoints/ep1$", body=DROP, times=None)
    with pytest.raises(TransientError, match="ServiceResponseError|ServiceRequestError"):
        backend.endpoints(WS).get_endpoint("ep1")


def test_a_malformed_body_is_transient(backend: AzureBackend, endpoint: FakeAzure) -> None:
    endpoint.fail("GET", r"/onlineendpoints/ep1$", 200, b'{"id": "x", "properties": {"traffic": ')
    with pytest.raises(TransientError, match="not valid JSON"):
        backend.endpoints(WS).get_endpoint("ep1")


@pytest.mark.parametrize("status", [401, 403])
def test_refused_access_names_the_role_the_identity_needs(backend: AzureBackend, endpoint: FakeAzure,
                                                          status: int) -> None:
    endpoint.fail("PUT", r"/onlineendpoints/ep1$", status, arm_error(
        "AuthorizationFailed", "The client does not have authorization to perform action "
        "'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write'."))
    with pytest.raises(PermissionDenied) as caught:
        backend.endpoints(WS).set_traffic("ep1", {"blue": 50, "green": 50})
    assert "'AzureML Data Scientist'" in str(caught.value) and "onlineEndpoints/write" in str(caught.value)
    assert not caught.value.retryable


def test_an_identity_without_a_token_is_permission_denied(fake: FakeAzure, endpoint: FakeAzure) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    class NoIdentity(StaticCredential):
        def get_token(self, *scopes: str, **kwargs: object):  # type: ignore[no-untyped-def]
            raise ClientAuthenticationError("ManagedIdentityCredential: no managed identity endpoint")

    with pytest.raises(PermissionDenied, match="could not get a token.*no managed identity"):
        make_backend(fake, NoIdentity()).endpoints(WS).get_endpoint("ep1")
    assert endpoint.calls(path="onlineendpoints") == []




def test_set_traffic_with_expected_traffic_that_is_not_there_writes_nothing_and_says_what_it_found(
        backend: AzureBackend, endpoint: FakeAzure) -> None:
    """The drift check folded into the write's own read: ep1 routes blue 90 / green 10, not the 100 / 0 expected."""
    with pytest.raises(TrafficDrift) as caught:
        backend.endpoints(WS).set_traffic("ep1", {"blue": 50, "green": 50}, expected={"blue": 100})
    assert caught.value.found == EndpointState("ep1", "Succeeded", {"blue": 90, "green": 10}, {})
    assert not caught.value.retryable
    assert [r.method for r in endpoint.requests] == ["GET"] and endpoint.calls("PUT") == []
    state = backend.endpoints(WS).set_traffic("ep1", {"blue": 50, "green": 50}, expected={"BLUE": 90, "green": 10})
    assert state.traffic == {"blue": 50, "green": 50}, "as expected (names compared as Azure stores them): written"
