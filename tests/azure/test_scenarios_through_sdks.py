"""The same scenarios in memory and through the real SDKs against the scenario-backed fake Azure.

Each scenario runs twice: ``run_simulation(scenario)`` against the in-memory simulated endpoint,
and ``run_simulation(scenario, backend=AzureBackend(...), clock=clock)`` where the backend's
``MLClient``, ``MonitorManagementClient`` and ``LogsQueryClient`` send real HTTPS requests to
``ScenarioAzure`` serving the same world on the same virtual clock. Outcome, final traffic, steps
completed, the traffic changes the endpoint saw (when and what) and the orchestrator's history
must be the same; where the metrics windows are whole minutes, every health check's numbers too.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from emulator.clock import RealClock, VirtualClock
from emulator.scenario import DEFAULT_WORKSPACE, Scenario, load_scenario, parse_scenario
from emulator.simulate import SIMULATION_START, SimulationResult, build_workspace, main, run_simulation
from emulator.simulated_azure import SimulatedBackend, SimulatedEndpointPort
from rollout.errors import InvalidRequest, PermissionDenied, ServiceError
from tests.azure.conftest import LA_WORKSPACE, SCENARIO_CLOUD, StaticCredential, scenario_backend
from tests.azure.fake_azure import TOKEN
from tests.azure.scenario_azure import ADFS, CLIENT_ID, CLIENT_SECRET, ScenarioAzure
from tests.http.helpers import KEY, Client
from tests.rollout.test_orchestrator import BLUE, GREEN, scenario

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CONFLICT_ONCE = [{"operation": "set_traffic", "error": "conflict", "times": 1}]
SLOW_GREEN = {GREEN: [{"from": "PT0S", "error_rate": 0.0, "latency_p99_ms": 450}]}
MIXED_CASE = {
    "endpoint": {"name": "Fraud-Detection", "deployments": {"Blue-V1": {"traffic": 100}, "Green-V2": {"traffic": 0}}},
    "rollout": {"new_deployment": "Green-V2", "traffic_steps": [25, 100], "observation_window": "PT2M"},
    "load": {"requests_per_minute": 1200},
    "health": {"Green-V2": [{"from": "PT0S", "error_rate": 0.001, "latency_p99_ms": 180}]},
}


@dataclass(frozen=True)
class Case:
    scenario: Scenario
    outcome: str
    final: dict[str, int]
    steps: list[int]
    changes: list[float]            # seconds from the start at which the endpoint's traffic changed
    same_checks: bool = True        # every health check reads the same numbers both ways
    same_messages: bool = True      # no Azure error in the reasons (the adapters word theirs: role, URL, status)
    sdk_says: str = ""              # ...and what they say, somewhere in the run's record or timeline


CASES = {
    "healthy-promotion": Case(load_scenario(EXAMPLES / "healthy-promotion.yaml"), "promoted", {GREEN: 100},
                              [10, 50, 100], [0, 300, 600]),
    "error-rate-regression": Case(load_scenario(EXAMPLES / "regression-caught.yaml"), "rolled_back", {BLUE: 100},
                                  [10, 50], [0, 300, 600, 780]),
    "latency-regression": Case(scenario(rollout={"latency_p99_threshold_ms": 300}, health=SLOW_GREEN),
                               "rolled_back", {BLUE: 100}, [10], [0, 300, 420]),
    "alert-mid-window": Case(load_scenario(EXAMPLES / "alert-rollback.yaml"), "rolled_back", {BLUE: 100}, [10],
                             [0, 300, 420]),
    "too-little-traffic": Case(load_scenario(EXAMPLES / "too-little-traffic.yaml"), "rolled_back", {BLUE: 100}, [],
                               [0, 300]),
    # The first PUT is answered 409 and retried 5 s later on a durable timer. Platform metrics come in
    # whole minutes, so each check also counts the seconds before the step in its first minute: the
    # numbers differ a little (not the verdicts); Log Analytics reads the exact window.
    "409-retried": Case(scenario(faults=CONFLICT_ONCE), "promoted", {GREEN: 100}, [10, 50, 100], [5, 305, 605],
                        same_checks=False),
    "409-retried-log-analytics": Case(scenario(rollout={"metrics_source": "log_analytics"}, faults=CONFLICT_ONCE),
                                      "promoted", {GREEN: 100}, [10, 50, 100], [5, 305, 605]),
    # The service itself refuses: each update keeps the endpoint busy 150 s, so the rollback at 420 s
    # (step 2 was applied at 300 s) gets 409s (420, 425, 435) until it lands at 455 s.
    "409-endpoint-busy": Case(scenario(endpoint={"update_seconds": 150}, rollout={"latency_p99_threshold_ms": 300},
                                       health=SLOW_GREEN), "rolled_back", {BLUE: 100}, [10], [0, 300, 455]),
    "log-analytics-regression": Case(
        scenario(rollout={"metrics_source": "log_analytics"},
                 health={GREEN: [{"from": "PT0S", "error_rate": 0.002, "latency_p99_ms": 140},
                                 {"from": "PT12M", "error_rate": 0.08}]}),
        "rolled_back", {BLUE: 100}, [10, 50], [0, 300, 600, 780]),
    "changed-outside-the-rollout": Case(scenario(changes=[{"at": "PT7M", "traffic": {BLUE: 70, GREEN: 30}}]), "failed",
                                        {BLUE: 70, GREEN: 30}, [10, 50], [0, 300, 420]),
    "operator-promotes": Case(scenario(controls=[{"at": "PT2M", "action": "promote", "reason": "looks good"}]),
                              "promoted", {GREEN: 100}, [], [0, 120]),
    "mirror-traffic-dropped": Case(
        scenario(endpoint={"name": "fraud-detection-endpoint",
                           "deployments": {BLUE: {"traffic": 100}, GREEN: {"traffic": 0, "mirror_traffic": 20}}}),
        "promoted", {GREEN: 100}, [10, 50, 100], [0, 300, 600]),
    "mixed-case-names": Case(parse_scenario(MIXED_CASE, EXAMPLES), "promoted", {GREEN: 100}, [25, 100], [0, 120]),
    # Scenario faults become the HTTP errors Azure answers, and the adapters translate them back.
    "endpoint-not-found": Case(scenario(faults=[{"operation": "get_endpoint", "error": "not_found"}]), "failed",
                               {}, [], [], same_messages=False, sdk_says="endpoint 'fraud-detection-endpoint' not found"),
    "deployments-unreadable": Case(scenario(faults=[{"operation": "list_deployments", "error": "service", "times": 1}]),
                                   "failed", {}, [], [], same_messages=False,
                                   sdk_says="listing the deployments of endpoint 'fraud-detection-endpoint'"),
    "metrics-forbidden": Case(scenario(faults=[{"operation": "metrics", "error": "permission", "from": "PT2M"}]),
                              "rolled_back", {BLUE: 100}, [], [0, 240], same_messages=False,
                              sdk_says="refused (403 AuthorizationFailed"),
    "metrics-throttled-long": Case(scenario(faults=[{"operation": "metrics", "error": "throttled", "retry_after": 30,
                                                     "from": "PT2M", "times": 1}]),
                                   "promoted", {GREEN: 100}, [10, 50, 100], [0, 300, 600], same_messages=False,
                                   sdk_says="throttled (429"),
    "read-conflict-retried": Case(scenario(faults=[{"operation": "get_endpoint", "error": "conflict", "from": "PT4M",
                                                    "times": 2}]),
                                  # the step's write reads first (its drift check): 409 at 300 s, and the
                                  # activity's re-read of the failed write takes the second fault; 305 s lands
                                  "promoted", {GREEN: 100}, [10, 50, 100], [0, 305, 605], same_checks=False),
}


def through_sdks(fake: ScenarioAzure, chosen: Scenario) -> tuple[SimulationResult, SimulatedBackend]:
    """Run ``chosen`` through the real SDK clients against ``fake`` serving its world on the simulation's clock."""
    clock = VirtualClock(SIMULATION_START)
    world = fake.load(chosen, clock.now)
    result = run_simulation(chosen, backend=scenario_backend(fake, chosen, StaticCredential()), clock=clock)
    return result, world


