"""``adapters.azure_ml.register_environment`` and ``register_model`` through the real ``MLClient``
(``user_ml_client`` for models, as the CLI builds it) against the fake Azure and, for a model
folder's upload, the fake blob storage of its default datastore (``tests/azure/fake_blob.py``):
the requests azure-ai-ml makes, what arrives in storage, and the asset id."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.azure_backend import AzureBackend
from adapters.azure_ml import AzureMLEndpoints, register_environment, register_model, user_ml_client
from rollout.errors import PermissionDenied, ResourceNotFound
from tests.azure.conftest import WS, StaticCredential
from tests.azure.fake_azure import TOKEN, FakeAzure
from tests.azure.fake_blob import ACCOUNT, STORAGE_SUFFIX
from tests.azure.fake_datastore import RegisterWorld

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


# ---- a model folder: uploaded to the default datastore's blob storage, then registered ---------------

STORAGE_SCOPE = ("https://storage.azure.com/.default",)
UPLOAD_PATH = ("azureml://subscriptions/00000000-1111-2222-3333-444444444444/resourcegroups/rg1/workspaces/ws1/"
               "datastores/workspaceblobstore/paths/")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegisterWorld]:
    """Azure ML and storage for this module, in a cloud of its own (azure-ai-ml registers a cloud's
    URLs once per process, and records the current one in AZUREML_CURRENT_CLOUD: put back after)."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv("AZUREML_CURRENT_CLOUD", raising=False)
        with RegisterWorld(tmp_path_factory.mktemp("register-pki"), "AmlRolloutRegisterLoopback") as started:
            yield started


@pytest.fixture
def operator_client(world: RegisterWorld, monkeypatch: pytest.MonkeyPatch, credential: StaticCredential) -> Any:
    """``user_ml_client`` as ``aml-rollout register`` builds it, on a machine whose environment sends
    storage through the fake's proxy and trusts the test CA."""
    world.reset(WS)
    for name, value in world.environment().items():
        monkeypatch.setenv(name, value)
    return user_ml_client(WS, credential, world.cloud)


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    """A model folder with two files at the top and one in a nested directory."""
    folder = tmp_path / "models" / "fraud"
    (folder / "preprocess").mkdir(parents=True)
    (folder / "model.pkl").write_bytes(b"\x80\x04\x95fraud-model-weights")
    (folder / "MLmodel.txt").write_text("flavor: sklearn\n")
    (folder / "preprocess" / "scaler.json").write_text('{"mean": [0.5, 1.5]}')
    return folder


def uploaded_prefix(world: RegisterWorld) -> str:
    """The one ``LocalUpload/{hash}`` folder in the container (several: the test fails)."""
    (prefix,) = {name.rsplit("/fraud/", 1)[0] for name in world.storage.contents()}
    return prefix


def test_a_model_folder_is_uploaded_to_the_datastore_and_registered(world: RegisterWorld, operator_client: Any,
                                                                    model_folder: Path,
                                                                    credential: StaticCredential) -> None:
    asset = register_model(operator_client, str(model_folder), "fraud-model", "fraud detector")
    assert asset == "azureml:fraud-model:1"
    prefix = uploaded_prefix(world)
    assert prefix.startswith("LocalUpload/") and len(prefix.split("/")[1]) == 64      # the content's sha256
    assert world.storage.contents() == {
        f"{prefix}/fraud/MLmodel.txt": b"flavor: sklearn\n",
        f"{prefix}/fraud/model.pkl": b"\x80\x04\x95fraud-model-weights",
        f"{prefix}/fraud/preprocess/scaler.json": b'{"mean": [0.5, 1.5]}',
    }
    # the first file (sorted) carries the upload's confirmation, with the version registered
    assert world.storage.blobs[f"{prefix}/fraud/MLmodel.txt"].metadata == {
        "upload_status": "completed", "name": "fraud-model", "version": "1"}
    assert set(world.storage.tunnels) == {f"{ACCOUNT}.blob.{STORAGE_SUFFIX}:443"}
    assert {c.headers["authorization"].split(":")[0] for c in world.storage.calls()} == {f"SharedKey {ACCOUNT}"}
    assert STORAGE_SCOPE not in credential.scopes                           # the account key, not a token
    (put,) = world.azure.calls("PUT")
    assert put.path.lower().endswith("/workspaces/ws1/models/fraud-model/versions/1")
    assert put.body["properties"]["modelType"] == "custom_model"
    assert put.body["properties"]["description"] == "fraud detector"
    assert put.body["properties"]["modelUri"] == f"{UPLOAD_PATH}{prefix}/fraud"
    assert [(c.method, c.path.lower().rsplit("/ws1/", 1)[1]) for c in world.azure.calls()] == [
        ("GET", "models/fraud-model/versions"), ("GET", "models/fraud-model"),
        ("GET", "datastores/workspaceblobstore"), ("POST", "datastores/workspaceblobstore/listsecrets"),
        ("PUT", "models/fraud-model/versions/1")]


