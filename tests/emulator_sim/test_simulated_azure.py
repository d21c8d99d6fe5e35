"""The simulated Azure ML endpoint enforces the service's rules; synthetic metrics follow traffic."""

from datetime import UTC, datetime, timedelta

import pytest

from emulator.simulated_azure import Fault, HealthSegment, SimulatedEndpointPort, SimulatedWorkspace, SyntheticMetrics
from rollout.errors import ResourceNotFound, ServiceError, Throttled, UpdateConflict
from rollout.model import DeploymentState, WorkspaceRef

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WS = WorkspaceRef("s", "r", "w")


class Clock:
    """A hand-set clock."""

    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


def workspace(update_seconds: float = 0.0) -> tuple[SimulatedWorkspace, Clock]:
    clock = Clock()
    ws = SimulatedWorkspace(WS, clock, update_seconds)
    deployments = [DeploymentState(n, "Succeeded", 1) for n in ("blue", "green", "red")]
    ws.add_endpoint("ep", deployments, {"blue": 100})
    return ws, clock


@pytest.mark.parametrize("traffic, mirror, message", [
    pytest.param({"blue": 90, "green": 20}, None, "add up to 100", id="sum-over-100"),
    pytest.param({"blue": 50}, None, "add up to 100", id="sum-under-100"),
    pytest.param({"blue": 90.5, "green": 9.5}, None, "integer", id="not-integers"),
    pytest.param({"blue": 90, "ghost": 10}, None, "does not exist", id="unknown-deployment"),
    pytest.param({"blue": 100}, {"green": 60}, "at most 50", id="mirror-over-50"),
    pytest.param({"blue": 90, "green": 10}, {"green": 10}, "while it has live traffic", id="mirror-to-live"),
    pytest.param({"blue": 100}, {"green": 10, "red": 10}, "one deployment", id="mirror-two-targets"),
    pytest.param({"blue": 100}, {"ghost": 10}, "does not exist", id="mirror-unknown"),
])
def test_refuses_what_the_service_refuses(traffic, mirror, message):
    ws, _ = workspace()
    with pytest.raises(ServiceError) as caught:
        ws.update_traffic("ep", traffic, mirror, by="test")
    assert message in str(caught.value)
    assert ws.endpoint("ep").traffic == {"blue": 100}, "a refused update changes nothing"


@pytest.mark.parametrize("traffic, mirror, expected", [
    pytest.param({"blue": 90, "green": 10}, None, {"blue": 90, "green": 10}, id="split"),
    pytest.param({"Blue": 0, "GREEN": 100}, None, {"green": 100}, id="lower-cased-zero-dropped"),
    pytest.param({}, None, {}, id="empty-is-allowed"),
    pytest.param({"blue": 100}, {"green": 50}, {"blue": 100}, id="mirror-to-idle-deployment"),
])
def test_accepts_valid_updates(traffic, mirror, expected):
    ws, _ = workspace()
    state = ws.update_traffic("ep", traffic, mirror, by="test")
    assert dict(state.traffic) == expected


def test_update_in_progress_is_a_conflict_until_it_finishes():
    ws, clock = workspace(update_seconds=30)
    ws.update_traffic("ep", {"blue": 90, "green": 10}, None, by="test")
    clock.at = T0 + timedelta(seconds=10)
    with pytest.raises(UpdateConflict):
        ws.update_traffic("ep", {"blue": 50, "green": 50}, None, by="test")
    clock.at = T0 + timedelta(seconds=30)
    assert dict(ws.update_traffic("ep", {"blue": 50, "green": 50}, None, by="test").traffic) == {"blue": 50, "green": 50}


def test_unknown_endpoint_is_not_found():
    ws, _ = workspace()
    with pytest.raises(ResourceNotFound) as caught:
        SimulatedEndpointPort(ws).get_endpoint("nope")
    assert caught.value.kind == "endpoint"


def test_faults_fire_in_their_window_and_count_down():
    ws, clock = workspace()
    ws.faults.append(Fault("set_traffic", Throttled("slow down", retry_after=7), timedelta(minutes=1), None, times=2))
    port = SimulatedEndpointPort(ws)
    port.set_traffic("ep", {"blue": 90, "green": 10})            # before the window: fine
    clock.at = T0 + timedelta(minutes=2)
    for _ in range(2):
        with pytest.raises(Throttled):
            port.set_traffic("ep", {"blue": 80, "green": 20})
    assert dict(port.set_traffic("ep", {"blue": 80, "green": 20}).traffic) == {"blue": 80, "green": 20}


