"""``aml-rollout watch``: the live view in a real terminal (tmux), and what it draws from a record."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from cli.watch import view_renderable
from emulator.serve import LocalServer
from tests.cli.helpers import KEY, ROOT, cli
from tests.cli.test_commands import ENDPOINT, REQUEST, wait_for

NOW = datetime(2026, 1, 1, 0, 7, 30, tzinfo=UTC)
RUNNING = {
    "endpoint_name": ENDPOINT, "new_deployment": "green-v2", "phase": "observing", "paused": False,
    "plan": {"old": "blue-v1", "new": "green-v2", "steps": [10, 50, 100], "shared": 100},
    "step_index": 1, "current_step": 50, "traffic": {"blue-v1": 50, "green-v2": 50},
    "last_health": {"at": "2026-01-01T00:07:00+00:00", "step": 50, "verdict": "pass",
                    "reason": "error rate 0.0017 within threshold 0.01",
                    "new": {"requests": 1200, "errors": 2, "latency_p99_ms": 140.0},
                    "old": {"requests": 1200, "errors": 1, "latency_p99_ms": 120.0}},
    "history": [{"at": "2026-01-01T00:00:00+00:00", "kind": "step", "reason": "step 1/3", "traffic": {}},
                {"at": "2026-01-01T00:05:00+00:00", "kind": "step", "reason": "step 2/3", "traffic": {}}],
    "alerts": [{"at": "2026-01-01T00:06:10+00:00", "action": "noted", "rule": "latency-warn", "monitor_condition": "Fired"}],
    "alerts_received": 1, "outcome": None,
    "request": {"observation_window": "PT5M", "error_threshold": 0.01, "latency_p99_threshold_ms": 300},
}


def rendered(view: dict, width: int = 110) -> str:
    with open(os.devnull, "w") as sink:
        console = Console(record=True, width=width, file=sink)
        console.print(view_renderable(view, NOW))
    return console.export_text()


def test_the_view_shows_step_traffic_numbers_against_thresholds_next_step_and_alerts() -> None:
    text = rendered(RUNNING)
    assert f"{ENDPOINT}: green-v2 replacing blue-v1, observing step 2/3 (50%)" in text
    assert "2/3  10%  50%  100%" in text
    assert "━" in text                                          # the progress bar
    assert "blue-v1 50% / green-v2 50%" in text
    assert "green-v2: 1200 requests, 2 errors, error rate 0.0017 (max 0.01), p99 140 ms (max 300 ms)" in text
    assert "blue-v1: 1200 requests, 1 errors, error rate 0.0008, p99 120 ms" in text
    assert "in 2m30s at the earliest" in text                   # window from 00:05:00 + PT5M, now 00:07:30
    assert "1 received" in text and "00:06:10 latency-warn Fired -> noted" in text


def test_a_paused_rollout_has_no_next_step_and_says_paused() -> None:
    text = rendered({**RUNNING, "paused": True})
    assert "(paused)" in text and "next step" not in text


def _pane(socket_name: str, session: str) -> str:
    return subprocess.run(["tmux", "-L", socket_name, "capture-pane", "-p", "-t", session], capture_output=True,
                          text=True, check=True).stdout


def test_watch_in_a_real_terminal_draws_the_live_view_and_exits_with_the_outcome(server: LocalServer,
                                                                               tmp_path: Path) -> None:
    assert shutil.which("tmux"), "tmux is needed (apt-get install tmux)"
    assert cli("start", "-", url=server.url, stdin=json.dumps(REQUEST)).code == 0
    wait_for(server, "last check: pass")
    socket_name, session = f"aml-rollout-test-{uuid.uuid4().hex[:8]}", "watch"
    exit_file = tmp_path / "exit"
    command = (f"cd {ROOT} && env -u COLUMNS -u LINES {sys.executable} -m cli --url {server.url} --key {KEY} "
               f"watch {ENDPOINT} --interval 0.3; echo $? > {exit_file}; sleep 60")
    subprocess.run(["tmux", "-L", socket_name, "new-session", "-d", "-s", session, "-x", "120", "-y", "30", command],
                   check=True)
    try:
        deadline, live = time.monotonic() + 20, ""
        while "last check" not in live and time.monotonic() < deadline:
            time.sleep(0.3)
            live = _pane(socket_name, session)
        assert f"{ENDPOINT}: green-v2 replacing blue-v1, observing step 1/3 (10%)" in live
        assert "blue-v1 90% / green-v2 10%" in live and "━" in live
        assert "green-v2: " in live and "(max 0.01)" in live and "next step" in live and "0 received" in live
        assert cli("abort", ENDPOINT, "--reason", "seen enough", url=server.url).code == 0
        while not exit_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        final = _pane(socket_name, session)
    finally:
        subprocess.run(["tmux", "-L", socket_name, "kill-server"], check=False)
    assert exit_file.read_text().strip() == "3"                 # aborted
    assert "aborted: seen enough; traffic blue-v1 100%" in final
    assert "outcome" in final and f"{ENDPOINT}: green-v2 replacing blue-v1, aborted" in final
