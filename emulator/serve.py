"""``python -m emulator serve [--port 7071] [--scenario FILE] [--key KEY] [--azure] [--state FILE]``: the HTTP API on loopback.

The app's own HTTP functions (``bootstrap.build_app``, as ``function_app`` builds them for Azure)
are served by ``emulator.http_host``, function
keys enforced (``?code=KEY`` or ``x-functions-key``). Rollouts run on the embedded Durable task
hub (``emulator.taskhub``) on the real clock, activities and orchestrator episodes concurrently
within host.json's ``maxConcurrentActivityFunctions`` / ``maxConcurrentOrchestratorFunctions`` as
on the host (so an activity that hangs holds up only its own rollout's episodes), against the
simulated Azure ML endpoint of the
scenario: its workspace, endpoint, deployments, load, health and faults (its ``rollout``,
``alerts``, ``controls`` and ``changes`` parts are not used: rollouts and alerts come over
HTTP). Without ``--scenario``, ``DEFAULT_SCENARIO``: ``fraud-detection-endpoint`` with
``blue-v1`` serving 100% and ``green-v2`` at 0%, both healthy, 1200 requests a minute.

The durable client binding handed to the functions is the emulated Durable HTTP management API
(``emulator.management_api``), so the unchanged ``DurableOrchestrationClient`` does the work.
The alert webhook manages exactly the scenario's workspace. Without ``--key`` a key is
generated and printed at start. Each ``LocalServer`` builds its own app from its backend and
settings, so several may run in one process.

``--azure``: rollouts act on the cloud the ``AML_ROLLOUT_*`` settings name, through
``AzureBackend(load_settings().azure)``, and the app's settings (managed workspaces for the alert
webhook) are read from the environment as in Azure; no scenario (see "Running the emulator
against a cloud" in docs/azure.md).
"""

from __future__ import annotations

import argparse
import logging
import secrets
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from api.entra import AlertValidator, alert_auth_level, validator_for
from bootstrap import build_app, provide
from emulator.clock import RealClock
from emulator.http_host import HttpHost, route_prefix_from_host_json
from emulator.management_api import ManagementApi
from emulator.queue_polling import QueuePolling
from emulator.scenario import Scenario, load_scenario, parse_scenario, report_problems
from emulator.scheduler import Concurrency
from emulator.simulate import build_workspace
from emulator.simulated_azure import SimulatedBackend, SimulatedEndpoint
from emulator.store import SqliteStore, keep_simulated_traffic
from emulator.taskhub import TaskHub
from emulator.worker import APP_SCRIPT, load_app, refusal
from rollout.errors import InvalidRequest
from rollout.ports import Backend
from settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 7071
AZURE_STATE = Path("aml-rollout-taskhub.sqlite")
DEFAULT_SCENARIO: dict[str, Any] = {
    "endpoint": {
        "name": "fraud-detection-endpoint",
        "deployments": {"blue-v1": {"traffic": 100, "instance_count": 3}, "green-v2": {"traffic": 0, "instance_count": 3}},
    },
    "load": {"requests_per_minute": 1200},
    "health": {
        "blue-v1": [{"from": "PT0S", "error_rate": 0.001, "latency_p99_ms": 120}],
        "green-v2": [{"from": "PT0S", "error_rate": 0.002, "latency_p99_ms": 140}],
    },
}
UNUSED_PARTS = ("rollout", "alerts", "controls", "changes")


def default_scenario() -> Scenario:
    """``DEFAULT_SCENARIO``, validated."""
    return parse_scenario(DEFAULT_SCENARIO, ROOT, require_rollout=False)


def serve_settings(scenario: Scenario, max_alert_bytes: int = Settings.max_alert_bytes) -> Settings:
    """Settings that make the scenario's workspace the one the app manages (environment not read)."""
    return Settings(workspace=scenario.workspace, max_alert_bytes=max_alert_bytes)


