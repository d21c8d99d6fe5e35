"""The Bicep templates under infra/, parsed with pycep-parser, and small helpers to read them.

pycep turns a template into JSON: ``parameters``, ``variables``, ``resources``, ``modules`` and
``outputs`` by symbolic name. A literal string stays a string; a reference to a symbol is a
string holding its name (``'amlWorkspaceName'``), and an expression is a dict with ``function``
or ``operator``. ``expression_text`` renders an expression back to readable Bicep-like text so
tests can look for what an expression refers to.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Iterator

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def bicep_files() -> list[Path]:
    """Every .bicep file under infra/."""
    return sorted(INFRA.rglob("*.bicep"))


@functools.cache
def parse(relative: str) -> dict[str, Any]:
    """The parsed template at ``infra/<relative>``."""
    return BicepParser().parse(file_path=INFRA / relative)


def source(relative: str) -> str:
    return (INFRA / relative).read_text(encoding="utf-8")


def resources(relative: str) -> dict[str, dict[str, Any]]:
    return parse(relative).get("resources", {})


def resource_config(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's body, past an ``if (...)`` condition when it has one."""
    config = resource["config"]
    return config["config"] if "condition" in config else config


def walk(node: Any) -> Iterator[Any]:
    """Every value inside ``node``, depth first, including ``node``."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def keys_in(node: Any) -> set[str]:
    """Every dictionary key at any depth."""
    return {key for value in walk(node) if isinstance(value, dict) for key in value}


def expression_text(node: Any) -> str:
    """A readable rendering of an expression: function names with their arguments, operands, literals."""
    if isinstance(node, dict):
        if "function" in node:
            call = node["function"]
            args = ", ".join(expression_text(v) for v in (call.get("parameters") or {}).values())
            return f"{call['type']}({args})"
        if "operator" in node:
            op = node["operator"]
            return f"{op['type']}(" + ", ".join(expression_text(v) for v in (op.get("operands") or {}).values()) + ")"
        return "{" + ", ".join(f"{k}: {expression_text(v)}" for k, v in node.items()) + "}"
    if isinstance(node, list):
        return "[" + ", ".join(expression_text(v) for v in node) + "]"
    return str(node)


def role_guid_vars(relative: str) -> dict[str, str]:
    """The ``roles`` variable of a template: {symbol: role definition GUID}."""
    return dict(parse(relative)["variables"]["roles"]["value"])


def role_comments(relative: str) -> dict[str, str]:
    """{GUID: role name} from the ``'<guid>' // <role name>`` comments of a template."""
    found = {}
    for line in source(relative).splitlines():
        if "//" in line and "'" in line:
            code, _, comment = line.partition("//")
            parts = code.split("'")
            if len(parts) >= 3 and len(parts[1]) == 36 and parts[1].count("-") == 4:
                found[parts[1]] = comment.strip()
    return found
