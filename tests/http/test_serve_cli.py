"""``python -m emulator serve`` as a user runs it, and the curl session of docs/http.md in-process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from emulator.serve import LocalServer, default_scenario
from tests.http.helpers import SCENARIO, Client

ROOT = Path(__file__).resolve().parents[2]


def serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "emulator", "serve", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def banner_of(process: subprocess.Popen[str]) -> dict[str, str]:
    """The ``name: value`` lines of the start banner, and the URL, read as soon as they are printed."""
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith("aml-rollout serving on http://127.0.0.1:"), first + (process.stderr.read() if process.stderr else "")
    fields = {"url": first.split(" on ", 1)[1].split("/api", 1)[0]}
    while "try:" not in (line := process.stdout.readline()) and line:
        name, _, value = line.strip().partition(":")
        fields[name] = value.strip()
    return fields


def test_serve_prints_its_url_and_a_generated_key_which_it_enforces(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({**SCENARIO, "rollout": {"new_deployment": "green"}}))
    process = serve("--port", "0", "--scenario", str(scenario))
    try:
        banner = banner_of(process)
        key = banner["function key"]
        assert len(key) >= 24 and banner["endpoint"].startswith("ep1: blue (100%), green (0%)")
        assert banner["note"] == "the scenario's rollout part(s) are not used by serve"
        api = Client(banner["url"], key)
        assert api.get("/api/rollouts").status == 200
        assert api.get("/api/rollouts", key=None).status == 401
        assert api.get("/api/rollouts", key="guess").status == 401
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
    assert process.returncode == 0
    assert "GET /api/rollouts -> 200" in err and "GET /api/rollouts -> 401" in err   # the access log...
    assert key not in err                                                              # ...never shows the key


def test_serve_refuses_a_bad_scenario_naming_the_field(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.yaml"
    bad = json.loads(json.dumps(SCENARIO))
    bad["endpoint"]["deployments"]["blue"]["traffic"] = 101
    scenario.write_text(yaml.safe_dump(bad))
    process = serve("--port", "0", "--scenario", str(scenario))
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "endpoint.deployments.blue.traffic: must be an integer from 0 to 100" in err


def test_the_documented_session_start_watch_alert_and_traffic_back_on_blue() -> None:
    with LocalServer(default_scenario(), key="local-dev-key") as server:
        api = Client(server.url, "local-dev-key")
        started = api.post("/api/rollouts", {"endpoint_name": "fraud-detection-endpoint", "new_deployment": "green-v2",
                                             "traffic_steps": [10, 50, 100], "observation_window": "PT1M",
                                             "check_interval": "PT1S", "min_requests": 10})
        assert started.status == 202
        watched = api.wait_for(lambda v: v.get("last_health") is not None, endpoint="fraud-detection-endpoint")
        assert watched["traffic"] == {"blue-v1": 90, "green-v2": 10}
        assert watched["last_health"]["verdict"] in ("pass", "inconclusive")
        fired = json.loads((ROOT / "examples" / "alerts" / "endpoint-5xx-fired.json").read_text())
        delivered = api.post("/api/alerts", fired)
        assert delivered.status == 202 and delivered.json()["action"] == "rollback"
        started_at = time.monotonic()
        done = api.wait_for(lambda v: v["runtime_status"] == "Completed", endpoint="fraud-detection-endpoint")
        assert time.monotonic() - started_at < 2
        assert done["outcome"] == "rolled_back" and done["final_traffic"] == {"blue-v1": 100}
        assert server.endpoint.traffic == {"blue-v1": 100}
