"""``aml-rollout register``: inputs checked before any upload, asset ids printed, Azure errors as sentences.

Most tests use a hand-written fake ``Registrar`` (recording what it was asked). The last ones run the
verb end to end: ``AzureRegistrar`` -> ``user_ml_client`` -> azure-ai-ml -> the fake Azure ML and the
fake blob storage of tests/azure/fake_blob.py (the model folder really is uploaded over HTTPS).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cli.main import main
from cli.register import AzureRegistrar, Registrar
from rollout.errors import PermissionDenied
from tests.azure.conftest import WS as WS_REF
from tests.azure.conftest import StaticCredential
from tests.azure.fake_blob import ACCOUNT
from tests.azure.fake_datastore import RegisterWorld

WORKSPACE = "00000000-1111-2222-3333-444444444444/rg1/ws1"
IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04"


@dataclass
class FakeRegistrar:
    fail_with: Exception | None = None
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def register_model(self, folder: str, name: str, description: str | None) -> str:
        self.calls.append(("model", folder, name, description or ""))
        if self.fail_with:
            raise self.fail_with
        return f"azureml:{name}:3"

    def register_environment(self, name: str, conda_file: str, image: str) -> str:
        self.calls.append(("environment", name, conda_file, image))
        return f"azureml:{name}:7"


def run(registrar: Registrar, *argv: str, debug: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*(["--debug"] if debug else []), "register", "--workspace", WORKSPACE, *argv], out=out, err=err,
                env={}, registrar=registrar)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def assets(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "models" / "fraud"
    model.mkdir(parents=True)
    (model / "model.pkl").write_bytes(b"\x80\x04")
    conda = tmp_path / "conda.yaml"
    conda.write_text("name: fraud\nchannels: [conda-forge]\ndependencies: [python=3.11, pip]\n")
    return model, conda


def test_model_and_environment_are_registered_and_their_ids_printed(assets: tuple[Path, Path]) -> None:
    model, conda = assets
    fake = FakeRegistrar()
    code, out, err = run(fake, "--model", str(model), "--model-name", "fraud-model", "--environment-name", "fraud-env",
                         "--conda-file", str(conda), "--image", "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04")
    assert (code, err) == (0, "")
    assert out.splitlines() == ["model:       azureml:fraud-model:3", "environment: azureml:fraud-env:7"]
    assert fake.calls == [("model", str(model), "fraud-model", ""),
                          ("environment", "fraud-env", str(conda), "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04")]


@pytest.mark.parametrize("argv, message", [
    pytest.param([], "error: nothing to register", id="nothing"),
    pytest.param(["--model", "MODEL"], "error: --model needs --model-name", id="model-without-name"),
    pytest.param(["--model", "/no/such/folder", "--model-name", "m"], "error: /no/such/folder is not a folder with files in it",
                 id="missing-folder"),
    pytest.param(["--model", "MODEL", "--model-name", "bad name"],
                 "error: --model-name 'bad name' must be 1-255 letters, digits, '-', '_' or '.', starting with a letter "
                 "or digit", id="bad-name"),
    pytest.param(["--environment-name", "env", "--conda-file", "CONDA"], "error: an environment needs --conda-file and --image",
                 id="environment-without-image"),
    pytest.param(["--environment-name", "env", "--conda-file", "/no/conda.yaml", "--image", "img"],
                 "error: cannot read /no/conda.yaml: No such file or directory", id="missing-conda-file"),
])
def test_bad_inputs_are_refused_before_anything_is_uploaded(assets: tuple[Path, Path], argv: list[str],
                                                            message: str) -> None:
    model, conda = assets
    argv = [str(model) if a == "MODEL" else str(conda) if a == "CONDA" else a for a in argv]
    fake = FakeRegistrar()
    code, out, err = run(fake, *argv)
    assert code == 2 and out == "" and fake.calls == []
    assert err.splitlines()[0] == message and err.splitlines()[1].startswith("hint: ")


def test_a_bad_workspace_is_refused(assets: tuple[Path, Path]) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["register", "--workspace", "ws1", "--model", str(assets[0]), "--model-name", "m"], out=out, err=err,
                registrar=FakeRegistrar())
    assert code == 2 and err.getvalue().startswith("error: --workspace must be SUBSCRIPTION_ID/RESOURCE_GROUP/WORKSPACE_NAME")


def test_a_missing_role_is_a_sentence_not_a_traceback(assets: tuple[Path, Path]) -> None:
    fake = FakeRegistrar(fail_with=PermissionDenied("register model 'm': permission denied (403). Your Azure login needs "
                                                    "the 'AzureML Data Scientist' role"))
    code, out, err = run(fake, "--model", str(assets[0]), "--model-name", "m")
    assert code == 5 and out == ""
    assert err.splitlines() == ["error: register model 'm': permission denied (403). Your Azure login needs the "
                                "'AzureML Data Scientist' role",
                                "hint: check your role on the workspace and its storage (`az login` as the right user?)"]


# ---- end to end through azure-ai-ml, against the fake Azure ML and blob storage ----------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegisterWorld]:
    """Azure ML and storage for this module, in a cloud of its own (see tests/azure/test_register_assets.py)."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv("AZUREML_CURRENT_CLOUD", raising=False)
        with RegisterWorld(tmp_path_factory.mktemp("cli-register-pki"), "AmlRolloutCliRegisterLoopback") as started:
            yield started


