"""The app settings the templates set against what settings.py reads: nothing missing, nothing stale.

What settings.py reads is found in its own code (not a copied list): every ``env.get(...)`` /
``env[...]`` key, where a key is a literal, ``PREFIX + "NAME"``, or ``PREFIX + name`` for each
literal of the tuple a comprehension iterates.
"""

from __future__ import annotations

import ast
import re

import settings as app_settings
from tests.infra.templates import ROOT, expression_text, keys_in, parse, source

SETTING_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def settings_read_by_app() -> set[str]:
    tree = ast.parse((ROOT / "settings.py").read_text())
    prefix = app_settings.PREFIX
    found: set[str] = set()

    def key_of(node: ast.expr, loop_values: dict[str, list[str]]) -> list[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and \
                isinstance(node.left, ast.Name) and node.left.id == "PREFIX":
            if isinstance(node.right, ast.Constant):
                return [prefix + node.right.value]
            if isinstance(node.right, ast.Name):
                return [prefix + value for value in loop_values.get(node.right.id, [])]
        return []

    loops: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.comprehension) and isinstance(node.target, ast.Name) and isinstance(node.iter, ast.Tuple):
            loops[node.target.id] = [e.value for e in node.iter.elts if isinstance(e, ast.Constant)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "env" and node.args:
            found.update(key_of(node.args[0], loops))
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "env":
            found.update(key_of(node.slice, loops))
    return {name for name in found if SETTING_NAME.match(name)}


def settings_set_by_templates() -> set[str]:
    """Every app-setting name main.bicep's appSettings variable can produce (all branches)."""
    return {key for key in keys_in(parse("main.bicep")["variables"]["appSettings"]["value"]) if SETTING_NAME.match(key)}


def settings_left_to_defaults() -> set[str]:
    """Names main.bicep says it leaves to settings.py's defaults (its "Left to the app's defaults:" comment)."""
    text = source("main.bicep")
    comment = text[text.index("Left to the app's defaults:"):]
    comment = comment[:comment.index("\nvar ")]
    return set(re.findall(r"\b[A-Z][A-Z0-9_]{3,}\b", comment))


def test_the_app_reads_what_this_test_thinks() -> None:
    read = settings_read_by_app()
    assert {"AML_ROLLOUT_SUBSCRIPTION_ID", "AML_ROLLOUT_RESOURCE_GROUP", "AML_ROLLOUT_WORKSPACE_NAME",
            "AML_ROLLOUT_CLOUD", "ARM_CLOUD_METADATA_URL"} <= read


def test_no_setting_the_templates_set_is_stale() -> None:
    stale = settings_set_by_templates() - settings_read_by_app()
    assert not stale, f"app settings nobody reads: {sorted(stale)}"


def test_every_setting_the_app_reads_is_set_or_knowingly_left_to_its_default() -> None:
    missing = settings_read_by_app() - settings_set_by_templates() - settings_left_to_defaults()
    assert not missing, f"settings.py reads {sorted(missing)}: set them in main.bicep or say they keep their default"
    assert not settings_left_to_defaults() & settings_set_by_templates()


def test_the_workspace_triple_is_always_set() -> None:
    always = parse("main.bicep")["variables"]["appSettings"]["value"]["function"]["parameters"]["arg_1"]
    assert always["AML_ROLLOUT_SUBSCRIPTION_ID"] == "amlSubscription"
    assert always["AML_ROLLOUT_RESOURCE_GROUP"] == "amlResourceGroupName"
    assert always["AML_ROLLOUT_WORKSPACE_NAME"] == "amlWorkspaceName"
    assert expression_text(always["AML_ROLLOUT_CLOUD"]) == "property_accessor(environment(), name)"


def test_log_analytics_id_is_set_exactly_when_its_reader_role_is() -> None:
    args = parse("main.bicep")["variables"]["appSettings"]["value"]["function"]["parameters"]
    branch, = [a for a in args.values() if "AML_ROLLOUT_LOG_ANALYTICS_WORKSPACE_ID" in keys_in(a)]
    assert branch["operator"]["operands"]["condition"] == "logAnalyticsMetrics"
    assert parse("main.bicep")["modules"]["appRbac"]["config"]["params"]["logAnalyticsMetrics"] == "logAnalyticsMetrics"


def test_host_settings_use_the_identity_for_storage_and_telemetry() -> None:
    host = parse("modules/function-app.bicep")["variables"]["hostSettings"]["value"]
    assert host["AzureWebJobsStorage__credential"] == "managedidentity"
    for name in ("AzureWebJobsStorage__clientId", "AZURE_CLIENT_ID"):
        assert host[name] == "identityClientId"
    for service in ("blob", "queue", "table"):
        assert expression_text(host[f"AzureWebJobsStorage__{service}ServiceUri"]).endswith(f"primaryEndpoints, {service})))")
    assert host["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"
    forbidden = {"AzureWebJobsStorage", "AzureWebJobsStorage__managedIdentityResourceId", "FUNCTIONS_WORKER_RUNTIME",
                 "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING"}
    every = set(host) | keys_in(parse("main.bicep")["variables"]) | keys_in(parse("modules/function-app.bicep"))
    assert not forbidden & every


def test_scheduler_backend_overrides_host_json_provider_through_settings() -> None:
    durable = parse("main.bicep")["variables"]["durableSettings"]["value"]["operator"]["operands"]
    assert durable["condition"] == "useScheduler" and durable["false_value"] == {}
    settings = durable["true_value"]
    assert settings["AzureFunctionsJobHost__extensions__durableTask__storageProvider__type"] == "azureManaged"
    assert settings["AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName"] == \
        "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"
    assert "Authentication=ManagedIdentity;ClientID=" in settings["DURABLE_TASK_SCHEDULER_CONNECTION_STRING"]
