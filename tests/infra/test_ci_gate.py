"""The example CI pipeline against ``serve``: the workflow's rollout step, run as GitHub would run it.

The step's ``run`` script is taken from .github/workflows/rollout.yml and executed with bash, its
``env`` filled the way GitHub evaluates ``${{ vars.X }}`` / ``${{ inputs.X }}``, the function key in
``AML_ROLLOUT_FUNCTION_KEY`` (what the previous step exports), against ``./dev serve``'s server
(``LocalServer``, real clock). One change for time: the step polls every 30 s; here every 0.2 s.
What cannot run here: actions/checkout, setup-python, azure/login and reading the key with az.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.scenario import parse_scenario
from emulator.serve import LocalServer
from tests.http.helpers import ENDPOINT, FIXTURES, KEY, NEW, OLD, SCENARIO, Client, alert
from tests.infra.templates import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "rollout.yml"
GATE = ROOT / "examples" / "ci" / "rollout_gate.py"
FIRED = "ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer(parse_scenario(SCENARIO, FIXTURES, require_rollout=False), key=KEY).start()
    yield local
    local.stop()


def rollout_step() -> dict[str, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["rollout"]["steps"]
    step, = [s for s in steps if "rollout_gate.py" in s.get("run", "")]
    return step


def github_expression(text: str, context: dict[str, dict[str, str]]) -> str:
    """``${{ vars.X }}`` / ``${{ inputs.X }}`` replaced as GitHub Actions does (unknown names: empty)."""
    return re.sub(r"\$\{\{\s*(\w+)\.(\w+)\s*\}\}", lambda m: context.get(m[1], {}).get(m[2], ""), text)


def start_step(url: str, key: str = KEY, endpoint: str = ENDPOINT, deployment: str = NEW) -> subprocess.Popen[str]:
    step = rollout_step()
    context = {"vars": {"AML_ROLLOUT_URL": url}, "inputs": {"endpoint": endpoint, "deployment": deployment}}
    env = {name: github_expression(str(value), context) for name, value in step["env"].items()}
    script = step["run"].replace("--poll-seconds 30", "--poll-seconds 0.2")
    assert script != step["run"], "the step no longer polls every 30 s: update this test"
    bin_dir = Path(sys.executable).parent          # `python` = the runner's Python (setup-python)
    full_env = {**os.environ, **env, "AML_ROLLOUT_FUNCTION_KEY": key, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.Popen(["bash", "-e", "-c", script], cwd=ROOT, env=full_env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def wait_for_rollout(api: Client) -> None:
    deadline = time.monotonic() + 15
    while api.get(f"/api/rollouts/{ENDPOINT}").status != 200 or api.status()["phase"] in ("pending", "pre_flight"):
        assert time.monotonic() < deadline, "the pipeline step did not start the rollout"
        time.sleep(0.05)


def test_step_passes_when_the_rollout_is_promoted(server: LocalServer) -> None:
    api = Client(server.url)
    process = start_step(server.url)
    wait_for_rollout(api)
    assert api.post(f"/api/rollouts/{ENDPOINT}/promote", {"reason": "checked by hand"}).status == 202
    code, out, err = finish(process)
    assert code == 0, out + err
    assert "outcome: promoted" in out and KEY not in out + err
    assert server.endpoint.traffic == {NEW: 100}


def test_step_fails_when_an_alert_rolls_the_rollout_back(server: LocalServer) -> None:
    api = Client(server.url)
    process = start_step(server.url)
    wait_for_rollout(api)
    assert api.post("/api/alerts", alert(FIRED)).status == 202
    code, out, err = finish(process)
    assert code == 1, out + err
    assert "outcome: rolled_back" in out
    assert server.endpoint.traffic == {OLD: 100}


def test_step_fails_when_the_rollout_is_aborted(server: LocalServer) -> None:
    api = Client(server.url)
    process = start_step(server.url)
    wait_for_rollout(api)
    assert api.post(f"/api/rollouts/{ENDPOINT}/abort").status == 202
    code, out, _ = finish(process)
    assert code == 1 and "outcome: aborted" in out


def test_step_fails_when_another_rollout_runs_on_the_endpoint(server: LocalServer) -> None:
    api = Client(server.url)
    first = start_step(server.url)
    wait_for_rollout(api)
    code, out, err = finish(start_step(server.url))
    assert code == 1 and "refused the rollout (409)" in err
    api.post(f"/api/rollouts/{ENDPOINT}/abort")
    finish(first)


def test_step_fails_on_a_bad_request_naming_the_field(server: LocalServer) -> None:
    code, _, err = finish(start_step(server.url, deployment="no such deployment!"))
    assert code == 1 and "(400)" in err and "new_deployment" in err


def test_step_stops_with_3_when_the_key_is_refused(server: LocalServer) -> None:
    code, out, err = finish(start_step(server.url, key="wrong-key"))
    assert code == 3 and "401" in err and "wrong-key" not in out + err


def test_a_full_rollout_through_the_script_ends_promoted(server: LocalServer, tmp_path: Path) -> None:
    env = {**os.environ, "AML_ROLLOUT_FUNCTION_KEY": KEY}
    done = subprocess.run([sys.executable, str(GATE), "--app-url", server.url,
                           "--request", str(ROOT / "examples" / "ci" / "rollout-request.json"),
                           "--set", f"endpoint_name={ENDPOINT}", "--set", f"new_deployment={NEW}",
                           "--set", "traffic_steps=[50, 100]", "--set", "observation_window=PT2S",
                           "--set", "check_interval=PT1S", "--set", "min_requests=1", "--poll-seconds", "0.2"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "outcome: promoted" in done.stdout and "phase" in done.stdout


def test_the_script_refuses_to_run_without_a_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "AML_ROLLOUT_FUNCTION_KEY"}
    done = subprocess.run([sys.executable, str(GATE), "--app-url", "http://127.0.0.1:9", "--request",
                           str(ROOT / "examples" / "ci" / "rollout-request.json")],
                          env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "AML_ROLLOUT_FUNCTION_KEY" in done.stderr


def test_an_unreachable_app_is_exit_3() -> None:
    env = {**os.environ, "AML_ROLLOUT_FUNCTION_KEY": KEY}
    done = subprocess.run([sys.executable, str(GATE), "--app-url", "http://127.0.0.1:9", "--request",
                           str(ROOT / "examples" / "ci" / "rollout-request.json")],
                          env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 3 and "POST http://127.0.0.1:9/api/rollouts" in done.stderr
