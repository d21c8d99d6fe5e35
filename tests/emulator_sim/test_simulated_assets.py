"""The simulated workspace's asset registry: a deployment names only registered models and environments."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from emulator.clock import VirtualClock
from emulator.scenario import parse_scenario
from emulator.simulate import SIMULATION_START, build_workspace, run_simulation
from emulator.simulated_assets import parse_assets
from emulator.simulated_azure import SimulatedWorkspace
from emulator.simulated_lifecycle import SimulatedLifecycle
from rollout.deployment_spec import parse_deployment_spec
from rollout.errors import InvalidRequest, ServiceError
from rollout.model import DeploymentState, WorkspaceRef

ROOT = Path(__file__).parent.parent.parent
WS = WorkspaceRef("s", "r", "w")
REGISTERED = {"models": ["azureml:fraud-model:1", "azureml:fraud-model:2"], "environments": ["azureml:env:1"]}


def lifecycle() -> SimulatedLifecycle:
    ws = SimulatedWorkspace(WS, lambda: datetime(2026, 1, 1, tzinfo=UTC))
    ws.add_endpoint("ep", [DeploymentState("blue", "Succeeded", 1, "Standard_DS3_v2")], {"blue": 100})
    life = SimulatedLifecycle(ws)
    life.assets, problems = parse_assets(REGISTERED)
    assert problems == []
    return life


def spec(**change: Any) -> Any:
    return parse_deployment_spec({"model": "azureml:fraud-model:2", "environment": "azureml:env:1",
                                  "instance_type": "Standard_DS3_v2", "instance_count": 1, **change})


@pytest.mark.parametrize("change, says", [
    pytest.param({"model": "azureml:fraud-model:3"}, "(ModelNotFound: Model azureml:fraud-model:3 does not exist in "
                 "workspace w (registered versions: 1, 2).)", id="unknown-model-version"),
    pytest.param({"model": "azureml:churn-model:1"}, "(ModelNotFound: Model container with name: churn-model not "
                 "found.)", id="unknown-model"),
    pytest.param({"environment": "azureml:env:2"}, "(EnvironmentNotFound: Environment azureml:env:2 does not exist",
                 id="unknown-environment-version"),
    pytest.param({"model": "azureml:fraud-model@champion"}, "Asset fraud-model with version label champion does not "
                 "exist in workspace.", id="a-label-other-than-latest"),
    pytest.param({"model": "azureml:churn-model@latest"}, "Asset churn-model does not exist in workspace w.",
                 id="latest-of-an-unknown-model"),
])
def test_a_deployment_naming_what_the_workspace_lacks_is_refused(change: dict[str, str], says: str) -> None:
    life = lifecycle()
    with pytest.raises(ServiceError) as refused:
        life.begin_create_deployment("ep", "green", spec(**change))
    assert says in str(refused.value)
    assert life.writes == [] and "green" not in life.workspace.endpoint("ep").deployments


@pytest.mark.parametrize("change, model", [
    pytest.param({}, "fraud-model/versions/2", id="a-registered-version"),
    pytest.param({"model": "azureml:fraud-model@latest"}, "fraud-model/versions/2", id="latest-is-the-last-registered"),
    pytest.param({"model": "azureml:FRAUD-MODEL:1"}, "FRAUD-MODEL/versions/1", id="names-in-any-case"),
    pytest.param({"model": "azureml://registries/shared/models/fraud-model/versions/9"},
                 "azureml://registries/shared/models/fraud-model/versions/9", id="a-registry-model-is-not-the-workspace's"),
    pytest.param({"environment": {"image": "mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest"}},
                 "fraud-model/versions/2", id="an-inline-environment"),
])
def test_a_deployment_naming_registered_assets_is_created(change: dict[str, Any], model: str) -> None:
    life = lifecycle()
    assert life.begin_create_deployment("ep", "green", spec(**change)).started
    observed = life.read_deployment("ep", "green")
    assert observed is not None and observed.model.endswith(model)


@pytest.mark.parametrize("assets, field", [
    pytest.param([], "assets", id="not-a-mapping"),
    pytest.param({"models": "azureml:m:1"}, "assets.models", id="models-not-a-list"),
    pytest.param({"models": ["azureml:m@latest"]}, "assets.models[0]", id="a-label-is-not-a-registration"),
    pytest.param({"environments": ["./env"]}, "assets.environments[0]", id="a-local-path"),
    pytest.param({"codes": []}, "assets.codes", id="an-unknown-kind"),
])
def test_a_bad_assets_section_names_the_field(assets: Any, field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_scenario({"endpoint": {"name": "ep", "deployments": {"blue": {"traffic": 100}}}, "assets": assets},
                       ROOT / "examples", require_rollout=False)
    assert field in [problem.field for problem in caught.value.problems]


def scenario(model: str, **top: Any) -> Any:
    return parse_scenario({
        "seed": None,
        "endpoint": {"name": "fraud-detection-endpoint",
                     "deployments": {"blue-v1": {"traffic": 100, "instance_count": 2, "instance_type": "Standard_DS3_v2"}}},
        "rollout": {"new_deployment": "green-v2", "traffic_steps": [50, 100], "observation_window": "PT5M",
                    "deployment": {"model": model, "environment": "azureml:fraud-env:3",
                                   "instance_type": "Standard_DS3_v2", "instance_count": 1}},
        "load": {"requests_per_minute": 1200}, **top}, ROOT / "examples")


def test_a_rollout_naming_an_unregistered_model_ends_failed_saying_which_and_where() -> None:
    chosen = scenario("azureml:fraud-model:3", assets={"models": ["azureml:fraud-model:2"],
                                                       "environments": ["azureml:fraud-env:3"]})
    clock = VirtualClock(SIMULATION_START)
    backend = build_workspace(chosen, clock.now)
    result = run_simulation(chosen, backend, clock)
    assert result.outcome == "failed"
    assert "Model azureml:fraud-model:3 does not exist in workspace mlw-local" in result.record["reason"]
    assert backend.lifecycle(None).writes == [] and backend.workspace.endpoint(chosen.endpoint_name).traffic == {
        "blue-v1": 100}


def test_without_an_assets_section_the_workspace_holds_what_the_rollout_names() -> None:
    chosen = scenario("azureml:fraud-model@latest")
    assert chosen.lifecycle is not None and chosen.lifecycle.assets is not None
    assert chosen.lifecycle.assets.versions == {"environment": {"fraud-env": ("3",)}}   # a label names no version
    result = run_simulation(scenario("azureml:fraud-model:7"))
    assert result.outcome == "promoted"
