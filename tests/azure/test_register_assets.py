"""``adapters.azure_ml.register_environment`` through the real ``MLClient`` against the fake Azure:
the requests azure-ai-ml makes (container GET for the next version, version PUT) and the asset id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.azure_backend import AzureBackend
from adapters.azure_ml import AzureMLEndpoints, register_environment
from rollout.errors import ResourceNotFound
from tests.azure.conftest import WS
from tests.azure.fake_azure import FakeAzure

IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"


def ml_client(backend: AzureBackend) -> Any:
    port = backend.endpoints(WS)
    assert isinstance(port, AzureMLEndpoints)
    return port._ml


def test_an_environment_is_registered_once_per_definition(backend: AzureBackend, fake: FakeAzure, tmp_path: Path) -> None:
    conda = tmp_path / "conda.yaml"
    conda.write_text("name: fraud\nchannels: [conda-forge]\ndependencies: [python=3.11, pip]\n")
    client = ml_client(backend)
    assert register_environment(client, "fraud-env", str(conda), IMAGE) == "azureml:fraud-env:1"
    assert register_environment(client, "fraud-env", str(conda), IMAGE) == "azureml:fraud-env:1"   # same: same version
    conda.write_text("name: fraud\nchannels: [conda-forge]\ndependencies: [python=3.12, pip]\n")
    assert register_environment(client, "fraud-env", str(conda), IMAGE) == "azureml:fraud-env:2"   # changed: the next
    puts = [c for c in fake.calls("PUT") if "/environments/" in c.path.lower()]
    assert [c.path.lower().rsplit("/", 1)[1] for c in puts] == ["1", "1", "1", "2"]   # latest tried first, as the SDK does
    properties = puts[0].body["properties"]
    assert properties["image"] == IMAGE and "python=3.11" in properties["condaFile"]


def test_a_missing_workspace_is_a_sentence_naming_it(backend: AzureBackend, fake: FakeAzure, tmp_path: Path) -> None:
    fake.workspaces.clear()
    conda = tmp_path / "conda.yaml"
    conda.write_text("dependencies: [python=3.11]\n")
    with pytest.raises(ResourceNotFound) as caught:
        register_environment(ml_client(backend), "fraud-env", str(conda), IMAGE)
    assert "ws1" in str(caught.value)
