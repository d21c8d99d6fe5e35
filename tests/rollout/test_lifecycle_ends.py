"""Loose ends of the lifecycle: a long mirror window continues as new; a first rollout that ended unsafe
or was stopped by a redeploy gets its traffic back to 0%; the quota check and autoscale's ceiling."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from emulator.scenario import parse_scenario
from emulator.serve import LocalServer
from emulator.simulated_azure import Fault
from rollout.errors import ServiceError
from rollout.safety import ORCHESTRATION_VERSION, versioned_input
from tests.http.helpers import ENDPOINT as HTTP_ENDPOINT
from tests.http.helpers import FIXTURES, KEY, MANAGED_SAMPLES, SCENARIO, Client, alert
from tests.http.helpers import NEW as HTTP_NEW
from tests.rollout.sdk_history import DEPLOYMENTS, ENDPOINT, PREFLIGHT_OK, REQUEST, START, Driver, History, SimpleEndpoint
from tests.rollout.test_lifecycle_scenarios import BLUE, GREEN, SPEC, phases, simulate, traffic

FIRED_SAMPLE = MANAGED_SAMPLES[0]          # a metric alert on ep1 split by deployment = green
FIRED = {"alert": {"rule": "green-5xx", "monitor_condition": "Fired"}, "reason": "alert 'green-5xx' fired"}

# --- 1. a long mirror window continues as new -------------------------------------------------------

LONG_MIRROR = {"mirror": {"percent": 20, "window": "PT2H"}}
MIRROR_SEEN = {"mirror_in_metrics": True}


def green_sick_from(at: str) -> dict[str, Any]:
    return {BLUE: [{"from": "PT0S", "error_rate": 0.001, "latency_p99_ms": 120}],
            GREEN: [{"from": "PT0S", "error_rate": 0.002, "latency_p99_ms": 140},
                    {"from": at, "error_rate": 0.2, "latency_p99_ms": 140}]}


def test_a_long_mirror_window_continues_as_new_and_still_passes() -> None:
    result, _, backend = simulate(LONG_MIRROR, lifecycle=MIRROR_SEEN)
    assert result.outcome == "promoted", result.record["reason"]
    mirroring = result.record["phases"][1]
    assert (mirroring["phase"], mirroring["outcome"], mirroring["mirror_removed"]) == ("mirroring", "passed", True)
    assert mirroring["started_at"].endswith("00:12:00+00:00") and mirroring["ended_at"].endswith("02:12:00+00:00")
    assert backend.workspace.endpoint("fraud-detection-endpoint").mirror_traffic == {}
    assert phases(result) == ["creating", "mirroring"]


@pytest.mark.parametrize("top, says", [
    pytest.param({"health": green_sick_from("PT1H40M")}, "regression detected", id="judged-after-handovers"),
    pytest.param({"alerts": [{"at": "PT1H40M30S", "payload": "alerts/endpoint-5xx-fired.json"}]},
                 "alert 'fraud-detection-green-5xx' fired", id="alert-after-handovers"),
])
def test_a_long_mirror_window_ends_in_a_bounded_execution_and_rolls_back_before_any_user(top: dict[str, Any],
                                                                                        says: str) -> None:
    result, _, backend = simulate(LONG_MIRROR, lifecycle=MIRROR_SEEN, **top)
    assert result.outcome == "rolled_back" and says in result.record["reason"]
    assert "no user request was served by green-v2" in result.record["reason"]
    assert len(result.history) < 60, "the last execution holds at most 5 checks (846 events in one execution before)"
    assert all(GREEN not in t for _, t in traffic(result))
    assert backend.workspace.endpoint("fraud-detection-endpoint").mirror_traffic == {}
    mirroring = result.record["phases"][1]
    assert (mirroring["phase"], mirroring["outcome"], mirroring["mirror_removed"]) == ("mirroring", "rollback", True)


class MirrorEndpoint(SimpleEndpoint):
    """``SimpleEndpoint`` that keeps the mirror traffic each ``set_traffic`` asked for."""

    def __init__(self) -> None:
        super().__init__({})
        self.mirrors: list[Any] = []

    def __call__(self, name: str, payload: Any) -> Any:
        if name == "set_traffic":
            self.mirrors.append(payload.get("mirror_traffic"))
        return super().__call__(name, payload)


MIRROR_REQUEST = versioned_input({**REQUEST, "mirror": {"percent": 10, "window": "PT30M"}})


@pytest.mark.parametrize("event, outcome", [
    pytest.param(("rollback", FIRED), "rolled_back", id="alert"),
    pytest.param(("abort", {"reason": "wrong model"}), "aborted", id="abort"),
])
def test_an_event_arriving_as_the_mirror_window_hands_over_is_not_lost(event: tuple[str, Any], outcome: str) -> None:
    """The event arrives in the batch after the completion on which the mirror's window continues as new: the
    first execution never sees it; the next one, still in the mirror's window, acts on it."""
    probe = Driver(MirrorEndpoint(), MIRROR_REQUEST)
    assert probe.run()["output"]["outcome"] == "promoted"
    decided = probe.handovers[0] - 1
    endpoint = MirrorEndpoint()
    record = Driver(endpoint, MIRROR_REQUEST).run(inject_after={decided: [event]})["output"]
    assert record["outcome"] == outcome, record["reason"]
    assert record["phases"][-1]["phase"] == "mirroring" and record["phases"][-1]["outcome"] == event[0]
    assert all(t == {"blue-v1": 100} for t in endpoint.seen), "no live step"
    assert endpoint.mirrors[:2] == [{"green-v2": 10}, {}], "mirror on, then off after the handover"
    assert len(probe.handovers) >= 5 and decided < probe.handovers[-1], "the window handed over more than once"