def fresh(chosen: Scenario) -> Scenario:
    """A copy to run in memory: the simulated world counts a fault's ``times`` down in the scenario's own
    ``Fault`` objects (``build_workspace`` does not copy them), so a scenario runs the same only once."""
    return replace(chosen, faults=tuple(replace(fault) for fault in chosen.faults))


def seconds(moment: datetime) -> float:
    return (moment - SIMULATION_START).total_seconds()


def world_changes(world: SimulatedBackend, chosen: Scenario) -> list[tuple[float, dict[str, int]]]:
    """(seconds, live traffic) of every change the world's endpoint recorded, set-up excluded."""
    return [(seconds(c.at), dict(c.traffic)) for c in world.workspace.endpoint(chosen.endpoint_name).changes
            if c.by != "setup"]


def timeline_changes(result: SimulationResult) -> list[tuple[float, dict[str, int]]]:
    """(seconds, traffic) of the in-memory run's traffic events (the simulated endpoint's own record)."""
    return [(e["at_seconds"], e["traffic"]) for e in result.timeline if e["kind"] == "traffic"]


def checks(result: SimulationResult) -> list[dict[str, Any]]:
    return [e for e in result.timeline if e["kind"] == "health_check"]


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_the_same_rollout_in_memory_and_through_the_sdks(case: Case, scenario_azure: ScenarioAzure) -> None:
    memory = run_simulation(fresh(case.scenario))
    sdk, world = through_sdks(scenario_azure, case.scenario)
    for result in (memory, sdk):
        summary = result.to_json()
        assert (summary["outcome"], summary["final_traffic"], summary["steps_completed"]) == (
            case.outcome, case.final, case.steps), summary["reason"]
    assert sdk.elapsed_seconds == memory.elapsed_seconds
    assert [at for at, _ in timeline_changes(memory)] == case.changes
    assert world_changes(world, case.scenario) == timeline_changes(memory)
    assert [(h["at"], h["kind"], h["traffic"]) for h in sdk.record["history"]] == [
        (h["at"], h["kind"], h["traffic"]) for h in memory.record["history"]]
    assert [(c["at_seconds"], c["verdict"]) for c in checks(sdk)] == [(c["at_seconds"], c["verdict"]) for c in checks(memory)]
    if case.same_messages:
        assert sdk.record["reason"] == memory.record["reason"]
        assert sdk.record["history"] == memory.record["history"]
    else:   # the same failure, in the adapters' words
        assert sdk.record["reason"].split(": ")[0] == memory.record["reason"].split(": ")[0]
        assert case.sdk_says in json.dumps(sdk.to_json())
    if case.same_checks:
        assert [c["new"] for c in checks(sdk)] == [c["new"] for c in checks(memory)]
        assert [c["old"] for c in checks(sdk)] == [c["old"] for c in checks(memory)]
    if case.same_checks and case.same_messages:
        assert checks(sdk) == checks(memory)
        assert sdk.record == memory.record
    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in scenario_azure.calls() if
               not r.path.startswith("/metadata/"))


