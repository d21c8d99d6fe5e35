"""Fixtures: ``serve`` with its default scenario, in-process on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator.serve import LocalServer, default_scenario
from tests.cli.helpers import KEY


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """``serve`` as a new user starts it (fraud-detection-endpoint: blue-v1 100%, green-v2 0%), key ``KEY``."""
    with LocalServer(default_scenario(), key=KEY) as local:
        yield local
