"""``serve --state FILE`` survives ``kill -9``: the rollout carries on from its history after a restart.

Runs ``python -m emulator serve`` as a subprocess on the real clock, kills it with SIGKILL while a
rollout observes its first step, starts it again on the same file, and checks that the rollout
goes on to its next step and that an alert raised after the restart rolls it back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.http.helpers import Client

ROOT = Path(__file__).resolve().parent.parent.parent
KEY = "restart-key"
ENDPOINT = "fraud-detection-endpoint"
FIRED = json.loads((ROOT / "examples" / "alerts" / "endpoint-5xx-fired.json").read_text())


def serve(state: Path) -> tuple[subprocess.Popen[str], Client]:
    process = subprocess.Popen([sys.executable, "-m", "emulator", "serve", "--port", "0", "--key", KEY,
                                "--state", str(state)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    first = process.stdout.readline()  # "aml-rollout serving on http://127.0.0.1:PORT/api (Ctrl-C to stop)"
    url = first.split(" on ", 1)[1].split("/api", 1)[0]
    return process, Client(url, KEY)


def stop(process: subprocess.Popen[str], signum: int) -> None:
    process.send_signal(signum)
    process.wait(10)
    if process.stdout is not None:
        process.stdout.close()


def wait_for(client: Client, condition: Any, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/rollouts/{ENDPOINT}")
        view = response.json() if response.status == 200 else {}
        if condition(view):
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.05)


def test_a_rollout_survives_kill_9_and_a_rollback_after_the_restart_works(tmp_path):
    state = tmp_path / "taskhub.sqlite"
    process, client = serve(state)
    try:
        started = client.post("/api/rollouts", {"endpoint_name": ENDPOINT, "new_deployment": "green-v2",
                                                "traffic_steps": [10, 50, 100], "observation_window": "PT3S",
                                                "check_interval": "PT1S", "min_requests": 1,
                                                # no error test (a threshold of 1): this is about restarts, and
                                                # 3-second windows hold far fewer requests than a verdict needs
                                                "error_threshold": 1})
        assert started.status == 202, started.body
        wait_for(client, lambda v: v.get("phase") == "observing" and v.get("current_step") == 10)
    finally:
        stop(process, signal.SIGKILL)

    process, client = serve(state)
    try:
        resumed = wait_for(client, lambda v: v.get("runtime_status") == "Running")
        assert resumed["traffic"] == {"blue-v1": 90, "green-v2": 10}  # the endpoint as the killed server left it
        wait_for(client, lambda v: v.get("current_step") == 50 and v.get("traffic") == {"blue-v1": 50, "green-v2": 50})

        answer = client.post("/api/alerts", FIRED)
        assert answer.status == 202 and answer.json()["action"] == "rollback", answer.body

        done = wait_for(client, lambda v: v.get("runtime_status") == "Completed")
        assert done["outcome"] == "rolled_back" and done["final_traffic"] == {"blue-v1": 100}
        assert [h["kind"] for h in done["history"]] == ["step", "step", "rollback"]
    finally:
        stop(process, signal.SIGTERM)
