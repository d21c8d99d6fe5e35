"""Where activities get their ports: the one seam between the rollout and the outside world.

In Azure the backend is ``adapters.azure_backend.AzureBackend`` built from ``settings``, on first
use (so importing ``function_app`` imports no Azure SDK). The emulator installs its simulated
backend with ``use_backend`` before running anything.
"""

from __future__ import annotations

import threading

from rollout.ports import Backend

_lock = threading.Lock()
_backend: Backend | None = None


def use_backend(backend: Backend | None) -> None:
    """Make ``backend`` the one activities use (None: go back to the Azure default)."""
    global _backend
    with _lock:
        _backend = backend


def current_backend() -> Backend:
    """The installed backend, building the Azure one from the environment on first use."""
    global _backend
    with _lock:
        if _backend is None:
            from adapters.azure_backend import AzureBackend
            from settings import load_settings

            _backend = AzureBackend(load_settings().azure)
        return _backend
