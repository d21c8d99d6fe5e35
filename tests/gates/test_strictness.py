"""The test run and the type check are as strict as pyproject.toml says.

- warnings are errors in the test run (``filterwarnings = error``), except the ones documented
  there;
- mypy checks ``rollout`` and ``orchestrators`` with the flags of ``--strict``, the rest of the
  app with the project's lighter settings.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

UNTYPED = "def double(value):\n    return value * 2\n"
RETURNS_ANY = "from typing import Any\n\n\ndef name(payload: dict[str, Any]) -> str:\n    return payload['name']\n"
BARE_GENERIC = "def names(items: list) -> int:\n    return len(items)\n"


def test_a_warning_fails_the_test() -> None:
    with pytest.raises(UserWarning, match="probe"):
        warnings.warn("probe", UserWarning, stacklevel=1)


def test_a_deprecation_fails_the_test() -> None:
    with pytest.raises(DeprecationWarning, match="probe"):
        warnings.warn("probe", DeprecationWarning, stacklevel=1)


def mypy_errors(tmp_path: Path, package: str, source: str) -> list[str]:
    """mypy's error codes for ``source`` as module ``<package>.probe``, under the project's config."""
    folder = tmp_path / package
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "probe.py").write_text(source)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / "cache"),
         "--no-error-summary", "--show-error-codes", f"{package}/probe.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    return [line.rsplit("[", 1)[-1].rstrip("]") for line in done.stdout.splitlines() if ": error:" in line]


@pytest.mark.parametrize(
    ("package", "source", "want"),
    [
        pytest.param("rollout", UNTYPED, ["no-untyped-def"], id="rollout-untyped-def"),
        pytest.param("rollout", RETURNS_ANY, ["no-any-return"], id="rollout-returns-any"),
        pytest.param("rollout", BARE_GENERIC, ["type-arg"], id="rollout-bare-generic"),
        pytest.param("orchestrators", UNTYPED, ["no-untyped-def"], id="orchestrators-untyped-def"),
        pytest.param("orchestrators", RETURNS_ANY, ["no-any-return"], id="orchestrators-returns-any"),
        pytest.param("emulator", UNTYPED, [], id="emulator-is-not-strict"),
    ],
)
def test_mypy_is_strict_on_the_domain_and_the_orchestrator(tmp_path: Path, package: str, source: str, want: list[str]) -> None:
    assert mypy_errors(tmp_path, package, source) == want