def test_the_same_folder_again_is_not_uploaded_again_but_gets_the_next_version(
        world: RegisterWorld, operator_client: Any, model_folder: Path) -> None:
    assert register_model(operator_client, str(model_folder), "fraud-model") == "azureml:fraud-model:1"
    first = uploaded_prefix(world)
    puts_before = len(world.storage.calls("PUT"))
    assert register_model(operator_client, str(model_folder), "fraud-model") == "azureml:fraud-model:2"
    assert len(world.storage.calls("PUT")) == puts_before                # found completed: nothing uploaded
    uris = [c.body["properties"]["modelUri"] for c in world.azure.calls("PUT")]
    assert uris == [f"{UPLOAD_PATH}{first}/fraud"] * 2
    (model_folder / "model.pkl").write_bytes(b"retrained weights")
    assert register_model(operator_client, str(model_folder), "fraud-model") == "azureml:fraud-model:3"
    assert len({name.rsplit("/fraud/", 1)[0] for name in world.storage.contents()}) == 2   # a new folder
    assert world.azure.calls("PUT")[-1].body["properties"]["modelUri"] != uris[0]


def test_an_upload_refused_by_storage_names_the_account_and_registers_nothing(
        world: RegisterWorld, operator_client: Any, model_folder: Path) -> None:
    world.storage.fail("PUT", r"/preprocess/scaler\.json$", 403, "AuthorizationFailure",
                       "This request is not authorized to perform this operation.")
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            register_model(operator_client, str(model_folder), "fraud-model")
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "register_model still waiting after a refused upload"
    (error,) = outcome
    assert isinstance(error, PermissionDenied)
    assert str(error).startswith(f"register model 'fraud-model': uploading {model_folder} to storage account "
                                 f"'{ACCOUNT}' was refused (403 This request is not authorized to perform this "
                                 "operation.")
    assert "networking" in str(error)
    assert world.azure.calls("PUT") == []                                  # no version points at a partial upload


def test_an_identity_based_datastore_is_reached_with_the_operators_token(
        world: RegisterWorld, operator_client: Any, model_folder: Path, credential: StaticCredential) -> None:
    world.azure.identity_based_datastore = True
    world.storage.data_contributors.add(TOKEN)
    assert register_model(operator_client, str(model_folder), "fraud-model") == "azureml:fraud-model:1"
    assert len(world.storage.contents()) == 3
    assert {c.headers["authorization"] for c in world.storage.calls()} == {f"Bearer {TOKEN}"}
    assert world.azure.calls("POST") == []                                 # no listSecrets: no key to ask for
    assert STORAGE_SCOPE in credential.scopes


def test_without_a_blob_data_role_an_identity_based_upload_is_permission_denied(
        world: RegisterWorld, operator_client: Any, model_folder: Path) -> None:
    world.azure.identity_based_datastore = True                            # the token has no data role
    with pytest.raises(PermissionDenied) as caught:
        register_model(operator_client, str(model_folder), "fraud-model")
    assert str(caught.value).startswith(
        f"register model 'fraud-model': uploading {model_folder} to storage account '{ACCOUNT}' was refused (403 ")
    assert "Storage error code: AuthorizationPermissionMismatch." in str(caught.value)   # a HEAD: no body, the code
    assert "'Storage Blob Data Contributor'" in str(caught.value)
    assert world.storage.contents() == {} and world.azure.calls("PUT") == []


def test_files_an_amlignore_names_are_not_uploaded(world: RegisterWorld, operator_client: Any,
                                                   model_folder: Path) -> None:
    (model_folder / ".amlignore").write_text("*.log\n")
    (model_folder / "training.log").write_text("epoch 1\n")
    register_model(operator_client, str(model_folder), "fraud-model")
    names = sorted(name.split("/fraud/", 1)[1] for name in world.storage.contents())
    assert names == [".amlignore", "MLmodel.txt", "model.pkl", "preprocess/scaler.json"]


def test_a_file_over_64_mib_goes_up_in_blocks_and_arrives_whole(world: RegisterWorld, operator_client: Any,
                                                                 tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    block = 4 * 1024 * 1024                                                # the SDK's block size
    data = b"".join(bytes([i]) * block for i in range(16)) + b"tail"      # 64 MiB + 4 bytes, each block its own
    (folder / "weights.bin").write_bytes(data)
    assert register_model(operator_client, str(folder), "big-model") == "azureml:big-model:1"
    (stored,) = world.storage.contents().values()
    assert len(stored) == len(data) and hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
    comps = [c.query.get("comp") for c in world.storage.calls("PUT")]
    assert (comps.count("block"), comps.count("blocklist"), comps.count(None)) == (17, 1, 0)
    (blob,) = world.storage.blobs.values()
    assert blob.metadata == {"upload_status": "completed", "name": "big-model", "version": "1"}
