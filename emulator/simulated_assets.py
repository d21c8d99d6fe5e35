"""The simulated workspace's asset registry: which model and environment versions exist.

A scenario lists them (``assets: {models: [azureml:NAME:VERSION, ...], environments: [...]}``);
a deployment create naming a workspace model or environment that is not registered is refused, as
Azure refuses it: ``UserError`` "The specified resource was not found." with ``details[0]``
``ModelNotFound`` (the code and opening as a real refusal reads in Azure/mlops-v2#76, "Model
container with name: X not found."; ``EnvironmentNotFound`` and the text naming the version are
composed here, as no public report shows them). Registry assets (``azureml://registries/...``) are
not checked: the workspace does not hold them.

``name@latest`` resolves to the version registered last (azure-ai-ml resolves it client-side by
listing the versions newest first); an unknown name, or any other label, is refused with
azure-ai-ml's own texts ("Asset X does not exist in workspace W.", "Asset X with version label L
does not exist in workspace.").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from rollout.deployment_spec import AssetRef
from rollout.errors import ServiceError

KINDS = {"models": "model", "environments": "environment"}
_DETAIL_CODES = {"model": "ModelNotFound", "environment": "EnvironmentNotFound"}
_SHORT = re.compile(r"^azureml:(?P<name>[^:@/]+):(?P<version>[^:@/]+)$")


@dataclass(frozen=True)
class AssetRegistry:
    """Registered versions per kind ("model", "environment") and lower-cased name, in registration order."""

    versions: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)

    def resolved(self, ref: AssetRef, workspace_name: str) -> AssetRef:
        """``ref`` with a label resolved to its version; ``ServiceError`` (Azure's or azure-ai-ml's text) when
        the workspace has no such asset. Registry assets and kinds the registry does not track pass as they are."""
        if ref.registry is not None or ref.kind not in _DETAIL_CODES:
            return ref
        known = self.versions.get(ref.kind, {}).get(ref.name.lower(), ())
        if ref.label is not None:
            if ref.label != "latest":
                raise ServiceError(f"ValidationError: Asset {ref.name} with version label {ref.label} does not "
                                   "exist in workspace.")
            if not known:
                raise ServiceError(f"ValidationError: Asset {ref.name} does not exist in workspace {workspace_name}.")
            return replace(ref, version=known[-1], label=None, text=f"azureml:{ref.name}:{known[-1]}")
        if ref.version not in known:
            missing = (f"{ref.kind.capitalize()} container with name: {ref.name} not found." if not known else
                       f"{ref.kind.capitalize()} azureml:{ref.name}:{ref.version} does not exist in workspace "
                       f"{workspace_name} (registered versions: {', '.join(known)}).")
            raise ServiceError(f"UserError: The specified resource was not found. ({_DETAIL_CODES[ref.kind]}: "
                               f"{missing})")
        return ref


def parse_assets(data: Any, prefix: str = "assets") -> tuple[AssetRegistry, list[tuple[str, str]]]:
    """Validate an ``assets`` section: ``models`` and ``environments``, lists of ``azureml:NAME:VERSION``."""
    if not isinstance(data, Mapping):
        return AssetRegistry(), [(prefix, "must be a mapping with models and environments")]
    problems = [(f"{prefix}.{k}", "is not a known field (models, environments)") for k in data if k not in KINDS]
    versions: dict[str, dict[str, tuple[str, ...]]] = {}
    for section, kind in KINDS.items():
        items = data.get(section, [])
        if not isinstance(items, list):
            problems.append((f"{prefix}.{section}", f"must be a list of {kind} ids azureml:NAME:VERSION"))
            continue
        found: dict[str, tuple[str, ...]] = {}
        for index, item in enumerate(items):
            short = _SHORT.match(item) if isinstance(item, str) else None
            if short is None:
                problems.append((f"{prefix}.{section}[{index}]", f"must be a {kind} id azureml:NAME:VERSION"))
                continue
            name = short["name"].lower()
            if short["version"] not in found.get(name, ()):
                found[name] = (*found.get(name, ()), short["version"])
        versions[kind] = found
    return AssetRegistry(versions), problems


def named_assets(*refs: Any) -> AssetRegistry:
    """A registry holding exactly the workspace models and environments ``refs`` name by version."""
    versions: dict[str, dict[str, tuple[str, ...]]] = {}
    for ref in refs:
        if isinstance(ref, AssetRef) and ref.kind in _DETAIL_CODES and ref.registry is None and ref.version:
            held = versions.setdefault(ref.kind, {})
            if ref.version not in held.get(ref.name.lower(), ()):
                held[ref.name.lower()] = (*held.get(ref.name.lower(), ()), ref.version)
    return AssetRegistry(versions)
