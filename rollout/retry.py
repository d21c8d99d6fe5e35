"""Bounded exponential backoff for Azure calls that may succeed later.

Retries happen in the orchestrator on durable timers, not by sleeping inside an activity:
the worker is not blocked, the wait survives restarts, and Azure's ``Retry-After`` is honoured
(Durable retry options cannot read it).
"""

from __future__ import annotations

from typing import Any, Mapping

MAX_ATTEMPTS = 5          # tries in all, the first included
FIRST_DELAY_SECONDS = 5.0
BACKOFF = 2.0
MAX_DELAY_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 300.0


def retry_delay(attempt: int, error: Mapping[str, Any]) -> float | None:
    """Seconds to wait before try ``attempt + 1``, or None to give up.

    ``attempt`` counts tries made so far (1 after the first failure). Non-retryable errors and
    the last attempt give None. The delay is ``5 s * 2**(attempt-1)`` capped at 60 s, or the
    service's ``retry_after`` when that is longer (capped at 300 s).
    """
    if not error.get("retryable") or attempt >= MAX_ATTEMPTS:
        return None
    delay = min(FIRST_DELAY_SECONDS * BACKOFF ** (attempt - 1), MAX_DELAY_SECONDS)
    retry_after = error.get("retry_after")
    if retry_after:
        delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER_SECONDS))
    return delay