# --- 2. a first rollout that ended unsafe is rolled back to 0% by a later alert ----------------------


@pytest.fixture
def first_rollout_server() -> Iterator[LocalServer]:
    """ep1 with green only, serving nothing: a rollout with ``capacity`` and no old deployment is a first rollout."""
    world = {**SCENARIO, "endpoint": {"name": HTTP_ENDPOINT, "deployments": {
        HTTP_NEW: {"traffic": 0, "instance_count": 1, "instance_type": "Standard_DS3_v2"}}},
             "health": {HTTP_NEW: SCENARIO["health"][HTTP_NEW]}}
    local = LocalServer(parse_scenario(world, FIXTURES, require_rollout=False), key=KEY).start()
    yield local
    local.stop()


def test_an_alert_after_a_first_rollout_ended_unsafe_rolls_it_back_to_zero(first_rollout_server: LocalServer) -> None:
    server = first_rollout_server
    api = Client(server.url)
    api.start(capacity={"max_instances": 2}, error_threshold=0.5)
    api.wait_until_observing()
    assert server.endpoint.traffic == {HTTP_NEW: 100}
    outage = Fault("set_traffic", ServiceError("simulated outage"))
    server.backend.workspace.faults.append(outage)          # the rollback cannot write
    assert api.post(f"/api/rollouts/{HTTP_ENDPOINT}/abort", {"reason": "wrong model"}).status == 202
    api.wait_for(lambda v: (v.get("rollback") or {}).get("attempts", 0) >= 1)
    assert api.post(f"/api/rollouts/{HTTP_ENDPOINT}/resolve", {"reason": "on it"}).status == 202
    ended = api.wait_until_done()
    assert ended["outcome"] == "failed" and ended["final_traffic"] == {HTTP_NEW: 100}
    assert ended["plan"]["old"] is None and ended["plan"]["first_rollout"] is True
    server.backend.workspace.faults.remove(outage)

    response = api.post("/api/alerts", alert(FIRED_SAMPLE))
    assert response.status == 202, response.body
    body = response.json()
    assert body["action"] == "rollback" and "started a rollback" in body["reason"]
    assert "the last rollout ended failed with green still holding traffic" in body["reason"]
    back = api.wait_for(lambda v: v["runtime_status"] == "Completed" and v["phase"] == "done" and
                        v.get("final_traffic") == {})
    assert back["outcome"] == "rolled_back" and server.endpoint.traffic == {}
    assert back["history"][-1]["kind"] == "rollback" and back["history"][-1]["traffic"] == {}
    again = api.post("/api/alerts", alert(FIRED_SAMPLE))
    assert again.status == 200 and again.json()["done"] is False, "safe now: nothing left to do"