def test_metrics_split_requests_by_the_traffic_in_force():
    ws, clock = workspace()
    health = {"green": [HealthSegment(timedelta(0), 0.01, 150), HealthSegment(timedelta(minutes=5), 0.1, 400)]}
    metrics = SyntheticMetrics(ws, 1000, health)
    clock.at = T0 + timedelta(minutes=2)
    ws.update_traffic("ep", {"blue": 90, "green": 10}, None, by="test")      # green 100/min from minute 2
    clock.at = T0 + timedelta(minutes=4)
    ws.update_traffic("ep", {"blue": 50, "green": 50}, None, by="test")      # green 500/min from minute 4
    found = metrics.deployment_metrics("ep", ["green", "blue"], T0, T0 + timedelta(minutes=6))
    # green: 2 min x 100 + 1 min x 500 at 1% errors, then 1 min x 500 at 10%
    assert found["green"].requests == 200 + 500 + 500
    assert found["green"].errors == round(700 * 0.01 + 500 * 0.1)
    assert found["green"].latency_p99_ms == 400
    assert found["blue"].requests == 2000 + 1800 + 1000
    assert found["blue"].latency_p99_ms == 100.0   # no health given: the default segment


def test_no_traffic_means_no_requests_and_no_latency():
    ws, _ = workspace()
    found = SyntheticMetrics(ws, 1000, {}).deployment_metrics("ep", ["green"], T0, T0 + timedelta(minutes=5))
    assert (found["green"].requests, found["green"].errors, found["green"].latency_p99_ms) == (0, 0, None)


@pytest.mark.parametrize("state", [pytest.param("Creating", id="creating"), pytest.param("Updating", id="updating"),
                                   pytest.param("Deleting", id="deleting")])
@pytest.mark.parametrize("traffic, mirror", [pytest.param({"blue": 90, "green": 10}, None, id="traffic"),
                                             pytest.param({"blue": 100}, {"green": 10}, id="mirror-traffic")])
def test_no_traffic_write_while_the_endpoint_is_in_an_operation(state, traffic, mirror):
    """Azure answers 409 ``OperationDuplicationConflict`` to a write while another operation on the endpoint runs."""
    ws, _ = workspace()
    ws.endpoint("ep").provisioning_state = state
    with pytest.raises(UpdateConflict) as caught:
        ws.update_traffic("ep", traffic, mirror, by="test")
    assert "another operation on same entity is already running in workspace w" in str(caught.value)
    assert f"endpoint 'ep' is {state}" in str(caught.value)
    endpoint = ws.endpoint("ep")
    assert (endpoint.traffic, endpoint.mirror_traffic, len(endpoint.changes)) == ({"blue": 100}, {}, 1)


def test_an_update_keeps_the_endpoint_updating_for_update_seconds():
    ws, clock = workspace(update_seconds=30)
    assert ws.update_traffic("ep", {"blue": 90, "green": 10}, None, by="test").provisioning_state == "Updating"
    clock.at = T0 + timedelta(seconds=29)
    assert ws.endpoint("ep").state().provisioning_state == "Updating"
    clock.at = T0 + timedelta(seconds=30)
    assert ws.endpoint("ep").state().provisioning_state == "Succeeded"


@pytest.mark.parametrize("green_state, traffic, mirror, refused", [
    pytest.param("Creating", {"blue": 90, "green": 10}, None, UpdateConflict, id="live-to-a-creating-deployment"),
    pytest.param("Creating", {"blue": 100}, {"green": 10}, UpdateConflict, id="mirror-to-a-creating-deployment"),
    pytest.param("Deleting", {"blue": 90, "green": 10}, None, UpdateConflict, id="live-to-a-deleting-deployment"),
    pytest.param("Failed", {"blue": 90, "green": 10}, None, ServiceError, id="live-to-a-failed-deployment"),
    pytest.param("Failed", {"blue": 100}, {"green": 10}, ServiceError, id="mirror-to-a-failed-deployment"),
    pytest.param("Updating", {"blue": 90, "green": 10}, None, None, id="live-to-a-scaling-deployment"),
    pytest.param("Failed", {"blue": 100, "green": 0}, None, None, id="zero-to-a-failed-deployment"),
    pytest.param("Creating", {"blue": 100}, {"green": 0}, None, id="zero-mirror-to-a-creating-deployment"),
])
def test_a_share_needs_a_deployment_that_can_serve(green_state, traffic, mirror, refused):
    ws, _ = workspace()
    ws.endpoint("ep").deployments["green"] = DeploymentState("green", green_state, 1)
    if refused is None:
        assert dict(ws.update_traffic("ep", traffic, mirror, by="test").traffic) == {k: v for k, v in traffic.items() if v}
        return
    with pytest.raises(refused) as caught:
        ws.update_traffic("ep", traffic, mirror, by="test")
    says = ("failed during initial provisioning and is in an unrecoverable state" if refused is ServiceError
            else f"deployment 'green' is {green_state}")
    assert says in str(caught.value)
    assert ws.endpoint("ep").traffic == {"blue": 100} and ws.endpoint("ep").mirror_traffic == {}
