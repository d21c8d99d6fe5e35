"""Synthetic metrics with seeded noise: Poisson requests, binomial errors, measured p99 around the true one."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from emulator import noise
from emulator.scenario import DEFAULT_SEED, parse_scenario
from emulator.simulated_azure import HealthSegment, SimulatedWorkspace, SyntheticMetrics
from rollout.errors import InvalidRequest
from rollout.model import DeploymentState, WorkspaceRef

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)
HEALTH = {"green": [HealthSegment(timedelta(0), 0.01, 150)]}


def metrics(seed, rpm=1000.0):
    ws = SimulatedWorkspace(WorkspaceRef("s", "r", "w"), lambda: T0)
    ws.add_endpoint("ep", [DeploymentState(n, "Succeeded", 1) for n in ("blue", "green")], {"blue": 50, "green": 50})
    return SyntheticMetrics(ws, rpm, HEALTH, seed)


def test_a_seed_reproduces_and_another_differs():
    one = [metrics(7).served("ep", "green", T0 + n * MIN, T0 + (n + 1) * MIN) for n in range(10)]
    assert one == [metrics(7).served("ep", "green", T0 + n * MIN, T0 + (n + 1) * MIN) for n in range(10)]
    assert one != [metrics(8).served("ep", "green", T0 + n * MIN, T0 + (n + 1) * MIN) for n in range(10)]


def test_counts_are_noisy_whole_numbers_around_the_expectation():
    synthetic = metrics(3)
    minutes = [synthetic.served("ep", "green", T0 + n * MIN, T0 + (n + 1) * MIN) for n in range(400)]
    requests = [r for r, _, _ in minutes]
    assert all(r == int(r) and e == int(e) for r, e, _ in minutes)
    assert len(set(requests)) > 20, "Poisson, not a constant 500"
    mean = sum(requests) / len(requests)
    variance = sum((r - mean) ** 2 for r in requests) / len(requests)
    assert abs(mean - 500) < 5 and 350 < variance < 650           # Poisson: variance ~ mean
    assert abs(sum(e for _, e, _ in minutes) / sum(requests) - 0.01) < 0.001
    p99s = [p for _, _, p in minutes]
    assert 0.4 < sum(p > 150 for p in p99s) / len(p99s) < 0.6   # median-unbiased around the true p99


def test_a_window_is_the_sum_of_its_minutes():
    synthetic = metrics(5)
    window = synthetic.served("ep", "green", T0, T0 + 10 * MIN)
    minutes = [synthetic.served("ep", "green", T0 + n * MIN, T0 + (n + 1) * MIN) for n in range(10)]
    assert window[:2] == (sum(m[0] for m in minutes), sum(m[1] for m in minutes))
    assert window[2] == max(m[2] for m in minutes)


def test_part_of_a_minute_is_a_thinning_of_that_minute():
    synthetic = metrics(5)
    whole = synthetic.served("ep", "green", T0, T0 + MIN)
    half = synthetic.served("ep", "green", T0 + timedelta(seconds=30), T0 + MIN)
    assert 0 < half[0] < whole[0] and half[1] <= whole[1]
    assert half == synthetic.served("ep", "green", T0 + timedelta(seconds=30), T0 + MIN)


def test_without_a_seed_the_counts_are_exact():
    assert metrics(None).served("ep", "green", T0, T0 + 3 * MIN) == (1500.0, 15.0, 150)


@pytest.mark.parametrize("draw, mean", [
    pytest.param(lambda rng: noise.poisson(rng, 3.0), 3.0, id="poisson-small"),
    pytest.param(lambda rng: noise.poisson(rng, 2000.0), 2000.0, id="poisson-large"),
    pytest.param(lambda rng: noise.binomial(rng, 1000, 0.002), 2.0, id="binomial-rare"),
    pytest.param(lambda rng: noise.binomial(rng, 100, 0.9), 90.0, id="binomial-common"),
])
def test_samplers_have_the_right_mean(draw, mean):
    rng = random.Random(11)
    draws = [draw(rng) for _ in range(4000)]
    assert abs(sum(draws) / len(draws) - mean) < 0.05 * mean + 0.05


@pytest.mark.parametrize("seed, expected", [
    pytest.param(None, None, id="null-turns-noise-off"),
    pytest.param(42, 42, id="given"),
])
def test_scenario_seed(seed, expected):
    data = {"endpoint": {"name": "ep-one", "deployments": {"blue": {"traffic": 100}}}, "seed": seed}
    assert parse_scenario(data, None, require_rollout=False).seed == expected
    del data["seed"]
    assert parse_scenario(data, None, require_rollout=False).seed == DEFAULT_SEED


def test_bad_seed_names_the_field():
    data = {"endpoint": {"name": "ep-one", "deployments": {"blue": {"traffic": 100}}}, "seed": "abc"}
    with pytest.raises(InvalidRequest) as caught:
        parse_scenario(data, None, require_rollout=False)
    assert [(p.field, p.message) for p in caught.value.problems] == [("seed", "must be an integer (or null: no noise)")]
