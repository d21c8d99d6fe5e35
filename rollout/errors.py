"""The project's one error tree.

Every failure the app expects has a type here. Adapters translate ``azure.core.exceptions``
into it; HTTP handlers map it to status codes; activities turn ``AzureError`` into an explicit
``{"ok": false, "error": {...}}`` result so that the orchestrator, which never sees exception
types, can branch on it.

    RolloutError
    ├── InvalidRequest           400  a request or scenario field is bad (names each field)
    ├── InvalidAlert             400  not a common-alert-schema payload
    ├── RolloutNotFound          404  no rollout for that endpoint
    ├── RolloutConflict          409  the endpoint already has a rollout running
    ├── ActionNotAllowed         409  a control action that does not fit the phase
    └── AzureError                    a call to Azure (or its simulation) failed
        ├── ResourceNotFound          the endpoint or a deployment does not exist (kind + name)
        ├── UpdateConflict            another update of the endpoint is in progress (retryable)
        ├── Throttled                 429; ``retry_after`` seconds when the service said so (retryable)
        ├── TransientError            5xx, timeouts, connection failures (retryable)
        ├── PermissionDenied          401/403; names the role the app's identity needs
        ├── TrafficDrift              set_traffic found traffic other than the rollout expected (nothing written)
        └── ServiceError              anything else, with the service's own message
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class RolloutError(Exception):
    """Base of every error the app raises on purpose."""


@dataclass(frozen=True)
class FieldProblem:
    """One bad field: its dotted path and what is wrong with it."""

    field: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class InvalidRequest(RolloutError):
    """A rollout request or scenario is bad; ``problems`` names every bad field."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


class InvalidAlert(RolloutError):
    """The payload is not an Azure Monitor common alert schema document."""


class RolloutNotFound(RolloutError):
    """No rollout exists for the endpoint."""


class RolloutConflict(RolloutError):
    """The endpoint already has a running rollout (``instance_id`` names it)."""

    def __init__(self, message: str, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(message)


class ActionNotAllowed(RolloutError):
    """A control action does not fit the rollout's current phase."""


class AzureError(RolloutError):
    """A call to Azure failed. ``retryable`` errors may succeed if tried again later."""

    retryable = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)

    def to_dict(self) -> dict[str, Any]:
        """The wire form activities return inside ``{"ok": false, "error": ...}``."""
        return {
            "kind": type(self).__name__,
            "message": str(self),
            "retryable": self.retryable,
            "retry_after": self.retry_after,
        }


class ResourceNotFound(AzureError):
    """The endpoint or deployment does not exist. ``kind`` is "endpoint" or "deployment"."""

    def __init__(self, kind: str, name: str, message: str | None = None) -> None:
        self.kind = kind
        self.name = name
        super().__init__(message or f"{kind} {name!r} not found")


class UpdateConflict(AzureError):
    """Another update of the endpoint is in progress."""

    retryable = True


class Throttled(AzureError):
    """Azure answered 429; wait ``retry_after`` seconds when given."""

    retryable = True


class TransientError(AzureError):
    """A 5xx, a timeout or a broken connection."""

    retryable = True


class PermissionDenied(AzureError):
    """The app's identity lacks a role; the message names it."""


class ServiceError(AzureError):
    """Any other failure, carrying the service's own message."""


class TrafficDrift(AzureError):
    """``set_traffic`` read traffic other than the ``expected`` it was given, and wrote nothing:
    someone else changed it. ``found`` is the endpoint as read."""

    def __init__(self, found: Any) -> None:
        self.found = found
        super().__init__(f"traffic changed outside this rollout: found {dict(found.traffic)}")


AZURE_ERRORS: dict[str, type[AzureError]] = {
    cls.__name__: cls
    for cls in (UpdateConflict, Throttled, TransientError, PermissionDenied, ServiceError)
}
