"""Gate: ``pip install .`` ships every package of the client's code (``aml-rollout`` and ``register``).

``[tool.setuptools.packages.find] include`` names packages by pattern: a pattern ``adapters``
leaves out ``adapters.azure_ml``, and ``aml-rollout register`` installed from the repository
would then fail to import it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[2]


def test_the_distribution_holds_every_package_under_the_listed_folders() -> None:
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    shipped = set(find_packages(str(ROOT), include=include))
    tops = {name for name in include if "*" not in name}
    on_disk = {init.parent.relative_to(ROOT).as_posix().replace("/", ".")
               for top in tops for init in (ROOT / top).rglob("__init__.py") if "__pycache__" not in init.parts}
    assert "adapters.azure_ml" in on_disk
    assert on_disk <= shipped, sorted(on_disk - shipped)
