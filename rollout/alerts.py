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

    def dimension_values(self, names: Sequence[str]) -> tuple[str, ...]:
        """The values of every dimension whose name (case-insensitive) is in ``names``, in order, once each."""
        values = [value for name, value in self.dimensions if name.lower() in names]
        return tuple(dict.fromkeys(values))

    def summary(self) -> dict[str, Any]:
        """A JSON record of the alert for status output and logs."""
        return {
            "alert_id": self.alert_id, "rule": self.rule, "monitor_condition": self.monitor_condition,
            "signal_type": self.signal_type, "fired_at": self.fired_at, "resolved_at": self.resolved_at,
        }


def parse_alert(payload: Any) -> Alert:
    """Parse a common-alert-schema payload; raise ``InvalidAlert`` saying what is missing or malformed.

    Everything a payload can get wrong for good (the schema id, ``data`` or ``essentials`` not
    objects, a missing rule, condition or target, a field of the wrong type, ``dimensions`` that
    are not a list of name/value objects) is an ``InvalidAlert``: sending the same payload again
    can never succeed.
    """
    if not isinstance(payload, Mapping) or payload.get("schemaId") != COMMON_SCHEMA:
        raise InvalidAlert(
            "payload is not the Azure Monitor common alert schema (schemaId "
            f"{COMMON_SCHEMA!r}); turn on 'Enable the common alert schema' for this webhook in the action group"
        )
    data = payload.get("data")
    if not isinstance(data, Mapping):
        raise InvalidAlert("data is missing or not an object")
    essentials = data.get("essentials")
    if not isinstance(essentials, Mapping):
        raise InvalidAlert("data.essentials is missing or not an object")
    for key in ("alertRule", "monitorCondition", "alertTargetIDs"):
        if not essentials.get(key):
            raise InvalidAlert(f"data.essentials.{key} is missing")
    if essentials["monitorCondition"] not in ("Fired", "Resolved"):
        raise InvalidAlert("data.essentials.monitorCondition must be Fired or Resolved")
    targets = essentials["alertTargetIDs"]
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise InvalidAlert("data.essentials.alertTargetIDs must be a list of resource ids")
    text = {key: _optional_text(essentials, key) for key in _TEXT_FIELDS}
    return Alert(
        alert_id=text["alertId"] or text["originAlertId"] or "",
        rule=_text(essentials, "alertRule"),
        monitor_condition=essentials["monitorCondition"],
        signal_type=text["signalType"] or "",
        target_ids=tuple(targets),
        dimensions=_dimensions(data.get("alertContext")),
        fired_at=text["firedDateTime"],
        resolved_at=text["resolvedDateTime"],
        severity=text["severity"],
    )


_TEXT_FIELDS = ("alertId", "originAlertId", "signalType", "firedDateTime", "resolvedDateTime", "severity")


def _text(essentials: Mapping[str, Any], key: str) -> str:
    value = essentials.get(key)
    if not isinstance(value, str):
        raise InvalidAlert(f"data.essentials.{key} must be a string")
    return value


def _optional_text(essentials: Mapping[str, Any], key: str) -> str | None:
    return None if essentials.get(key) is None else _text(essentials, key)


def _dimensions(context: Any) -> tuple[tuple[str, str], ...]:
    """Dimensions of every criterion of a metric or log-search (v2) alert; none for other kinds.

    Raises ``InvalidAlert`` when ``condition``, ``allOf``, a criterion, ``dimensions`` or a
    dimension has the wrong shape (a dimension without a value is skipped, as before).
    """
    if context is None or (isinstance(context, Mapping) and context.get("condition") is None):
        return ()
    if not isinstance(context, Mapping):
        raise InvalidAlert("data.alertContext must be an object")
    condition = context["condition"]
    if not isinstance(condition, Mapping):
        raise InvalidAlert("data.alertContext.condition must be an object")
    criteria = condition.get("allOf") or []
    if not isinstance(criteria, list) or not all(isinstance(c, Mapping) for c in criteria):
        raise InvalidAlert("data.alertContext.condition.allOf must be a list of objects")
    found: list[tuple[str, str]] = []
    for criterion in criteria:
        dimensions = criterion.get("dimensions") or []
        if not isinstance(dimensions, list):
            raise InvalidAlert("data.alertContext.condition.allOf[].dimensions must be a list")
        for dim in dimensions:
            name, value = (dim.get("name"), dim.get("value")) if isinstance(dim, Mapping) else (None, None)
            if not isinstance(name, str) or isinstance(value, (Mapping, list)):
                raise InvalidAlert("each dimension must be an object with a string name and a value")
            if value is not None:
                found.append((name, str(value)))
    return tuple(found)


