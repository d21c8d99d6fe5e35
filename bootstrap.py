"""The one composition point: the Function App built from explicit dependencies.

    build_app(backend=provider, settings=provider[, alert_auth=level, alert_validator=function]) -> df.DFApp

``backend`` provides the ``rollout.ports.Backend`` the activities reach Azure ML and the metrics
through; ``settings`` the ``settings.Settings`` the HTTP routes read (the managed workspaces, the
alert size limit); ``alert_validator`` what checks the alert route's Entra ID tokens given those
settings (default ``api.entra.validator_for``: the tenant's published signing keys when the
settings turn Secure Webhook validation on, else none). ``backend`` and ``settings`` are
providers: zero-argument callables, called when a function first needs them, so building the app
builds nothing else. ``function_app.py`` passes
``azure_defaults()``: the environment is read and the Azure SDK clients are built on first use,
once. The emulator passes its simulated backend and its own settings with ``provide``.
"""

from __future__ import annotations

import threading
from typing import Callable, TypeVar

import azure.durable_functions as df
import azure.functions as func

import activities
import activities.lifecycle
from activities.notify import bp as notifications
from api import http
from api.entra import AlertValidator, validator_for
from api.view import bp as view_routes
from orchestrators.rollout import bp as orchestrators
from rollout.ports import Backend
from settings import Settings, load_settings

T = TypeVar("T")


def build_app(*, backend: Callable[[], Backend], settings: Callable[[], Settings],
              alert_auth: func.AuthLevel = func.AuthLevel.FUNCTION,
              alert_validator: AlertValidator = validator_for) -> df.DFApp:
    """The orchestrator, the activities and the lifecycle activities (given ``backend``), the
    notification sender, the HTTP routes (given ``settings``) and the report page, every HTTP route
    at auth level FUNCTION but the alert route, at ``alert_auth`` (ANONYMOUS only with Secure
    Webhook validation: ``api.entra``), whose tokens ``alert_validator`` checks."""
    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(orchestrators)
    app.register_functions(activities.blueprint(backend))
    app.register_functions(activities.lifecycle.blueprint(backend))
    app.register_functions(notifications)
    app.register_functions(http.blueprint(settings, alert_auth, alert_validator))
    app.register_functions(view_routes)
    return app


def provide(value: T) -> Callable[[], T]:
    """A provider of ``value`` itself."""
    return lambda: value


def lazily(build: Callable[[], T]) -> Callable[[], T]:
    """A provider that calls ``build`` on first use (one thread at a time) and then returns what it built.

    A ``build`` that raises is called again on the next use.
    """
    lock = threading.Lock()
    built: list[T] = []

    def get() -> T:
        with lock:
            if not built:
                built.append(build())
            return built[0]

    return get


def azure_defaults() -> tuple[Callable[[], Backend], Callable[[], Settings]]:
    """Production's providers: settings from the environment (``load_settings``), and
    ``AzureBackend`` over them (importing the Azure SDKs only then)."""
    settings = lazily(load_settings)

    def azure_backend() -> Backend:
        from adapters.azure_backend import AzureBackend

        return AzureBackend(settings().azure)

    return lazily(azure_backend), settings
