"""Generated requests against every route of ``serve`` (hypothesis): never a 500, and never a rollout
started from an invalid body.

The default size runs in a few seconds. ``bench/fuzz_http.py`` runs the same properties with many
more examples (it sets ``AML_ROLLOUT_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.scenario import parse_scenario
from emulator.serve import LocalServer
from tests.http.helpers import ENDPOINT, FIXTURES, KEY, MANAGED_SAMPLES, OLD, RESOLVED_SAMPLE, SCENARIO, Client, alert
from tests.http.helpers import rollout_request as valid_request

EXAMPLES = int(os.environ.get("AML_ROLLOUT_FUZZ_EXAMPLES", "30"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 30,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Client, LocalServer]]:
    """One ``serve`` for the whole module (ep1: blue 100%, green 0%)."""
    local = LocalServer(parse_scenario(SCENARIO, FIXTURES, require_rollout=False), key=KEY).start()
    yield Client(local.url), local
    local.stop()


def strict_json(body: bytes) -> Any:
    """The body parsed as strict JSON: a bare NaN or Infinity fails the test."""
    return json.loads(body, parse_constant=lambda name: pytest.fail(f"the response holds a bare {name}"))


def nothing_started(api: Client, server: LocalServer) -> None:
    assert api.get(f"/api/rollouts/{ENDPOINT}").status == 404
    assert server.endpoint.traffic == {OLD: 100}


# --- values ---------------------------------------------------------------------------------------

HUGE = st.integers(min_value=10 ** 300, max_value=10 ** 400) | st.integers(max_value=-(10 ** 300), min_value=-(10 ** 400))
ANY_SCALAR = (st.none() | st.booleans() | st.integers() | HUGE | st.floats(allow_nan=True, allow_infinity=True)
              | st.text(max_size=40))
ANY_JSON = st.recursive(ANY_SCALAR, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
NOT_A_STRING = ANY_JSON.filter(lambda v: not isinstance(v, str) and v is not None)
NOT_A_NUMBER = ANY_JSON.filter(lambda v: v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))))
NON_ASCII_DIGITS = st.characters(categories=["Nd"]).filter(lambda c: not c.isascii())


def out_of(low: float, high: float) -> st.SearchStrategy[Any]:
    """Numbers outside [low, high] (NaN and the infinities included) and values that are not numbers."""
    outside = (st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not low <= x <= high)
               | st.integers().filter(lambda x: not low <= x <= high) | HUGE)
    return outside | NOT_A_NUMBER


def not_an_integer_in(low: int, high: int) -> st.SearchStrategy[Any]:
    return (st.integers().filter(lambda x: not low <= x <= high) | HUGE
            | st.floats(allow_nan=True, allow_infinity=True) | NOT_A_NUMBER)


@st.composite
def bad_duration(draw: st.DrawFn, days_max: int) -> Any:
    """Something that is not an ISO 8601 duration of at most ``days_max`` days."""
    seconds = draw(st.integers(min_value=1, max_value=59))
    good = f"PT{seconds}S"
    return draw(st.sampled_from([
        f"P{draw(st.integers(min_value=days_max + 1, max_value=10 ** 12))}D",
        f"P{draw(st.integers(min_value=10 ** 6, max_value=10 ** 20))}W",
        "PT" + "9" * draw(st.integers(min_value=20, max_value=400)) + "S",
        "-" + good, good + "\n", " " + good, "P", "PT", "P1Y", "P1M",
        good.replace(str(seconds)[0], draw(NON_ASCII_DIGITS), 1),
    ]) | NOT_A_STRING)


def bad_name() -> st.SearchStrategy[Any]:
    """Names Azure ML refuses, by azure-ai-ml's own validator (plus a trailing newline, which its
    pattern lets through and ARM does not), and values that are not strings."""
    from azure.ai.ml.entities._endpoint._endpoint_helpers import validate_endpoint_or_deployment_name

    def refused(name: str) -> bool:
        try:
            validate_endpoint_or_deployment_name(name)
        except Exception:
            return True
        return name.endswith("\n")

    near = st.from_regex(r"[A-Za-z][-A-Za-z0-9]{1,30}[A-Za-z0-9]", fullmatch=True)
    mangled = st.tuples(near, st.sampled_from(["\n", "-", "_", ".", " ", "é", "\u0661", "a" * 32])).map("".join)
    return st.text(max_size=40).filter(refused) | mangled.filter(refused) | NOT_A_STRING


BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "endpoint_name": bad_name(),
    "new_deployment": bad_name(),
    "old_deployment": bad_name(),
    "traffic_steps": (st.lists(st.integers(min_value=1, max_value=100), min_size=2, max_size=6)
                      .filter(lambda s: any(b <= a for a, b in zip(s, s[1:], strict=False)))
                      | st.lists(st.integers().filter(lambda x: not 1 <= x <= 100) | HUGE, min_size=1, max_size=3)
                      | st.just([]) | NOT_A_STRING.filter(lambda v: not isinstance(v, list))),
    "observation_window": bad_duration(6),
    "check_interval": bad_duration(6),
    "bake_time": bad_duration(6),
    "error_threshold": out_of(0, 1),
    "max_error_rate_increase": out_of(0, 1),
    "latency_p99_threshold_ms": out_of(1, 600_000),
    "min_requests": not_an_integer_in(1, 1_000_000_000),
    "max_inconclusive_windows": not_an_integer_in(0, 100),
    "metrics_source": ANY_JSON.filter(lambda v: v is not None and v not in ("platform", "log_analytics")),
    "workspace": ANY_JSON.filter(lambda v: v is not None),
    "confidence": out_of(0.5, 0.9999),
    "max_latency_ratio": out_of(1, 100),
    "on_unhealthy_baseline": ANY_JSON.filter(lambda v: v is not None and v not in ("refuse", "proceed")),
}


# --- properties -----------------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_a_body_with_one_bad_field_is_400_naming_it_and_starts_nothing(served, data: st.DataObject) -> None:
    api, server = served
    field = data.draw(st.sampled_from(sorted(BAD_VALUES)), label="field")
    value = data.draw(BAD_VALUES[field], label="value")
    response = api.post("/api/rollouts", {**valid_request(), field: value})
    assert response.status == 400, response.body
    assert field in {e["field"] for e in strict_json(response.body)["errors"]}
    nothing_started(api, server)


@FUZZ
@given(body=ANY_JSON | st.dictionaries(st.sampled_from(sorted(BAD_VALUES)), ANY_JSON, max_size=6))
def test_any_json_body_to_start_is_never_a_500_and_starts_nothing(served, body: Any) -> None:
    api, server = served
    response = api.post("/api/rollouts", body)
    assert response.status in (400, 413), response.body
    strict_json(response.body)
    nothing_started(api, server)


@FUZZ
@given(endpoint=st.text(min_size=1, max_size=40), action=st.text(min_size=1, max_size=12),
       body=ANY_JSON, window=st.text(max_size=30))
def test_the_other_routes_never_answer_500(served, endpoint: str, action: str, body: Any, window: str) -> None:
    api, server = served
    ep, act = quote(endpoint, safe=""), quote(action, safe="")
    answers = [api.get(f"/api/rollouts/{ep}"), api.post(f"/api/rollouts/{ep}/{act}", body),
               api.post(f"/api/rollouts/{ENDPOINT}/{act}", body), api.get(f"/api/rollouts?window={quote(window)}")]
    for response in answers:
        assert response.status in (200, 400, 404, 405), (response.status, response.body)
        if response.body:
            strict_json(response.body)
    nothing_started(api, server)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*prefix, index))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


@st.composite
def mutated_alert(draw: st.DrawFn) -> Any:
    """A managed alert sample with one part (anything from the root down) replaced by any JSON."""
    payload = alert(draw(st.sampled_from([*MANAGED_SAMPLES, RESOLVED_SAMPLE])))
    paths = list(_paths(payload))
    containers = [p for p in paths if isinstance(_at(payload, p), (dict, list))]   # where shapes go wrong
    path = draw(st.sampled_from(containers) if draw(st.integers(0, 3)) else st.sampled_from(paths))
    replacement = draw(ANY_JSON)
    if not path:
        return replacement
    _at(payload, path[:-1])[path[-1]] = replacement
    return payload


@settings(FUZZ, max_examples=max(EXAMPLES, 150))    # one POST each: cheap, and shapes go wrong deep down
@given(payload=mutated_alert() | mutated_alert() | ANY_JSON)
def test_an_alert_is_never_a_500_nor_a_503_while_the_task_hub_is_up(served, payload: Any) -> None:
    api, server = served
    response = api.post("/api/alerts", payload)
    assert response.status in (200, 202, 400), (response.status, response.body)
    strict_json(response.body)
    if response.status == 400:
        assert re.search(r"invalid-(alert|request)", strict_json(response.body)["type"])