@pytest.fixture
def azure(world: RegisterWorld, monkeypatch: pytest.MonkeyPatch) -> AzureRegistrar:
    """The registrar ``register`` builds by default, with a test token and the fake's cloud."""
    world.reset(WS_REF)
    for name, value in world.environment().items():
        monkeypatch.setenv(name, value)
    return AzureRegistrar(WS_REF, StaticCredential(), world.cloud)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    model = tmp_path / "fraud"
    (model / "code").mkdir(parents=True)
    (model / "model.pkl").write_bytes(b"weights")
    (model / "code" / "score.py").write_text("def run(data):\n    return data\n")
    return model


def run_bounded(registrar: Registrar, *argv: str, debug: bool = False) -> tuple[int, str, str]:
    """``run`` on a thread, given 30 s: a registration that never returns fails the test instead of hanging it."""
    result: list[tuple[int, str, str]] = []
    worker = threading.Thread(target=lambda: result.append(run(registrar, *argv, debug=debug)), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert result, "aml-rollout register did not return within 30 s"
    return result[0]


def test_a_model_folder_is_uploaded_registered_and_its_id_printed(world: RegisterWorld, azure: AzureRegistrar,
                                                                  folder: Path, tmp_path: Path) -> None:
    conda = tmp_path / "conda.yaml"
    conda.write_text("name: fraud\nchannels: [conda-forge]\ndependencies: [python=3.11, pip]\n")
    code, out, err = run_bounded(azure, "--model", str(folder), "--model-name", "fraud-model", "--environment-name",
                                 "fraud-env", "--conda-file", str(conda), "--image", IMAGE)
    assert (code, err) == (0, "")
    assert out.splitlines() == ["model:       azureml:fraud-model:1", "environment: azureml:fraud-env:1"]
    assert [c.path.lower().rsplit("/ws1/", 1)[1] for c in world.azure.calls("PUT")] == [
        "models/fraud-model/versions/1", "environments/fraud-env/versions/1"]
    stored = world.storage.contents()
    assert sorted(name.split("/", 2)[2] for name in stored) == ["fraud/code/score.py", "fraud/model.pkl"]
    assert sorted(stored.values()) == [b"def run(data):\n    return data\n", b"weights"]
    put = world.azure.calls("PUT")[0]
    prefix = next(iter(stored)).rsplit("/fraud/", 1)[0]
    assert put.body["properties"]["modelUri"].endswith(f"/datastores/workspaceblobstore/paths/{prefix}/fraud")
    code, out, _ = run_bounded(azure, "--model", str(folder), "--model-name", "fraud-model")
    assert (code, out) == (0, "model:       azureml:fraud-model:2\n")
    assert world.storage.contents() == stored                               # nothing uploaded the second time


def test_an_upload_refused_by_storage_is_one_sentence_and_a_hint(world: RegisterWorld, azure: AzureRegistrar,
                                                                folder: Path) -> None:
    world.storage.fail("PUT", r"/fraud/model\.pkl$", 403, "AuthorizationFailure",
                       "This request is not authorized to perform this operation.")
    code, out, err = run_bounded(azure, "--model", str(folder), "--model-name", "fraud-model")
    assert (code, out) == (5, "")
    lines = err.splitlines()
    assert len(lines) == 2 and "Traceback" not in err
    assert lines[0].startswith(f"error: register model 'fraud-model': uploading {folder} to storage account "
                               f"'{ACCOUNT}' was refused (403 This request is not authorized")
    assert "Storage error code: AuthorizationFailure." in lines[0]
    assert lines[1] == "hint: check your role on the workspace and its storage (`az login` as the right user?)"
    assert world.azure.calls("PUT") == []


def test_debug_shows_the_sdk_traceback_of_a_refused_upload(world: RegisterWorld, azure: AzureRegistrar,
                                                           folder: Path) -> None:
    world.storage.fail("PUT", r"/fraud/model\.pkl$", 403, "AuthorizationFailure",
                       "This request is not authorized to perform this operation.")
    code, _, err = run_bounded(azure, "--model", str(folder), "--model-name", "fraud-model", debug=True)
    assert code == 5 and err.startswith("Traceback")
    assert "azure.core.exceptions.HttpResponseError" in err and "ErrorCode:AuthorizationFailure" in err
    assert err.splitlines()[-2].startswith("error: register model 'fraud-model': uploading")
