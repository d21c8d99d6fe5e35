"""The sequential judge: one named row per case, and the guarantee checked by simulation."""

import json
import math
import random

import pytest

from emulator.noise import binomial
from rollout.evidence import binomial_tail, error_log_ratios, log_add, log_mean, old_upper_bound, sign_log_ratios
from rollout.judge import (
    Evidence,
    Increment,
    JudgeConfig,
    Judgement,
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


# --- exact values: every field of a judgement, the wire forms, the statistics ----------------

ALPHA4 = 0.05 / 4      # the share of each of the four tests when all are on


def test_every_test_reports_its_own_threshold():
    config = JudgeConfig(max_error_rate_increase=0.002, latency_p99_threshold_ms=300, max_latency_ratio=1.5)
    assert config.tests() == ("errors", "errors_vs_old", "latency", "latency_vs_old")
    _, judgement = judge_increment(JudgeState(), minutes(1, 1000, 0.002, 9000, 0.001)[0], config)
    thresholds = {e.test: e.log_threshold for e in judgement.evidence}
    assert thresholds == pytest.approx({"errors": math.log(2 / ALPHA4), "errors_first_look": math.log(2 / ALPHA4),
                                        "errors_vs_old": math.log(2 / ALPHA4), "latency": math.log(1 / ALPHA4),
                                        "latency_vs_old": math.log(1 / ALPHA4)}, rel=1e-12)


def test_errors_vs_old_tests_against_the_bound_of_half_its_share():
    config = JudgeConfig(error_threshold=0.5, max_error_rate_increase=0.002)
    increment = Increment(M(1000, 20), M(9000, 9))
    _, judgement = judge_increment(JudgeState(), increment, config)
    null = old_upper_bound(9000, 9, 0.05 / 2 / 2) + 0.002
    expected = log_mean(tuple(log_add(-math.inf, math.log(1 / 2)) + r for r in error_log_ratios(1000, 20, null)))
    by_test = {e.test: e.log_e for e in judgement.evidence}
    assert by_test["errors_vs_old"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("config, increments, verdict, checks", [
    pytest.param(JudgeConfig(latency_p99_threshold_ms=300), minutes(20, 1000, 0.0, new_p99=300), Verdict.PASS, 20,
                 id="p99-at-the-limit-is-within-it"),
    pytest.param(JudgeConfig(max_latency_ratio=1.5), minutes(20, 1000, 0.0, new_p99=180, old_p99=120), Verdict.PASS,
                 20, id="p99-at-the-ratio-is-within-it"),
    pytest.param(JudgeConfig(max_latency_ratio=1.5), minutes(20, 1000, 0.0, new_p99=150, old_p99=120), Verdict.PASS,
                 20, id="p99-under-the-ratio-but-over-old"),
    pytest.param(JudgeConfig(latency_p99_threshold_ms=300), [Increment(M(1000, 0, None))] * 20, Verdict.PASS, 20,
                 id="no-p99-measured-no-latency-evidence"),
    pytest.param(JudgeConfig(max_latency_ratio=1.5), [Increment(M(1000, 0, 900), None)] * 20, Verdict.PASS, 20,
                 id="old-not-measured-no-ratio-evidence"),
    pytest.param(JudgeConfig(max_latency_ratio=1.5), [Increment(M(1000, 0, 900), M(500, 0, None))] * 20,
                 Verdict.PASS, 20, id="old-p99-missing-no-ratio-evidence"),
    pytest.param(JudgeConfig(), [Increment(M(100_000, 20_000))], Verdict.FAIL, 1, id="first-look-tail-underflows"),
])
def test_latency_and_edge_cases(config, increments, verdict, checks):
    _, judgement, used = run(config, increments)
    assert (judgement.verdict, used) == (verdict, checks)


def test_a_latency_failure_without_requests_says_the_error_rate_is_unmeasured():
    _, judgement, _ = run(JudgeConfig(latency_p99_threshold_ms=300), [Increment(M(0, 0, 900))] * 10)
    assert judgement.verdict is Verdict.FAIL
    assert judgement.reason.endswith("; error rate unmeasured")
    assert judgement.error_rate is None


def test_a_judgement_carries_its_rates_and_evidence():
    config = JudgeConfig(max_error_rate_increase=0.01)
    state, judgement, _ = run(config, [Increment(M(500, 1), M(4500, 9))])
    assert judgement.verdict is Verdict.PASS
    assert (judgement.error_rate, judgement.baseline_error_rate) == (0.002, 0.002)
    assert [e.test for e in judgement.evidence] == ["errors", "errors_first_look", "errors_vs_old"]
    assert judgement.reason == "no regression detected in 500 requests; error rate 0.0020, old's 0.0020"
    _, failed = judge_increment(state, Increment(M(500, 100), M(4500, 9)), config)
    assert (failed.verdict, failed.error_rate, failed.baseline_error_rate) == (Verdict.FAIL, 0.101, 0.002)
    assert failed.evidence and failed.reason.startswith(
        "regression detected at 95% confidence: error rate (e-value e^")
    assert "), error rate against old (e-value e^" in failed.reason
    assert failed.reason.endswith("; error rate 0.1010, old's 0.0020")
    _, waiting, _ = run(config, [Increment(M(50, 0), M(450, 1))])
    assert (waiting.verdict, waiting.error_rate, waiting.baseline_error_rate) == (Verdict.INCONCLUSIVE, 0.0, 1 / 450)
    assert waiting.evidence


@pytest.mark.parametrize("served, verdict, needed", [
    pytest.param(223, Verdict.PASS, None, id="exactly-what-it-needs-passes"),
    pytest.param(222, Verdict.INCONCLUSIVE, 1, id="one-short"),
    pytest.param(1, Verdict.INCONCLUSIVE, 222, id="one-a-minute-still-gives-minutes"),
])
def test_the_need_boundary(served, verdict, needed):
    _, judgement = judge_increment(JudgeState(), Increment(M(served, 0), None, 1.0), JudgeConfig())
    assert (judgement.verdict, judgement.needed_requests) == (verdict, needed)
    if needed:
        assert judgement.needed_minutes == round(needed / served, 1)


def test_judgement_to_dict():
    judgement = Judgement(Verdict.FAIL, "why", 0.02, 0.001,
                          (Evidence("errors", 4.56789, 6.1234), Evidence("errors_first_look", math.inf, 6.1234),
                           Evidence("latency", -math.inf, 5.0)), 7, 0.5)
    assert judgement.to_dict() == {
        "verdict": "fail", "reason": "why", "error_rate": 0.02, "baseline_error_rate": 0.001,
        "evidence": {"errors": {"log_e": 4.568, "log_threshold": 6.123},
                     "errors_first_look": {"log_e": "inf", "log_threshold": 6.123},
                     "latency": {"log_e": None, "log_threshold": 5.0}},
        "needed_requests": 7, "needed_minutes": 0.5}


def test_state_wire_form_keeps_every_counter():
    state, _, _ = run(JudgeConfig(max_error_rate_increase=0.01), minutes(3, 100, 0.01, 900, 0.001))
    state = new_window(state)
    state, _ = judge_increment(state, Increment(M(40, 1), M(360, 0), 0.5), JudgeConfig(max_error_rate_increase=0.01))
    assert (state.window_first_check, state.window_requests, state.window_errors, state.window_minutes) == (4, 40, 1, 0.5)
    assert (state.old_requests, state.old_errors) == (3060, 3)
    assert JudgeState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    wire = JudgeState(detectors=(("errors", (math.inf, -math.inf, 1.5)),)).to_dict()
    assert wire["detectors"] == {"errors": ["inf", None, 1.5]}
    assert JudgeState.from_dict(wire).detectors == (("errors", (math.inf, -math.inf, 1.5)),)


def test_an_increment_without_old_adds_nothing_to_old():
    state, _, _ = run(JudgeConfig(), [Increment(M(100, 0), None)] * 3)
    assert (state.old_requests, state.old_errors) == (0, 0)


def test_a_new_window_restarts_every_window_counter():
    state, _, _ = run(JudgeConfig(), minutes(2, 100, 0.02))
    assert state.window_errors == 4
    fresh = new_window(state)
    assert (fresh.window_requests, fresh.window_errors, fresh.window_minutes, fresh.window_first_check) == (0, 0, 0.0, 3)


@pytest.mark.parametrize("config, tests", [
    pytest.param(JudgeConfig(), ("errors",), id="default"),
    pytest.param(JudgeConfig(error_threshold=1.0), (), id="threshold-one-is-off"),
    pytest.param(JudgeConfig(relative_only=True, latency_p99_threshold_ms=300), ("errors_vs_old",),
                 id="relative-only-drops-the-absolute-tests"),
    pytest.param(JudgeConfig(relative_only=True, max_latency_ratio=2.0), ("errors_vs_old", "latency_vs_old"),
                 id="relative-only-keeps-the-ratio"),
])
def test_which_tests_are_on(config, tests):
    assert config.tests() == tests
    assert config.alpha() == pytest.approx(0.05 / max(1, len(tests)))


def test_config_from_request():
    request = parse_request({"endpoint_name": "fraud-ep", "new_deployment": "green", "error_threshold": 0.02,
                             "confidence": 0.99, "max_error_rate_increase": 0.005, "latency_p99_threshold_ms": 250,
                             "max_latency_ratio": 1.3, "min_requests": 500})
    assert JudgeConfig.from_request(request) == JudgeConfig(0.02, 0.99, 0.005, 250, 1.3, 500, False)
    assert JudgeConfig.from_request(request, relative_only=True).relative_only is True
    defaults = parse_request({"endpoint_name": "fraud-ep", "new_deployment": "green"})
    assert JudgeConfig.from_request(defaults) == JudgeConfig()


def kl(q, p):
    return q * math.log(q / p) + (1 - q) * math.log((1 - q) / (1 - p))


@pytest.mark.parametrize("config, state, needed", [
    pytest.param(JudgeConfig(), JudgeState(), math.ceil(math.log(4 * 2 / 0.025) / kl(0.04, 0.01)), id="first-window"),
    pytest.param(JudgeConfig(error_threshold=0.2), JudgeState(),
                 math.ceil(math.log(4 * 2 / 0.025) / kl(0.6, 0.2)), id="high-threshold-caps-the-alternative"),
    pytest.param(JudgeConfig(relative_only=True, max_error_rate_increase=0.004),
                 JudgeState(old_requests=10_000, old_errors=10),
                 math.ceil(math.log(4 * 2 / 0.025) / kl(0.02, 0.005)), id="relative-only-from-old-rate"),
    pytest.param(JudgeConfig(relative_only=True, max_error_rate_increase=0.004), JudgeState(), 0,
                 id="relative-only-before-old-is-measured"),
    pytest.param(JudgeConfig(relative_only=True, max_error_rate_increase=1.0), JudgeState(old_requests=100), 0,
                 id="a-null-of-one-needs-nothing"),
    pytest.param(JudgeConfig(latency_p99_threshold_ms=300, error_threshold=1.0), JudgeState(), 0,
                 id="no-errors-test-needs-nothing"),
])
def test_requests_needed(config, state, needed):
    assert requests_needed(state, config) == needed


@pytest.mark.parametrize("old, verdict, reason", [
    pytest.param(M(10_000, 125, 120), Verdict.PASS, "old deployment healthy: error rate 0.0125",
                 id="slightly-above-not-proven"),
    pytest.param(M(10_000, 130, 120), Verdict.PASS, "old deployment healthy: error rate 0.0130",
                 id="e-value-above-one-not-enough"),
    pytest.param(M(10_000, 135, 120), Verdict.FAIL, "old deployment's error rate 0.0135 (135 errors in 10000 "
                 "requests) is above threshold 0.01", id="e-value-just-over-twenty"),
    pytest.param(M(10_000, 10, 500), Verdict.PASS, "old deployment healthy: error rate 0.0010", id="p99-at-the-limit"),
    pytest.param(M(10_000, 10, 501), Verdict.FAIL, "old deployment's p99 latency 501 ms exceeds threshold 500 ms",
                 id="p99-over-the-limit"),
])
def test_baseline_judgement_exactly(old, verdict, reason):
    judgement = baseline_judgement(old, JudgeConfig(latency_p99_threshold_ms=500))
    rate = old.errors / old.requests
    assert judgement == Judgement(verdict, reason, rate, rate)


def test_baseline_of_an_idle_old_deployment():
    assert baseline_judgement(M(0, 0, None), JudgeConfig()) == Judgement(
        Verdict.INCONCLUSIVE, "old served no requests; its health is unknown")


@pytest.mark.parametrize("requests, errors, null, ratios", [
    pytest.param(100, 5, 1.0, (0.0,) * 4, id="null-of-one-never-fails"),
    pytest.param(100, 0, 0.0, (0.0,) * 4, id="zero-null-no-errors"),
    pytest.param(100, 1, 0.0, (math.inf,) * 4, id="zero-null-one-error"),
    pytest.param(10, 4, 0.5, tuple(4 * math.log(q / 0.5) + 6 * math.log((1 - q) / 0.5) for q in (0.75, 0.75, 0.75, 0.75)),
                 id="alternatives-capped-half-way-to-one"),
    pytest.param(100, 3, 0.01, tuple(3 * math.log(f) + 97 * math.log((1 - 0.01 * f) / 0.99) for f in (1.5, 2, 4, 10)),
                 id="binomial-likelihood-ratio"),
])
def test_error_log_ratios(requests, errors, null, ratios):
    assert error_log_ratios(requests, errors, null) == pytest.approx(ratios, rel=1e-12)


@pytest.mark.parametrize("exceeded, ratios", [
    pytest.param(None, (0.0, 0.0), id="no-observation"),
    pytest.param(True, (math.log(1.6), math.log(1.98)), id="over"),
    pytest.param(False, (math.log(0.4), math.log(0.02)), id="within"),
])
def test_sign_log_ratios(exceeded, ratios):
    assert sign_log_ratios(exceeded) == pytest.approx(ratios, rel=1e-12)


@pytest.mark.parametrize("requests, errors", [
    pytest.param(100, 0, id="no-errors"), pytest.param(10_000, 10, id="rare"), pytest.param(1000, 500, id="half"),
])
def test_old_upper_bound_is_where_the_jeffreys_mixture_reaches_one_over_alpha(requests, errors):
    """Independently: the beta-binomial mixture e-value against theta, Beta(1/2, 1/2) prior."""
    def log_e(theta):
        log_beta = lambda a, b: math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)  # noqa: E731
        mixture = log_beta(0.5 + errors, 0.5 + requests - errors) - log_beta(0.5, 0.5)
        return mixture - errors * math.log(theta) - (requests - errors) * math.log1p(-theta)
    bound = old_upper_bound(requests, errors, 0.025)
    assert log_e(bound) == pytest.approx(math.log(40), rel=1e-6)


@pytest.mark.parametrize("requests", [pytest.param(1, id="one"), pytest.param(500, id="many")])
def test_old_failing_every_request_bounds_its_rate_at_one(requests):
    assert old_upper_bound(requests, requests, 0.0125) == 1.0
    config = JudgeConfig(relative_only=True, max_error_rate_increase=0.01)
    _, judgement = judge_increment(JudgeState(), Increment(M(50, 50), M(requests, requests)), config)
    assert judgement.verdict is Verdict.INCONCLUSIVE, "against a null of 1 nothing fails; no crash"


@pytest.mark.parametrize("a, b, total", [
    pytest.param(-math.inf, 2.0, 2.0, id="nothing-plus-b"),
    pytest.param(1.0, 1.0, 1.0 + math.log(2), id="equal"),
    pytest.param(3.0, 1.0, math.log(math.exp(3) + math.e), id="unequal"),
])
def test_log_add(a, b, total):
    assert log_add(a, b) == pytest.approx(total, rel=1e-12) and log_add(b, a) == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize("values, mean", [
    pytest.param((0.0, math.log(3)), math.log(2), id="mean-of-1-and-3"),
    pytest.param((-math.inf, -math.inf), -math.inf, id="no-evidence"),
    pytest.param((math.inf, 1.0), math.inf, id="certain"),
])
def test_log_mean(values, mean):
    assert log_mean(values) == pytest.approx(mean, rel=1e-12)
