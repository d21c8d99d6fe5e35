"""What one Python Functions worker process has once: the indexed functions and one event loop.

Indexing is the Python worker's own code, not a copy of its rules: ``azure_functions_runtime``
(PyPI ``azure-functions-runtime``, the worker's core for Python 3.13+, pure Python), pinned in
requirements-worker.txt and unpacked by ``./dev`` into ``.venv/azure-functions-runtime``
(``RUNTIME_DIR``), outside site-packages since it declares Python >= 3.13; its indexing runs
unchanged on 3.11. An app the worker refuses is refused here with the worker's own
``FunctionLoadError`` message (an activity annotated ``dict[str, Any]``, say:
azure-functions-durable-python#468).

``load_app(script)``: the worker's ``loader.index_function_app`` (import ``function_app.py``
from its folder, exactly one top-level ``FunctionApp``, ``app.get_functions()``), then every
function through ``functions.Registry.add_indexed_function``, as the worker's metadata request
does; returns the app. ``registered_functions(app)``: the same registry check on an app object
(the task hub and the HTTP host index through it). ``FunctionApp.get_functions`` records every
name in ``app.functions_bindings`` and refuses names already recorded, so a second call on the
same app fails; the worker indexes an app once per process, the emulator once per hub and per
HTTP host. The record is cleared for the call and put back; real duplicates still raise.

``WORKER_LOOP``: ``azure-functions-durable`` keeps a single aiohttp session per process, bound to
the event loop that created it, so every ``DurableOrchestrationClient`` call in a process (HTTP
functions served by ``http_host``, alerts and controls sent by ``simulate``, tests) must run on one
loop, as in one worker. Users ``acquire`` it and ``release`` it; the first user forgets a session
an earlier loop left (``asyncio.run`` elsewhere: it would fail with "Event loop is closed"), the
last closes the session. The loop thread itself runs until the process ends.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import sys
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import azure.functions as func
from azure.durable_functions.models.utils import http_utils

RUNTIME_VERSION = "1.3.0"           # as pinned in requirements-worker.txt
RUNTIME_DIR = Path(sys.prefix) / "azure-functions-runtime"
APP_SCRIPT = Path(__file__).resolve().parent.parent / "function_app.py"

# The host's gRPC enums (FunctionRpc.proto, ``BindingInfo.Direction`` and ``DataType``) that the
# indexing code compares bindings with; the worker passes its generated protobuf module, whose
# enum members are these integers.
PROTOS = SimpleNamespace(BindingInfo=SimpleNamespace(
    **{"in": 0, "out": 1, "inout": 2, "undefined": 0, "string": 1, "binary": 2, "stream": 3}))


class WorkerRuntimeMissing(RuntimeError):
    """``azure-functions-runtime`` is not unpacked where ``./dev`` puts it."""


@functools.cache
def worker_runtime() -> SimpleNamespace:
    """The worker's ``loader`` and ``functions`` modules, with the binding registry loaded (once).

    Raises ``WorkerRuntimeMissing`` when ``RUNTIME_DIR`` does not hold version ``RUNTIME_VERSION``.
    """
    version_file = RUNTIME_DIR / "azure_functions_runtime" / "version.py"
    if f"VERSION = '{RUNTIME_VERSION}'" not in (version_file.read_text() if version_file.is_file() else ""):
        raise WorkerRuntimeMissing(
            f"the Python worker's indexing code (azure-functions-runtime {RUNTIME_VERSION}) is not in {RUNTIME_DIR}: "
            "run ./dev (it installs requirements-worker.txt there)")
    if str(RUNTIME_DIR) not in sys.path:
        sys.path.append(str(RUNTIME_DIR))
    loader = importlib.import_module("azure_functions_runtime.loader")
    functions = importlib.import_module("azure_functions_runtime.functions")
    importlib.import_module("azure_functions_runtime.bindings.meta").load_binding_registry()
    return SimpleNamespace(loader=loader, functions=functions)


def _check_with_the_worker(indexed: list[Any]) -> list[Any]:
    """Each indexed function through the worker's ``Registry.add_indexed_function``; raises its ``FunctionLoadError``."""
    registry = worker_runtime().functions.Registry()
    for function in indexed:
        registry.add_indexed_function(function, PROTOS)
    return indexed


@contextmanager
def _fresh_bindings(apps: list[Any]) -> Iterator[None]:
    """Clear the apps' ``functions_bindings`` (``get_functions``' one-shot record) and put them back after."""
    saved = [app.functions_bindings for app in apps]
    for app in apps:
        app.functions_bindings = {}
    try:
        yield
    finally:
        for app, bindings in zip(apps, saved, strict=True):
            app.functions_bindings = bindings


def registered_functions(app: Any) -> list[Any]:
    """``app.get_functions()`` without its one-shot side effect, each function accepted by the worker's registry."""
    with _fresh_bindings([app]):
        return _check_with_the_worker(list(app.get_functions()))


def refusal(script: str | Path, error: Exception) -> str:
    """What ``simulate`` and ``serve`` print when ``load_app(script)`` raised ``error``."""
    if isinstance(error, WorkerRuntimeMissing):
        return f"cannot check {script} as the Python worker would: {error}"
    return f"the Python worker would not index {script}: {type(error).__name__}: {error}"


def load_app(script: str | Path = APP_SCRIPT) -> Any:
    """Import and index a ``function_app.py`` as the Python worker does; return its ``FunctionApp``.

    Raises what the worker raises: ``FunctionLoadError`` for a function it refuses, ``ValueError``
    for no or several top-level apps, the import's own error. One app module per process, as in
    the worker: a different file already imported under the same module name is a ``ValueError``.
    """
    script = Path(script).resolve()
    runtime = worker_runtime()
    folder, name = str(script.parent), script.stem
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() != script:
        raise ValueError(f"module {name!r} is already imported from {loaded.__file__}, not {script}")
    if folder not in sys.path:
        sys.path.insert(0, folder)          # the app folder on sys.path, as in the worker; first, so this script wins
    apps = [] if loaded is None else [v for v in vars(loaded).values() if isinstance(v, func.FunctionRegister)]
    with _fresh_bindings(apps):
        indexed = runtime.loader.index_function_app(str(script))
    _check_with_the_worker(indexed)
    module = sys.modules[name]
    return next(v for v in vars(module).values() if isinstance(v, func.FunctionRegister))


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
