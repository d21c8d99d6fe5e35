"""The rollout orchestrator: shift traffic step by step, watch health, roll back on its own.

Gather, decide, apply: activities gather facts (endpoint state, metrics), pure functions from
``rollout`` decide (plan, traffic, verdicts, retries, control events), and the orchestrator
applies the decision (set traffic, start a durable timer). Every wait (activity calls, retry
timers, window timers) is raced against the control events (``orchestrators.waiting``), so an
event acts at the next decision point and never lands on no waiter. A rollback or abort received
before a step is applied means the step is never applied. A rollback never gives up: it is
retried with backoff until traffic is safe or a person sends ``resolve``.

``RolloutRun`` is composed of one part per responsibility, over the shared ``RunState``
(``orchestrators.run_state``: state, activity calls, waits, control events, status):

- ``orchestrators.steps``: the walk (lifecycle, pre-flight, steps, bake, promotion);
- ``orchestrators.health``: the baseline and the observation windows' checks;
- ``orchestrators.traffic``: traffic changes, drift and rollbacks;
- ``orchestrators.notifications``: the notifications and the outcome's;
- ``orchestrators.handover``: continue-as-new and what it carries.

Deterministic and replay-safe: no I/O, no clock but ``context.current_utc_datetime``, no
exception types from activities (expected failures come back as ``{"ok": false}`` results).
An instance started by another orchestration version is not replayed (``orchestrators.redeploy``).
"""

from __future__ import annotations

import azure.durable_functions as df

from orchestrators.handover import CHECKS_PER_EXECUTION, Handover
from orchestrators.health import HealthWatch
from orchestrators.notifications import Notifications
from orchestrators.redeploy import after_redeploy
from orchestrators.run_state import HANDOVER, Gen, StepEnd
from orchestrators.steps import StepWalk
from orchestrators.traffic import TrafficControl
from rollout.plan import parse_request
from rollout.safety import can_replay, carried_of, split_input
from rollout.wire import decoded

__all__ = ["bp", "rollout_orchestrator", "RolloutRun", "StepEnd", "HANDOVER", "CHECKS_PER_EXECUTION"]

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def rollout_orchestrator(context: df.DurableOrchestrationContext) -> Gen:
    """Run one rollout; the input is ``rollout.safety.versioned_input(request)``, the output the final record."""
    raw = decoded(context.get_input())
    version, request, rollback_only = split_input(raw)
    if not can_replay(version):
        return (yield from after_redeploy(context, version, request))
    run = RolloutRun(context, parse_request(request))
    run.raw_request = request
    if rollback_only is not None:
        ended = yield from run.rollback_only(rollback_only)
    else:
        ended = yield from run.execute(carried_of(raw))
    if ended is None:                   # handed over (continue as new)
        return None
    return (yield from run.notify_outcome(ended))


class RolloutRun(StepWalk, HealthWatch, TrafficControl, Notifications, Handover):
    """One rollout's replay: the walk, health, traffic, notifications and handover over one ``RunState``."""
