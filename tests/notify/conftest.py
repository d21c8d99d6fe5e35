"""Fixtures shared by the notification tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notify.receiver import Receiver


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """A list to add loopback receivers to; every one is closed after the test."""
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()
