"""The lifecycle examples in memory and through the real SDKs, against the scenario-backed fake Azure.

Each lifecycle example runs twice, as ``test_scenarios_through_sdks.py`` runs the traffic
scenarios: in memory (``SimulatedLifecycle``/``SimulatedAutoscale`` called directly) and through
the real ``MLClient`` and ``MonitorManagementClient`` against ``ScenarioAzure`` serving the same
world (``tests/azure/scenario_lifecycle.py``). Outcome, phases, traffic changes and the whole
record (lifecycle entries, the failed deployment's logs, the quota figures in the reason) must be
the same. Then the request bodies the SDKs sent. The rules the fake enforces as Azure does, call by
call: ``test_lifecycle_rules_through_sdks.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from emulator.scenario import Scenario, load_scenario, parse_scenario
from emulator.simulate import SimulationResult, run_simulation
from emulator.simulated_azure import SimulatedBackend
from tests.azure.fake_azure import TOKEN, Recorded
from tests.azure.scenario_azure import ScenarioAzure
from tests.azure.test_scenarios_through_sdks import fresh, through_sdks, timeline_changes, world_changes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BLUE, GREEN = "blue-v1", "green-v2"
ENDPOINT = "fraud-detection-endpoint"


@dataclass(frozen=True)
class Case:
    example: str
    outcome: str
    final: dict[str, int]
    phases: list[str]             # the record's phases (the first ones)
    changes: list[float]          # seconds at which the endpoint's traffic changed
    reason_says: tuple[str, ...]  # figures a person acts on, in the reason


CASES = [
    pytest.param(Case("create-and-roll-out", "promoted", {GREEN: 100},
                      ["creating", "mirroring", "scaling", "scaling", "autoscaling", "cleaning_up"],
                      [720, 1320, 1320, 1860, 2400], ("healthy at every step",)), id="create-and-roll-out"),
    pytest.param(Case("creation-fails", "failed", {BLUE: 100}, ["creating"], [],
                      ("ImageBuildFailure", "ImageLogs/sim/build.log")), id="creation-fails"),
    pytest.param(Case("out-of-quota", "failed", {BLUE: 100}, ["creating"], [],
                      ("needs 24 more cores", "12 free in 'Standard DSv2 Family Cluster Dedicated vCPUs'")),
                 id="out-of-quota"),
    # (how a first rollout is judged after it gets 100% is changing: only its start is pinned here)
    pytest.param(Case("first-rollout", "promoted", {GREEN: 100}, ["creating"], [840], ("green-v2",)),
                 id="first-rollout"),
]


def example(name: str) -> Scenario:
    return load_scenario(EXAMPLES / f"{name}.yaml")


@dataclass(frozen=True)
class Run:
    """An example run in memory and through the SDKs, with every request the fake Azure received."""

    scenario: Scenario
    memory: SimulationResult
    sdk: SimulationResult
    world: SimulatedBackend
    requests: list[Recorded]

    def calls(self, method: str, path: str) -> list[Recorded]:
        """The requests of ``method`` whose lower-cased path matches the regex ``path``."""
        return [r for r in self.requests if r.method == method and re.search(path, r.path.lower())]


@pytest.fixture(scope="module")
def runs(scenario_server: ScenarioAzure) -> Callable[[str], Run]:
    """Each example run once both ways for the whole module (a run through the SDKs takes seconds)."""
    done: dict[str, Run] = {}

    def run(name: str) -> Run:
        if name not in done:
            scenario_server.reset()
            chosen = example(name)
            memory = run_simulation(fresh(chosen))
            sdk, world = through_sdks(scenario_server, chosen)
            done[name] = Run(chosen, memory, sdk, world, scenario_server.calls())
        return done[name]
    return run


@pytest.mark.parametrize("case", CASES)
def test_the_same_lifecycle_in_memory_and_through_the_sdks(case: Case, runs: Callable[[str], Run]) -> None:
    found = runs(case.example)
    chosen, memory, sdk, world = found.scenario, found.memory, found.sdk, found.world
    for result in (memory, sdk):
        summary = result.to_json()
        assert (summary["outcome"], summary["final_traffic"]) == (case.outcome, case.final), summary["reason"]
        assert [p["phase"] for p in summary["phases"]][:len(case.phases)] == case.phases
        assert all(said in summary["reason"] for said in case.reason_says), summary["reason"]
    assert sdk.elapsed_seconds == memory.elapsed_seconds
    assert [at for at, _ in timeline_changes(memory)] == case.changes
    assert world_changes(world, chosen) == timeline_changes(memory)
    assert sdk.record["phases"] == memory.record["phases"]       # every lifecycle entry: operations, figures, logs
    assert sdk.record == memory.record
    # the timeline too: every phase, check and outcome event; traffic events (the world's own record in
    # memory, the rollout's read-backs through the SDKs) at the same moments with the same traffic and reason
    assert [e for e in sdk.timeline if e["kind"] != "traffic"] == [e for e in memory.timeline if e["kind"] != "traffic"]
    assert [(e["at_seconds"], e["traffic"], e["reason"]) for e in sdk.timeline if e["kind"] == "traffic"] == [
        (e["at_seconds"], e["traffic"], e["reason"]) for e in memory.timeline if e["kind"] == "traffic"]
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in found.requests
               if not r.path.startswith("/metadata/"))


SPEC = {"model": "azureml:fraud-model:2", "environment": "azureml:fraud-env:3", "instance_type": "Standard_DS3_v2",
        "instance_count": 1}
FIRED = "alerts/endpoint-5xx-fired.json"
NEW_ENDPOINT = {"name": ENDPOINT, "exists": False}
ENDPOINT_SPEC = {"auth_mode": "aad_token", "description": "fraud scoring"}


def lifecycle(rollout: dict[str, Any] | None = None, **top: Any) -> Scenario:
    """blue-v1 100% on 4 x DS3_v2, green-v2 created from ``SPEC``, steps 10/50/100 of PT5M, 1200 rpm, no noise."""
    return parse_scenario({
        "seed": None,
        "endpoint": {"name": ENDPOINT,
                     "deployments": {BLUE: {"traffic": 100, "instance_count": 4, "instance_type": "Standard_DS3_v2"}}},
        "rollout": {"new_deployment": GREEN, "traffic_steps": [10, 50, 100], "observation_window": "PT5M",
                    "deployment": SPEC, **(rollout or {})},
        "load": {"requests_per_minute": 1200},
        "health": {BLUE: [{"from": "PT0S", "error_rate": 0.001, "latency_p99_ms": 120}],
                   GREEN: [{"from": "PT0S", "error_rate": 0.002, "latency_p99_ms": 140}]},
        **top,
    }, EXAMPLES)


MORE = [
    pytest.param(lambda: lifecycle(lifecycle={"failures": {GREEN: "crash_loop"}}), "failed", id="crash-loop"),
    pytest.param(lambda: lifecycle(alerts=[{"at": "PT3M", "payload": FIRED}]), "rolled_back",
                 id="alert-during-creation"),
    pytest.param(lambda: lifecycle({"mirror": {"percent": 10, "window": "PT10M"}}, lifecycle={"mirror_in_metrics": True},
                                   alerts=[{"at": "PT15M30S", "payload": FIRED}]), "rolled_back",
                 id="alert-during-mirroring"),
    pytest.param(lambda: lifecycle({"capacity": {"max_instances": 6}, "scale_timeout": "PT20M"},
                                   lifecycle={"scale_minutes": 30}), "failed", id="scale-times-out"),
    pytest.param(lambda: lifecycle({"cleanup": "delete", "revert_window": "PT30M"},
                                   controls=[{"at": "PT40M", "action": "revert", "reason": "latency"}]), "reverted",
                 id="revert-in-the-window"),
    pytest.param(lambda: lifecycle({"cleanup": "scale_down", "revert_window": "PT10M"}), "promoted",
                 id="scale-down-cleanup"),
    pytest.param(lambda: lifecycle(endpoint={"name": ENDPOINT, "deployments": {
        BLUE: {"traffic": 100, "instance_count": 4, "instance_type": "Standard_DS3_v2"},
        GREEN: {"traffic": 0, "instance_count": 1, "instance_type": "Standard_DS3_v2"}}}), "failed",
                 id="exists-with-another-spec"),
    pytest.param(lambda: lifecycle({"endpoint": ENDPOINT_SPEC}, endpoint=NEW_ENDPOINT, lifecycle={
        "failures": {GREEN: "image_build"}}, health={GREEN: [{"from": "PT0S", "error_rate": 0.002}]}), "failed",
                 id="new-endpoint-creation-fails"),
]


@pytest.mark.parametrize("make, outcome", MORE)
def test_more_lifecycle_paths_agree_in_memory_and_through_the_sdks(make: Any, outcome: str,
                                                                   scenario_azure: ScenarioAzure) -> None:
    """Failures, alerts, timeouts, a revert and each clean-up, beyond the examples: the same record both ways."""
    chosen = make()
    memory = run_simulation(fresh(chosen))
    sdk, world = through_sdks(scenario_azure, chosen)
    assert memory.outcome == sdk.outcome == outcome, memory.record["reason"]
    assert sdk.elapsed_seconds == memory.elapsed_seconds
    assert world_changes(world, chosen) == timeline_changes(memory)
    assert sdk.record == memory.record


def test_a_failed_creation_puts_both_containers_logs_in_the_record(runs: Callable[[str], Run]) -> None:
    found = runs("creation-fails")
    [creating] = found.sdk.record["phases"]
    assert creating["logs"]["inference-server"] == [
        "Deployment green-v2: the inference server container has not started (image build failed); "
        "see the build log named in the error"]
    assert [c.body for c in found.calls("POST", "/getlogs$")] == [
        {"containerType": "StorageInitializer", "tail": 100}, {"containerType": "InferenceServer", "tail": 100}]
    assert {c.api_version for c in found.calls("POST", "/getlogs$")} == {"2023-04-01-preview"}
    # the inline environment: registered anonymously, then named by the deployment PUT
    [environment] = found.calls("PUT", "/environments/")
    assert environment.path.split("/")[-3] == "CliV2AnonymousEnvironment"
    assert environment.body["properties"]["image"] == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest"
    assert "scikit-learn==1.5.2" in environment.body["properties"]["condaFile"]
    [put] = found.calls("PUT", "/deployments/green-v2$")
    assert put.body["properties"]["environmentId"] == environment.path


def test_the_bodies_the_sdks_sent_for_create_and_roll_out(runs: Callable[[str], Run]) -> None:
    found = runs("create-and-roll-out")
    ws = found.scenario.workspace
    assets = ws.arm_id()
    create, *scales = found.calls("PUT", "/deployments/green-v2$")
    assert create.api_version == "2023-04-01-preview"
    assert create.body == {
        "location": "eastus", "tags": {}, "sku": {"name": "Default", "capacity": 1},
        "properties": {
            "model": f"{assets}/models/fraud-model/versions/2",
            "environmentId": f"{assets}/environments/fraud-scoring-env/versions/3",
            "codeConfiguration": {"codeId": f"{assets}/codes/fraud-scoring-code/versions/2", "scoringScript": "score.py"},
            "instanceType": "Standard_DS3_v2", "endpointComputeType": "Managed", "properties": {},
            "requestSettings": {"requestTimeout": "PT3S", "maxConcurrentRequestsPerInstance": 2},
            "readinessProbe": {"initialDelay": "PT10S", "period": "PT10S", "failureThreshold": 30},
            "environmentVariables": {"MODEL_THRESHOLD": "0.72"}, "appInsightsEnabled": False}}
    # pre-scaling: the whole deployment PUT back with only sku.capacity changed, 1 -> 3 -> 5
    assert [s.body["sku"]["capacity"] for s in scales] == [3, 5]
    assert all(s.body["properties"]["model"] == create.body["properties"]["model"] for s in scales)
    assert all(s.body["properties"]["instanceType"] == "Standard_DS3_v2" for s in scales)
    # the quota read: the region's usages and VM sizes, after the workspace (for its location)
    [usages] = found.calls("GET", "/usages$")
    assert (usages.path, usages.api_version, usages.body) == (
        f"/subscriptions/{ws.subscription_id}/providers/Microsoft.MachineLearningServices/locations/eastus/usages",
        "2023-08-01-preview", None)
    # autoscale on green once promoted; blue's setting removed at clean-up
    [autoscale] = found.calls("PUT", "/autoscalesettings/")
    assert autoscale.path.endswith("/autoscalesettings/aml-rollout-fraud-detection-endpoint-green-v2")
    assert autoscale.api_version == "2022-10-01"
    props = autoscale.body["properties"]
    assert props["targetResourceUri"] == f"{ws.endpoint_id(ENDPOINT)}/deployments/{GREEN}"
    assert props["enabled"] is True
    [profile] = props["profiles"]
    assert profile["capacity"] == {"minimum": "2", "maximum": "8", "default": "5"}
    assert {r["scaleAction"]["direction"] for r in profile["rules"]} == {"Increase", "Decrease"}
    assert any(r["metricTrigger"]["metricName"] == "RequestLatency" and r["metricTrigger"]["threshold"] == 250
               for r in profile["rules"])
    assert [c.path.rsplit("/", 1)[1] for c in found.calls("DELETE", "/autoscalesettings/")] == [
        "aml-rollout-fraud-detection-endpoint-blue-v1"]
    # blue deleted after the revert window, with no traffic left on it
    [delete] = found.calls("DELETE", "/deployments/")
    assert (delete.path, delete.api_version, delete.body) == (
        f"{ws.endpoint_id(ENDPOINT)}/deployments/{BLUE}", "2023-04-01-preview", None)
    # the mirror, then live steps: mirror removed in the same PUT that gives green its first share
    traffic = [(c.body["properties"]["traffic"], c.body["properties"]["mirrorTraffic"])
               for c in found.calls("PUT", "/onlineendpoints/fraud-detection-endpoint$")]
    assert traffic[0] == ({BLUE: 100}, {GREEN: 20})


def test_the_first_rollout_creates_the_endpoint_with_the_requested_auth_mode(runs: Callable[[str], Run]) -> None:
    found = runs("first-rollout")
    create, traffic = found.calls("PUT", "/onlineendpoints/fraud-detection-endpoint$")
    assert create.body["properties"] == {"description": "Fraud scoring, created by aml-rollout", "authMode": "AADToken",
                                         "properties": {}, "traffic": {}, "mirrorTraffic": {}}
    assert traffic.body["properties"]["traffic"] == {GREEN: 100}
    assert found.world.workspace.endpoint(ENDPOINT).auth_mode == "aad_token"
