"""infra/ and azure.yaml as a whole: every template parses, modules resolve, types and API versions
are published ones, azd conventions hold."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.infra.templates import INFRA, ROOT, bicep_files, parse, resource_config, resources, source

PUBLISHED = json.loads((Path(__file__).parent / "published_api_versions.json").read_text())
FILES = [str(path.relative_to(INFRA)) for path in bicep_files()]


def test_infra_has_the_templates_azd_and_the_hook_use() -> None:
    assert {"main.bicep", "alerts.bicep", "modules/endpoint-alerts.bicep", "modules/action-group.bicep",
            "modules/function-app.bicep"} <= set(FILES)


@pytest.mark.parametrize("relative", FILES)
def test_every_template_parses_with_pycep(relative: str) -> None:
    parsed = parse(relative)
    assert parsed.get("resources") or parsed.get("modules"), f"{relative} declares nothing"


@pytest.mark.parametrize("relative", FILES)
def test_modules_point_at_templates_that_exist(relative: str) -> None:
    for name, module in parse(relative).get("modules", {}).items():
        path = (INFRA / relative).parent / module["detail"]["path"]
        assert path.is_file(), f"{relative}: module {name} -> {path} is missing"


@pytest.mark.parametrize("relative", FILES)
def test_resource_types_and_api_versions_are_published(relative: str) -> None:
    for name, resource in resources(relative).items():
        pair = f"{resource['type']}@{resource['api_version']}"
        assert pair in PUBLISHED["resources"], f"{relative}: {name} uses {pair}, not recorded as published"


def test_list_keys_uses_a_published_function_and_version() -> None:
    text = source("modules/action-group.bicep")
    calls = re.findall(r"listKeys\(resourceId\('([^']+)'.*?'(\d{4}-\d{2}-\d{2})'\)", text)
    assert calls == [("Microsoft.Web/sites/functions", "2024-04-01")]
    assert f"listkeys {calls[0][0]}@{calls[0][1]}" in PUBLISHED["functions"]


def test_every_type_and_version_comment_names_its_source() -> None:
    for relative in FILES:
        if resources(relative):
            assert "bicep-types-az" in source(relative) or relative == "alerts.bicep", relative


# --- azd --------------------------------------------------------------------------------------


AZURE_YAML = yaml.safe_load((ROOT / "azure.yaml").read_text())


def test_azure_yaml_deploys_this_folder_as_a_python_function_app() -> None:
    assert AZURE_YAML["name"] == "aml-rollout"
    (service_name, service), = AZURE_YAML["services"].items()
    assert service == {"project": ".", "language": "python", "host": "function"}
    assert AZURE_YAML["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}


def test_the_function_app_carries_the_azd_service_tag_of_azure_yaml() -> None:
    (service_name,) = AZURE_YAML["services"]
    app = resource_config(resources("modules/function-app.bicep")["app"])
    assert f"'azd-service-name': '{service_name}'" in source("modules/function-app.bicep")
    assert "azd-service-name" in json.dumps(app["tags"])


def test_main_follows_azd_conventions() -> None:
    main = parse("main.bicep")
    assert main["globals"]["scope"]["value"] == "subscription"
    params = main["parameters"]
    assert {"environmentName", "location"} <= set(params)
    location_meta = [d["argument"] for d in params["location"]["decorators"] if d["type"] == "metadata"]
    assert location_meta == [{"azd": {"type": "location"}}]
    assert "'azd-env-name': environmentName" in source("main.bicep")
    assert {"AZURE_LOCATION", "AZURE_TENANT_ID", "AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_NAME"} <= set(main["outputs"])


def test_parameters_file_names_only_parameters_main_declares() -> None:
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = parse("main.bicep")["parameters"]
    assert set(values) <= set(declared)
    required = {name for name, p in declared.items() if p.get("default") is None}
    assert required <= set(values), "a required parameter azd cannot fill"


def test_postdeploy_hook_is_wired_and_executable() -> None:
    hook = AZURE_YAML["hooks"]["postdeploy"]["posix"]
    script = ROOT / hook["run"]
    assert hook["shell"] == "sh" and script.is_file() and script.stat().st_mode & 0o111


def test_funcignore_keeps_infra_and_azd_files_out_of_the_package() -> None:
    ignored = {line.strip() for line in (ROOT / ".funcignore").read_text().splitlines()}
    assert {"infra/", "azure.yaml", ".azure/", ".github/", ".venv/", ".venv-checkov/", "tests/"} <= ignored


# --- the Function App -------------------------------------------------------------------------


def test_flex_consumption_python_311_with_identity_deployment_storage() -> None:
    found = resources("modules/function-app.bicep")
    plan = resource_config(found["plan"])
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"} and plan["properties"]["reserved"] is True
    app = resource_config(found["app"])
    assert app["kind"] == "functionapp,linux"
    config = app["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}
    assert app["identity"]["type"] == "UserAssigned"


def test_storage_takes_no_keys() -> None:
    account = resource_config(resources("modules/storage.bicep")["storage"])["properties"]
    assert account["allowSharedKeyAccess"] is False
    assert account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"


def test_application_insights_takes_only_entra_id_ingestion() -> None:
    found = resources("modules/monitoring.bicep")
    assert resource_config(found["appInsights"])["properties"]["DisableLocalAuth"] is True
    assert resource_config(found["logAnalytics"])["properties"]["features"]["disableLocalAuth"] is True


def test_durable_task_scheduler_hub_is_host_json_hub() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    main = parse("main.bicep")
    assert main["variables"]["taskHubName"]["value"] == host["extensions"]["durableTask"]["hubName"]
    assert main["modules"]["scheduler"]["config"]["config"]["params"]["taskHubName"] == "taskHubName"


@pytest.mark.parametrize("relative", FILES)
def test_every_checkov_skip_gives_a_reason_inside_a_resource(relative: str) -> None:
    lines = source(relative).splitlines()
    for number, line in enumerate(lines):
        if "checkov:skip=" in line:
            check, _, reason = line.split("checkov:skip=", 1)[1].partition(":")
            assert re.fullmatch(r"CKV2?_AZURE_\d+", check) and len(reason.strip()) > 20, f"{relative}:{number + 1}"
            above = next(text for text in reversed(lines[:number]) if not text.strip().startswith("//"))
            assert above.startswith("resource ") and above.endswith("= {"), f"{relative}:{number + 1}"
