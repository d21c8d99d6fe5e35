"""Registering assets (``aml-rollout register``, on an operator's machine): ``user_ml_client``,
``register_model`` and ``register_environment`` over azure-ai-ml, with the operator's own login.

Part of the Azure ML adapter package (``adapters.azure_ml``), the only code importing ``azure.ai.ml``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from azure.ai.ml import MLClient
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError

from adapters.azure_common import CloudEndpoints, translate
from rollout.model import WorkspaceRef

# --- registering assets (``aml-rollout register``, on an operator's machine) ------------------

REGISTER_ROLE_HINT = ("Your Azure login needs the 'AzureML Data Scientist' role on the workspace (models/write, "
                      "environments/write, and the default datastore's storage to upload the model folder).")


def user_ml_client(workspace: WorkspaceRef, credential: TokenCredential | None = None,
                   cloud: CloudEndpoints | None = None) -> MLClient:
    """An ``MLClient`` for ``workspace`` with the operator's own login (default ``DefaultAzureCredential``:
    ``az login``, environment variables, or a managed identity), in the public cloud unless ``cloud``
    says otherwise. Its requests honour ``REQUESTS_CA_BUNDLE`` and the proxy variables.

    ``show_progress`` stays on: azure-ai-ml 1.35.2 reads its upload threads' errors only while it
    draws the progress bar (on stderr); without it a refused blob upload leaves
    ``models.create_or_update`` waiting forever.
    """
    from azure.identity import DefaultAzureCredential

    options: dict[str, Any] = {"show_progress": True}
    if cloud is not None:
        options["cloud"] = cloud.name
        if cloud.ml_cloud_metadata:
            options["cloud_metadata"] = dict(cloud.ml_cloud_metadata)
    return MLClient(credential or DefaultAzureCredential(), workspace.subscription_id, workspace.resource_group,
                    workspace.workspace_name, **options)


STORAGE_UPLOAD_HINT = ("The workspace's default datastore (its storage account) refused the upload: check the "
                       "account's networking (your address must be allowed) and that key access is enabled, or, "
                       "for an identity-based datastore, your 'Storage Blob Data Contributor' role on it.")


def _storage_failure(exc: BaseException) -> tuple[AzureError, str] | None:
    """The failed storage request in ``exc`` or its causes (azure-ai-ml wraps some in its own
    ``ValidationException``), with the account it went to (``{account}.blob.{suffix}``); None when
    the failure is Azure ML's own."""
    cause: BaseException | None = exc
    while cause is not None:
        request = getattr(getattr(cause, "response", None), "request", None)
        host = urlsplit(str(getattr(request, "url", ""))).hostname or ""
        if isinstance(cause, AzureError) and (".blob." in host or ".dfs." in host):
            return cause, host.split(".", 1)[0]
        cause = cause.__cause__
    return None


def register_model(client: MLClient, folder: str, name: str, description: str | None = None) -> str:
    """Upload a local model folder to the workspace's default datastore and register it as the next
    version of custom model ``name``; returns its asset id, ``azureml:NAME:VERSION``.

    Requests (azure-ai-ml 1.35.2): GET the latest version and the model container (next version),
    GET ``workspaceblobstore`` and, for an account-key datastore, POST its ``listSecrets`` (for an
    identity-based one the operator's token goes to storage). Then, on
    ``{account}.blob.{storage suffix}``: HEAD the folder's first file under
    ``LocalUpload/{content hash}/{folder name}/``; Put Blob each file (``If-None-Match: *``,
    ``Content-MD5``; above 64 MiB, 4 MiB Put Blocks and a Put Block List); set the first file's
    metadata (``upload_status: completed``, name, version). Last, PUT the version with ``modelUri``
    ``azureml://.../datastores/workspaceblobstore/paths/LocalUpload/{content hash}/{folder name}``.
    The same content again finds the completed upload and uploads nothing, but still gets a new
    version. A refused upload raises naming the storage account and Storage's error code
    (``STORAGE_UPLOAD_HINT``); nothing is registered then.
    """
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Model

    try:
        model = client.models.create_or_update(Model(path=folder, name=name, type=AssetTypes.CUSTOM_MODEL,
                                                     description=description))
    except AzureError as exc:
        failure = _storage_failure(exc)
        if failure is not None:
            cause, account = failure
            code = getattr(cause, "error_code", None)         # a str, or a StorageErrorCode
            code = getattr(code, "value", code)
            raise translate(cause, f"register model {name!r}: uploading {folder} to storage account {account!r}",
                            (f"Storage error code: {code}. " if code else "") + STORAGE_UPLOAD_HINT) from exc
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
