"""The ``send_notifications`` activity: POST one rollout event to each target that wants it.

    send_notifications  {event: rollout.notify.rollout_event(...), targets: [NotifyTarget.to_dict()]}
                        -> {ok: true, sent: [{at, event, target (redacted URL), format, delivered, attempts, error}]}

Each target is tried at most ``SendPolicy.attempts`` times (default 3), each attempt bounded by
``timeout`` seconds (default 5), with ``backoff`` seconds doubling between attempts (default 1),
and the whole target bounded by ``deadline`` seconds (default 15): a receiver that hangs costs at
most that. Retried: no answer, 408, 429 and 5xx (``Retry-After`` honoured within the deadline);
any other answer is final. Failures are reported in the result, never raised: a notification
never fails a rollout. Logs and results show only ``redact_url`` forms of the URLs.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable, Mapping

import azure.durable_functions as df

from rollout.notify import CONTENT_TYPES, NotifyTarget, body_for, parse_targets, redact_url

bp = df.Blueprint()
log = logging.getLogger("aml_rollout.notify")
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
USER_AGENT = "aml-rollout-notify/1"


@dataclass(frozen=True)
class SendPolicy:
    """How hard to try one target (seconds)."""

    attempts: int = 3
    timeout: float = 5.0
    backoff: float = 1.0
    deadline: float = 15.0


@dataclass(frozen=True)
class Answer:
    """What one POST got: an HTTP status (None: no answer) and, if any, Retry-After seconds and an error text."""

    status: int | None
    retry_after: float | None = None
    error: str | None = None


Post = Callable[[str, bytes, str, float], Answer]


def post_json(url: str, body: bytes, content_type: str, timeout: float) -> Answer:
    """POST ``body`` with ``urllib``; the answer's status (any status: never raises)."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type, "User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:   # noqa: S310 (the target's http(s) URL)
            return Answer(reply.status)
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, _seconds(exc.headers.get("Retry-After")), f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Answer(None, None, f"no answer: {type(reason).__name__}: {reason}".replace(url, redact_url(url)))


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def send_one(target: NotifyTarget, event: Mapping[str, Any], policy: SendPolicy = SendPolicy(),
             post: Post = post_json, sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Deliver ``event`` to ``target`` as the policy allows; what happened (URL redacted)."""
    body = json.dumps(body_for(target.format, event)).encode()
    shown = redact_url(target.url)
    started, attempts, error = clock(), 0, None
    while attempts < policy.attempts:
        remaining = policy.deadline - (clock() - started)
        if remaining <= 0:
            error = f"{error}; gave up after {policy.deadline:g} s" if error else "deadline passed"
            break
        attempts += 1
        answer = post(target.url, body, CONTENT_TYPES[target.format], min(policy.timeout, remaining))
        if answer.status is not None and 200 <= answer.status < 300:
            return _result(event, shown, target, True, attempts, None)
        error = answer.error or f"HTTP {answer.status}"
        if answer.status is not None and answer.status not in RETRIED_STATUSES:
            break
        if attempts < policy.attempts:
            pause = answer.retry_after if answer.retry_after is not None else policy.backoff * 2 ** (attempts - 1)
            left = policy.deadline - (clock() - started)
            if pause >= left:
                error = f"{error}; next try would pass the {policy.deadline:g} s deadline"
                break
            sleep(pause)
    log.warning("notification %s to %s (%s) failed after %d attempt(s): %s", event.get("kind"), shown,
                target.format, attempts, error)
    return _result(event, shown, target, False, attempts, error)


def _result(event: Mapping[str, Any], shown: str, target: NotifyTarget, delivered: bool, attempts: int,
            error: str | None) -> dict[str, Any]:
    return {"at": datetime.now(UTC).isoformat(), "event": event.get("kind"), "target": shown, "format": target.format,
            "delivered": delivered, "attempts": attempts, "error": error}


def send_all(payload: Mapping[str, Any], policy: SendPolicy = SendPolicy(), post: Post = post_json,
             sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """The activity's work: each target that wants the event's kind, one after the other."""
    event = payload.get("event") or {}
    try:
        targets = parse_targets(payload.get("targets") or [], "targets")
    except Exception as exc:   # a malformed payload is reported, never raised
        return {"ok": True, "sent": [{"event": event.get("kind"), "target": None, "format": None, "delivered": False,
                                      "attempts": 0, "error": f"bad targets: {type(exc).__name__}"}]}
    sent = [send_one(t, event, policy, post, sleep) for t in targets if t.wants(str(event.get("kind")))]
    return {"ok": True, "sent": sent}


@bp.activity_trigger(input_name="payload")
def send_notifications(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Send one rollout event to the targets that want it; never raises."""
    return send_all(payload)
