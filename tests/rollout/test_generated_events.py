"""Random control events at random moments, against random Azure faults (hypothesis).

Each example drives the registered orchestrator through ``tests.rollout.sdk_history.Driver``
(the SDK's replay, the host's shim and the framework's determinism check) with a generated
sequence of events injected at generated turns (while pre-flight runs, during an activity, a
retry wait, a window timer, a rollback's retries) and generated fault sequences for every
activity. A late ``resume`` then ``abort`` (or ``resolve``) bound the run. It must end, never
fail without a reason, and its record must show the traffic the endpoint really has.
``AML_ROLLOUT_HYPOTHESIS_EXAMPLES`` raises the number of examples (default 40).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rollout.sdk_history import Driver, SimpleEndpoint, transient

EXAMPLES = int(os.environ.get("AML_ROLLOUT_HYPOTHESIS_EXAMPLES", "40"))
NOTE = {"alert": {"rule": "r", "monitor_condition": "Resolved"}}
FIRED = {"alert": {"rule": "r", "monitor_condition": "Fired"}, "reason": "alert 'r' fired"}
PERMISSION = {"kind": "PermissionDenied", "message": "403", "retryable": False, "retry_after": None}
CONFLICT = {"kind": "UpdateConflict", "message": "409", "retryable": True, "retry_after": None}

events = st.sampled_from([("pause", None), ("resume", None), ("promote", None), ("abort", None),
                          ("rollback", FIRED), ("alert", NOTE), ("resolve", None)])
errors = st.sampled_from([None, transient(), transient(retry_after=30), PERMISSION, CONFLICT])
faults = st.fixed_dictionaries({name: st.lists(errors, max_size=8)
                                for name in ("preflight", "read_traffic", "set_traffic", "check_health")})
injections = st.dictionaries(st.integers(min_value=0, max_value=40), st.lists(events, min_size=1, max_size=4),
                             max_size=8)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inject=injections, fault_plan=faults)
def test_any_events_at_any_moment_end_with_a_reason_and_the_traffic_as_it_is(inject, fault_plan) -> None:
    endpoint = SimpleEndpoint(fault_plan)
    late = {**inject, 45: [*inject.get(45, []), ("resume", None)], 50: [("abort", None), ("resolve", None)]}
    state = Driver(endpoint).run(late, max_turns=600)
    record = state["output"]
    assert record["outcome"] in ("promoted", "rolled_back", "aborted", "failed") and record["reason"]
    if record["plan"] is not None:
        assert record["final_traffic"] == endpoint.traffic
    else:
        assert "set_traffic" not in endpoint.calls and record["final_traffic"] in ({}, endpoint.traffic)
    if record["outcome"] in ("rolled_back", "aborted"):
        assert endpoint.traffic.get("green-v2", 0) == 0, "back on the old deployment"
