"""The Azure Storage provider's queue polling delay, as the real-clock emulator models it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from emulator.clock import VirtualClock
from emulator.queue_polling import MIN_INTERVAL, QueuePoller, QueuePolling, control_queue, parse_timespan
from emulator.taskhub import TaskHub


def idle_intervals(max_interval: timedelta, polls: int, t0) -> list[float]:
    poller = QueuePoller(max_interval, t0)
    seen = []
    for _ in range(polls):
        poller._empty_poll()
        seen.append(poller.interval.total_seconds())
    return seen


@pytest.mark.parametrize("poll, low, high", [
    # 50 ms, then 50 ms + U(0.8, 1.2) x 2^(n-1) x 50 ms, capped (RandomizedExponentialBackoffStrategy)
    pytest.param(0, 0.050, 0.050, id="first-empty-poll-waits-the-minimum"),
    pytest.param(1, 0.090, 0.110, id="second-adds-about-50-ms"),
    pytest.param(3, 0.210, 0.290, id="fourth-adds-about-200-ms"),
    pytest.param(6, 1.330, 1.970, id="seventh-adds-about-1600-ms"),
    pytest.param(7, 2.0, 2.0, id="then-capped-at-the-maximum"),
    pytest.param(30, 2.0, 2.0, id="and-stays-there"),
])
def test_an_idle_poller_backs_off_exponentially_up_to_max_queue_polling_interval(t0, poll, low, high):
    assert low <= idle_intervals(timedelta(seconds=2), 31, t0)[poll] <= high


def test_a_message_waits_for_the_next_poll_and_that_poll_resets_the_backoff(t0):
    poller = QueuePoller(timedelta(seconds=2), t0)
    late = t0 + timedelta(minutes=1)
    pickup = poller.pickup_time(late)
    assert late < pickup <= late + timedelta(seconds=2)
    assert poller.interval == MIN_INTERVAL and poller.pickup_time(pickup) == pickup  # found work: polls again at once


@pytest.mark.parametrize("model, low, high", [
    pytest.param(None, 0.0, 0.0, id="without-the-model-at-once"),
    pytest.param(QueuePolling(timedelta(seconds=2), seed=7), 0.001, 2.0, id="idle-control-queue-up-to-2-s"),
    pytest.param(QueuePolling(timedelta(seconds=30), seed=7), 2.0, 30.0, id="default-30-s-polling-much-later"),
])
def test_an_event_raised_after_a_quiet_minute_reaches_the_orchestrator_at_the_next_poll(app, t0, model, low, high):
    clock = VirtualClock(t0)
    hub = TaskHub(app, clock, queue_polling=model)
    done = []
    hub.observe(lambda r: done.append(r["at"]) if r["kind"] == "completed" else None)
    hub.start("listener", "p1")
    hub.run(max_virtual_seconds=60)
    clock.advance_to(t0 + timedelta(minutes=1))
    hub.raise_event("p1", "note", "go")
    hub.run()

    delay = (done[0] - (t0 + timedelta(minutes=1))).total_seconds()
    assert low <= delay <= high


def test_instances_spread_over_four_control_queues_by_fnv1a_of_their_id():
    queues = {control_queue(f"rollout-ep{n}") for n in range(40)}
    assert queues == {"control-00", "control-01", "control-02", "control-03"}
    assert control_queue("") == f"control-{2166136261 % 4:02d}"  # the FNV offset basis, nothing hashed


def test_host_json_sets_the_interval_deliberately():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent.parent
    assert QueuePolling.from_host_json(root / "host.json").max_interval == timedelta(seconds=2)
    assert parse_timespan("1.02:03:04.5") == timedelta(days=1, hours=2, minutes=3, seconds=4.5)
