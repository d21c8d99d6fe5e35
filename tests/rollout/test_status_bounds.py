"""The rollout's status stays under Durable's custom-status limit whatever operators and alerts send.

The worst case goes through the HTTP API of ``serve``: twelve pause/resume pairs, each with a
500-character reason of characters that JSON escapes (the worker sends custom status as
ASCII-escaped JSON, six characters for each of these), then hundreds of alerts with long
rule names, then an abort. Measured as the Durable extension measures it: UTF-16 bytes of the
JSON (here the escaped JSON, which is never shorter than what the extension re-serializes).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator.scenario import parse_scenario
from emulator.serve import LocalServer
from rollout.record import MAX_HOLDS_KEPT, STATUS_LIMIT_BYTES, clip, status_size_bytes
from tests.http.helpers import ENDPOINT, FIXTURES, KEY, RESOLVED_SAMPLE, SCENARIO, Client, alert

REASON = "é€" * 250                       # 500 characters, 3,000 once escaped in JSON
RULE = "règle-" + "ü" * 250
PAIRS, ALERTS = 12, 30          # unbounded, 24 such entries alone would be 144 KB


@pytest.fixture
def api() -> Iterator[Client]:
    server = LocalServer(parse_scenario(SCENARIO, FIXTURES, require_rollout=False), key=KEY).start()
    yield Client(server.url)
    server.stop()


def custom_status(view: dict) -> dict:
    """The record part of a rollout view (what the orchestrator set as custom status or output)."""
    return {k: v for k, v in view.items() if k not in ("runtime_status", "created_time", "last_updated_time",
                                                       "links", "instance_id", "request")}


def test_pause_resume_pairs_with_long_reasons_and_many_alerts_keep_the_status_under_16_kb(api: Client) -> None:
    api.start(observation_window="PT10M", check_interval="PT5S", error_threshold=0.5)
    api.wait_until_observing()
    for pair in range(PAIRS):
        for action, paused in (("pause", True), ("resume", False)):
            response = api.post(f"/api/rollouts/{ENDPOINT}/{action}", {"reason": f"{pair} {REASON}"[:500]})
            assert response.status == 202, response.body
            api.wait_for(lambda v, paused=paused: v["paused"] is paused)
    for n in range(ALERTS):
        response = api.post("/api/alerts", alert(RESOLVED_SAMPLE, alertRule=f"{n} {RULE}", alertId=f"id-{n}"))
        assert response.status == 202, response.body
    busy = api.wait_for(lambda v: v["alerts_received"] == ALERTS, timeout=60)
    assert status_size_bytes(custom_status(busy)) < STATUS_LIMIT_BYTES
    holds = [h for h in busy["history"] if h["kind"] in ("pause", "resume")]
    assert 0 < len(holds) <= MAX_HOLDS_KEPT and holds[-1]["reason"] == clip(f"{PAIRS - 1} {REASON}"[:500])
    assert busy["history_dropped"] >= 2 * PAIRS - MAX_HOLDS_KEPT, "what is left out is counted"
    assert [h["kind"] for h in busy["history"]][0] in ("step", "pause", "resume")

    assert api.post(f"/api/rollouts/{ENDPOINT}/abort", {"reason": REASON}).status == 202
    done = api.wait_until_done()
    assert done["outcome"] == "aborted" and done["final_traffic"] == {"blue": 100}
    assert status_size_bytes(custom_status(done)) < STATUS_LIMIT_BYTES


@pytest.mark.parametrize("text, limit, expected", [
    pytest.param("short", 10, "short", id="fits"),
    pytest.param("abcdefghijkl", 10, "abcdefg...", id="ascii-cut"),
    pytest.param("é" * 10, 20, "éé...", id="escaped-chars-count-six"),
    pytest.param(None, 10, None, id="none"),
])
def test_clip_bounds_the_escaped_json_length(text, limit, expected) -> None:
    assert clip(text, limit) == expected