def test_platform_checks_read_the_virtual_minutes_of_each_window(scenario_azure: ScenarioAzure) -> None:
    chosen = replace(CASES["healthy-promotion"].scenario, seed=None)     # exact counts: the arithmetic shows
    result, _ = through_sdks(scenario_azure, chosen)
    queries = scenario_azure.calls("GET", "/providers/microsoft.insights/metrics$")
    assert len(queries) == 1 + len(checks(result)) == 16      # pre-flight's baseline of blue-v1, then 15 checks
    assert queries[0].path == f"{chosen.workspace.endpoint_id(chosen.endpoint_name)}/providers/Microsoft.Insights/metrics"
    # the baseline: the observation window before the start; then each check reads its increment
    assert [q.query["timespan"] for q in queries[:3]] == [
        "2025-12-31T23:55:00Z/2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z/2026-01-01T00:01:00Z", "2026-01-01T00:01:00Z/2026-01-01T00:02:00Z"]
    assert queries[6].query["timespan"] == "2026-01-01T00:05:00Z/2026-01-01T00:06:00Z"   # step 2 from 300 s
    # 10 % of 1200 a minute, 0.2 % errors, p99 140 ms: the adapter summed the per-minute series
    assert checks(result)[0]["new"] == {"requests": 120, "errors": 0, "latency_p99_ms": 140.0}
    assert checks(result)[4]["new"] == {"requests": 120, "errors": 0, "latency_p99_ms": 140.0}   # minute 5 alone
    assert result.record["baseline"]["old"] == {"requests": 6000, "errors": 6, "latency_p99_ms": 120.0}


