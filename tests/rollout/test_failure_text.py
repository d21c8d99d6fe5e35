"""How a failed activity (the SDK's ``TaskFailed``) is worded in results and the record."""

from __future__ import annotations

import pytest

from orchestrators.run_state import failure_text


class TaskFailed(Exception):
    """Stands for azure-functions-durable's ``TaskFailed``: only its text and type name are read."""


@pytest.mark.parametrize(("failure", "text"), [
    pytest.param(TaskFailed("Activity function 'x' failed: boom\nTraceback (most recent call last): ..."),
                 "Activity function 'x' failed: boom", id="first-line-only"),
    pytest.param(TaskFailed("\n  one line  \n"), "one line", id="surrounding-blank-stripped"),
    pytest.param(TaskFailed(""), "TaskFailed", id="no-text-names-the-type"),
    pytest.param(TaskFailed("  \n "), "TaskFailed", id="blank-text-names-the-type"),
])
def test_failure_text(failure: Exception, text: str) -> None:
    assert failure_text(failure) == text
