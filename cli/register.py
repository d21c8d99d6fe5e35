"""``aml-rollout register``: put a local model folder and an environment (conda file + image) in
the workspace, with the operator's own Azure login, and print the asset ids a deployment uses.

The Azure side is ``adapters.azure_ml`` (``user_ml_client``, ``register_model``,
``register_environment``): the only module importing azure-ai-ml. This module checks the inputs
first, so a typo costs no upload.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

import yaml

from cli.errors import EXIT_UNREACHABLE, CliError
from rollout.errors import AzureError, PermissionDenied
from rollout.model import WorkspaceRef

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from adapters.azure_common import CloudEndpoints

ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
NAME_RULE = "must be 1-255 letters, digits, '-', '_' or '.', starting with a letter or digit"


class Registrar(Protocol):
    """What ``register`` needs from Azure ML."""

    def register_model(self, folder: str, name: str, description: str | None) -> str: ...

    def register_environment(self, name: str, conda_file: str, image: str) -> str: ...


@dataclass
class AzureRegistrar:
    """``Registrar`` over azure-ai-ml, for one workspace, with the operator's login (``credential``
    None: ``DefaultAzureCredential``) in the public cloud (``cloud`` None)."""

    workspace: WorkspaceRef
    credential: TokenCredential | None = None
    cloud: CloudEndpoints | None = None

    def __post_init__(self) -> None:
        from adapters.azure_ml import user_ml_client

        self.client = user_ml_client(self.workspace, self.credential, self.cloud)

    def register_model(self, folder: str, name: str, description: str | None) -> str:
        from adapters.azure_ml import register_model

        return register_model(self.client, folder, name, description)

    def register_environment(self, name: str, conda_file: str, image: str) -> str:
        from adapters.azure_ml import register_environment

        return register_environment(self.client, name, conda_file, image)


def parse_workspace(text: str | None) -> WorkspaceRef:
    """``SUBSCRIPTION/RESOURCE_GROUP/WORKSPACE`` as a ``WorkspaceRef``; ``CliError`` otherwise."""
    pieces = (text or "").strip("/").split("/")
    if len(pieces) != 3 or not all(pieces):
        raise CliError("--workspace must be SUBSCRIPTION_ID/RESOURCE_GROUP/WORKSPACE_NAME",
                       "az ml workspace show -g GROUP -n NAME --query id shows it")
    return WorkspaceRef(*pieces)


def _name(flag: str, value: str) -> str:
    if not ASSET_NAME.match(value):
        raise CliError(f"{flag} {value!r} {NAME_RULE}", "choose another name")
    return value


def check_inputs(model: str | None, model_name: str | None, environment_name: str | None, conda_file: str | None,
                 image: str | None) -> None:
    """Refuse missing or unreadable inputs before anything is uploaded."""
    if not model and not environment_name:
        raise CliError("nothing to register", "give --model FOLDER --model-name NAME and/or "
                       "--environment-name NAME --conda-file FILE --image IMAGE")
    if model is not None:
        if not model_name:
            raise CliError("--model needs --model-name", "name the model, e.g. --model-name fraud-model")
        _name("--model-name", model_name)
        if not Path(model).is_dir() or not any(Path(model).iterdir()):
            raise CliError(f"{model} is not a folder with files in it", "give the model's local folder")
    if environment_name is not None:
        _name("--environment-name", environment_name)
        if not conda_file or not image:
            raise CliError("an environment needs --conda-file and --image",
                           "e.g. --image mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04")
        try:
            conda = yaml.safe_load(Path(conda_file).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CliError(f"cannot read {conda_file}: {exc.strerror}", "give the conda environment file") from None
        except yaml.YAMLError:
            raise CliError(f"{conda_file} is not valid YAML", "a conda file has name, channels and dependencies") from None
        if not isinstance(conda, dict) or "dependencies" not in conda:
            raise CliError(f"{conda_file} has no dependencies list", "a conda file has name, channels and dependencies")


def register(registrar: Registrar, model: str | None, model_name: str | None, description: str | None,
             environment_name: str | None, conda_file: str | None, image: str | None, out: TextIO) -> None:
    """Register what was asked for and print ``model: <id>`` / ``environment: <id>``. An Azure failure
    becomes a ``CliError`` chained to it (``--debug`` prints the SDK's traceback)."""
    try:
        if model is not None and model_name is not None:
            print(f"model:       {registrar.register_model(model, model_name, description)}", file=out, flush=True)
        if environment_name is not None and conda_file is not None and image is not None:
            print(f"environment: {registrar.register_environment(environment_name, conda_file, image)}", file=out)
    except PermissionDenied as exc:
        raise CliError(str(exc), "check your role on the workspace and its storage (`az login` as the right user?)",
                       EXIT_UNREACHABLE) from exc
    except AzureError as exc:
        raise CliError(str(exc), "try again; `--debug` shows the details", EXIT_UNREACHABLE) from exc
