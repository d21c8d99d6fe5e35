"""The legacy health judge, kept only as the comparison in ``bench/bench_judge.py``: the
orchestrator judges with ``rollout.judge`` (docs/judge.md says why this one rolls back healthy
deployments and dilutes late regressions).

Health verdicts: is the new deployment healthy enough, given what it served?

``judge`` is a pure function of a health sample and the request's thresholds. "No data" is
never healthy: too few requests is *inconclusive*.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rollout.model import DeploymentMetrics
from rollout.plan import RolloutRequest
from rollout.verdict import Verdict


@dataclass(frozen=True)
class HealthSample:
    """What new and old served over the same window. ``old`` is None when it was not measured."""

    new: DeploymentMetrics
    old: DeploymentMetrics | None = None


@dataclass(frozen=True)
class Judgement:
    """A verdict and the sentence that explains it, with the numbers it was based on."""

    verdict: Verdict
    reason: str
    error_rate: float | None = None
    baseline_error_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "error_rate": self.error_rate,
            "baseline_error_rate": self.baseline_error_rate,
        }


def error_rate(metrics: DeploymentMetrics) -> float | None:
    """Errors (5xx and 424) per request, or None with no requests."""
    return metrics.errors / metrics.requests if metrics.requests else None


def judge(sample: HealthSample, request: RolloutRequest) -> Judgement:
    """Judge the new deployment's health against the request's thresholds.

    In order: FAIL when the errors already seen exceed ``error_threshold`` even if every
    request still missing to ``min_requests`` succeeded (so a burst of failures fails fast);
    INCONCLUSIVE below ``min_requests``; FAIL on p99 latency above
    ``latency_p99_threshold_ms`` (INCONCLUSIVE when that threshold is set but no latency was
    measured); FAIL when the error rate exceeds old's by more than ``max_error_rate_increase``
    (skipped, and said so, when old served fewer than ``min_requests``); otherwise PASS.
    """
    new, minimum = sample.new, request.min_requests
    rate = error_rate(new)
    if new.errors > request.error_threshold * max(new.requests, minimum):
        return Judgement(Verdict.FAIL, _error_reason(new, request.error_threshold, minimum), rate)
    if new.requests < minimum:
        return Judgement(Verdict.INCONCLUSIVE, f"only {new.requests} of the {minimum} requests needed to judge", rate)
    latency = _latency_judgement(new, request, rate)
    if latency is not None:
        return latency
    return _baseline_judgement(sample, request, rate)


def _error_reason(new: DeploymentMetrics, threshold: float, minimum: int) -> str:
    seen = f"{new.errors} errors in {new.requests} requests"
    if new.requests >= minimum:
        return f"error rate {new.errors / new.requests:.4f} ({seen}) exceeds threshold {threshold}"
    return f"{seen} already exceed threshold {threshold} of the {minimum} requests needed to judge"


def _latency_judgement(new: DeploymentMetrics, request: RolloutRequest, rate: float | None) -> Judgement | None:
    limit = request.latency_p99_threshold_ms
    if limit is None:
        return None
    if new.latency_p99_ms is None:
        return Judgement(Verdict.INCONCLUSIVE, "no p99 latency was measured", rate)
    if new.latency_p99_ms > limit:
        return Judgement(Verdict.FAIL, f"p99 latency {new.latency_p99_ms:.0f} ms exceeds threshold {limit:.0f} ms", rate)
    return None


def _baseline_judgement(sample: HealthSample, request: RolloutRequest, rate: float | None) -> Judgement:
    summary = f"error rate {rate:.4f} within threshold {request.error_threshold}"
    allowed = request.max_error_rate_increase
    if allowed is None:
        return Judgement(Verdict.PASS, summary, rate)
    old = sample.old
    if old is None or old.requests < request.min_requests:
        served = 0 if old is None else old.requests
        return Judgement(Verdict.PASS, f"{summary}; baseline comparison skipped (old served {served} requests)", rate)
    baseline = old.errors / old.requests
    assert rate is not None  # new served at least min_requests >= 1
    if rate - baseline > allowed:
        reason = f"error rate {rate:.4f} exceeds old deployment's {baseline:.4f} by more than {allowed}"
        return Judgement(Verdict.FAIL, reason, rate, baseline)
    return Judgement(Verdict.PASS, f"{summary}; old's error rate {baseline:.4f}", rate, baseline)
