"""What one Python Functions worker process has once: the indexed functions and one event loop.

``registered_functions``: ``FunctionApp.get_functions`` records every name in
``app.functions_bindings`` and refuses names already recorded, so a second call on the same app
fails; the worker indexes an app once per process, the emulator once per hub and per HTTP host.
The record is cleared for the call and put back; real duplicates still raise.

``WORKER_LOOP``: ``azure-functions-durable`` keeps a single aiohttp session per process, bound to
the event loop that created it, so every ``DurableOrchestrationClient`` call in a process (HTTP
functions served by ``http_host``, alerts and controls sent by ``simulate``, tests) must run on one
loop, as in one worker. Users ``acquire`` it and ``release`` it; the first user forgets a session
an earlier loop left (``asyncio.run`` elsewhere: it would fail with "Event loop is closed"), the
last closes the session. The loop thread itself runs until the process ends.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

from azure.durable_functions.models.utils import http_utils


def registered_functions(app: Any) -> list[Any]:
    """``app.get_functions()`` without its one-shot side effect."""
    saved = app.functions_bindings
    app.functions_bindings = {}
    try:
        return list(app.get_functions())
    finally:
        app.functions_bindings = saved


class WorkerLoop:
    """The process-wide event loop for Durable client calls; reference-counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._users = 0

    def acquire(self) -> asyncio.AbstractEventLoop:
        """Start using the loop (starting its thread on first use); pair with ``release``."""
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="functions-worker-loop", daemon=True).start()
            if self._users == 0:
                http_utils._client_session = None
            self._users += 1
            return self._loop

    def release(self) -> None:
        """Stop using the loop; the last user closes the SDK's shared HTTP session."""
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._loop is not None:
                asyncio.run_coroutine_threadsafe(http_utils._close_session(), self._loop).result(timeout=10)

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
        """Run ``coroutine`` on the loop from synchronous code (between acquire and release)."""
        assert self._loop is not None, "acquire the worker loop first"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)


WORKER_LOOP = WorkerLoop()
