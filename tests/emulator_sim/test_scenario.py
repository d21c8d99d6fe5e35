"""Scenario files: defaults, and every bad field named."""

from pathlib import Path

import pytest

from emulator.scenario import DEFAULT_WORKSPACE, load_scenario, parse_scenario
from rollout.errors import InvalidRequest

EXAMPLES = Path(__file__).parent.parent.parent / "examples"
GOOD = {
    "endpoint": {"name": "ep-one", "deployments": {"blue": {"traffic": 100}, "green": {}}},
    "rollout": {"new_deployment": "green"},
    "load": {"requests_per_minute": 600},
    "health": {"green": [{"from": "PT0S", "error_rate": 0.01, "latency_p99_ms": 150}, {"from": "PT3M", "error_rate": 0.2}]},
}


def test_defaults_and_inherited_segment_fields():
    scenario = parse_scenario(GOOD, Path("."))
    assert scenario.workspace == DEFAULT_WORKSPACE
    assert scenario.rollout is not None and scenario.rollout.endpoint_name == "ep-one"
    assert scenario.traffic == {"blue": 100, "green": 0}
    later = scenario.health["green"][1]
    assert (later.error_rate, later.latency_p99_ms) == (0.2, 150), "omitted latency keeps the previous segment's"


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_shipped_examples_load(name):
    scenario = load_scenario(EXAMPLES / name)
    assert scenario.rollout is not None


def _with(path, value):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in GOOD.items()}
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        node[key] = dict(node[key])
        node = node[key]
    node[keys[-1]] = value
    return data


@pytest.mark.parametrize("data, field", [
    pytest.param(_with("rollout.traffic_steps", [50, 10]), "rollout.traffic_steps", id="bad-rollout-field-prefixed"),
    pytest.param(_with("rollout.new_deployment", None), "rollout.new_deployment", id="rollout-missing-new"),
    pytest.param(_with("load.requests_per_minute", -5), "load.requests_per_minute", id="negative-load"),
    pytest.param(_with("health.purple", [{"error_rate": 0.1}]), "health.purple", id="health-unknown-deployment"),
    pytest.param(_with("health.green", [{"error_rate": 2}]), "health.green[0].error_rate", id="error-rate-over-1"),
    pytest.param(_with("health.green", [{"from": "PT5M"}, {"from": "PT1M"}]), "health.green[1].from",
                 id="segments-out-of-order"),
    pytest.param(_with("endpoint.deployments", {"blue": {"traffic": 101}}), "endpoint.deployments.blue.traffic",
                 id="traffic-over-100"),
    pytest.param(_with("alerts", [{"at": "PT1M", "payload": "missing.json"}]), "alerts[0]", id="alert-file-missing"),
    pytest.param(_with("alerts", [{"payload": {}}]), "alerts[0]", id="alert-without-time"),
    pytest.param(_with("controls", [{"at": "PT1M", "action": "explode"}]), "controls[0]", id="unknown-control"),
    pytest.param(_with("faults", [{"operation": "set_traffic", "error": "gremlins"}]), "faults[0]", id="unknown-fault"),
    pytest.param({**GOOD, "lode": {}}, "lode", id="unknown-top-level"),
    pytest.param(_with("workspace", {"subscription_id": "s"}), "workspace", id="partial-workspace"),
    pytest.param(_with("load.requests_per_minute", float("nan")), "load.requests_per_minute", id="nan-load"),
    pytest.param(_with("load.requests_per_minute", 10 ** 400), "load.requests_per_minute", id="load-too-big-for-a-float"),
    pytest.param(_with("health.green", [{"error_rate": float("nan")}]), "health.green[0].error_rate", id="nan-error-rate"),
    pytest.param(_with("health.green", [{"latency_p99_ms": float("inf")}]), "health.green[0].latency_p99_ms",
                 id="infinite-latency"),
    pytest.param(_with("health.green", [{"from": "P99999999999W"}]), "health.green[0].from", id="offset-overflow"),
])
def test_bad_scenario_names_the_field(data, field):
    with pytest.raises(InvalidRequest) as caught:
        parse_scenario(data, Path("."))
    assert field in [p.field for p in caught.value.problems], caught.value.problems


def test_unreadable_file(tmp_path):
    with pytest.raises(InvalidRequest) as caught:
        load_scenario(tmp_path / "nope.yaml")
    assert "cannot be read" in caught.value.problems[0].message


def test_not_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("endpoint: [unclosed")
    with pytest.raises(InvalidRequest) as caught:
        load_scenario(path)
    assert "not valid YAML" in caught.value.problems[0].message