def test_log_analytics_checks_send_the_exact_virtual_window(scenario_azure: ScenarioAzure) -> None:
    chosen = replace(CASES["409-retried-log-analytics"].scenario, seed=None)
    result, _ = through_sdks(scenario_azure, chosen)
    queries = scenario_azure.calls("POST", "/query$")
    assert [q.path for q in queries] == [f"/v1/workspaces/{LA_WORKSPACE}/query"] * (1 + len(checks(result)))
    first = queries[1].body           # queries[0]: pre-flight's baseline of blue-v1
    assert "TimeGenerated >= datetime(2026-01-01T00:00:05.000000Z) and TimeGenerated < datetime(2026-01-01T00:01:05" \
           in first["query"]
    assert 'EndpointName =~ "fraud-detection-endpoint"' in first["query"]
    assert first["timespan"].startswith("2026-01-01T00:00:05")
    assert checks(result)[0]["new"] == {"requests": 120, "errors": 0, "latency_p99_ms": 140.0}
    assert scenario_azure.calls("GET", "/providers/microsoft.insights/metrics$") == []


def test_the_put_carries_absolute_lower_cased_traffic_and_a_409_is_put_again(scenario_azure: ScenarioAzure) -> None:
    through_sdks(scenario_azure, CASES["mixed-case-names"].scenario)
    puts = scenario_azure.calls("PUT", "/onlineendpoints/fraud-detection$")
    assert [p.body["properties"]["traffic"] for p in puts] == [{"blue-v1": 75, "green-v2": 25}, {"green-v2": 100}]
    assert all(p.body["location"] == "eastus" and p.body["properties"]["authMode"] == "Key" for p in puts)

    _, world = through_sdks(scenario_azure, CASES["409-endpoint-busy"].scenario)
    puts = scenario_azure.calls("PUT", "/onlineendpoints/fraud-detection-endpoint$")
    # step 1, then the rollback: refused three times (409) while the endpoint is busy, then applied
    assert [p.body["properties"]["traffic"] for p in puts] == [
        {"blue-v1": 90, "green-v2": 10}, {"blue-v1": 50, "green-v2": 50}] + [{"blue-v1": 100}] * 4
    assert len(world.workspace.endpoint("fraud-detection-endpoint").changes) == 4   # set-up + 3 applied


def test_mirror_traffic_goes_in_the_put_and_the_world_applies_it(scenario_azure: ScenarioAzure) -> None:
    _, world = through_sdks(scenario_azure, CASES["mirror-traffic-dropped"].scenario)
    [first, *_] = scenario_azure.calls("PUT", "/onlineendpoints/")
    assert first.body["properties"].get("mirrorTraffic", {}) == {}   # the new deployment gets live traffic: no mirror
    changes = world.workspace.endpoint("fraud-detection-endpoint").changes
    assert (dict(changes[0].mirror_traffic), dict(changes[1].mirror_traffic)) == ({GREEN: 20}, {})


def test_a_transient_error_is_retried_inside_the_sdk_not_on_a_durable_timer(scenario_azure: ScenarioAzure) -> None:
    """The one known difference: azure-core retries a 503 at once (``ClientTuning.retry_total``), so the
    step lands at 0 s through the SDKs; in memory the orchestrator waits 5 s on a durable timer."""
    flaky = scenario(faults=[{"operation": "set_traffic", "error": "transient", "times": 1}])
    memory = run_simulation(fresh(flaky))
    sdk, world = through_sdks(scenario_azure, flaky)
    assert memory.outcome == sdk.outcome == "promoted"
    assert [at for at, _ in timeline_changes(memory)] == [5, 305, 605]
    assert [at for at, _ in world_changes(world, flaky)] == [0, 300, 600]
    assert len(scenario_azure.calls("PUT", "/onlineendpoints/")) == 4   # 503, then the same PUT again, then 2 steps


def test_platform_metrics_count_whole_minutes_when_a_step_starts_off_the_minute(scenario_azure: ScenarioAzure) -> None:
    """The first difference: step 1 lands at 5 s (after a 409); its first check, [5 s, 65 s), reads the
    minute [0, 60 s) through Azure Monitor, 5 s of which green-v2 had no traffic."""
    chosen = replace(CASES["409-retried"].scenario, seed=None)
    memory = run_simulation(fresh(chosen))
    sdk, _ = through_sdks(scenario_azure, chosen)
    assert (checks(memory)[0]["new"]["requests"], checks(sdk)[0]["new"]["requests"]) == (120, 110)
    assert scenario_azure.calls("GET", "/metrics$")[1].query["timespan"] == "2026-01-01T00:00:00Z/2026-01-01T00:01:00Z"


