"""The lifecycle activities, run as registered functions over the simulated backend: idempotent starts, polls, logs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Callable

import azure.durable_functions as df
import pytest

from activities.lifecycle import blueprint
from emulator.simulated_azure import SimulatedBackend, SimulatedWorkspace, SyntheticMetrics
from emulator.worker import registered_functions
from rollout.model import DeploymentState, WorkspaceRef

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WS = WorkspaceRef("s", "r", "w")
SPEC = {"model": "azureml:fraud:2", "environment": "azureml:env:1", "instance_type": "Standard_DS3_v2"}
BASE = {"endpoint_name": "ep", "workspace": None}


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def world() -> Iterator[tuple[SimulatedBackend, Clock]]:
    clock = Clock()
    workspace = SimulatedWorkspace(WS, clock)
    workspace.add_endpoint("ep", [DeploymentState("blue", "Succeeded", 2, "Standard_DS3_v2")], {"blue": 100})
    backend = SimulatedBackend(workspace, SyntheticMetrics(workspace, 100, {}))
    yield backend, clock


@pytest.fixture
def run(world: tuple[SimulatedBackend, Clock]) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """Call a lifecycle activity as the worker would: registered in an app, over the world's backend."""
    app = df.DFApp()
    app.register_functions(blueprint(lambda: world[0]))
    functions = {f.get_function_name(): f.get_user_function() for f in registered_functions(app)}
    return lambda name, payload: functions[name]({**BASE, **payload})


def test_create_start_is_idempotent(world, run) -> None:
    backend, _ = world
    first = run("create_deployment_start", {"deployment_name": "green", "deployment": SPEC})
    again = run("create_deployment_start", {"deployment_name": "green", "deployment": SPEC})
    assert (first["ok"], first["started"], again["ok"], again["started"]) == (True, True, True, False)
    assert [w[0] for w in backend.lifecycle(None).writes] == ["create"]


def test_poll_of_a_failed_creation_carries_azures_error_and_both_logs(world, run) -> None:
    backend, clock = world
    backend.lifecycle(None).failures["green"] = "crash_loop"
    started = run("create_deployment_start", {"deployment_name": "green", "deployment": SPEC})
    clock.at += timedelta(minutes=12)
    polled = run("operation_poll", {"kind": "create", "deployment_name": "green",
                                    "operation_url": started["operation_url"], "log_lines": 100})
    assert polled["observed"]["state"] == "Failed" and polled["observed"]["error_code"] == "ResourceNotReady"
    assert len(polled["logs"]["inference-server"]) == 100
    assert any("FileNotFoundError" in line for line in polled["logs"]["inference-server"])
    assert polled["logs"]["storage-initializer"][-1] == "Model download completed"


def test_scale_start_twice_scales_once(world, run) -> None:
    backend, clock = world
    assert run("scale_start", {"deployment_name": "blue", "instance_count": 4})["started"]
    in_progress = run("scale_start", {"deployment_name": "blue", "instance_count": 4})
    assert (in_progress["ok"], in_progress["error"]["kind"], in_progress["error"]["retryable"]) == (
        False, "UpdateConflict", True)  # Azure answers 409 while the deployment updates
    clock.at += timedelta(minutes=4)
    assert not run("scale_start", {"deployment_name": "blue", "instance_count": 4})["started"]
    assert [w[0] for w in backend.lifecycle(None).writes] == ["scale"]


def test_delete_start_refuses_a_deployment_with_traffic(world, run) -> None:
    backend, _ = world
    refused = run("delete_start", {"deployment_name": "blue"})
    assert refused["ok"] is False and "100% of the traffic" in refused["error"]["message"]
    assert backend.lifecycle(None).writes == []


def test_autoscale_apply_and_remove(world, run) -> None:
    backend, _ = world
    applied = run("autoscale_apply", {"deployment_name": "blue", "autoscale": True, "instance_count": 2})
    run("autoscale_apply", {"deployment_name": "blue", "autoscale": True, "instance_count": 2})
    assert applied["ok"] and applied["capacity"] == {"minimum": "1", "maximum": "10", "default": "2"}
    settings = backend.autoscale(None).settings
    assert list(settings) == ["aml-rollout-ep-blue"]
    assert settings["aml-rollout-ep-blue"]["properties"]["targetResourceUri"] == f"{WS.endpoint_id('ep')}/deployments/blue"
    assert run("autoscale_remove", {"deployment_name": "blue"})["removed"] is True
    assert run("autoscale_remove", {"deployment_name": "blue"})["removed"] is False


def test_inspect_reports_quota_for_the_instance_type(world, run) -> None:
    found = run("lifecycle_inspect", {"new_deployment": "green", "instance_type": "Standard_DS3_v2"})
    assert found["endpoint"]["state"] == "Succeeded" and found["new_status"]["state"] == "NotFound"
    assert found["vm_size"] == {"name": "Standard_DS3_v2", "family": "standardDSv2Family", "vcpus": 4}
    family = next(u for u in found["usages"] if u["name"].startswith("Standard DSv2"))
    assert family == {"name": "Standard DSv2 Family Cluster Dedicated vCPUs", "current": 12, "limit": 48}


def test_spec_check(world, run) -> None:
    run("create_deployment_start", {"deployment_name": "green", "deployment": SPEC})
    same = run("spec_check", {"deployment_name": "green", "deployment": SPEC})
    other = run("spec_check", {"deployment_name": "green", "deployment": {**SPEC, "model": "azureml:fraud:3"}})
    scenario_made = run("spec_check", {"deployment_name": "blue", "deployment": SPEC})
    assert (same["exists"], same["differences"]) == (True, [])
    assert [d.split(":")[0] for d in other["differences"]] == ["model"]
    assert scenario_made["differences"]
