"""``./dev test``, ``./dev lint`` and ``.ci/run`` stop when ruff or mypy fails.

The scripts run in a copy of the project whose ``.venv/bin/python`` is a stand-in that records
how it was called and exits with the status the test chose for ruff, mypy and pytest; so these
tests check the scripts' control flow, not the tools.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
case "$2" in
  ruff) exit "${RUFF_RC:-0}" ;;
  mypy) exit "${MYPY_RC:-0}" ;;
  pytest) exit "${PYTEST_RC:-0}" ;;
esac
exit 0
"""

FAKE_CHECKOV = """#!/usr/bin/env bash
echo "sh checkov" >> "$CALLS"
exit "${CHECKOV_RC:-0}"
"""


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A copy of ``dev`` and ``.ci/run`` with an installed-looking .venv holding the stand-in python."""
    shutil.copy(ROOT / "dev", tmp_path / "dev")
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    requirements = b"pkg==1\n"
    checkov = tmp_path / "tests" / "infra" / "checkov.sh"
    checkov.parent.mkdir(parents=True)
    checkov.write_text(FAKE_CHECKOV)
    checkov.chmod(checkov.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "requirements.txt").write_bytes(requirements)
    (tmp_path / "requirements-dev.txt").write_bytes(b"")
    (tmp_path / "requirements-worker.txt").write_bytes(b"")
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (tmp_path / ".venv" / ".requirements.sha256").write_text(hashlib.sha256(requirements).hexdigest() + "\n")
    python = venv_bin / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return tmp_path


def run(project: Path, *command: str, **codes: int) -> tuple[int, list[str]]:
    """Run a script of the copied project; return its exit status and the tools it called."""
    calls = project / "calls.log"
    calls.unlink(missing_ok=True)
    env = {**os.environ, "CALLS": str(calls), **{f"{name.upper()}_RC": str(code) for name, code in codes.items()}}
    done = subprocess.run([str(project / command[0]), *command[1:]], env=env, capture_output=True, text=True, timeout=60)
    assert "setting up" not in done.stderr, done.stderr  # the stand-in venv was taken as installed
    tools = [line.split()[1] for line in calls.read_text().splitlines()] if calls.exists() else []
    return done.returncode, tools


@pytest.mark.parametrize(
    ("command", "codes", "want_status", "want_tools"),
    [
        pytest.param(("dev", "test"), {}, 0, ["ruff", "mypy", "pytest"], id="test-all-clean"),
        pytest.param(("dev", "test"), {"ruff": 1}, 1, ["ruff", "mypy"], id="test-ruff-fails-no-pytest"),
        pytest.param(("dev", "test"), {"mypy": 1}, 1, ["ruff", "mypy"], id="test-mypy-fails-no-pytest"),
        pytest.param(("dev", "test"), {"pytest": 3}, 3, ["ruff", "mypy", "pytest"], id="test-pytest-status-kept"),
        pytest.param(("dev", "test", "-q"), {"ruff": 1}, 0, ["pytest"], id="test-with-args-is-pytest-only"),
        pytest.param(("dev", "lint"), {"ruff": 1}, 1, ["ruff", "mypy"], id="lint-ruff-fails"),
        pytest.param(("dev", "lint"), {"mypy": 1}, 1, ["ruff", "mypy"], id="lint-mypy-fails"),
        pytest.param(("dev", "lint"), {}, 0, ["ruff", "mypy"], id="lint-clean"),
        pytest.param((".ci/run",), {"ruff": 1}, 1, ["checkov", "ruff", "mypy"], id="ci-ruff-fails"),
        pytest.param((".ci/run",), {"mypy": 1}, 1, ["checkov", "ruff", "mypy"], id="ci-mypy-fails"),
        pytest.param((".ci/run",), {"checkov": 1}, 1, ["checkov"], id="ci-checkov-fails"),
        pytest.param((".ci/run",), {}, 0, ["checkov", "ruff", "mypy", "pytest"], id="ci-clean"),
    ],
)
def test_lint_failures_fail_the_command(
    project: Path, command: tuple[str, ...], codes: dict[str, int], want_status: int, want_tools: list[str]
) -> None:
    status, tools = run(project, *command, **codes)
    assert (status, tools) == (want_status, want_tools)
