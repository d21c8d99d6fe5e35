"""settings.py: the one place that reads the environment."""

import pytest

from rollout.model import WorkspaceRef
from settings import load_settings

FULL = {
    "AML_ROLLOUT_SUBSCRIPTION_ID": "sub-1", "AML_ROLLOUT_RESOURCE_GROUP": "rg-1", "AML_ROLLOUT_WORKSPACE_NAME": "ws-1",
    "AML_ROLLOUT_EXTRA_WORKSPACES": "sub-2/rg-2/ws-2, sub-3/rg-3/ws-3",
    "AML_ROLLOUT_LOG_ANALYTICS_WORKSPACE_ID": "1111", "AML_ROLLOUT_LOG_ANALYTICS_RESOURCE_ID": "/subscriptions/x/la",
    "AML_ROLLOUT_METRICS_LAG_SECONDS": "90", "AML_ROLLOUT_CLOUD": "AzureUSGovernment",
    "ARM_CLOUD_METADATA_URL": "https://management.local.azurestack.external/metadata/endpoints?api-version=2015-01-01",
}


def test_reads_every_setting():
    settings = load_settings(FULL)
    assert settings.workspace == WorkspaceRef("sub-1", "rg-1", "ws-1")
    assert settings.extra_workspaces == (WorkspaceRef("sub-2", "rg-2", "ws-2"), WorkspaceRef("sub-3", "rg-3", "ws-3"))
    scope = settings.managed_scope()
    assert len(scope.workspaces) == 3 and scope.log_analytics_ids == ("/subscriptions/x/la",)
    azure = settings.azure
    assert (azure.subscription_id, azure.workspace_name, azure.log_analytics_workspace_id) == ("sub-1", "ws-1", "1111")
    assert (azure.metrics_lag_seconds, azure.cloud) == (90.0, "AzureUSGovernment")
    assert azure.cloud_metadata_url == FULL["ARM_CLOUD_METADATA_URL"]


def test_defaults_with_an_empty_environment():
    settings = load_settings({})
    assert settings.workspace is None and settings.managed_scope().workspaces == ()
    assert (settings.metrics_lag_seconds, settings.cloud, settings.max_alert_bytes) == (60.0, "AzureCloud", 262144)
    assert settings.azure.default_workspace() is None


def test_a_partial_workspace_is_no_workspace():
    assert load_settings({"AML_ROLLOUT_SUBSCRIPTION_ID": "s", "AML_ROLLOUT_WORKSPACE_NAME": "w"}).workspace is None


@pytest.mark.parametrize("value", ["sub/rg", "a/b/c/d", "/rg/ws"])
def test_bad_extra_workspace_names_the_setting(value):
    with pytest.raises(ValueError) as caught:
        load_settings({"AML_ROLLOUT_EXTRA_WORKSPACES": value})
    assert "AML_ROLLOUT_EXTRA_WORKSPACES" in str(caught.value)
