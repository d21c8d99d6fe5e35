"""HTTP problem responses (RFC 7807) and the one place the error tree becomes status codes.

    error                          status  problem type (``urn:aml-rollout:problem:<slug>``)
    InvalidRequest                 400     invalid-request   (``errors``: [{field, message}])
    InvalidAlert                   400     invalid-alert     (not the common alert schema)
    RolloutNotFound                404     rollout-not-found
    RolloutConflict                409     rollout-conflict  (``instance_id`` names the running one)
    ActionNotAllowed               409     action-not-allowed
    BodyTooLarge                   413     body-too-large
    BackendUnavailable             503     backend-unavailable (``Retry-After`` header)
    AzureError, retryable          503     azure-unavailable   (``Retry-After`` when Azure gave one)
    AzureError, other              502     azure-error
    anything else                  500     internal-error (no details: they stay in the log)

``BodyTooLarge`` and ``BackendUnavailable`` are HTTP-layer errors, so they live here rather than
in ``rollout.errors``; both are ``RolloutError``s. ``answers_problems`` wraps a route handler
so that every exception it raises becomes one of these responses; with ``retry_unexpected``
an unexpected exception becomes a 503 instead of a 500 (the alert webhook: Azure Monitor
retries 503 but never 500, so a 500 would lose the alert).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
from typing import Any, Awaitable, Callable, TypeVar

import aiohttp
import azure.functions as func

from rollout.errors import (
    ActionNotAllowed,
    AzureError,
    InvalidAlert,
    InvalidRequest,
    RolloutConflict,
    RolloutError,
    RolloutNotFound,
)

log = logging.getLogger("aml_rollout.http")

PROBLEM_JSON = "application/problem+json"
DEFAULT_RETRY_AFTER = 10       # seconds a caller should wait after a 503 when nothing better is known

# What the Durable client raises when the task hub (the Functions host's management API) cannot
# be reached: the client talks to it over HTTP with aiohttp.
BACKEND_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


class BodyTooLarge(RolloutError):
    """The request body is larger than the route accepts (``limit`` bytes)."""

    def __init__(self, size: int, limit: int) -> None:
        self.size, self.limit = size, limit
        super().__init__(f"the body is {size} bytes; at most {limit} are accepted")


class BackendUnavailable(RolloutError):
    """The Durable backend (task hub) cannot take the request now; try again after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: int = DEFAULT_RETRY_AFTER) -> None:
        self.retry_after = retry_after
        super().__init__(message)


# (error type, status, slug, title): the first entry the error is an instance of wins.
_MAP: tuple[tuple[type[Exception], int, str, str], ...] = (
    (InvalidRequest, 400, "invalid-request", "The request is not valid"),
    (InvalidAlert, 400, "invalid-alert", "Not an Azure Monitor common alert schema payload"),
    (RolloutNotFound, 404, "rollout-not-found", "No such rollout"),
    (RolloutConflict, 409, "rollout-conflict", "The endpoint already has a rollout running"),
    (ActionNotAllowed, 409, "action-not-allowed", "The action does not fit the rollout's phase"),
    (BodyTooLarge, 413, "body-too-large", "The request body is too large"),
    (BackendUnavailable, 503, "backend-unavailable", "The Durable backend is unavailable; try again"),
)


def problem(status: int, slug: str, title: str, detail: str, headers: dict[str, str] | None = None,
            **extensions: Any) -> func.HttpResponse:
    """An ``application/problem+json`` response: type, title, status, detail and any extensions."""
    body = {"type": f"urn:aml-rollout:problem:{slug}", "title": title, "status": status, "detail": detail,
            **extensions}
    return func.HttpResponse(json.dumps(body), status_code=status, headers=headers or {}, mimetype=PROBLEM_JSON)


def problem_response(exc: Exception, **extensions: Any) -> func.HttpResponse:
    """The response for an error of the tree (see the module docstring); ``extensions`` are added to the body."""
    if isinstance(exc, AzureError):
        return _azure_problem(exc)
    for kind, status, slug, title in _MAP:
        if isinstance(exc, kind):
            return problem(status, slug, title, str(exc), _headers(exc), **_extensions(exc), **extensions)
    return internal_error()


def internal_error() -> func.HttpResponse:
    """A 500 that says nothing about the cause (it is in the log, never in the response)."""
    return problem(500, "internal-error", "Internal error", "the request failed unexpectedly; see the app's logs")


def unavailable(message: str) -> func.HttpResponse:
    """A 503 with ``Retry-After``: the request may succeed if sent again later."""
    return problem_response(BackendUnavailable(message))


def _azure_problem(exc: AzureError) -> func.HttpResponse:
    kind = type(exc).__name__
    if exc.retryable:
        after = math.ceil(exc.retry_after) if exc.retry_after else DEFAULT_RETRY_AFTER
        return problem(503, "azure-unavailable", "Azure is busy or unavailable; try again", str(exc),
                       {"Retry-After": str(after)}, kind=kind)
    return problem(502, "azure-error", "Azure refused the request", str(exc), kind=kind)


def _headers(exc: Exception) -> dict[str, str]:
    if isinstance(exc, BackendUnavailable):
        return {"Retry-After": str(exc.retry_after)}
    return {}


def _extensions(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, InvalidRequest):
        return {"errors": [p.to_dict() for p in exc.problems]}
    if isinstance(exc, RolloutConflict):
        return {"instance_id": exc.instance_id}
    if isinstance(exc, BodyTooLarge):
        return {"limit_bytes": exc.limit}
    return {}


Handler = TypeVar("Handler", bound=Callable[..., Awaitable[func.HttpResponse]])


def answers_problems(retry_unexpected: bool = False) -> Callable[[Handler], Handler]:
    """Wrap an async route handler so that whatever it raises becomes a problem response.

    Errors of the tree map as in the module docstring; ``BACKEND_ERRORS`` (the task hub
    unreachable) become 503 with ``Retry-After``; anything else is logged with its traceback
    and becomes a bare 500, or a 503 when ``retry_unexpected`` (default False) is set.
    """
    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def run(*args: Any, **kwargs: Any) -> func.HttpResponse:
            try:
                return await handler(*args, **kwargs)
            except RolloutError as exc:
                return problem_response(exc)
            except BACKEND_ERRORS as exc:
                log.warning("%s: the Durable backend is unreachable: %s: %s", handler.__name__, type(exc).__name__, exc)
                return unavailable("the Durable task hub cannot be reached; try again")
            except Exception:
                log.exception("%s failed unexpectedly", handler.__name__)
                if retry_unexpected:
                    return unavailable("the request could not be handled now; try again")
                return internal_error()
        return run  # type: ignore[return-value]
    return wrap
