"""Health verdicts: one named row per case."""

import pytest

from rollout.model import DeploymentMetrics as M
from rollout.plan import parse_request
from rollout.policy import HealthSample, Verdict, judge

BASE = {"endpoint_name": "fraud-ep", "new_deployment": "green-v2"}


@pytest.mark.parametrize("extra, new, old, verdict, reason", [
    pytest.param({}, M(1000, 5, 120), None, Verdict.PASS, "within threshold", id="healthy"),
    pytest.param({}, M(1000, 10, 120), None, Verdict.PASS, "within", id="exactly-at-threshold-passes"),
    pytest.param({}, M(1000, 11, 120), None, Verdict.FAIL, "exceeds threshold", id="just-over-threshold"),
    pytest.param({}, M(50, 0, 120), None, Verdict.INCONCLUSIVE, "only 50 of the 100", id="too-few-requests"),
    pytest.param({}, M(0, 0, None), None, Verdict.INCONCLUSIVE, "only 0", id="no-data-is-not-healthy"),
    pytest.param({}, M(40, 2, 120), None, Verdict.FAIL, "already exceed", id="few-requests-but-errors-decide"),
    pytest.param({}, M(40, 1, 120), None, Verdict.INCONCLUSIVE, "only 40", id="few-requests-one-error"),
    pytest.param({"latency_p99_threshold_ms": 200}, M(1000, 0, 250), None, Verdict.FAIL, "p99 latency 250",
                 id="latency-over"),
    pytest.param({"latency_p99_threshold_ms": 200}, M(1000, 0, 200), None, Verdict.PASS, "within", id="latency-at"),
    pytest.param({"latency_p99_threshold_ms": 200}, M(1000, 0, None), None, Verdict.INCONCLUSIVE,
                 "no p99 latency", id="latency-unmeasured"),
    pytest.param({"max_error_rate_increase": 0.002}, M(1000, 8, 100), M(9000, 45, 100), Verdict.FAIL,
                 "exceeds old deployment's 0.0050", id="baseline-worse"),
    pytest.param({"max_error_rate_increase": 0.002}, M(1000, 6, 100), M(9000, 45, 100), Verdict.PASS,
                 "old's error rate 0.0050", id="baseline-close"),
    pytest.param({"max_error_rate_increase": 0.002}, M(1000, 8, 100), M(10, 0, 100), Verdict.PASS,
                 "baseline comparison skipped (old served 10", id="baseline-too-small"),
    pytest.param({"max_error_rate_increase": 0.002}, M(1000, 8, 100), None, Verdict.PASS,
                 "old served 0", id="baseline-absent"),
    pytest.param({"min_requests": 10, "error_threshold": 0.0}, M(10, 1, 100), None, Verdict.FAIL,
                 "exceeds threshold 0.0", id="zero-tolerance"),
    # Exactly at the edges (binary-exact rates, so the comparisons are what is tested):
    pytest.param({"min_requests": 100}, M(100, 1, 120), None, Verdict.PASS, "error rate 0.0100 within",
                 id="exactly-min-requests-is-judged"),
    pytest.param({"min_requests": 100}, M(99, 0, 120), None, Verdict.INCONCLUSIVE, "only 99 of the 100",
                 id="one-short-of-min-requests"),
    pytest.param({"min_requests": 100, "error_threshold": 0.25}, M(40, 25, 120), None, Verdict.INCONCLUSIVE,
                 "only 40", id="errors-exactly-at-threshold-of-min-requests-wait"),
    pytest.param({"min_requests": 100, "error_threshold": 0.25}, M(40, 26, 120), None, Verdict.FAIL,
                 "26 errors in 40 requests already exceed threshold 0.25 of the 100", id="one-error-over-fails-early"),
    pytest.param({"error_threshold": 1, "max_error_rate_increase": 0.25, "min_requests": 4}, M(4, 2, 100),
                 M(4, 1, 100), Verdict.PASS, "old's error rate 0.2500", id="exactly-the-allowed-increase"),
    pytest.param({"error_threshold": 1, "max_error_rate_increase": 0.25, "min_requests": 8}, M(8, 5, 100),
                 M(8, 2, 100), Verdict.FAIL, "exceeds old deployment's 0.2500 by more than 0.25",
                 id="just-over-the-allowed-increase"),
    pytest.param({"error_threshold": 1, "max_error_rate_increase": 0.25, "min_requests": 8}, M(8, 5, 100),
                 M(7, 0, 100), Verdict.PASS, "old served 7 requests", id="old-one-short-of-min-requests"),
    pytest.param({"error_threshold": 1, "max_error_rate_increase": 0.0, "min_requests": 8}, M(8, 2, 100),
                 M(8, 4, 100), Verdict.PASS, "old's error rate 0.5000", id="better-than-old"),
    pytest.param({"latency_p99_threshold_ms": 200}, M(1000, 0, 200.5), None, Verdict.FAIL,
                 "p99 latency 200 ms exceeds threshold 200 ms", id="latency-just-over"),
])
def test_judge(extra, new, old, verdict, reason):
    judgement = judge(HealthSample(new, old), parse_request({**BASE, **extra}))
    assert judgement.verdict is verdict
    assert reason in judgement.reason
    assert judgement.error_rate == (new.errors / new.requests if new.requests else None)


def test_judgement_numbers_by_verdict():
    early_reason = judge(HealthSample(M(1000, 20, 100)), parse_request(BASE)).reason
    assert early_reason == "error rate 0.0200 (20 errors in 1000 requests) exceeds threshold 0.01"
    failing = judge(HealthSample(M(8, 5, 100), M(8, 2, 100)),
                    parse_request({**BASE, "error_threshold": 1, "max_error_rate_increase": 0.25, "min_requests": 8}))
    assert (failing.error_rate, failing.baseline_error_rate) == (0.625, 0.25)
    early = judge(HealthSample(M(40, 26, 120)), parse_request({**BASE, "error_threshold": 0.25}))
    assert (early.verdict, early.error_rate, early.baseline_error_rate) == (Verdict.FAIL, 0.65, None)
    unmeasured = judge(HealthSample(M(1000, 0, None)), parse_request({**BASE, "latency_p99_threshold_ms": 200}))
    assert (unmeasured.reason, unmeasured.error_rate) == ("no p99 latency was measured", 0.0)
    short = judge(HealthSample(M(0, 0, None)), parse_request(BASE))
    assert (short.error_rate, short.baseline_error_rate) == (None, None)


def test_judgement_carries_the_numbers():
    judgement = judge(HealthSample(M(2000, 4, 90), M(8000, 8, 80)), parse_request({**BASE, "max_error_rate_increase": 0.01}))
    assert judgement.to_dict() == {"verdict": "pass", "reason": judgement.reason, "error_rate": 0.002,
                                   "baseline_error_rate": 0.001}
