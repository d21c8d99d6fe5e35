"""infra/hooks/postdeploy.sh run against a hand-written fake ``az`` on PATH.

The fake answers the way the Azure CLI does for the commands the hook uses (``--query`` over the
key listing, ``--output none`` printing nothing) and records every call, so the tests see what the
hook asks Azure to do, and that a key value never reaches its output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.templates import ROOT, parse

HOOK = ROOT / "infra" / "hooks" / "postdeploy.sh"
KEY_VALUE = "k3y-VALUE-that-must-never-be-printed"

FAKE_AZ = r'''#!{python}
"""Fake az: records argv, answers like the Azure CLI for the hook's commands."""
import json, os, sys
args = sys.argv[1:]
state_path = os.environ["FAKE_AZ_STATE"]
state = json.load(open(state_path))
state["calls"].append(args)
def opt(name):
    return args[args.index(name) + 1] if name in args else None
out = None
if args[:4] == ["functionapp", "function", "keys", "list"]:
    keys = {{name: "{key}" for name in state["keys"]}}
    query = opt("--query")
    out = keys if query is None else str(query == "contains(keys(@), 'azuremonitor')" and "azuremonitor" in keys).lower()
elif args[:4] == ["functionapp", "function", "keys", "set"]:
    state["keys"].append(opt("--key-name"))
    out = {{"name": opt("--key-name"), "value": "{key}"}}
elif args[:3] == ["deployment", "group", "create"]:
    out = {{"properties": {{"provisioningState": "Succeeded"}}}}
json.dump(state, open(state_path, "w"))
fmt = opt("--output") or "json"
if out is not None and fmt != "none":
    print(out if fmt == "tsv" else json.dumps(out))
'''

ENV = {
    "AZURE_ENV_NAME": "dev", "AZURE_RESOURCE_GROUP": "rg-dev", "AZURE_FUNCTION_NAME": "func-aml-rollout-abc",
    "AZURE_FUNCTION_URL": "https://func-aml-rollout-abc.azurewebsites.net", "ACTION_GROUP_NAME": "ag-aml-rollout-abc",
    "AML_SUBSCRIPTION_ID": "00000000-1111-2222-3333-444444444444", "AML_RESOURCE_GROUP": "rg-ml",
    "AML_WORKSPACE_NAME": "mlw-1", "LOG_ANALYTICS_WORKSPACE_ID": "/subscriptions/s/resourceGroups/rg-dev/providers/"
    "Microsoft.OperationalInsights/workspaces/log-abc",
}


def run_hook(tmp_path: Path, existing_keys: list[str], **env: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    az = bin_dir / "az"
    az.write_text(FAKE_AZ.format(python=sys.executable, key=KEY_VALUE))
    az.chmod(0o755)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"calls": [], "keys": existing_keys}))
    full_env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_AZ_STATE": str(state), **ENV, **env}
    done = subprocess.run(["sh", str(HOOK)], env=full_env, capture_output=True, text=True, timeout=60)
    return done, json.loads(state.read_text())


def _deployment(calls: list[list[str]]) -> tuple[list[str], dict[str, str]]:
    create, = [c for c in calls if c[:3] == ["deployment", "group", "create"]]
    at = create.index("--parameters")
    params = {}
    for item in create[at + 1:]:
        if item.startswith("--"):
            break
        name, _, value = item.partition("=")
        params[name] = value
    return create, params


def test_function_key_mode_creates_the_alert_key_once_and_deploys_the_alerts(tmp_path: Path) -> None:
    done, state = run_hook(tmp_path, existing_keys=["default"], AML_ROLLOUT_ALERT_ENDPOINTS="ep-a,ep-b")
    assert done.returncode == 0, done.stderr
    calls = state["calls"]
    assert calls[0][:4] == ["functionapp", "function", "keys", "list"]
    assert calls[1][:4] == ["functionapp", "function", "keys", "set"]
    assert calls[1][calls[1].index("--function-name") + 1] == "alert_webhook"
    assert calls[1][calls[1].index("--key-name") + 1] == "azuremonitor"
    assert "--key-value" not in calls[1] and calls[1][calls[1].index("--output") + 1] == "none"
    create, params = _deployment(calls)
    assert create[create.index("--resource-group") + 1] == "rg-dev"
    assert Path(create[create.index("--template-file") + 1]) == ROOT / "infra" / "alerts.bicep"
    assert params["webhookAuth"] == "functionKey" and params["endpointNames"] == "ep-a,ep-b"
    assert params["trafficLogWorkspaceId"] == ""
    assert KEY_VALUE not in done.stdout + done.stderr
    assert not any(KEY_VALUE in arg for call in calls for arg in call)


def test_an_existing_alert_key_is_kept(tmp_path: Path) -> None:
    done, state = run_hook(tmp_path, existing_keys=["default", "azuremonitor"])
    assert done.returncode == 0, done.stderr
    assert not [c for c in state["calls"] if c[:4] == ["functionapp", "function", "keys", "set"]]
    assert KEY_VALUE not in done.stdout + done.stderr


def test_every_parameter_the_hook_passes_is_declared_by_alerts_bicep(tmp_path: Path) -> None:
    _, state = run_hook(tmp_path, existing_keys=[])
    _, params = _deployment(state["calls"])
    assert set(params) <= set(parse("alerts.bicep")["parameters"])
    required = {name for name, p in parse("alerts.bicep")["parameters"].items() if p.get("default") is None}
    assert required <= set(params)


def test_traffic_log_flag_passes_the_log_analytics_workspace(tmp_path: Path) -> None:
    _, state = run_hook(tmp_path, existing_keys=["azuremonitor"], AML_ROLLOUT_TRAFFIC_LOG="true")
    _, params = _deployment(state["calls"])
    assert params["trafficLogWorkspaceId"] == ENV["LOG_ANALYTICS_WORKSPACE_ID"]


def test_entra_mode_touches_no_key_and_needs_the_app_registration(tmp_path: Path) -> None:
    done, state = run_hook(tmp_path, existing_keys=[], ALERT_WEBHOOK_AUTH="entra")
    assert done.returncode == 1 and "ENTRA_APP_CLIENT_ID" in done.stderr
    assert not state["calls"]
    done, state = run_hook(tmp_path, existing_keys=[], ALERT_WEBHOOK_AUTH="entra", ENTRA_APP_CLIENT_ID="app-1",
                           ENTRA_APP_OBJECT_ID="obj-1", ENTRA_APP_IDENTIFIER_URI="api://aml-rollout-alerts")
    assert done.returncode == 0, done.stderr
    assert [c[:3] for c in state["calls"]] == [["deployment", "group", "create"]]
    _, params = _deployment(state["calls"])
    assert params["webhookAuth"] == "entra" and params["entraAppObjectId"] == "obj-1"


@pytest.mark.parametrize("missing", ["AZURE_FUNCTION_NAME", "AML_WORKSPACE_NAME"])
def test_a_missing_environment_value_stops_before_any_call(tmp_path: Path, missing: str) -> None:
    done, state = run_hook(tmp_path, existing_keys=[], **{missing: ""})
    assert done.returncode == 1 and missing in done.stderr and not state["calls"]


def test_an_unknown_auth_mode_is_refused(tmp_path: Path) -> None:
    done, state = run_hook(tmp_path, existing_keys=[], ALERT_WEBHOOK_AUTH="basic")
    assert done.returncode == 1 and "functionKey or entra" in done.stderr and not state["calls"]
