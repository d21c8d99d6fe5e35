"""Values of the model: case-insensitive workspace identity, finite metrics read back from the wire."""

import pytest

from rollout.model import DeploymentMetrics, DeploymentState, EndpointState, WorkspaceRef, normalize_traffic

WS = WorkspaceRef("aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e", "Rg-One", "Ws-One")


@pytest.mark.parametrize("other, equal", [
    pytest.param(WorkspaceRef("AAAA0A0A-BB1B-CC2C-DD3D-EEEEEE4E4E4E", "rg-one", "WS-ONE"), True,
                 id="subscription-with-letters-other-case"),
    pytest.param(WorkspaceRef("aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e", "Rg-One", "Ws-Two"), False, id="other-name"),
    pytest.param(WorkspaceRef("aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e", "Rg-Two", "Ws-One"), False, id="other-group"),
    pytest.param(WorkspaceRef("bbbb0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e", "Rg-One", "Ws-One"), False,
                 id="other-subscription"),
    pytest.param(("aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e", "rg-one", "ws-one"), False, id="not-a-workspace"),
])
def test_workspaces_are_equal_ignoring_case(other, equal):
    assert (other == WS) is equal
    assert (other != WS) is not equal
    if equal:
        assert hash(WS) == hash(other) and {WS: 1}[other] == 1


def test_a_workspace_keeps_its_spelling_and_its_ids():
    assert WS.to_dict() == {"subscription_id": "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e", "resource_group": "Rg-One",
                            "workspace_name": "Ws-One"}
    assert WorkspaceRef.from_dict(WS.to_dict()).workspace_name == "Ws-One"
    assert WS.endpoint_id("ep1") == ("/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/Rg-One"
                                     "/providers/Microsoft.MachineLearningServices/workspaces/Ws-One/onlineEndpoints/ep1")


@pytest.mark.parametrize("p99, expected", [
    pytest.param(float("nan"), None, id="nan-is-not-measured"),
    pytest.param(float("inf"), None, id="infinity-is-not-measured"),
    pytest.param("NaN", None, id="nan-text-is-not-measured"),
    pytest.param(None, None, id="absent"),
    pytest.param(120, 120.0, id="a-number"),
])
def test_metrics_read_back_hold_only_finite_latency(p99, expected):
    metrics = DeploymentMetrics.from_dict({"requests": "10", "errors": 2, "latency_p99_ms": p99})
    assert metrics == DeploymentMetrics(10, 2, expected)


def test_metrics_round_trip():
    metrics = DeploymentMetrics(10, 1, 99.5)
    assert DeploymentMetrics.from_dict(metrics.to_dict()) == metrics


@pytest.mark.parametrize("traffic, expected", [
    pytest.param({"Blue": 90, "GREEN": 10}, {"blue": 90, "green": 10}, id="lower-cased"),
    pytest.param({"blue": 100, "green": 0}, {"blue": 100}, id="zero-dropped"),
    pytest.param({"blue": "100"}, {"blue": 100}, id="text-share-as-int"),
])
def test_normalize_traffic(traffic, expected):
    assert normalize_traffic(traffic) == expected


def test_deployment_state_wire_form():
    state = DeploymentState("green", "Succeeded", 3, "Standard_F4s_v2")
    assert state.to_dict() == {"name": "green", "provisioning_state": "Succeeded", "instance_count": 3,
                               "instance_type": "Standard_F4s_v2"}
    assert DeploymentState.from_dict(state.to_dict()) == state
    assert DeploymentState.from_dict({"name": "g", "provisioning_state": "Failed", "instance_count": "2"}) == \
        DeploymentState("g", "Failed", 2, None)


def test_endpoint_state_wire_form():
    state = EndpointState("ep1", "Succeeded", {"blue": 90, "green": 10}, {"green": 5})
    assert state.to_dict() == {"name": "ep1", "provisioning_state": "Succeeded",
                               "traffic": {"blue": 90, "green": 10}, "mirror_traffic": {"green": 5}}
    assert EndpointState.from_dict(state.to_dict()) == state
    assert EndpointState.from_dict({"name": "ep1", "provisioning_state": "Updating", "traffic": None}) == \
        EndpointState("ep1", "Updating", {}, {})