def test_a_read_fault_also_fails_a_write_through_the_sdk_and_in_memory(scenario_azure: ScenarioAzure) -> None:
    """azure-ai-ml reads the endpoint before writing it, so a ``get_endpoint`` fault fails ``set_traffic``
    too; the simulated port reads first as well (its read is the drift check), and fails alike."""
    chosen = scenario(faults=[{"operation": "get_endpoint", "error": "permission", "times": 1}])
    memory_world = build_workspace(fresh(chosen), VirtualClock(SIMULATION_START).now).workspace
    in_memory = SimulatedEndpointPort(memory_world)
    with pytest.raises(PermissionDenied):
        in_memory.set_traffic(chosen.endpoint_name, {BLUE: 90, GREEN: 10})
    assert memory_world.endpoint(chosen.endpoint_name).traffic == {BLUE: 100}
    world = scenario_azure.load(chosen, VirtualClock(SIMULATION_START).now)
    port = scenario_backend(scenario_azure, chosen, StaticCredential()).endpoints(None)
    with pytest.raises(PermissionDenied, match="403"):
        port.set_traffic(chosen.endpoint_name, {BLUE: 90, GREEN: 10})
    assert world.workspace.endpoint(chosen.endpoint_name).traffic == {BLUE: 100}


def test_the_world_refuses_what_the_service_refuses_with_arms_error_body(scenario_azure: ScenarioAzure) -> None:
    chosen = CASES["healthy-promotion"].scenario
    clock = VirtualClock(SIMULATION_START)
    world = scenario_azure.load(chosen, clock.now)
    port = scenario_backend(scenario_azure, chosen, StaticCredential()).endpoints(None)
    with pytest.raises(ServiceError, match="traffic must add up to 100"):
        port.set_traffic(chosen.endpoint_name, {BLUE: 50, GREEN: 40})
    with pytest.raises(ServiceError, match="names deployment 'red', which does not exist"):
        port.set_traffic(chosen.endpoint_name, {BLUE: 50, "red": 50})
    assert world.workspace.endpoint(chosen.endpoint_name).traffic == {BLUE: 100}


def _cloud_environment(monkeypatch: pytest.MonkeyPatch, fake: ScenarioAzure) -> None:
    """What a user sets to point the app at a cloud (docs/azure.md), here the scenario-backed fake:
    the workspace, the cloud and its metadata URL, no lag, a service principal for
    ``DefaultAzureCredential``'s ``EnvironmentCredential`` (AD FS tenant, as on Azure Stack Hub), and
    the private CA."""
    ws = DEFAULT_WORKSPACE
    for name, value in {
        "AML_ROLLOUT_SUBSCRIPTION_ID": ws.subscription_id, "AML_ROLLOUT_RESOURCE_GROUP": ws.resource_group,
        "AML_ROLLOUT_WORKSPACE_NAME": ws.workspace_name, "AML_ROLLOUT_CLOUD": SCENARIO_CLOUD,
        "ARM_CLOUD_METADATA_URL": f"{fake.base_url}/metadata/endpoints?api-version=2022-09-01",
        "AML_ROLLOUT_METRICS_LAG_SECONDS": "0", "AML_ROLLOUT_LOG_ANALYTICS_WORKSPACE_ID": LA_WORKSPACE,
        "AZURE_TENANT_ID": ADFS, "AZURE_CLIENT_ID": CLIENT_ID, "AZURE_CLIENT_SECRET": CLIENT_SECRET,
        "REQUESTS_CA_BUNDLE": str(fake.pki.ca_cert), "NO_PROXY": "127.0.0.1,localhost",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "AZURE_TOKEN_CREDENTIALS",
                 "AZURE_REGIONAL_AUTHORITY_NAME", "AZURE_AUTHORITY_HOST", "AML_ROLLOUT_EXTRA_WORKSPACES"):
        monkeypatch.delenv(name, raising=False)


