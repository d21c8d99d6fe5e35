"""The one place that reads the environment (App Settings in Azure, local.settings.json locally).

    AML_ROLLOUT_SUBSCRIPTION_ID       the Azure ML workspace the app manages: subscription id
    AML_ROLLOUT_RESOURCE_GROUP        ... its resource group
    AML_ROLLOUT_WORKSPACE_NAME        ... its name
    AML_ROLLOUT_EXTRA_WORKSPACES      more managed workspaces, "sub/rg/name" separated by commas
                                      (rollout requests may name them in ``workspace``)
    AML_ROLLOUT_LOG_ANALYTICS_WORKSPACE_ID   Log Analytics workspace id (GUID) for metrics_source
                                      "log_analytics"
    AML_ROLLOUT_LOG_ANALYTICS_RESOURCE_ID    its ARM id, so log search alerts scoped to it are routed
    AML_ROLLOUT_METRICS_LAG_SECONDS   how far before "now" metric queries end (ingestion lag), default 60
    AML_ROLLOUT_CLOUD                 AzureCloud (default), AzureUSGovernment, AzureChinaCloud, or the
                                      name of a cloud described at ARM_CLOUD_METADATA_URL
    ARM_CLOUD_METADATA_URL            ARM metadata document of a private cloud (Azure Stack), the
                                      setting azure-ai-ml itself reads. Set alone (the Azure CLI's
                                      convention) it is refused: a document may describe several
                                      clouds, so AML_ROLLOUT_CLOUD must name the one to use
    AML_ROLLOUT_MAX_ALERT_BYTES       largest alert webhook body accepted, default 262144
    AML_ROLLOUT_NOTIFY                default notification targets for every rollout, a JSON list of
                                      {url, format, events} as in a request's ``notify`` (rollout.notify)
    AML_ROLLOUT_ALERT_AUTH_TENANT_ID  with ..._AUDIENCE: the alert webhook takes Entra ID tokens from an
                                      Azure Monitor Secure Webhook instead of a function key (api/entra.py)
    AML_ROLLOUT_ALERT_AUTH_AUDIENCE   accepted token audiences (app id, id URI), separated by commas

Not read here: the identity. ``DefaultAzureCredential`` (azure-identity) reads its own settings,
for a user-assigned managed identity ``AZURE_CLIENT_ID`` (its client id; without it the
system-assigned identity is used), locally ``AZURE_TENANT_ID`` / ``AZURE_CLIENT_ID`` /
``AZURE_CLIENT_SECRET`` for a service principal, or the developer's ``az login``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

from rollout.alerts import ManagedScope
from rollout.errors import InvalidRequest
from rollout.model import WorkspaceRef
from rollout.notify import NotifyTarget, parse_targets

if TYPE_CHECKING:
    from adapters.azure_backend import AzureSettings

PREFIX = "AML_ROLLOUT_"


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment, read once."""

    workspace: WorkspaceRef | None
    extra_workspaces: tuple[WorkspaceRef, ...] = ()
    log_analytics_workspace_id: str | None = None
    log_analytics_resource_id: str | None = None
    metrics_lag_seconds: float = 60.0
    cloud: str = "AzureCloud"
    cloud_metadata_url: str | None = None
    max_alert_bytes: int = 262144
    notify_targets: tuple[NotifyTarget, ...] = ()
    alert_auth_tenant_id: str | None = None
    alert_auth_audiences: tuple[str, ...] = ()

    @property
    def azure(self) -> AzureSettings:
        """What the Azure adapters need (imports no Azure SDK)."""
        from adapters.azure_backend import AzureSettings

        workspace = self.workspace
        return AzureSettings(
            subscription_id=workspace.subscription_id if workspace else "",
            resource_group=workspace.resource_group if workspace else "",
            workspace_name=workspace.workspace_name if workspace else "",
            log_analytics_workspace_id=self.log_analytics_workspace_id,
            metrics_lag_seconds=self.metrics_lag_seconds,
            cloud=self.cloud,
            cloud_metadata_url=self.cloud_metadata_url,
        )

    def managed_scope(self) -> ManagedScope:
        """The workspaces (and Log Analytics workspace) whose alerts this app acts on."""
        workspaces = ((self.workspace,) if self.workspace else ()) + self.extra_workspaces
        logs = (self.log_analytics_resource_id,) if self.log_analytics_resource_id else ()
        return ManagedScope(workspaces, logs)


def _workspace(env: Mapping[str, str]) -> WorkspaceRef | None:
    parts = [env.get(PREFIX + key, "").strip() for key in ("SUBSCRIPTION_ID", "RESOURCE_GROUP", "WORKSPACE_NAME")]
    return WorkspaceRef(*parts) if all(parts) else None


def _extra_workspaces(text: str) -> tuple[WorkspaceRef, ...]:
    found = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        pieces = item.strip("/").split("/")
        if len(pieces) != 3 or not all(pieces):
            raise ValueError(f"{PREFIX}EXTRA_WORKSPACES: {item!r} is not subscription/resource-group/workspace")
        found.append(WorkspaceRef(*pieces))
    return tuple(found)


def _notify_targets(text: str) -> tuple[NotifyTarget, ...]:
    """``AML_ROLLOUT_NOTIFY``; ``ValueError`` naming the setting and the bad field (never the URL)."""
    if not text.strip():
        return ()
    try:
        return parse_targets(json.loads(text), PREFIX + "NOTIFY")
    except ValueError:
        raise ValueError(f"{PREFIX}NOTIFY is not JSON: it must be a list of {{url, format, events}}") from None
    except InvalidRequest as exc:
        raise ValueError("; ".join(f"{p.field}: {p.message}" for p in exc.problems)) from None


def _cloud(env: Mapping[str, str]) -> str:
    name = env.get(PREFIX + "CLOUD", "").strip()
    if not name and env.get("ARM_CLOUD_METADATA_URL", "").strip():
        raise ValueError(f"ARM_CLOUD_METADATA_URL is set but {PREFIX}CLOUD is not: set {PREFIX}CLOUD to the name of "
                         "the cloud that document describes (or unset ARM_CLOUD_METADATA_URL for public Azure)")
    return name or "AzureCloud"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``env`` (default: the process environment); raise ``ValueError`` naming a bad one."""
    env = os.environ if env is None else env
    return Settings(
        workspace=_workspace(env),
        extra_workspaces=_extra_workspaces(env.get(PREFIX + "EXTRA_WORKSPACES", "")),
        log_analytics_workspace_id=env.get(PREFIX + "LOG_ANALYTICS_WORKSPACE_ID") or None,
        log_analytics_resource_id=env.get(PREFIX + "LOG_ANALYTICS_RESOURCE_ID") or None,
        metrics_lag_seconds=float(env.get(PREFIX + "METRICS_LAG_SECONDS", "60")),
        cloud=_cloud(env),
        cloud_metadata_url=env.get("ARM_CLOUD_METADATA_URL") or None,
        max_alert_bytes=int(env.get(PREFIX + "MAX_ALERT_BYTES", "262144")),
        notify_targets=_notify_targets(env.get(PREFIX + "NOTIFY", "")),
        alert_auth_tenant_id=env.get(PREFIX + "ALERT_AUTH_TENANT_ID", "").strip() or None,
        alert_auth_audiences=tuple(filter(None, (a.strip() for a in env.get(PREFIX + "ALERT_AUTH_AUDIENCE", "").split(",")))),
    )
