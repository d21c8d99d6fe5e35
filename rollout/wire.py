"""Decoding values that crossed a Durable Functions boundary.

The Python ``DurableOrchestrationClient`` JSON-encodes orchestration inputs and event data and
then posts that text *as JSON*, so the host stores a JSON string holding JSON text: what arrives
through ``get_input()``, an external event or a status ``input`` may be that text rather than
the object. Values scheduled by the host itself (activity results) arrive decoded.
"""

from __future__ import annotations

import json
from typing import Any

# The runtime statuses of an orchestration that has not ended (the Durable management API's
# ``runtimeStatus`` names). The one definition: the API, the emulator and the tests use it.
RUNNING_STATUSES = ("Pending", "Running", "ContinuedAsNew", "Suspended")


def decoded(value: Any) -> Any:
    """``value`` itself, or the JSON it holds when it is a string that holds a JSON object or list."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