# --- 3. a redeploy during a first rollout returns traffic to 0% ----------------------------------------

FIRST_REQUEST = {**REQUEST, "traffic_steps": None, "deployment": SPEC,
                 "endpoint": {"auth_mode": "key", "description": "created by aml-rollout"}}
NEWER = ORCHESTRATION_VERSION + 1
OK = {"ok": True}


def first_rollout_history(endpoint_existed: bool, gave_traffic: bool = True) -> History:
    """An instance of another version that ran a first rollout's ``creating`` (the endpoint missing, or holding
    green-v2 alone and serving nothing), then gave green-v2 100% and now waits in its window."""
    history = History(orchestration_input={**FIRST_REQUEST, "orchestration_version": NEWER})
    at, ids = START, iter(range(100))
    state = "Succeeded" if endpoint_existed else "NotFound"
    inspect = {"ok": True, "endpoint": {"state": state}, "new_status": {"state": state},
               "vm_size": {"name": "Standard_DS3_v2", "family": "standardDSv2Family", "vcpus": 4}, "usages": []}
    i = next(ids)
    history.scheduled(i, "lifecycle_inspect").episode(1).completed(i, inspect)
    if endpoint_existed:
        i = next(ids)
        history.scheduled(i, "preflight").episode(1).completed(i, {"ok": True, "endpoint": {
            **ENDPOINT, "traffic": {}}, "deployments": [DEPLOYMENTS[1]]})
    else:
        for start in ("create_endpoint_start", "create_deployment_start"):
            i = next(ids)
            history.scheduled(i, start).episode(1).completed(i, {**OK, "operation_url": None})
            i = next(ids)
            history.scheduled(i, "operation_poll").episode(1).completed(i, {**OK, "observed": {"state": "Succeeded"}})
    if gave_traffic:
        i = next(ids)
        history.scheduled(i, "notify").episode(1).completed(i, OK)
        i = next(ids)
        history.scheduled(i, "set_traffic").episode(1).completed(i, {"ok": True, "endpoint": {
            **ENDPOINT, "traffic": {"green-v2": 100}}})
    i = next(ids)
    history.timer(i, at + timedelta(minutes=30))
    return history


@pytest.mark.parametrize("endpoint_existed", [
    pytest.param(False, id="endpoint-created-by-the-rollout"),
    pytest.param(True, id="endpoint-held-green-alone"),
])
def test_a_redeploy_in_a_first_rollouts_window_returns_traffic_to_zero(endpoint_existed: bool) -> None:
    endpoint = SimpleEndpoint()
    endpoint.traffic = {"green-v2": 100}
    record = Driver(endpoint, history=first_rollout_history(endpoint_existed)).run()["output"]
    assert record["outcome"] == "rolled_back", record["reason"]
    assert record["reason"].startswith(f"the app was redeployed with orchestration version {ORCHESTRATION_VERSION} "
                                       f"while this rollout (version {NEWER}) ran")
    assert "traffic returned to 0% everywhere, as before the endpoint's first rollout" in record["reason"]
    assert endpoint.calls == ["read_traffic", "set_traffic"] and endpoint.traffic == {} == record["final_traffic"]
    assert record["plan"]["old"] is None and record["plan"]["first_rollout"] is True


