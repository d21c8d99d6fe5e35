"""Backoff for retryable Azure errors, and ISO 8601 durations."""

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.durations import format_duration, parse_duration
from rollout.retry import MAX_ATTEMPTS, retry_delay

LIMIT = timedelta(days=30)
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
    assert parse_duration(text, LIMIT) == delta


@pytest.mark.parametrize("text, message", [
    pytest.param("", "is not an ISO 8601 duration", id="empty"),
    pytest.param("P", "is not an ISO 8601 duration", id="p-alone"),
    pytest.param("PT", "is not an ISO 8601 duration", id="t-without-time"),
    pytest.param("P1DT", "is not an ISO 8601 duration", id="dangling-t"),
    pytest.param("5M", "is not an ISO 8601 duration", id="no-p"),
    pytest.param("P1M", "years and months are not allowed", id="months"),
    pytest.param("P1Y", "years and months are not allowed", id="years"),
    pytest.param("PT5X", "is not an ISO 8601 duration", id="unknown-designator"),
    pytest.param("PT-5M", "is not an ISO 8601 duration", id="negative-part"),
    pytest.param("-PT5M", "is not an ISO 8601 duration", id="negative-sign"),
    pytest.param("+PT5M", "is not an ISO 8601 duration", id="plus-sign"),
    pytest.param("PT5M\n", "is not an ISO 8601 duration", id="trailing-newline"),
    pytest.param(" PT5M", "is not an ISO 8601 duration", id="leading-space"),
    pytest.param("PT\uff15M", "is not an ISO 8601 duration", id="fullwidth-digit"),
    pytest.param("PT\u0665M", "is not an ISO 8601 duration", id="arabic-indic-digit"),
    pytest.param("PT5\u017f", "is not an ISO 8601 duration", id="long-s-upper-cases-to-S"),
    pytest.param("P31D", "must be at most P30D", id="over-limit"),
    pytest.param("P99999999999W", "must be at most P30D", id="overflows-timedelta"),
    pytest.param("PT" + "9" * 400 + "S", "must be at most P30D", id="overflows-float"),
    pytest.param(300, "must be an ISO 8601 duration", id="number"),
    pytest.param(None, "must be an ISO 8601 duration", id="null"),
])
def test_parse_duration_refuses(text, message):
    with pytest.raises(ValueError) as caught:
        parse_duration(text, LIMIT)
    assert message in str(caught.value)


def test_parse_duration_accepts_exactly_the_limit():
    assert parse_duration("P30D", LIMIT) == LIMIT


@pytest.mark.parametrize("delta, text", [
    pytest.param(timedelta(0), "PT0S", id="zero"),
    pytest.param(timedelta(hours=1, minutes=30), "PT1H30M", id="hours-minutes"),
    pytest.param(timedelta(days=2, seconds=5), "P2DT5S", id="days-seconds"),
    pytest.param(timedelta(days=1), "P1D", id="day"),
    pytest.param(timedelta(seconds=1.5), "PT1.5S", id="fraction-kept"),
    pytest.param(timedelta(days=6, microseconds=1), "P6DT0.000001S", id="microsecond-kept"),
])
def test_format_duration_round_trips(delta, text):
    assert format_duration(delta) == text
    assert parse_duration(text, LIMIT) == delta


@settings(max_examples=200, deadline=None)
@given(delta=st.timedeltas(min_value=timedelta(0), max_value=LIMIT))
def test_every_duration_in_range_round_trips_exactly(delta):
    assert parse_duration(format_duration(delta), LIMIT) == delta


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40) | st.from_regex(r"[Pp]([0-9]{1,25}[WwDd]){0,2}([Tt]([0-9.,]{1,30}[HhMmSs]){1,3})?",
                                                fullmatch=True))
def test_any_text_is_a_duration_in_range_or_a_value_error(text):
    try:
        delta = parse_duration(text, LIMIT)
    except ValueError:
        return
    assert timedelta(0) <= delta <= LIMIT
