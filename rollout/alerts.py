"""Azure Monitor common-alert-schema parsing and routing decisions.

``parse_alert`` turns a webhook payload into an ``Alert``; ``locate`` finds which managed
endpoint (and deployment) it is about; ``decide`` says what to do given the endpoint's running
rollout. Only the endpoint mapping chooses the rollout: nothing else in a payload (custom
properties such as ``rollbackTo`` included) can pick an orchestration instance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from rollout.errors import InvalidAlert
from rollout.model import WorkspaceRef

COMMON_SCHEMA = "azureMonitorCommonAlertSchema"
# Dimension names carrying the endpoint and deployment: metric alerts split by `deployment`;
# log search alerts over AmlOnlineEndpointTrafficLog by `EndpointName` / `DeploymentName`.
_ENDPOINT_DIMENSIONS = ("endpointname", "endpoint")
_DEPLOYMENT_DIMENSIONS = ("deployment", "deploymentname")
_ARM_ML = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.machinelearningservices"
    r"/workspaces/(?P<ws>[^/]+)(?:/onlineendpoints/(?P<ep>[^/]+)(?:/deployments/(?P<dep>[^/]+))?)?/?$"
)


@dataclass(frozen=True)
class Alert:
    """The parts of a common-schema alert that routing needs."""

    alert_id: str
    rule: str
    monitor_condition: str
    signal_type: str
    target_ids: tuple[str, ...]
    dimensions: tuple[tuple[str, str], ...]
    fired_at: str | None = None
    resolved_at: str | None = None
    severity: str | None = None

    def dimension(self, names: Sequence[str]) -> str | None:
        """The value of the first dimension whose name (case-insensitive) is in ``names``."""
        for name, value in self.dimensions:
            if name.lower() in names:
                return value
        return None

    def summary(self) -> dict[str, Any]:
        """A JSON record of the alert for status output and logs."""
        return {
            "alert_id": self.alert_id, "rule": self.rule, "monitor_condition": self.monitor_condition,
            "signal_type": self.signal_type, "fired_at": self.fired_at, "resolved_at": self.resolved_at,
        }


def parse_alert(payload: Any) -> Alert:
    """Parse a common-alert-schema payload; raise ``InvalidAlert`` saying what is missing."""
    if not isinstance(payload, Mapping) or payload.get("schemaId") != COMMON_SCHEMA:
        raise InvalidAlert(
            "payload is not the Azure Monitor common alert schema (schemaId "
            f"{COMMON_SCHEMA!r}); turn on 'Enable the common alert schema' for this webhook in the action group"
        )
    essentials = (payload.get("data") or {}).get("essentials")
    if not isinstance(essentials, Mapping):
        raise InvalidAlert("data.essentials is missing")
    for key in ("alertRule", "monitorCondition", "alertTargetIDs"):
        if not essentials.get(key):
            raise InvalidAlert(f"data.essentials.{key} is missing")
    if essentials["monitorCondition"] not in ("Fired", "Resolved"):
        raise InvalidAlert("data.essentials.monitorCondition must be Fired or Resolved")
    targets = essentials["alertTargetIDs"]
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise InvalidAlert("data.essentials.alertTargetIDs must be a list of resource ids")
    return Alert(
        alert_id=str(essentials.get("alertId") or essentials.get("originAlertId") or ""),
        rule=str(essentials["alertRule"]),
        monitor_condition=essentials["monitorCondition"],
        signal_type=str(essentials.get("signalType") or ""),
        target_ids=tuple(targets),
        dimensions=_dimensions(payload["data"].get("alertContext")),
        fired_at=essentials.get("firedDateTime"),
        resolved_at=essentials.get("resolvedDateTime"),
        severity=essentials.get("severity"),
    )


def _dimensions(context: Any) -> tuple[tuple[str, str], ...]:
    """Dimensions of every criterion of a metric or log-search (v2) alert; none for others."""
    if not isinstance(context, Mapping):
        return ()
    condition = context.get("condition")
    criteria = condition.get("allOf") if isinstance(condition, Mapping) else None
    found: list[tuple[str, str]] = []
    for criterion in criteria if isinstance(criteria, list) else []:
        for dim in (criterion.get("dimensions") or []) if isinstance(criterion, Mapping) else []:
            if isinstance(dim, Mapping) and isinstance(dim.get("name"), str) and dim.get("value") is not None:
                found.append((dim["name"], str(dim["value"])))
    return tuple(found)


@dataclass(frozen=True)
class AlertTarget:
    """The managed endpoint an alert is about; ``deployment`` when the alert names one."""

    endpoint: str
    workspace: WorkspaceRef | None
    deployment: str | None = None


@dataclass(frozen=True)
class ManagedScope:
    """What this app manages: Azure ML workspaces, and Log Analytics workspaces (ARM ids) whose
    log search alerts carry ``EndpointName`` dimensions for them."""

    workspaces: tuple[WorkspaceRef, ...]
    log_analytics_ids: tuple[str, ...] = ()

    def workspace_for(self, sub: str, rg: str, ws: str) -> WorkspaceRef | None:
        """The managed workspace with these ARM name parts (case-insensitive), if any."""
        for workspace in self.workspaces:
            if (workspace.subscription_id.lower(), workspace.resource_group.lower(),
                    workspace.workspace_name.lower()) == (sub.lower(), rg.lower(), ws.lower()):
                return workspace
        return None


def locate(alert: Alert, scope: ManagedScope) -> AlertTarget | None:
    """The managed endpoint an alert concerns, or None when it is outside what this app manages.

    A target id naming an online endpoint or one of its deployments in a managed workspace
    wins; a target id naming a managed Azure ML workspace or Log Analytics workspace takes
    the endpoint from the ``EndpointName`` dimension. Ids are compared case-insensitively.
    """
    for target_id in alert.target_ids:
        match = _ARM_ML.match(target_id.lower())
        if match is None:
            continue
        workspace = scope.workspace_for(match["sub"], match["rg"], match["ws"])
        if workspace is None:
            continue
        if match["ep"]:
            deployment = match["dep"] or alert.dimension(_DEPLOYMENT_DIMENSIONS)
            return AlertTarget(match["ep"], workspace, deployment)
        return _from_dimensions(alert, workspace)
    managed_logs = {i.lower().rstrip("/") for i in scope.log_analytics_ids}
    if any(t.lower().rstrip("/") in managed_logs for t in alert.target_ids):
        return _from_dimensions(alert, None)
    return None


def _from_dimensions(alert: Alert, workspace: WorkspaceRef | None) -> AlertTarget | None:
    endpoint = alert.dimension(_ENDPOINT_DIMENSIONS)
    if not endpoint:
        return None
    return AlertTarget(endpoint.lower(), workspace, alert.dimension(_DEPLOYMENT_DIMENSIONS))


@dataclass(frozen=True)
class RunningRollout:
    """What routing needs to know of the endpoint's running rollout."""

    instance_id: str
    new_deployment: str
    workspace: WorkspaceRef | None = None