def test_a_redeploy_before_a_first_rollout_gave_any_traffic_changes_nothing() -> None:
    endpoint = SimpleEndpoint()
    endpoint.traffic = {}
    record = Driver(endpoint, history=first_rollout_history(False, gave_traffic=False)).run()["output"]
    assert record["outcome"] == "failed"
    assert "it had not given green-v2 any traffic yet (the endpoint's first rollout)" in record["reason"]
    assert endpoint.calls == [], "the endpoint may not exist yet: nothing read, nothing written"


def test_a_redeploy_of_an_ordinary_lifecycle_rollout_is_not_taken_for_a_first_rollout() -> None:
    history = History(orchestration_input={**FIRST_REQUEST, "orchestration_version": NEWER})
    history.scheduled(0, "lifecycle_inspect").episode(1).completed(0, {
        "ok": True, "endpoint": {"state": "Succeeded"}, "new_status": {"state": "NotFound"}})
    history.scheduled(1, "preflight").episode(1).completed(1, PREFLIGHT_OK)
    history.timer(2, START + timedelta(minutes=5))
    endpoint = SimpleEndpoint()
    record = Driver(endpoint, history=history).run()["output"]
    assert record["outcome"] == "rolled_back" and "traffic returned to blue-v1" in record["reason"]
    assert record["plan"]["old"] == "blue-v1" and "first_rollout" not in record["plan"]
    assert endpoint.calls == ["read_traffic"] and endpoint.traffic == {"blue-v1": 100}, "green-v2 held none"


# --- 4. autoscale's ceiling and the quota: a warning in the record ------------------------------------

AUTOSCALE_WARNING = ("autoscale.max_instances 10 x Standard_DS3_v2 is not covered by the quota: needs 48 more cores "
                     "(ceil(1.2 x 10) x 4 vCPUs), 20 free in 'Standard DSv2 Family Cluster Dedicated vCPUs'; "
                     "scale-outs beyond 4 instance(s) will fail")


@pytest.mark.parametrize("quota, warned", [
    pytest.param(40, True, id="blue-holds-20-of-40-autoscale-10-needs-48"),
    pytest.param(80, False, id="quota-covers-autoscales-ceiling"),
])
def test_a_rollout_whose_autoscale_ceiling_the_quota_cannot_cover_is_promoted_with_a_warning(quota: int,
                                                                                             warned: bool) -> None:
    result, life, backend = simulate({"autoscale": True}, lifecycle={"quota": {"Standard_DS3_v2": quota}})
    assert result.outcome == "promoted" and result.record["reason"].startswith("green-v2 healthy at every step")
    capacity = result.record["phases"][0]["capacity"]
    assert capacity["refusal"] is None and capacity["needed_cores"] == 8
    assert (AUTOSCALE_WARNING in (capacity.get("autoscale_warning") or "")) is warned
    assert (f"; warning: {AUTOSCALE_WARNING}" in result.record["reason"]) is warned
    assert backend.workspace.endpoint("fraud-detection-endpoint").traffic == {GREEN: 100}
    assert phases(result) == ["creating", "autoscaling"]


def test_a_first_rollout_whose_autoscale_ceiling_the_quota_cannot_cover_is_promoted_with_a_warning() -> None:
    result, _, _ = simulate({"endpoint": {"auth_mode": "key"}, "autoscale": {"max_instances": 4}},
                            endpoint={"name": "fraud-detection-endpoint", "exists": False},
                            health={GREEN: [{"from": "PT0S", "error_rate": 0.002, "latency_p99_ms": 140}]},
                            lifecycle={"quota": {"Standard_DS3_v2": 12}})
    assert result.outcome == "promoted", result.record["reason"]
    warning = result.record["phases"][0]["capacity"]["autoscale_warning"]
    assert warning.startswith("autoscale.max_instances 4 x Standard_DS3_v2 is not covered by the quota: needs 20 more "
                              "cores (ceil(1.2 x 4) x 4 vCPUs), 12 free")
    assert "scale-outs beyond 2 instance(s) will fail" in warning and f"warning: {warning}" in result.record["reason"]
