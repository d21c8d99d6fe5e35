"""Bounded exponential backoff for Azure calls that may succeed later, and the rollback's own.

Retries happen in the orchestrator on durable timers, not by sleeping inside an activity:
the worker is not blocked, the wait survives restarts, and Azure's ``Retry-After`` is honoured
(Durable retry options cannot read it).

A rollback is different: it never gives up (``rollback_retry_delay``). Every failure is tried
again, non-retryable ones included (a missing role or a stuck update may be fixed by a person
at any time), with backoff capped at ``MAX_ROLLBACK_DELAY_SECONDS``, until traffic is safe or a
person sends ``resolve``.
"""

from __future__ import annotations

from typing import Any, Mapping

MAX_ATTEMPTS = 5          # tries in all, the first included
FIRST_DELAY_SECONDS = 5.0
BACKOFF = 2.0
MAX_DELAY_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 300.0
MAX_ROLLBACK_DELAY_SECONDS = 300.0


def retry_delay(attempt: int, error: Mapping[str, Any]) -> float | None:
    """Seconds to wait before try ``attempt + 1``, or None to give up.

    ``attempt`` counts tries made so far (1 after the first failure). Non-retryable errors and
    the last attempt give None. The delay is ``5 s * 2**(attempt-1)`` capped at 60 s, or the
    service's ``retry_after`` when that is longer (capped at 300 s).
    """
    if not error.get("retryable") or attempt >= MAX_ATTEMPTS:
        return None
    return _backoff(attempt, error, MAX_DELAY_SECONDS)


def rollback_retry_delay(attempt: int, error: Mapping[str, Any]) -> float:
    """Seconds to wait before rollback try ``attempt + 1``: never gives up.

    ``5 s * 2**(attempt-1)`` capped at 300 s, or the service's ``retry_after`` when longer
    (capped at 300 s), whatever the error.
    """
    return _backoff(attempt, error, MAX_ROLLBACK_DELAY_SECONDS)


def _backoff(attempt: int, error: Mapping[str, Any], cap: float) -> float:
    exponent = min(max(attempt - 1, 0), 32)                 # 2**32 * 5 s is far past any cap
    delay = min(FIRST_DELAY_SECONDS * BACKOFF ** exponent, cap)
    retry_after = error.get("retry_after")
    if isinstance(retry_after, (int, float)) and retry_after == retry_after and retry_after > 0:
        delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER_SECONDS))
    return delay
