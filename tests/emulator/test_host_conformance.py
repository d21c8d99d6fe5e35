"""The task hub refuses what the Functions host and the Durable extension refuse.

Each test names the host code it follows; each fails on an emulator that is more lenient.
"""

from __future__ import annotations

import pytest
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as T

from tests.emulator.test_taskhub import of_type, run_to_end

# --- custom status limit (DurableOrchestrationContext.SetCustomStatus: 16 KB of UTF-16 JSON) -----------


@pytest.mark.parametrize("text, repeat, fails, size_kb", [
    # JSON "xx..x" is repeat + 2 UTF-16 code units, 2 bytes each; the host truncates to whole KB.
    pytest.param("x", 8701, False, None, id="17406-bytes-is-16-KB-and-passes"),
    pytest.param("x", 8702, True, 17, id="17408-bytes-is-17-KB-and-fails"),
    pytest.param("\U0001F600", 4350, False, None, id="emoji-count-two-code-units-4350-pass"),
    pytest.param("\U0001F600", 4351, True, 17, id="emoji-count-two-code-units-4351-fail"),
    pytest.param("é", 8702, True, 17, id="non-ascii-counts-one-code-unit-not-its-utf8-bytes"),
    pytest.param("x", 20000, True, 39, id="size-reported-in-whole-KB"),
])
def test_a_custom_status_over_16_kb_of_utf16_json_fails_the_instance_as_the_host_does(hub, text, repeat, fails, size_kb):
    hub.start("big_status", "s1", {"text": text, "repeat": repeat})
    status = run_to_end(hub, "s1")

    if not fails:
        assert status["runtimeStatus"] == "Completed" and status["customStatus"] == text * repeat
        return
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == ("Orchestrator function 'big_status' failed: The UTF-16 size of the JSON-serialized "
                                f"payload must not exceed 16 KB. The current payload size is {size_kb} KB.")
    assert status["customStatus"] is None
    assert of_type(hub.stored_history("s1"), T.TIMER_CREATED) == []  # no action of that episode was carried out