def test_simulate_azure_runs_the_example_through_the_configured_cloud(
        scenario_azure: ScenarioAzure, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _cloud_environment(monkeypatch, scenario_azure)
    path = EXAMPLES / "alert-rollback.yaml"
    clock = VirtualClock(SIMULATION_START)
    world = scenario_azure.load(load_scenario(path), clock.now)
    assert main(["--azure", "--json", str(path)], clock=clock) == 1
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert (result["outcome"], result["final_traffic"], result["steps_completed"]) == ("rolled_back", {BLUE: 100}, [10])
    assert world_changes(world, load_scenario(path)) == timeline_changes(run_simulation(load_scenario(path)))
    assert "--azure: endpoint fraud-detection-endpoint of workspace" in err
    # DefaultAzureCredential got its token from the cloud's authority, as a service principal
    assert scenario_azure.token_requests and {r["client_id"] for r in scenario_azure.token_requests} == {CLIENT_ID}
    assert scenario_azure.token_requests[0]["scope"] == f"{scenario_azure.base_url}/.default"


def test_simulate_azure_needs_the_workspace_setting_and_no_other_workspace(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for name in ("AML_ROLLOUT_SUBSCRIPTION_ID", "AML_ROLLOUT_RESOURCE_GROUP", "AML_ROLLOUT_WORKSPACE_NAME"):
        monkeypatch.delenv(name, raising=False)
    assert main(["--azure", "--real-clock", str(EXAMPLES / "healthy-promotion.yaml")]) == 2
    assert "set AML_ROLLOUT_SUBSCRIPTION_ID" in capsys.readouterr().err
    ws = DEFAULT_WORKSPACE
    for name, value in (("SUBSCRIPTION_ID", ws.subscription_id), ("RESOURCE_GROUP", ws.resource_group),
                        ("WORKSPACE_NAME", ws.workspace_name)):
        monkeypatch.setenv(f"AML_ROLLOUT_{name}", value)
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text((EXAMPLES / "healthy-promotion.yaml").read_text() + "workspace: {subscription_id: s, "
                         "resource_group: rg, workspace_name: mlw-elsewhere}\n")
    assert main(["--azure", "--real-clock", str(elsewhere)]) == 2
    assert "the scenario names workspace 'mlw-elsewhere', the settings 'mlw-local'" in capsys.readouterr().err


def test_simulate_azure_refuses_to_move_a_real_endpoint_on_the_virtual_clock(
        scenario_azure: ScenarioAzure, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _cloud_environment(monkeypatch, scenario_azure)
    path = EXAMPLES / "healthy-promotion.yaml"
    world = scenario_azure.load(load_scenario(path), RealClock().now)
    assert main(["--azure", str(path)]) == 2
    assert "--azure: refusing to change a real endpoint on the virtual clock" in capsys.readouterr().err
    assert scenario_azure.calls() == [] and scenario_azure.token_requests == []     # nothing reached the cloud
    assert [c.by for c in world.workspace.endpoint(load_scenario(path).endpoint_name).changes] == ["setup"]


REAL_CLOCK_ROLLOUT = {
    "endpoint": {"name": "fraud-detection-endpoint"},     # no deployments: --azure reads the cloud's
    "rollout": {"new_deployment": GREEN, "traffic_steps": [10, 50, 100], "observation_window": "PT5M",
                "check_interval": "PT1M"},
    "controls": [{"at": "PT2S", "action": "abort", "reason": "enough"}],
}


def test_simulate_azure_real_clock_acts_on_the_cloud_in_real_time_without_listing_deployments(
        scenario_azure: ScenarioAzure, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    _cloud_environment(monkeypatch, scenario_azure)
    world = scenario_azure.load(fresh(CASES["healthy-promotion"].scenario), RealClock().now)
    path = tmp_path / "real-clock.yaml"
    path.write_text(json.dumps(REAL_CLOCK_ROLLOUT))
    started = datetime.now(world.workspace.endpoint("fraud-detection-endpoint").changes[0].at.tzinfo)
    assert main(["--azure", "--real-clock", "--json", str(path)]) == 1
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert (result["outcome"], result["final_traffic"]) == ("aborted", {BLUE: 100}), err
    changes = world.workspace.endpoint("fraud-detection-endpoint").changes
    assert [dict(c.traffic) for c in changes[1:]] == [{BLUE: 90, GREEN: 10}, {BLUE: 100}]
    assert (changes[-1].at - started).total_seconds() >= 2          # the abort came 2 real seconds in
    assert 2 <= result["elapsed_seconds"] < 30
    assert "waits take their real time" in err


def test_without_azure_a_scenario_must_list_the_deployments() -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_scenario(REAL_CLOCK_ROLLOUT, ROOT)
    assert [p.field for p in refused.value.problems] == ["endpoint.deployments"]
    assert parse_scenario(REAL_CLOCK_ROLLOUT, ROOT, simulated_endpoint=False).deployments == ()


def test_serve_azure_acts_on_the_configured_cloud(scenario_azure: ScenarioAzure, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    """``serve --azure`` as a user runs it (a subprocess, real clock): a rollout's first step and an
    alert's rollback reach the cloud's endpoint through the SDKs, authenticated by DefaultAzureCredential."""
    _cloud_environment(monkeypatch, scenario_azure)
    chosen = fresh(CASES["healthy-promotion"].scenario)
    world = scenario_azure.load(chosen, RealClock().now)
    endpoint = world.workspace.endpoint(chosen.endpoint_name)
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "emulator", "serve", "--azure", "--port", "0", "--key", KEY,
                                "--state", str(tmp_path / "taskhub.sqlite")],   # not the checkout's default file
                               cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=log)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(4)]
        assert lines[0].startswith("aml-rollout serving on http://127.0.0.1:"), (tmp_path / "serve.log").read_text()
        ws = DEFAULT_WORKSPACE
        assert lines[2].split(":", 1)[1].strip() == (
            f"{ws.subscription_id}/{ws.resource_group}/{ws.workspace_name} (AML_ROLLOUT_*), cloud {SCENARIO_CLOUD}")
        assert lines[3].strip().startswith("azure:")
        api = Client(lines[0].split(" on ", 1)[1].split("/api", 1)[0], KEY)
        started = api.post("/api/rollouts", {"endpoint_name": chosen.endpoint_name, "new_deployment": GREEN,
                                             "traffic_steps": [10, 50, 100], "observation_window": "PT5M",
                                             "check_interval": "PT1S"})
        assert started.status == 202, started.body
        api.wait_for(lambda view: view.get("phase") == "observing", endpoint=chosen.endpoint_name)
        assert endpoint.traffic == {BLUE: 90, GREEN: 10}
        fired = json.loads((EXAMPLES / "alerts" / "endpoint-5xx-fired.json").read_text())
        assert api.post("/api/alerts", fired).status == 202
        done = api.wait_for(lambda view: view["runtime_status"] == "Completed", endpoint=chosen.endpoint_name)
        assert (done["outcome"], done["traffic"]) == ("rolled_back", {BLUE: 100})
        assert [dict(c.traffic) for c in endpoint.changes[1:]] == [{BLUE: 90, GREEN: 10}, {BLUE: 100}]
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=15)
        log.close()
    assert process.returncode == 0
    assert {r["client_id"] for r in scenario_azure.token_requests} == {CLIENT_ID}
    assert len(scenario_azure.calls("PUT", "/onlineendpoints/")) == 2


def test_a_step_makes_at_most_6_azure_ml_requests(scenario_azure: ScenarioAzure) -> None:
    """Issue 11: each step's drift check, traffic write and read-back, counted as the fake Azure saw them
    (the metrics queries go to Azure Monitor, not Azure ML)."""
    chosen = replace(CASES["healthy-promotion"].scenario, seed=None)
    result, _ = through_sdks(scenario_azure, chosen)
    assert result.outcome == "promoted"
    ml = [(r.method, r.path.lower().rsplit("/", 1)[-1]) for r in scenario_azure.calls()
          if "/microsoft.machinelearningservices/" in r.path.lower() and not r.path.lower().endswith("/metrics")]
    preflight = [("GET", "fraud-detection-endpoint"), ("GET", "deployments")]
    assert ml[:2] == preflight
    # each step: one GET of the endpoint (the drift check and the write's own read), the workspace (its
    # location, for the PUT), the PUT, the operation polled until done, the endpoint read back
    step = [("GET", "fraud-detection-endpoint"), ("GET", "mlw-local"), ("PUT", "fraud-detection-endpoint")]
    rest = ml[2:]
    steps = []
    while rest:
        assert rest[:3] == step, rest[:8]
        end = rest.index(("GET", "fraud-detection-endpoint"), 3) + 1
        steps.append(rest[:end])
        rest = rest[end:]
    assert len(steps) == 3 and all(len(s) <= 6 for s in steps), [len(s) for s in steps]
