"""Fixtures: ``serve`` started in-process on a free loopback port, and hosts wired to other task hubs."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bootstrap import build_app, provide
from emulator.http_host import HttpHost
from emulator.scenario import parse_scenario
from emulator.serve import LocalServer
from rollout.model import WorkspaceRef
from rollout.ports import Backend
from settings import Settings
from tests.http.helpers import FIXTURES, KEY, SCENARIO, WORKSPACE, Client


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """``serve`` with the test scenario (ep1: blue 100%, green 0%), real clock, key ``KEY``."""
    local = LocalServer(parse_scenario(SCENARIO, FIXTURES, require_rollout=False), key=KEY).start()
    yield local
    local.stop()


@pytest.fixture
def api(server: LocalServer) -> Client:
    """A client for ``server``."""
    return Client(server.url)


@pytest.fixture
def host_with() -> Iterator[Callable[[str], Client]]:
    """``host_with(binding)``: the app's HTTP functions served with that durable client binding."""
    hosts: list[HttpHost] = []

    def make(binding: str) -> Client:
        app = build_app(backend=no_backend, settings=provide(Settings(workspace=WorkspaceRef.from_dict(WORKSPACE))))
        hosts.append(HttpHost(app, binding, KEY).start())
        return Client(hosts[-1].url)

    yield make
    for host in hosts:
        host.stop()


def no_backend() -> Backend:
    """The backend of ``host_with``'s app: only its HTTP functions run there, never an activity."""
    raise AssertionError("host_with serves the HTTP functions only")