@dataclass(frozen=True)
class AlertDecision:
    """``action`` is "rollback" (raise the rollback event), "record" (note it on the rollout) or
    "ignore" (change nothing); ``reason`` says why."""

    action: str
    reason: str
    instance_id: str | None = None


def decide(alert: Alert, target: AlertTarget | None, rollout: RunningRollout | None,
           default_workspace: WorkspaceRef | None = None) -> AlertDecision:
    """What to do with an alert, given the endpoint it concerns and that endpoint's running rollout.

    Fired rolls back, unless the alert names a deployment other than the new one (then it is
    recorded). Resolved is recorded. Anything outside the managed scope, or for an endpoint with
    no running rollout (or one running in another workspace), is ignored.
    """
    if target is None:
        return AlertDecision("ignore", "alert is not about an online endpoint in a workspace this app manages")
    if rollout is None:
        return AlertDecision("ignore", f"endpoint {target.endpoint!r} has no running rollout")
    rollout_workspace = rollout.workspace or default_workspace
    if target.workspace is not None and rollout_workspace is not None and target.workspace != rollout_workspace:
        return AlertDecision("ignore", f"the running rollout of {target.endpoint!r} is in another workspace")
    if alert.monitor_condition == "Resolved":
        return AlertDecision("record", f"alert {alert.rule!r} resolved", rollout.instance_id)
    if target.deployment and target.deployment.lower() != rollout.new_deployment.lower():
        reason = f"alert {alert.rule!r} fired for deployment {target.deployment!r}, not the new deployment"
        return AlertDecision("record", reason, rollout.instance_id)
    return AlertDecision("rollback", f"alert {alert.rule!r} fired", rollout.instance_id)