@dataclass(frozen=True)
class AlertTarget:
    """A managed endpoint an alert is about.

    ``deployments`` are the deployments the alert names for it (lower-cased; from the target
    id and every ``deployment`` dimension); empty when it is about the endpoint as a whole.
    """

    endpoint: str
    workspace: WorkspaceRef | None
    deployments: tuple[str, ...] = ()


@dataclass(frozen=True)
class ManagedScope:
    """What this app manages: Azure ML workspaces, and Log Analytics workspaces (ARM ids) whose
    log search alerts carry ``EndpointName`` dimensions for them."""

    workspaces: tuple[WorkspaceRef, ...]
    log_analytics_ids: tuple[str, ...] = ()

    def workspace_for(self, sub: str, rg: str, ws: str) -> WorkspaceRef | None:
        """The managed workspace with these ARM name parts (case-insensitive), if any."""
        wanted = WorkspaceRef(sub, rg, ws)
        return next((workspace for workspace in self.workspaces if workspace == wanted), None)


def locate(alert: Alert, scope: ManagedScope) -> tuple[AlertTarget, ...]:
    """Every managed endpoint an alert concerns, in the order its target ids name them; none when
    it is outside what this app manages.

    Every target id counts: one naming an online endpoint (or one of its deployments) in a
    managed workspace names that endpoint; one naming a managed Azure ML workspace or Log
    Analytics workspace names every endpoint of the ``EndpointName`` dimensions. Each endpoint
    carries every deployment the alert names: the id's own, and every ``deployment`` /
    ``DeploymentName`` dimension. Ids and names are compared case-insensitively.
    """
    found: list[AlertTarget] = []
    dimension_deployments = tuple(d.lower() for d in alert.dimension_values(_DEPLOYMENT_DIMENSIONS))
    managed_logs = {i.lower().rstrip("/") for i in scope.log_analytics_ids}
    for target_id in alert.target_ids:
        match = _ARM_ML.match(target_id.lower())
        workspace = scope.workspace_for(match["sub"], match["rg"], match["ws"]) if match else None
        if match and workspace and match["ep"]:
            own = (match["dep"],) if match["dep"] else ()
            found.append(AlertTarget(match["ep"], workspace, _unique(own + dimension_deployments)))
        elif workspace or target_id.lower().rstrip("/") in managed_logs:
            found += [AlertTarget(endpoint.lower(), workspace, dimension_deployments)
                      for endpoint in alert.dimension_values(_ENDPOINT_DIMENSIONS)]
    return _merged(found)


def _unique(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _merged(targets: list[AlertTarget]) -> tuple[AlertTarget, ...]:
    """One target per (endpoint, workspace): deployments joined, and about the whole endpoint
    when any of its targets is."""
    merged: dict[tuple[str, WorkspaceRef | None], AlertTarget] = {}
    for target in targets:
        key = (target.endpoint, target.workspace)
        seen = merged.get(key)
        if seen is None:
            merged[key] = target
        elif seen.deployments and target.deployments:
            merged[key] = AlertTarget(target.endpoint, seen.workspace, _unique(seen.deployments + target.deployments))
        else:
            merged[key] = AlertTarget(target.endpoint, seen.workspace)
    return tuple(merged.values())


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

    Fired rolls back, unless the alert names only deployments other than the new one (then it is
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
    if target.deployments and rollout.new_deployment.lower() not in target.deployments:
        named = ", ".join(repr(d) for d in target.deployments)
        reason = f"alert {alert.rule!r} fired for deployment {named}, not the new deployment"
        return AlertDecision("record", reason, rollout.instance_id)
    return AlertDecision("rollback", f"alert {alert.rule!r} fired", rollout.instance_id)


_STRENGTH = {"ignore": 0, "record": 1, "rollback": 2}


def strongest(decisions: Sequence[AlertDecision]) -> AlertDecision | None:
    """The decision that matters most: rollback over record over ignore, the first among equals;
    None when there is none."""
    return max(decisions, key=lambda d: _STRENGTH[d.action], default=None)
