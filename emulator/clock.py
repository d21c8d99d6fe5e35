"""Clocks for the embedded task hub: the virtual one a simulation drives, and the real one.

Every time is a timezone-aware UTC ``datetime``. The task hub treats a ``VirtualClock`` as
virtual: when it has nothing ready to run it moves the clock straight to the next due timer or
scheduled callback instead of waiting, so a 30-minute rollout simulates in well under a second.
Any other ``Clock`` is real: the hub sleeps until the next due time.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the time."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive ``datetime`` is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class RealClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        """The current wall-clock time."""
        return datetime.now(UTC)


class VirtualClock:
    """A clock that only moves when told to; thread-safe.

    Starts at ``start`` (a naive ``datetime`` is taken as UTC) and never goes backwards.
    """

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current virtual time."""
        with self._lock:
            return self._now

    def advance_to(self, moment: datetime) -> None:
        """Move the clock forward to ``moment``; a moment not after the current time changes nothing."""
        moment = as_utc(moment)
        with self._lock:
            if moment > self._now:
                self._now = moment

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta`` (negative deltas are refused with ``ValueError``)."""
        if delta < timedelta(0):
            raise ValueError(f"a virtual clock cannot go backwards (delta {delta})")
        with self._lock:
            self._now += delta
