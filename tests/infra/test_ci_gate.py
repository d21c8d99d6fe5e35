"""The example CI pipeline against ``serve``: the workflow's rollout step, run as GitHub would run it.

The step's ``run`` script is taken from .github/workflows/rollout.yml and executed with bash, its
``env`` filled the way GitHub evaluates ``${{ vars.X }}`` / ``${{ inputs.X }}``, the function key in
``AML_ROLLOUT_KEY`` (what the previous step exports), against ``./dev serve``'s server
(``LocalServer``, real clock), with the ``aml-rollout`` that ./dev installed from this repository on
PATH (the workflow's install step does ``pip install .``). One change for time: the step polls every
30 s; here every 0.2 s. What cannot run here: actions/checkout, setup-python, the install itself,
azure/login and reading the key with az; instead the install's premise is checked: the project's
dependencies cover every third-party module the client imports.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
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
FIRED = "ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer(parse_scenario(SCENARIO, FIXTURES, require_rollout=False), key=KEY).start()
    yield local
    local.stop()


def rollout_step() -> dict[str, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["rollout"]["steps"]
    step, = [s for s in steps if "aml-rollout start" in s.get("run", "")]
    return step


def github_expression(text: str, context: dict[str, dict[str, str]]) -> str:
    """``${{ vars.X }}`` / ``${{ inputs.X }}`` replaced as GitHub Actions does (unknown names: empty)."""
    return re.sub(r"\$\{\{\s*(\w+)\.(\w+)\s*\}\}", lambda m: context.get(m[1], {}).get(m[2], ""), text)


def start_step(url: str, key: str = KEY, endpoint: str = ENDPOINT, deployment: str = NEW) -> subprocess.Popen[str]:
    step = rollout_step()
    context = {"vars": {"AML_ROLLOUT_URL": url}, "inputs": {"endpoint": endpoint, "deployment": deployment}}
    env = {name: github_expression(str(value), context) for name, value in step["env"].items()}
    script = step["run"].replace("--interval 30", "--interval 0.2")
    assert script != step["run"], "the step no longer polls every 30 s: update this test"
    bin_dir = Path(sys.executable).parent          # .venv/bin: python and the aml-rollout ./dev installed
    assert (bin_dir / "aml-rollout").exists(), "run through ./dev, which installs the aml-rollout script"
    outside = {name: value for name, value in os.environ.items() if not name.startswith("AML_ROLLOUT_")}
    full_env = {**outside, **env, "AML_ROLLOUT_KEY": key, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
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


def test_the_workflow_installs_the_client_from_the_repository_before_the_rollout_step() -> None:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["rollout"]["steps"]
    runs = [step.get("run", "") for step in steps]
    install = next(i for i, run in enumerate(runs) if re.search(r"pip install\b.* \.$", run.strip()))
    assert install < runs.index(rollout_step()["run"])


IMPORTS = """
import importlib.metadata, json, sys
before = set(sys.modules)
import cli.main, report                     # report: what `aml-rollout report` imports on use
ours = {"cli", "report", "rollout", "adapters"}
names = {m.split(".")[0] for m in set(sys.modules) - before} - ours - set(sys.stdlib_module_names)
dists = importlib.metadata.packages_distributions()
print(json.dumps(sorted({d for m in names for d in dists.get(m, [])})))
"""


def _pins(*files: str) -> dict[str, str]:
    pins = {}
    for name in files:
        for line in (ROOT / name).read_text().splitlines():
            match = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==(\S+)", line)
            if match:
                pins[match[1].lower()] = match[2]
    return pins


def test_the_project_dependencies_cover_what_the_client_imports_at_the_pinned_versions() -> None:
    """``pip install .`` on a clean runner must bring every third-party module ``aml-rollout`` imports."""
    done = subprocess.run([sys.executable, "-c", IMPORTS], cwd=ROOT, capture_output=True, text=True, timeout=60)
    imported = {name.lower() for name in json.loads(done.stdout)}
    declared = dict(re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", d).groups()   # type: ignore[union-attr]
                    for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    assert imported and imported <= {name.lower() for name in declared}, imported
    pins = _pins("requirements.txt", "requirements-dev.txt")
    assert {name.lower(): version for name, version in declared.items()} == \
        {name.lower(): pins[name.lower()] for name in declared}


def test_step_passes_when_the_rollout_is_promoted(server: LocalServer) -> None:
    api = Client(server.url)
    process = start_step(server.url)
    wait_for_rollout(api)
    assert api.post(f"/api/rollouts/{ENDPOINT}/promote", {"reason": "checked by hand"}).status == 202
    code, out, err = finish(process)
    assert code == 0, out + err
    assert out.splitlines()[-1].startswith("promoted: ") and KEY not in out + err
    assert server.endpoint.traffic == {NEW: 100}


def test_step_fails_when_an_alert_rolls_the_rollout_back(server: LocalServer) -> None:
    api = Client(server.url)
    process = start_step(server.url)
    wait_for_rollout(api)
    assert api.post("/api/alerts", alert(FIRED)).status == 202
    code, out, err = finish(process)
    assert code == 1, out + err
    assert out.splitlines()[-1].startswith("rolled_back: ")
    assert server.endpoint.traffic == {OLD: 100}


def test_step_fails_when_the_rollout_is_aborted(server: LocalServer) -> None:
    api = Client(server.url)
    process = start_step(server.url)
    wait_for_rollout(api)
    assert api.post(f"/api/rollouts/{ENDPOINT}/abort").status == 202
    code, out, _ = finish(process)
    assert code == 3 and out.splitlines()[-1].startswith("aborted: ")


def test_step_fails_when_another_rollout_runs_on_the_endpoint(server: LocalServer) -> None:
    api = Client(server.url)
    first = start_step(server.url)
    wait_for_rollout(api)
    code, out, err = finish(start_step(server.url))
    assert code == 2 and f"endpoint '{ENDPOINT}' already has a rollout running" in err
    api.post(f"/api/rollouts/{ENDPOINT}/abort")
    finish(first)


def test_step_fails_on_a_bad_request_naming_the_field(server: LocalServer) -> None:
    code, _, err = finish(start_step(server.url, deployment="no such deployment!"))
    assert code == 2 and "the app refused the request" in err and "new_deployment" in err


def test_step_stops_with_its_own_code_when_the_key_is_refused(server: LocalServer) -> None:
    code, out, err = finish(start_step(server.url, key="wrong-key"))
    assert code == 5 and "401" in err and "wrong-key" not in out + err