class LocalServer:
    """The served app: HTTP host, management API, task hub (real clock) and simulated workspace.

    ``port`` 0 picks a free port; ``key`` None generates one; ``settings`` None uses
    ``serve_settings(scenario)``; ``client_binding`` None uses the management API's (a test may
    point the functions at another task hub); ``backend`` None is the scenario's simulated
    workspace (``serve --azure`` passes ``AzureBackend``); ``alert_validator`` None checks alert
    tokens as production does (``api.entra.validator_for``); ``concurrency`` None is what
    host.json sets (``Concurrency.from_host_json``). The app is ``bootstrap.build_app``
    given those; the hub and the host index it with the Python
    worker's code. ``start`` and ``stop`` run and end the hub, the management API and the host.
    """

    def __init__(self, scenario: Scenario, *, port: int = 0, key: str | None = None,
                 settings: Settings | None = None, client_binding: str | None = None,
                 backend: Backend | None = None, queue_polling: QueuePolling | None = None,
                 state: Path | None = None, alert_validator: AlertValidator | None = None,
                 concurrency: Concurrency | None = None) -> None:
        self.scenario = scenario
        self.key = key or secrets.token_urlsafe(24)
        self.settings = settings or serve_settings(scenario)
        self.clock = RealClock()
        self.backend: Backend = backend or build_workspace(scenario, self.clock.now)
        app = build_app(backend=provide(self.backend), settings=provide(self.settings),
                        alert_auth=alert_auth_level(self.settings), alert_validator=alert_validator or validator_for)
        # ``state``: the task hub in a SQLite file (emulator.store); rollouts there carry on.
        self.store = None if state is None else SqliteStore(state)
        if self.store is not None and isinstance(self.backend, SimulatedBackend):
            keep_simulated_traffic(self.store, self.backend.workspace)
        self.hub = TaskHub(app, self.clock, queue_polling=queue_polling, store=self.store,
                           concurrency=concurrency or Concurrency.from_host_json(ROOT / "host.json"))
        self.management = ManagementApi(self.hub)
        self._client_binding = client_binding
        self.http = HttpHost(app, self._binding, self.key, port=port,
                             route_prefix=route_prefix_from_host_json(ROOT / "host.json"))
        self._started = False

    def _binding(self) -> str:
        return self._client_binding or self.management.client_binding_json()

    def start(self) -> LocalServer:
        """Start the hub, the management API and the host."""
        self.hub.start_background()
        self.management.start()
        try:
            self.http.start()
        except OSError:
            self.stop()
            raise
        self._started = True
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._started:
            self.http.stop()
        self.management.stop()
        self.hub.stop()
        if self.store is not None:
            self.store.close()
        self._started = False

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:7071``."""
        return self.http.url

    @property
    def endpoint(self) -> SimulatedEndpoint:
        """The simulated endpoint: its live ``traffic`` and every applied ``changes`` (not with ``--azure``)."""
        assert isinstance(self.backend, SimulatedBackend), "the endpoint is in the cloud"
        return self.backend.workspace.endpoint(self.scenario.endpoint_name)


def banner(server: LocalServer, unused: list[str] | None = None) -> str:
    """What ``serve`` prints at start: where it listens, the key, the endpoint, the scenario parts it
    does not use (``unused``), and a first request."""
    scenario, base = server.scenario, server.url
    deployments = ", ".join(f"{d.name} ({scenario.traffic.get(d.name, 0)}%)" for d in scenario.deployments)
    workspace = scenario.workspace
    return "\n".join([
        f"aml-rollout serving on {base}/api (Ctrl-C to stop)",
        f"  function key:  {server.key}",
        f"  workspace:     {workspace.subscription_id}/{workspace.resource_group}/{workspace.workspace_name}",
        f"  endpoint:      {scenario.endpoint_name}: {deployments}",
        "  routes:        POST /api/rollouts   GET /api/rollouts   GET /api/rollouts/{endpoint}",
        "                 POST /api/rollouts/{endpoint}/{pause|resume|promote|abort}   POST /api/alerts",
        *([f"  note:          the scenario's {', '.join(unused)} part(s) are not used by serve"] if unused else []),
        f"  try:           curl -s -H 'x-functions-key: {server.key}' {base}/api/rollouts",
    ])


def _load(path: str | None) -> Scenario:
    return default_scenario() if path is None else load_scenario(path, require_rollout=False)


def _unused_parts(path: str | None, scenario: Scenario) -> list[str]:
    if path is None:
        return []
    used = {"rollout": scenario.rollout is not None, "alerts": bool(scenario.alerts),
            "controls": bool(scenario.controls), "changes": bool(scenario.changes)}
    return [part for part in UNUSED_PARTS if used[part]]


def _wait_for_signal() -> None:
    """Block until Ctrl-C or SIGTERM."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    stop.wait()


