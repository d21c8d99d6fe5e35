"""settings.py: the one place that reads the environment."""

import json
import re
from pathlib import Path

import pytest

import settings
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


class RecordingEnvironment(dict[str, str]):
    """An environment that records every name looked up in it."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)


EXAMPLE = json.loads((Path(__file__).resolve().parents[2] / "local.settings.example.json").read_text())["Values"]


def test_the_example_local_settings_show_every_setting_the_app_reads():
    env = RecordingEnvironment(FULL)
    load_settings(env)
    assert env.read and env.read <= set(EXAMPLE)
    assert env.read <= set(re.findall(r"\b[A-Z][A-Z_]+[A-Z]\b", settings.__doc__))   # and the docstring explains each


def test_the_example_local_settings_load_and_show_the_user_assigned_identity_setting():
    loaded = load_settings(EXAMPLE)
    assert (loaded.cloud, loaded.cloud_metadata_url, loaded.max_alert_bytes, loaded.extra_workspaces) == (
        "AzureCloud", None, 262144, ())
    assert "AZURE_CLIENT_ID" in EXAMPLE and "user-assigned" in settings.__doc__


@pytest.mark.parametrize(("env", "cloud", "url"), [
    pytest.param({}, "AzureCloud", None, id="nothing-set-public-azure"),
    pytest.param({"AML_ROLLOUT_CLOUD": "AzureChinaCloud"}, "AzureChinaCloud", None, id="named-public-cloud"),
    pytest.param({"AML_ROLLOUT_CLOUD": "StackHub", "ARM_CLOUD_METADATA_URL": "https://arm.local/metadata"},
                 "StackHub", "https://arm.local/metadata", id="private-cloud-with-its-document"),
    pytest.param({"AML_ROLLOUT_CLOUD": "", "ARM_CLOUD_METADATA_URL": ""}, "AzureCloud", None, id="both-empty"),
])
def test_the_cloud_settings(env, cloud, url):
    loaded = load_settings(env)
    assert (loaded.cloud, loaded.cloud_metadata_url) == (cloud, url)


@pytest.mark.parametrize("env", [
    pytest.param({"ARM_CLOUD_METADATA_URL": "https://arm.local/metadata"}, id="url-alone"),
    pytest.param({"ARM_CLOUD_METADATA_URL": "https://arm.local/metadata", "AML_ROLLOUT_CLOUD": " "}, id="url-blank-cloud"),
])
def test_a_metadata_url_without_a_cloud_name_is_refused_not_public_azure(env):
    with pytest.raises(ValueError, match="ARM_CLOUD_METADATA_URL is set but AML_ROLLOUT_CLOUD is not"):
        load_settings(env)
