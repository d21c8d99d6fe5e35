"""The rollout report: written by ``aml-rollout report`` and ``simulate --report``, served at
``/api/rollouts/{endpoint}/view``, and loaded in a real browser (headless Chromium)."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

from emulator.scenario import load_scenario
from emulator.serve import LocalServer
from emulator.simulate import main as simulate
from emulator.simulate import run_simulation
from report import render_report
from tests.cli.browser import dump_dom, screenshot
from tests.cli.helpers import EXAMPLES, KEY, cli
from tests.cli.test_commands import ENDPOINT, REQUEST, wait_for
from tests.http.helpers import Client


def _count(pattern: str, page: str) -> int:
    return len(re.findall(pattern, page))


def test_simulate_report_draws_traffic_checks_thresholds_steps_alert_and_rollback(tmp_path: Path) -> None:
    out = tmp_path / "alert.html"
    assert simulate([str(EXAMPLES / "alert-rollback.yaml"), "--report", str(out)]) == 1
    page = out.read_text()
    record = run_simulation(load_scenario(EXAMPLES / "alert-rollback.yaml")).record
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "rolled_back: alert &#x27;fraud-detection-green-5xx&#x27; fired" in page
    assert _count(r'class="check"', page) == 4 * len(record["checks"]) == 28   # rate and p99, new and old, 7 checks
    assert _count(r'class="mark step"', page) == 2 and ">10%</text>" in page and ">50%</text>" in page
    assert _count(r'class="mark alert"', page) == 1 and _count(r'class="mark rollback"', page) == 1
    assert "threshold 0.010" in page                                # error threshold drawn
    assert "threshold 300" not in page                              # this request sets no p99 threshold
    assert 'class="traffic-new"' in page and 'class="traffic-old"' in page
    assert len(page.encode()) < 20_000


def test_report_of_a_paused_rollout_shades_the_pause_and_draws_the_p99_threshold() -> None:
    record = run_simulation(load_scenario(EXAMPLES / "healthy-promotion.yaml")).record
    record["history"].insert(1, {"at": "2026-01-01T00:02:00+00:00", "kind": "pause", "reason": "look", "traffic": {}})
    record["history"].insert(2, {"at": "2026-01-01T00:03:00+00:00", "kind": "resume", "reason": "ok", "traffic": {}})
    page = render_report({**record, "request": {"error_threshold": 0.01, "latency_p99_threshold_ms": 300}})
    assert _count(r'class="pause"', page) == 3                      # across the three panels
    assert "paused 0:02:00 to 0:03:00" in page and "threshold 300" in page
    assert "promoted: green-v2 healthy at every step" in page


def test_cli_report_writes_the_page_of_a_running_rollout(server: LocalServer, tmp_path: Path) -> None:
    assert cli("start", "-", url=server.url, stdin=json.dumps(REQUEST)).code == 0
    wait_for(server, "last check: pass")
    run = cli("report", ENDPOINT, "-o", str(tmp_path / "r.html"), url=server.url)
    assert run.code == 0 and run.out.startswith(f"wrote {tmp_path / 'r.html'} (")
    page = (tmp_path / "r.html").read_text()
    assert "running: observing, step 10%" in page and 'http-equiv="refresh"' not in page    # a file never reloads
    cli("abort", ENDPOINT, url=server.url)


def test_the_served_page_in_chromium_shows_the_chart_and_the_numbers_and_refreshes_while_running(
        server: LocalServer) -> None:
    assert cli("start", "-", url=server.url, stdin=json.dumps(REQUEST)).code == 0
    wait_for(server, "last check: pass")
    url = f"{server.url}/api/rollouts/{ENDPOINT}/view?code={KEY}"
    running = dump_dom(url)
    record = json.loads(cli("status", ENDPOINT, "--json", url=server.url).out)
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="timeline"' in running
    assert _count(r'<circle class="check"', running) >= 2 and 'class="traffic-new"' in running
    assert 'http-equiv="refresh" content="5"' in running
    assert "running: observing, step 10%" in running
    assert "blue-v1 90%, green-v2 10%" in running
    first = record["checks"][0]
    assert f"<td>{first['new'][0]}</td>" in running                # green-v2's requests at the first check
    assert cli("abort", ENDPOINT, "--reason", "enough", url=server.url).code == 0
    wait_for(server, "outcome:")
    done = dump_dom(url)
    assert "aborted: enough" in done and 'class="mark rollback"' in done and "http-equiv" not in done
    api = Client(server.url, KEY)
    assert api.get("/api/rollouts/other-endpoint/view").json()["type"] == "urn:aml-rollout:problem:rollout-not-found"
    assert api.get(f"/api/rollouts/{ENDPOINT}/view", key=None).status == 401
    page = api.get(f"/api/rollouts/{ENDPOINT}/view")
    assert page.content_type == "text/html; charset=utf-8"
    assert page.header("Content-Security-Policy") == "default-src 'none'; style-src 'unsafe-inline'"


def test_screenshot_of_a_report(tmp_path: Path) -> None:
    """Run with ``--basetemp DIR`` to keep the PNG (docs/report.png was made this way)."""
    page = tmp_path / "regression-caught.html"
    assert simulate([str(EXAMPLES / "regression-caught.yaml"), "--report", str(page)]) == 1
    png = screenshot(page.as_uri(), tmp_path / "report.png")
    header = png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (960, 1000)
    assert png.stat().st_size > 20_000                              # a drawn page, not a blank one