def azure_banner(server: LocalServer, settings: Settings) -> str:
    """``banner`` for ``--azure``: the configured workspace and cloud instead of the simulated endpoint."""
    workspace = settings.workspace
    where = "none (requests name theirs)" if workspace is None else (
        f"{workspace.subscription_id}/{workspace.resource_group}/{workspace.workspace_name}")
    lines = []
    for line in banner(server).splitlines():
        if line.startswith("  workspace:"):
            line = f"  workspace:     {where} (AML_ROLLOUT_*), cloud {settings.cloud}"
        elif line.startswith("  endpoint:"):
            line = "  azure:         rollouts act on the cloud's endpoints and metrics (DefaultAzureCredential)"
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Entry point of ``python -m emulator serve``: 0 after Ctrl-C/SIGTERM, 1 when the port is taken, 2 on a bad scenario,
    bad settings or a function_app.py the Python worker would refuse to index."""
    parser = argparse.ArgumentParser(prog="python -m emulator serve", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any free one)")
    parser.add_argument("--scenario", help="scenario file (YAML or JSON) describing the simulated endpoint")
    parser.add_argument("--key", help="the function key requests must carry (default: generated and printed)")
    parser.add_argument("--azure", action="store_true",
                        help="act on the Azure ML endpoints and metrics of the cloud the AML_ROLLOUT_* settings name "
                             "(docs/azure.md) instead of a simulated endpoint; the app's settings come from the "
                             "environment as in Azure")
    parser.add_argument("--state", type=Path, default=None,
                        help="keep the task hub in this SQLite file, so that rollouts survive a restart (default "
                             f"with --azure: {AZURE_STATE}; otherwise in memory)")
    args = parser.parse_args(argv)
    _configure_logging()
    if args.azure and args.scenario:
        print("--azure serves the cloud's endpoints: --scenario is not used with it", file=sys.stderr)
        return 2
    try:
        scenario = _load(args.scenario)
    except InvalidRequest as exc:
        report_problems(str(args.scenario), exc, sys.stderr)
        return 2
    try:
        settings = load_settings() if args.azure else None
    except ValueError as exc:
        print(f"bad settings: {exc}", file=sys.stderr)
        return 2
    try:
        load_app()      # function_app.py as deployed, through the Python worker's own indexing
    except Exception as exc:   # the worker fails indexing on any exception, and so does this
        print(refusal(APP_SCRIPT, exc), file=sys.stderr)
        return 2
    state = args.state or (AZURE_STATE if args.azure else None)
    server = LocalServer(scenario, port=args.port, key=args.key, settings=settings, backend=_azure_backend(settings),
                         state=state)
    try:
        server.start()
    except OSError as exc:
        print(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(banner(server, _unused_parts(args.scenario, scenario)) if settings is None else azure_banner(server, settings),
          flush=True)
    try:
        _wait_for_signal()
    finally:
        server.stop()
    return 0


def _azure_backend(settings: Settings | None) -> Backend | None:
    """``--azure``'s backend: ``AzureBackend`` over ``settings`` (None without ``--azure``)."""
    if settings is None:
        return None
    from adapters.azure_backend import AzureBackend

    return AzureBackend(settings.azure)


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
