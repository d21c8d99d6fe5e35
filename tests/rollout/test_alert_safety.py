"""Alerts that must not be lost or delayed: after an unsafe end, and in bursts of record-only notes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as T

from api.alert_delivery import NoteCoalescer
from emulator.scenario import parse_scenario
from emulator.serve import LocalServer
from rollout.notes import MAX_NOTES_PER_EVENT, coalesce, notes_in
from tests.http.helpers import (
    ENDPOINT,
    FIXTURES,
    INSTANCE,
    KEY,
    MANAGED_SAMPLES,
    NEW,
    OLD,
    RESOLVED_SAMPLE,
    SCENARIO,
    Client,
    alert,
)

FIRED = MANAGED_SAMPLES[0]          # a metric alert on ep1 split by deployment = green


@pytest.fixture
def server() -> Iterator[LocalServer]:
    local = LocalServer(parse_scenario(SCENARIO, FIXTURES, require_rollout=False), key=KEY).start()
    yield local
    local.stop()


def test_an_alert_after_a_rollout_ended_with_the_new_deployment_holding_traffic_rolls_it_back(server) -> None:
    api = Client(server.url)
    api.start(observation_window="PT2S", error_threshold=0.5)      # no health verdict gets in the way
    api.wait_until_observing()
    server.backend.workspace.update_traffic(ENDPOINT, {OLD: 80, NEW: 20}, None, by="someone else")
    ended = api.wait_until_done()
    assert ended["outcome"] == "failed" and ended["final_traffic"] == {OLD: 80, NEW: 20}

    response = api.post("/api/alerts", alert(FIRED))
    assert response.status == 202, response.body
    body = response.json()
    assert body["done"] is True and body["action"] == "rollback" and body["instance_id"] == INSTANCE
    assert "the last rollout ended failed with green still holding traffic" in body["reason"]
    back = api.wait_for(lambda v: v["runtime_status"] == "Completed" and v["phase"] == "done" and
                        v.get("final_traffic") == {OLD: 100})
    assert back["outcome"] == "rolled_back" and server.endpoint.traffic == {OLD: 100}
    assert back["history"][-1]["kind"] == "rollback"

    again = api.post("/api/alerts", alert(FIRED))
    assert again.status == 200 and again.json()["done"] is False, "safe now: nothing left to do"


def test_a_burst_of_notes_becomes_fewer_events_and_every_alert_is_counted(server) -> None:
    api = Client(server.url)
    api.start(observation_window="PT1M", error_threshold=0.5)
    api.wait_until_observing()
    answers: list[int] = []

    def send(start: int) -> None:
        for n in range(start, 120, 12):
            answers.append(api.post("/api/alerts", alert(RESOLVED_SAMPLE, alertId=f"burst-{n % 40}")).status)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [202] * 120
    view = api.wait_for(lambda v: v["alerts_received"] == 120, timeout=30)
    events = [e for e in server.hub.history(INSTANCE) if e["EventType"] == T.EVENT_RAISED and e["Name"] == "alert"]
    assert 0 < len(events) <= 30, "notes gathered for half a second go together"
    assert len(view["alerts"]) <= 10


# --- the coalescer, with a hand-written client ------------------------------------------------------


class GatedClient:
    """A Durable client whose ``raise_event`` waits for ``gate`` and records each payload (or fails)."""

    def __init__(self, fail: bool = False) -> None:
        self.gate = asyncio.Event()
        self.raised: list[dict[str, Any]] = []
        self.fail = fail

    async def raise_event(self, instance_id: str, name: str, payload: dict[str, Any]) -> None:
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("task hub unavailable")
        self.raised.append(payload)


def note(n: int) -> dict[str, Any]:
    return {"alert_id": f"a{n}", "rule": f"r{n}", "monitor_condition": "Resolved"}


def test_notes_arriving_while_one_event_is_raised_go_together_as_the_next() -> None:
    async def scenario() -> list[dict[str, Any]]:
        client, coalescer = GatedClient(), NoteCoalescer(gather_seconds=0)
        first = asyncio.ensure_future(coalescer.deliver(client, "i", note(0), "first"))
        await asyncio.sleep(0)
        rest = [asyncio.ensure_future(coalescer.deliver(client, "i", note(n), f"n{n}")) for n in (1, 2, 2, 3)]
        await asyncio.sleep(0)
        client.gate.set()
        await asyncio.gather(first, *rest)
        return client.raised

    raised = asyncio.run(scenario())
    assert [[(a["alert"]["alert_id"], a["count"]) for a in p["alerts"]] for p in raised] == [
        [("a0", 1)], [("a1", 1), ("a2", 2), ("a3", 1)]]


def test_a_failure_to_raise_reaches_every_note_it_carried() -> None:
    async def scenario() -> list[BaseException | None]:
        client, coalescer = GatedClient(fail=True), NoteCoalescer(gather_seconds=0)
        tasks = [asyncio.ensure_future(coalescer.deliver(client, "i", note(n), "r")) for n in range(3)]
        await asyncio.sleep(0)
        client.gate.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    assert [str(r) for r in asyncio.run(scenario())] == ["task hub unavailable"] * 3


@pytest.mark.parametrize("ids, expected", [
    pytest.param(["a"], [("a", 1)], id="one"),
    pytest.param(["a", "a", "a"], [("a", 3)], id="duplicates-counted"),
    pytest.param(["a", "b", "a"], [("b", 1), ("a", 2)], id="newest-last"),
    pytest.param([str(n) for n in range(MAX_NOTES_PER_EVENT + 3)],
                 [(str(n), 4 if n == 3 else 1) for n in range(3, MAX_NOTES_PER_EVENT + 3)],
                 id="oldest-beyond-the-cap-counted-into-the-first-kept"),
])
def test_coalesce(ids, expected):
    payload = coalesce([({"alert_id": i, "monitor_condition": "Resolved"}, f"reason {i}") for i in ids])
    assert [(a["alert"]["alert_id"], a["count"]) for a in payload["alerts"]] == expected
    assert sum(a["count"] for a in payload["alerts"]) == len(ids)


@pytest.mark.parametrize("payload, expected", [
    pytest.param({"alert": {"rule": "a"}}, [({"rule": "a"}, 1)], id="one-note"),
    pytest.param(coalesce([({"alert_id": "x"}, "r")] * 3), [({"alert_id": "x"}, 3)], id="coalesced"),
    pytest.param({"alerts": [{"alert": {"rule": "a"}, "count": -4}, "junk", {"alert": 5}]}, [({"rule": "a"}, 1)],
                 id="bad-count-and-junk"),
    pytest.param({"reason": "pause"}, [], id="no-notes"),
    pytest.param("text", [], id="not-a-mapping"),
])
def test_notes_in(payload, expected):
    assert notes_in(payload) == expected
