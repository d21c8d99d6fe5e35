"""No secret crosses a parameter, an output or a setting file: keys are read where they are used."""

from __future__ import annotations

import json
import re

import pytest

from tests.infra.templates import INFRA, bicep_files, expression_text, parse, resource_config, resources, walk

FILES = [str(path.relative_to(INFRA)) for path in bicep_files()]
SECRET_NAME = re.compile(r"key|secret|password|token|connectionstring|sas", re.IGNORECASE)
SECRET_SOURCE = re.compile(r"list[A-Za-z]*\(|ConnectionString|InstrumentationKey|primaryKey|sharedKey", re.IGNORECASE)


@pytest.mark.parametrize("relative", FILES)
def test_no_parameter_carries_a_secret(relative: str) -> None:
    for name, param in parse(relative).get("parameters", {}).items():
        assert not SECRET_NAME.search(name), f"{relative}: parameter {name}"
        assert all(d["type"] != "secure" for d in param["decorators"]), f"{relative}: @secure() parameter {name}"


@pytest.mark.parametrize("relative", FILES)
def test_no_output_carries_a_secret(relative: str) -> None:
    for name, output in parse(relative).get("outputs", {}).items():
        text = expression_text(output["value"])
        assert not SECRET_NAME.search(name), f"{relative}: output {name}"
        assert not SECRET_SOURCE.search(text), f"{relative}: output {name} = {text}"


@pytest.mark.parametrize("relative", FILES)
def test_keys_are_listed_only_inside_the_webhook_receiver(relative: str) -> None:
    parsed = parse(relative)
    hits = [value for value in walk(parsed) if isinstance(value, str) and "listKeys(" in value]
    if relative != "modules/action-group.bicep":
        assert not hits, relative
        return
    assert hits == [parsed["variables"]["keyedReceiver"]["value"]["serviceUri"]]
    receivers = resource_config(resources(relative)["actionGroup"])["properties"]["webhookReceivers"]
    assert expression_text(receivers) == "[conditional(useKey, keyedReceiver, secureReceiver)]"


def test_the_connection_string_is_read_inside_the_app_module_not_passed_in() -> None:
    app = parse("modules/function-app.bicep")
    assert "appInsightsName" in app["parameters"]
    assert expression_text(app["variables"]["hostSettings"]["value"]["APPLICATIONINSIGHTS_CONNECTION_STRING"]) == \
        "property_accessor(appInsights, property_accessor(properties, ConnectionString))"


def test_parameters_file_holds_only_environment_references() -> None:
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    for name, entry in values.items():
        assert re.fullmatch(r"\$\{[A-Z_]+(=[A-Za-z0-9]*)?\}", entry["value"]), name
