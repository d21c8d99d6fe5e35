"""The app is indexed by the Python worker's own code, and what the worker refuses is refused here.

``emulator.worker`` runs ``azure_functions_runtime`` (the worker's indexing, pinned in
requirements-worker.txt): ``load_app`` for a script (``simulate`` and ``serve`` use it),
``registered_functions`` for an app object (the task hub and the HTTP host use it).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import azure.durable_functions as df
import pytest

from emulator.clock import VirtualClock
from emulator.http_host import HttpHost
from emulator.taskhub import TaskHub
from emulator.worker import RUNTIME_DIR, load_app, registered_functions

ROOT = Path(__file__).resolve().parents[2]
REFUSED_DICT = ("cannot load the preflight function: binding payload has invalid non-type annotation "
                "dict[str, typing.Any]")

APP_HEADER = """\
from typing import Any, Dict, Mapping
import azure.durable_functions as df

app = df.DFApp()
"""
ACTIVITY = """
@app.activity_trigger(input_name="payload")
def preflight(payload{annotation}) -> dict:
    return dict(payload)
"""


def write_app(folder: Path, body: str) -> Path:
    """A function app script with a module name no other test uses (one app module per process)."""
    script = folder / f"app_{folder.name.replace('-', '_')}.py"
    script.write_text(APP_HEADER + textwrap.dedent(body))
    return script


def test_the_worker_indexes_every_function_of_this_app() -> None:
    app = load_app()
    assert sorted(f.get_function_name() for f in registered_functions(app)) == [
        "alert_webhook", "autoscale_apply", "autoscale_remove", "check_health", "control_rollout",
        "create_deployment_start", "create_endpoint_start", "delete_start", "get_rollout", "lifecycle_inspect",
        "list_rollouts", "operation_poll", "preflight", "read_traffic", "rollout_orchestrator", "scale_start",
        "send_notifications", "set_traffic", "spec_check", "start_rollout", "view_rollout",
    ]


def test_the_worker_code_is_the_pinned_package_not_a_copy() -> None:
    pinned = (ROOT / "requirements-worker.txt").read_text()
    assert "azure-functions-runtime==1.3.0 --hash=sha256:" in pinned
    assert (RUNTIME_DIR / "azure_functions_runtime-1.3.0.dist-info" / "RECORD").is_file()
    assert sys.modules["azure_functions_runtime.functions"].__file__.startswith(str(RUNTIME_DIR))


@pytest.mark.parametrize("annotation", [
    pytest.param(": Mapping[str, Any]", id="typing-Mapping"),
    pytest.param(": Dict[str, Any]", id="typing-Dict"),
    pytest.param(": dict", id="bare-dict"),
    pytest.param("", id="no-annotation"),
])
def test_the_annotations_the_worker_accepts_load(tmp_path: Path, annotation: str) -> None:
    app = load_app(write_app(tmp_path, ACTIVITY.format(annotation=annotation)))
    assert [f.get_function_name() for f in registered_functions(app)] == ["preflight"]


@pytest.mark.parametrize(("body", "error", "message"), [
    pytest.param(ACTIVITY.format(annotation=": dict[str, Any]"), "FunctionLoadError", REFUSED_DICT, id="builtin-generic"),
    pytest.param("""
        @app.activity_trigger(input_name="payload")
        def preflight(payload, extra):
            return payload
        """, "FunctionLoadError", "cannot load the preflight function: the following parameters are declared in Python "
                                  "but not in the function definition", id="unbound-parameter"),
    pytest.param("other = df.DFApp()\n", "ValueError", "More than one DFApp or other top level function app instances",
                 id="two-apps"),
])
def test_an_app_the_worker_refuses_is_refused_with_its_message(tmp_path: Path, body: str, error: str, message: str) -> None:
    with pytest.raises(Exception) as refused:
        load_app(write_app(tmp_path, body))
    assert type(refused.value).__name__ == error and message in str(refused.value)


def refused_app() -> df.DFApp:
    app = df.DFApp()

    @app.activity_trigger(input_name="payload")
    def preflight(payload: dict[str, object]) -> dict[str, object]:
        return payload

    return app


def test_the_task_hub_refuses_an_app_the_worker_refuses() -> None:
    with pytest.raises(RuntimeError, match=r"binding payload has invalid non-type annotation dict\[str, object\]"):
        TaskHub(refused_app(), VirtualClock(datetime(2026, 1, 1, tzinfo=UTC)))


def test_the_http_host_refuses_an_app_the_worker_refuses() -> None:
    with pytest.raises(RuntimeError, match=r"binding payload has invalid non-type annotation dict\[str, object\]"):
        HttpHost(refused_app(), "{}", "key")


def broken_copy_of_this_project(folder: Path) -> Path:
    """This project's app copied to ``folder``, its ``preflight`` activity annotated as before the fix (#468)."""
    copy = folder / "project"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".*", "tests", "docs", "bench", "infra", "__pycache__"))
    activities = copy / "activities" / "__init__.py"
    fixed = "def preflight(payload: Mapping[str, Any])"
    assert fixed in activities.read_text()
    activities.write_text(activities.read_text().replace(fixed, "def preflight(payload: dict[str, Any])"))
    return copy


@pytest.mark.parametrize("command", [
    pytest.param(["simulate", "examples/healthy-promotion.yaml"], id="simulate"),
    pytest.param(["serve", "--port", "0"], id="serve"),
])
def test_simulate_and_serve_refuse_an_app_the_worker_refuses(tmp_path: Path, command: list[str]) -> None:
    project = broken_copy_of_this_project(tmp_path)
    done = subprocess.run([sys.executable, "-m", "emulator", *command], cwd=project,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert (f"the Python worker would not index {project / 'function_app.py'}: FunctionLoadError: {REFUSED_DICT}"
            in done.stderr)
    assert done.stdout == ""


def test_without_the_workers_code_simulate_refuses_rather_than_skip_the_check(tmp_path: Path) -> None:
    # The same packages on the path, but an interpreter whose prefix has no azure-functions-runtime folder.
    site_packages = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    done = subprocess.run([sys.base_prefix + "/bin/python3", "-m", "emulator", "simulate", "examples/healthy-promotion.yaml"],
                          cwd=ROOT, env={"PYTHONPATH": str(site_packages), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "cannot check" in done.stderr and "azure-functions-runtime 1.3.0" in done.stderr and "run ./dev" in done.stderr
    assert done.stdout == ""
