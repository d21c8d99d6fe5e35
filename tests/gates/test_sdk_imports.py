"""Gate: each Azure SDK is imported by its adapter alone.

``azure.ai.ml`` only inside the ``adapters/azure_ml/`` package; the Monitor clients
(``azure.mgmt.monitor``, ``azure.monitor.query``) only in ``adapters/azure_monitor.py``. Every
``import``/``from ... import`` in the app's code is read with ``ast`` (function-level imports
too), so a lazy import elsewhere is caught as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP_CODE = ("rollout", "orchestrators", "activities", "adapters", "api", "emulator", "cli", "report",
            "settings.py", "bootstrap.py", "function_app.py")
OWNERS = {"azure.ai.ml": "adapters/azure_ml/", "azure.mgmt.monitor": "adapters/azure_monitor.py",
          "azure.monitor.query": "adapters/azure_monitor.py"}
"""SDK package -> the only path (a file, or a folder ending in /) allowed to import it."""


def imported(source: str) -> set[str]:
    """Every module an ``import`` or ``from ... import`` statement of ``source`` names (absolute ones)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def trespassers(root: Path, places: tuple[str, ...] = APP_CODE) -> list[tuple[str, str]]:
    """(file, SDK package) for each file under ``places`` that imports an SDK its adapter should own."""
    files: list[Path] = []
    for place in places:
        path = root / place
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.is_file() else [])
    found = []
    for file in files:
        relative = file.relative_to(root).as_posix()
        for module in imported(file.read_text(encoding="utf-8")):
            for package, owner in OWNERS.items():
                if (module == package or module.startswith(package + ".")) and not (
                        relative.startswith(owner) if owner.endswith("/") else relative == owner):
                    found.append((relative, package))
    return found


def test_each_azure_sdk_is_imported_by_its_adapter_alone() -> None:
    assert trespassers(ROOT) == []
    # ...and the adapters do import them (the rule is not vacuous)
    ml = {f for f in (ROOT / "adapters" / "azure_ml").glob("*.py") if "azure.ai.ml" in imported(f.read_text())}
    assert {f.name for f in ml} >= {"endpoints.py", "lifecycle.py", "assets.py"}


@pytest.mark.parametrize("path, source, found", [
    pytest.param("activities/x.py", "from azure.ai.ml import MLClient\n", [("activities/x.py", "azure.ai.ml")],
                 id="from-import-elsewhere"),
    pytest.param("rollout/x.py", "def f():\n    import azure.ai.ml.entities\n",
                 [("rollout/x.py", "azure.ai.ml")], id="lazy-import-elsewhere"),
    pytest.param("adapters/azure_backend.py", "from azure.mgmt.monitor import MonitorManagementClient\n",
                 [("adapters/azure_backend.py", "azure.mgmt.monitor")], id="monitor-outside-its-adapter"),
    pytest.param("adapters/azure_ml/other.py", "from azure.ai.ml import MLClient\n", [], id="inside-the-package"),
    pytest.param("adapters/azure_ml_helpers.py", "from azure.ai.ml import MLClient\n",
                 [("adapters/azure_ml_helpers.py", "azure.ai.ml")], id="a-look-alike-name"),
    pytest.param("cli/x.py", "from adapters.azure_ml import register_model\n", [], id="through-the-adapter"),
])
def test_the_gate_catches_an_sdk_import_outside_its_adapter(tmp_path: Path, path: str, source: str,
                                                            found: list[tuple[str, str]]) -> None:
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text(source)
    assert trespassers(tmp_path) == found
