"""Backoff for retryable Azure errors, and ISO 8601 durations."""

from datetime import timedelta

import pytest

from rollout.durations import format_duration, parse_duration
from rollout.retry import MAX_ATTEMPTS, retry_delay

RETRYABLE = {"retryable": True, "retry_after": None}


@pytest.mark.parametrize("attempt, error, delay", [
    pytest.param(1, RETRYABLE, 5.0, id="first-retry"),
    pytest.param(2, RETRYABLE, 10.0, id="doubles"),
    pytest.param(4, RETRYABLE, 40.0, id="fourth"),
    pytest.param(MAX_ATTEMPTS, RETRYABLE, None, id="gives-up"),
    pytest.param(1, {"retryable": False}, None, id="not-retryable"),
    pytest.param(1, {"retryable": True, "retry_after": 30}, 30.0, id="retry-after-longer"),
    pytest.param(3, {"retryable": True, "retry_after": 2}, 20.0, id="retry-after-shorter-than-backoff"),
    pytest.param(1, {"retryable": True, "retry_after": 9999}, 300.0, id="retry-after-capped"),
])
def test_retry_delay(attempt, error, delay):
    assert retry_delay(attempt, error) == delay


@pytest.mark.parametrize("text, delta", [
    pytest.param("PT5M", timedelta(minutes=5), id="minutes"),
    pytest.param("PT0S", timedelta(0), id="zero"),
    pytest.param("P1DT2H", timedelta(days=1, hours=2), id="days-hours"),
    pytest.param("PT1.5S", timedelta(seconds=1.5), id="fractional"),
    pytest.param("P2W", timedelta(weeks=2), id="weeks"),
    pytest.param("pt90s", timedelta(seconds=90), id="lower-case"),
])
def test_parse_duration(text, delta):
    assert parse_duration(text) == delta


@pytest.mark.parametrize("text", ["", "P", "PT", "5M", "P1M", "P1Y", "PT5X", "PT-5M"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("delta, text", [
    pytest.param(timedelta(0), "PT0S", id="zero"),
    pytest.param(timedelta(hours=1, minutes=30), "PT1H30M", id="hours-minutes"),
    pytest.param(timedelta(days=2, seconds=5), "P2DT5S", id="days-seconds"),
    pytest.param(timedelta(days=1), "P1D", id="day"),
])
def test_format_duration_round_trips(delta, text):
    assert format_duration(delta) == text
    assert parse_duration(text) == delta
