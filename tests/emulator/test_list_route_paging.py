"""``GET /api/rollouts`` lists every rollout, past the host's 100-instance page.

The emulator's management API pages as the host does (``test_management_api``); this runs the
app's list route against it through ``serve`` with more than one page of rollouts.
"""

from __future__ import annotations

from api.http import ORCHESTRATOR
from emulator.scenario import parse_scenario
from emulator.serve import LocalServer
from tests.http.helpers import FIXTURES, KEY, SCENARIO, Client, rollout_request


def test_the_rollout_list_follows_the_continuation_tokens_past_100_rollouts():
    server = LocalServer(parse_scenario(SCENARIO, FIXTURES, require_rollout=False), key=KEY).start()
    try:
        server.hub.stop()  # hold the instances Pending: listing is what is tested, not 130 pre-flights
        for n in range(130):
            server.hub.start(ORCHESTRATOR, f"rollout-ep{n:03d}", rollout_request(endpoint_name=f"ep{n:03d}"))

        listed = Client(server.url).get("/api/rollouts").json()["rollouts"]
    finally:
        server.stop()

    assert sorted(r["instance_id"] for r in listed) == [f"rollout-ep{n:03d}" for n in range(130)]
