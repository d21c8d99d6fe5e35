"""Registering assets (``aml-rollout register``, on an operator's machine): ``user_ml_client``,
``register_model`` and ``register_environment`` over azure-ai-ml, with the operator's own login.

Part of the Azure ML adapter package (``adapters.azure_ml``), the only code importing ``azure.ai.ml``.
"""

from __future__ import annotations

from azure.ai.ml import MLClient
from azure.core.exceptions import AzureError

from adapters.azure_common import translate
from rollout.model import WorkspaceRef

# --- registering assets (``aml-rollout register``, on an operator's machine) ------------------

REGISTER_ROLE_HINT = ("Your Azure login needs the 'AzureML Data Scientist' role on the workspace (models/write, "
                      "environments/write, and the default datastore's storage to upload the model folder).")


def user_ml_client(workspace: WorkspaceRef) -> MLClient:
    """An ``MLClient`` for ``workspace`` with the operator's own login (``DefaultAzureCredential``:
    ``az login``, environment variables, or a managed identity), in the public cloud."""
    from azure.identity import DefaultAzureCredential

    return MLClient(DefaultAzureCredential(), workspace.subscription_id, workspace.resource_group,
                    workspace.workspace_name)


def register_model(client: MLClient, folder: str, name: str, description: str | None = None) -> str:
    """Upload a local model folder to the workspace's default datastore and register it as the next
    version of custom model ``name``; returns its asset id, ``azureml:NAME:VERSION``."""
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Model

    try:
        model = client.models.create_or_update(Model(path=folder, name=name, type=AssetTypes.CUSTOM_MODEL,
                                                     description=description))
    except AzureError as exc:
        raise translate(exc, f"register model {name!r}", REGISTER_ROLE_HINT) from exc
    return f"azureml:{model.name}:{model.version}"


def register_environment(client: MLClient, name: str, conda_file: str, image: str) -> str:
    """Register the next version of environment ``name``: the conda file on top of the Docker image;
    returns its asset id, ``azureml:NAME:VERSION``."""
    from azure.ai.ml.entities import Environment

    try:
        environment = client.environments.create_or_update(Environment(name=name, conda_file=conda_file, image=image))
    except AzureError as exc:
        raise translate(exc, f"register environment {name!r}", REGISTER_ROLE_HINT) from exc
    return f"azureml:{environment.name}:{environment.version}"
