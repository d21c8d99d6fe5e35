"""``bootstrap.build_app``: the one composition point, every dependency passed in, nothing global.

Two apps built in one process reach their own backends; ``function_app`` builds production's
app without reading a setting or building a client; ``lazily`` builds on first use, once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bootstrap import build_app, lazily, provide
from emulator.scenario import parse_scenario
from emulator.simulate import build_workspace
from emulator.worker import registered_functions
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def scenario_with(traffic: dict[str, int]) -> Any:
    deployments = {name: {"traffic": share} for name, share in traffic.items()}
    return parse_scenario({"endpoint": {"name": "ep1", "deployments": deployments}}, ROOT, require_rollout=False)


def activity(app: Any, name: str) -> Any:
    return next(f.get_user_function() for f in registered_functions(app) if f.get_function_name() == name)


def test_two_apps_in_one_process_reach_their_own_backends() -> None:
    now = lambda: datetime(2026, 1, 1, tzinfo=UTC)  # noqa: E731
    blue = build_workspace(scenario_with({"blue": 100, "green": 0}), now)
    green = build_workspace(scenario_with({"blue": 0, "green": 100}), now)
    settings = provide(Settings(workspace=None))
    app_blue = build_app(backend=provide(blue), settings=settings)
    app_green = build_app(backend=provide(green), settings=settings)
    read = {"endpoint_name": "ep1"}
    assert activity(app_blue, "read_traffic")(read)["endpoint"]["traffic"] == {"blue": 100}
    assert activity(app_green, "read_traffic")(read)["endpoint"]["traffic"] == {"green": 100}
    activity(app_green, "set_traffic")({"endpoint_name": "ep1", "traffic": {"blue": 50, "green": 50}})
    assert blue.workspace.endpoint("ep1").traffic == {"blue": 100}     # untouched by the other app
    assert green.workspace.endpoint("ep1").traffic == {"blue": 50, "green": 50}


@pytest.mark.parametrize("environment", [
    pytest.param({"AML_ROLLOUT_EXTRA_WORKSPACES": "not/a-workspace"}, id="bad-extra-workspaces"),
    pytest.param({"ARM_CLOUD_METADATA_URL": "https://arm.local/metadata"}, id="ambiguous-cloud"),
])
def test_function_app_builds_the_app_without_reading_a_setting(environment: dict[str, str]) -> None:
    # Settings a first request would refuse: importing (what the worker does at indexing) must not read them.
    done = subprocess.run([sys.executable, "-c", "import sys, function_app; "
                           "print(sorted(m for m in sys.modules if m.startswith(('azure.ai', 'azure.identity'))))"],
                          cwd=ROOT, env={**os.environ, **environment}, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


def test_lazily_builds_on_first_use_once_and_again_after_a_failure() -> None:
    calls: list[int] = []

    def build() -> int:
        calls.append(len(calls))
        if len(calls) == 1:
            raise ValueError("first try fails")
        return len(calls)

    provider = lazily(build)
    assert calls == []
    with pytest.raises(ValueError, match="first try fails"):
        provider()
    assert (provider(), provider(), calls) == (2, 2, [0, 1])
