"""``aml-rollout register``: inputs checked before any upload, asset ids printed, Azure errors as sentences.

Azure ML is a hand-written fake ``Registrar`` here (recording what it was asked); the azure-ai-ml side
(``adapters.azure_ml.register_model`` / ``register_environment``) is not exercised by these tests.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cli.main import main
from rollout.errors import PermissionDenied

WORKSPACE = "00000000-1111-2222-3333-444444444444/rg1/ws1"


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


def run(registrar: FakeRegistrar, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["register", "--workspace", WORKSPACE, *argv], out=out, err=err, env={}, registrar=registrar)
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
                                "hint: check your role on the workspace (`az login` as the right user?)"]
