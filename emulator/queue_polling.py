"""The Azure Storage provider's queue polling delay, for the real-clock emulator.

On Azure the Durable extension's default backend (DurableTask.AzureStorage) finds orchestrator
messages (control queues) and activity messages (the work-item queue) by polling Azure Storage
queues. Each poller backs off while its queue is empty (``BackoffPollingHelper`` with
``RandomizedExponentialBackoffStrategy``, Azure/durabletask src/DurableTask.AzureStorage):
minimum 50 ms (``TaskHubQueue``), then ``50 ms + U(0.8, 1.2) x 2^(n-1) x 50 ms`` after the n-th
empty poll in a row, capped at ``maxQueuePollingInterval`` (host.json
``extensions.durableTask.storageProvider.maxQueuePollingInterval``, default 30 s); a poll that
finds messages resets it to the minimum. Every message visible at a poll is taken by it - a
control queue poll takes up to 32 (``ControlQueueBatchSize``).

A message enqueued *by the same host process* also wakes that process's poller at once
(``TaskHubQueue.AddMessageAsync`` calls ``backoffHelper.Reset()``); one enqueued by another
instance of a scaled-out app, and a timer message that only becomes visible at its fire time,
wait for the next poll. ``QueuePoller`` models that second, slower case - the one to plan for -
so the real-clock emulator never reports a latency better than Azure's.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

MIN_INTERVAL = timedelta(milliseconds=50)
PARTITION_COUNT = 4
"""Control queues per task hub (``AzureStorageOptions.PartitionCount`` default)."""
DEFAULT_MAX_INTERVAL = timedelta(seconds=30)
RANDOMIZATION_FACTOR = 0.2


class QueuePoller:
    """One queue's poller: when a message enqueued at a given time is picked up.

    ``pickup_time`` must be called with non-decreasing times (messages in the order they are
    enqueued); ``rng`` draws the backoff's randomisation (seed it for repeatable figures).
    """

    def __init__(self, max_interval: timedelta, start: datetime, rng: random.Random | None = None) -> None:
        self.max_interval = max(max_interval, MIN_INTERVAL)
        self.interval = timedelta(0)  # RandomizedExponentialBackoffStrategy.CurrentInterval starts at zero
        self.exponent = 0
        self.next_poll = start
        self._rng = rng or random.Random()

    def pickup_time(self, enqueued_at: datetime) -> datetime:
        """The first poll at or after ``enqueued_at`` (empty polls before it back off); that poll resets."""
        while self.next_poll < enqueued_at:
            self._empty_poll()
            self.next_poll += self.interval
        pickup = self.next_poll
        self.interval, self.exponent = MIN_INTERVAL, 1  # UpdateDelay(executionSucceeded: true)
        return pickup

    def _empty_poll(self) -> None:
        """``UpdateDelay(false)``."""
        if self.interval == self.max_interval:
            return
        backoff = MIN_INTERVAL
        if self.exponent > 0:
            factor = self._rng.uniform(1.0 - RANDOMIZATION_FACTOR, 1.0 + RANDOMIZATION_FACTOR)
            backoff += MIN_INTERVAL * (factor * 2.0 ** (self.exponent - 1))
        if backoff < self.max_interval:
            self.interval, self.exponent = backoff, self.exponent + 1
        else:
            self.interval = self.max_interval


@dataclass(frozen=True)
class QueuePolling:
    """The polling model's setting: the largest backoff interval, and a seed for the randomisation."""

    max_interval: timedelta = DEFAULT_MAX_INTERVAL
    seed: int | None = None

    def poller(self, start: datetime) -> QueuePoller:
        return QueuePoller(self.max_interval, start, random.Random(self.seed))

    @classmethod
    def from_host_json(cls, path: Path, seed: int | None = None) -> QueuePolling:
        """``extensions.durableTask.storageProvider.maxQueuePollingInterval`` of ``host.json`` (30 s when unset)."""
        settings = json.loads(path.read_text())
        durable = settings.get("extensions", {}).get("durableTask", {})
        text = durable.get("storageProvider", {}).get("maxQueuePollingInterval")
        return cls(DEFAULT_MAX_INTERVAL if text is None else parse_timespan(text), seed)


def control_queue(instance_id: str, partitions: int = PARTITION_COUNT) -> str:
    """The control queue of an instance: FNV-1a (32-bit) of its id's UTF-8 bytes modulo the partition count
    (``AzureStorageOrchestrationService.GetControlQueueAsync`` / ``Fnv1aHashHelper``)."""
    value = 2166136261
    for byte in instance_id.encode("utf-8"):
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return f"control-{value % partitions:02d}"


WORK_ITEM_QUEUE = "workitems"


def parse_timespan(text: str) -> timedelta:
    """A .NET ``TimeSpan`` as host.json writes it: ``[d.]hh:mm:ss[.fffffff]``."""
    match = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?", text.strip())
    if match is None:
        raise ValueError(f"not a TimeSpan: {text!r}")
    days, hours, minutes, seconds, fraction = match.groups()
    return timedelta(days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=int(seconds),
                     microseconds=int((fraction or "0").ljust(7, "0")[:6]))
