"""The sequential judge: one named row per case, and the guarantee checked by simulation."""

import json
import math
import random

import pytest

from emulator.noise import binomial
from rollout.evidence import binomial_tail, old_upper_bound
from rollout.judge import (
    Increment,
    JudgeConfig,
    JudgeState,
    baseline_judgement,
    judge_increment,
    new_window,
    requests_needed,
)
from rollout.model import DeploymentMetrics as M
from rollout.plan import parse_request
from rollout.policy import HealthSample, Verdict, judge


def run(config, increments, state=None):
    """Feed increments until a FAIL; return (state, last judgement, checks used)."""
    state = state or JudgeState()
    judgement = None
    for used, increment in enumerate(increments, 1):
        state, judgement = judge_increment(state, increment, config)
        if judgement.verdict is Verdict.FAIL:
            return state, judgement, used
    return state, judgement, len(increments)


def minutes(count, new_requests, new_rate, old_requests=0, old_rate=0.0, new_p99=140.0, old_p99=120.0):
    """``count`` one-minute increments with errors exactly rate x requests (no noise)."""
    return [Increment(M(new_requests, round(new_requests * new_rate), new_p99),
                      M(old_requests, round(old_requests * old_rate), old_p99)) for _ in range(count)]


# The diluted late regression (issue 11): steps 10/50/100 at 1,200 requests a minute, 5 checks
# each, then a 30-minute bake where green fails 1.5% (threshold 1%) for its last 16 minutes.
STEPS = [minutes(5, 1200 * share // 100, 0.002, 1200 - 1200 * share // 100, 0.001) for share in (10, 50, 100)]
BAKE = minutes(14, 1200, 0.002) + minutes(16, 1200, 0.015)


def test_diluted_late_regression_rolls_back():
    state = JudgeState()
    for step in STEPS:
        state, judgement, _ = run(JudgeConfig(), step, new_window(state))
        assert judgement.verdict is not Verdict.FAIL
    _, judgement, used = run(JudgeConfig(), BAKE, new_window(state))
    assert judgement.verdict is Verdict.FAIL
    assert 14 < used <= 30, "caught during the 16 bad minutes"
    assert "error rate (e-value" in judgement.reason


def test_current_judge_promotes_the_diluted_late_regression():
    """The defect the new judge fixes: over the whole bake the rate is diluted below 1%."""
    served = sum(i.new.requests for i in BAKE)
    errors = sum(i.new.errors for i in BAKE)
    verdict = judge(HealthSample(M(served, errors, 140)), parse_request({"endpoint_name": "fraud-ep", "new_deployment": "green"}))
    assert verdict.verdict is Verdict.PASS


@pytest.mark.parametrize("config, increments, verdict, checks, reason", [
    pytest.param(JudgeConfig(), minutes(1, 100, 0.2), Verdict.FAIL, 1, "error rate (e-value", id="20x-fails-first-check"),
    pytest.param(JudgeConfig(), minutes(3, 1000, 0.05), Verdict.FAIL, 1, "error rate", id="5x-at-high-traffic"),
    pytest.param(JudgeConfig(), minutes(15, 1000, 0.002), Verdict.PASS, 15, "no regression detected in 15000",
                 id="healthy-passes"),
    pytest.param(JudgeConfig(), minutes(1, 100, 0.0), Verdict.INCONCLUSIVE, 1,
                 "100 requests so far; a verdict needs 123 more (about 1.2 more minutes", id="says-what-is-needed"),
    pytest.param(JudgeConfig(min_requests=5000), minutes(2, 1000, 0.0), Verdict.INCONCLUSIVE, 2,
                 "needs 3000 more", id="min-requests-is-a-floor"),
    pytest.param(JudgeConfig(), minutes(3, 0, 0.0), Verdict.INCONCLUSIVE, 3, "0 requests so far", id="no-traffic"),
    pytest.param(JudgeConfig(error_threshold=0.0, min_requests=10), minutes(1, 50, 0.02), Verdict.FAIL, 1,
                 "error rate", id="zero-tolerance-fails-on-one-error"),
    pytest.param(JudgeConfig(error_threshold=0.0, min_requests=10), minutes(1, 50, 0.0), Verdict.PASS, 1,
                 "no regression", id="zero-tolerance-no-errors"),
    pytest.param(JudgeConfig(error_threshold=1.0), minutes(3, 100, 0.9), Verdict.PASS, 3, "no regression",
                 id="threshold-one-never-fails"),
    pytest.param(JudgeConfig(error_threshold=0.5, max_error_rate_increase=0.002),
                 minutes(10, 500, 0.03, 4500, 0.005), Verdict.FAIL, 2, "error rate against old",
                 id="much-worse-than-old"),
    pytest.param(JudgeConfig(error_threshold=0.5, max_error_rate_increase=0.01),
                 minutes(10, 500, 0.008, 4500, 0.005), Verdict.PASS, 10, "old's 0.0049", id="within-tolerance-of-old"),
    pytest.param(JudgeConfig(relative_only=True, max_error_rate_increase=0.005),
                 minutes(10, 500, 0.05, 4500, 0.05), Verdict.PASS, 10, "error rate 0.0500",
                 id="sick-baseline-relative-only-ignores-threshold"),
    pytest.param(JudgeConfig(relative_only=True), minutes(10, 500, 0.15, 4500, 0.05), Verdict.FAIL, 1,
                 "error rate against old", id="relative-only-still-catches-worse"),
    pytest.param(JudgeConfig(latency_p99_threshold_ms=300), minutes(20, 1000, 0.0, new_p99=600), Verdict.FAIL, 7,
                 "p99 latency (e-value", id="sustained-latency-regression"),
    pytest.param(JudgeConfig(latency_p99_threshold_ms=300),
                 minutes(1, 1000, 0.0, new_p99=600) + minutes(15, 1000, 0.0, new_p99=200), Verdict.PASS, 16,
                 "no regression", id="one-slow-minute-is-not-a-regression"),
    pytest.param(JudgeConfig(max_latency_ratio=1.5), minutes(20, 1000, 0.0, new_p99=400, old_p99=120),
                 Verdict.FAIL, 7, "p99 latency against old", id="latency-ratio-to-old"),
])
def test_judge_increment(config, increments, verdict, checks, reason):
    _, judgement, used = run(config, increments)
    assert judgement.verdict is verdict
    assert used == checks
    assert reason in judgement.reason


def test_inconclusive_reports_requests_and_minutes():
    _, judgement, _ = run(JudgeConfig(), [Increment(M(200, 0, 100), None, minutes=2.0)])
    assert judgement.needed_requests == requests_needed(JudgeState(), JudgeConfig()) - 200
    assert judgement.needed_minutes == round(judgement.needed_requests / 100, 1)
    assert judgement.to_dict()["needed_requests"] == judgement.needed_requests


@pytest.mark.parametrize("increments, needed_requests, needed_minutes", [
    pytest.param([Increment(M(100, 0), None, 1.0), Increment(M(20, 0), None, 1.0)], 103, 1.7,
                 id="at-the-windows-rate-not-the-last-checks"),          # 120 in 2 minutes: 60 a minute
    pytest.param([Increment(M(30, 0), None, 0.5), Increment(M(0, 0), None, 1.5)], 193, 12.9,
                 id="a-quiet-check-lowers-the-rate"),                     # 30 in 2 minutes: 15 a minute
    pytest.param([Increment(M(0, 0), None, 1.0)] * 2, 223, None, id="no-traffic-no-estimate"),
    pytest.param([Increment(M(50, 0), None, 0.0)], 173, None, id="no-time-no-estimate"),
])
def test_needed_minutes_at_the_windows_rate(increments, needed_requests, needed_minutes):
    _, judgement, _ = run(JudgeConfig(), increments)
    assert judgement.verdict is Verdict.INCONCLUSIVE
    assert (judgement.needed_requests, judgement.needed_minutes) == (needed_requests, needed_minutes)
    at_rate = "" if needed_minutes is None else f" (about {needed_minutes} more minutes at the current rate)"
    assert judgement.reason.endswith(f"a verdict needs {needed_requests} more{at_rate}")


def test_a_new_window_measures_its_own_rate():
    state, _, _ = run(JudgeConfig(), minutes(3, 1000, 0.0))
    fresh = new_window(state)
    assert (fresh.window_minutes, fresh.window_requests) == (0.0, 0)
    _, judgement = judge_increment(fresh, Increment(M(100, 0), None, 2.0), JudgeConfig())
    need = requests_needed(fresh, JudgeConfig()) - 100
    assert (judgement.needed_requests, judgement.needed_minutes) == (need, round(need / 50, 1))


def test_a_state_from_before_window_minutes_reads_as_zero():
    wire = JudgeState(checks=2, window_requests=40, window_minutes=2.0).to_dict()
    assert wire["window_minutes"] == 2.0
    del wire["window_minutes"]
    assert JudgeState.from_dict(wire) == JudgeState(checks=2, window_requests=40)


@pytest.mark.parametrize("onset", [pytest.param(3, id="early"), pytest.param(200, id="after-200-healthy-checks")])
def test_late_onset_is_caught_within_a_bounded_number_of_checks(onset):
    """Tests start at every check, so old healthy data does not dilute a regression."""
    increments = minutes(onset, 1000, 0.002) + minutes(30, 1000, 0.02)
    _, judgement, used = run(JudgeConfig(), increments)
    assert judgement.verdict is Verdict.FAIL
    assert used - onset <= 8


@pytest.mark.parametrize("rate, rpm", [
    pytest.param(0.01, 200, id="at-threshold-200rpm"),
    pytest.param(0.01, 2000, id="at-threshold-2000rpm"),
    pytest.param(0.005, 1000, id="half-threshold"),
])
def test_false_rollbacks_stay_under_one_minus_confidence(rate, rpm):
    """Seeded: 400 healthy 40-check rollouts with binomial errors; at most 5% may fail."""
    rng = random.Random(7)
    failed = 0
    for _ in range(400):
        state = JudgeState()
        for _ in range(40):
            errors = binomial(rng, rpm, rate)
            state, judgement = judge_increment(state, Increment(M(rpm, errors)), JudgeConfig())
            if judgement.verdict is Verdict.FAIL:
                failed += 1
                break
    assert failed / 400 <= 0.05


@pytest.mark.parametrize("old, verdict, reason", [
    pytest.param(M(10_000, 300, 120), Verdict.FAIL, "old deployment's error rate 0.0300", id="old-failing"),
    pytest.param(M(10_000, 105, 120), Verdict.PASS, "old deployment healthy", id="old-at-threshold-not-proven-bad"),
    pytest.param(M(10_000, 10, 900), Verdict.FAIL, "p99 latency 900 ms", id="old-too-slow"),
    pytest.param(M(0, 0, None), Verdict.INCONCLUSIVE, "no requests", id="old-idle"),
])
def test_baseline_judgement(old, verdict, reason):
    judgement = baseline_judgement(old, JudgeConfig(latency_p99_threshold_ms=500))
    assert judgement.verdict is verdict
    assert reason in judgement.reason


@pytest.mark.parametrize("requests, errors", [
    pytest.param(0, 0, id="no-data"), pytest.param(100, 0, id="no-errors"),
    pytest.param(10_000, 10, id="rare"), pytest.param(1000, 500, id="half"),
])
def test_old_upper_bound_is_above_the_estimate(requests, errors):
    bound = old_upper_bound(requests, errors, 0.025)
    estimate = errors / requests if requests else 0.0
    assert estimate < bound <= 1.0
    if requests:
        assert bound < old_upper_bound(requests // 10 or 1, errors // 10, 0.025) or requests < 10


def test_state_survives_windows_but_window_counts_restart():
    state, _, _ = run(JudgeConfig(), minutes(3, 1000, 0.002))
    fresh = new_window(state)
    assert fresh.detectors == state.detectors and fresh.checks == 3
    assert (fresh.window_requests, fresh.window_first_check) == (0, 4)
    assert requests_needed(fresh, JudgeConfig()) > requests_needed(JudgeState(), JudgeConfig())
    assert math.isfinite(requests_needed(fresh, JudgeConfig()))


def test_the_first_check_gets_an_exact_one_look_test():
    """5 errors in the first 100 requests (threshold 1%) fail at once; the same minute later does not."""
    bad_minute = minutes(1, 100, 0.05)
    _, first, _ = run(JudgeConfig(), bad_minute)
    assert first.verdict is Verdict.FAIL
    assert "first check, exact binomial test" in first.reason
    _, later, _ = run(JudgeConfig(), minutes(1, 100, 0.0) + bad_minute)
    assert later.verdict is not Verdict.FAIL


@pytest.mark.parametrize("requests, errors, rate, tail", [
    pytest.param(100, 0, 0.01, 1.0, id="no-errors"),
    pytest.param(100, 1, 0.01, 1.0, id="at-the-mean"),
    pytest.param(100, 4, 0.01, 0.0183740364, id="four-in-a-hundred"),
    pytest.param(10, 10, 0.5, 1 / 1024, id="all-heads"),
    pytest.param(100_000, 2_000, 0.01, 1.926e-172, id="far-tail"),
])
def test_binomial_tail(requests, errors, rate, tail):
    assert binomial_tail(requests, errors, rate) == pytest.approx(tail, rel=1e-3)


def test_state_and_judgement_round_trip_as_strict_json():
    """The state must survive continue_as_new and the status: strict JSON, no Infinity."""
    state, judgement, _ = run(JudgeConfig(error_threshold=0.0, latency_p99_threshold_ms=300, min_requests=10),
                              minutes(1, 50, 0.02))
    assert judgement.verdict is Verdict.FAIL
    for wire in (state.to_dict(), judgement.to_dict()):
        text = json.dumps(wire, allow_nan=False)
        assert "Infinity" not in text
    assert JudgeState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    fresh = JudgeState()
    assert JudgeState.from_dict(fresh.to_dict()) == fresh
