"""Hand an Azure Monitor alert to the rollout it concerns: the webhook's core, also used by ``simulate``.

Parse (``rollout.alerts.parse_alert``), locate the managed endpoint, look up its running
rollout, decide, and raise the event: ``rollback`` when a fired alert concerns the new
deployment, ``alert`` (recorded on the rollout) otherwise. Ignored alerts change nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from api.rollouts import find_running_rollout
from rollout.alerts import AlertDecision, ManagedScope, decide, locate, parse_alert, strongest
from rollout.model import WorkspaceRef

log = logging.getLogger("aml_rollout.alerts")


@dataclass(frozen=True)
class AlertOutcome:
    """What was done with an alert, for the webhook's response body and the logs."""

    decision: AlertDecision
    alert: dict[str, Any]
    endpoint: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.decision.action, "reason": self.decision.reason,
                "instance_id": self.decision.instance_id, "endpoint": self.endpoint, "alert": self.alert}


async def deliver_alert(payload: Any, client: Any, scope: ManagedScope,
                        default_workspace: WorkspaceRef | None = None) -> AlertOutcome:
    """Route one alert payload to every managed endpoint it names; raises ``InvalidAlert`` when it
    is not a well-formed common-schema payload. The outcome is the decision that mattered most.

    When raising the event fails and the rollout is no longer running (it ended between the
    lookup and the event: the task hub answers 410), nothing is left to do. Any other error from
    the Durable client (the task hub unreachable, say) propagates: the caller answers so that
    Azure Monitor sends the alert again.
    """
    alert = parse_alert(payload)
    outcome: AlertOutcome | None = None
    for target in locate(alert, scope):     # every endpoint the alert names, each with its own rollout
        rollout = await find_running_rollout(client, target.endpoint)
        decision = decide(alert, target, rollout, default_workspace)
        if decision.action != "ignore" and decision.instance_id:
            event = "rollback" if decision.action == "rollback" else "alert"
            try:
                await client.raise_event(decision.instance_id, event, {"reason": decision.reason, "alert": alert.summary()})
            except Exception:
                if await find_running_rollout(client, target.endpoint) is not None:
                    raise
                decision = AlertDecision("ignore", "the endpoint's rollout ended while the alert was being delivered")
        log.info("alert %s (%s) for %s: %s: %s", alert.rule, alert.monitor_condition, target.endpoint,
                 decision.action, decision.reason)
        if outcome is None or strongest([outcome.decision, decision]) is not outcome.decision:
            outcome = AlertOutcome(decision, alert.summary(), target.endpoint)
    if outcome is None:
        decision = decide(alert, None, None, default_workspace)
        log.info("alert %s (%s): %s: %s", alert.rule, alert.monitor_condition, decision.action, decision.reason)
        outcome = AlertOutcome(decision, alert.summary(), None)
    return outcome
