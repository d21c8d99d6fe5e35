"""A fake Azure whose workspaces have a default datastore, ``workspaceblobstore``, pointing at the fake
blob storage of ``tests/azure/fake_blob.py``, and model assets: what ``aml-rollout register`` talks
to when it uploads and registers a model folder.

``StorageAzure`` is a ``FakeAzure`` with more routes, bodies shaped as the REST spec's 2024-10-01
examples ``Datastore/get.json``, ``Datastore/listSecrets.json`` and
``Workspace/ModelVersion/createOrUpdate.json``: a datastore's GET and its ``listSecrets`` (an
account key; none for ``identity_based_datastore``), the model container (latest and next
version), the versions list (``$orderBy``/``$top``), and the version PUT (versions are immutable:
another ``modelUri`` for an existing version is refused, 400 ``Asset paths cannot be updated``).
``RegisterWorld`` starts both fakes behind one CA.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.azure_common import ClientTuning, default_transport, fetch_cloud
from rollout.model import WorkspaceRef
from tests.azure.fake_azure import _WS, FakeAzure, Reply, arm_error
from tests.azure.fake_blob import ACCOUNT, ACCOUNT_KEY, CONTAINER, DATASTORE, STORAGE_SUFFIX, FakeBlobStorage
from tests.azure.tls import make_test_pki


def datastore_body(ws: WorkspaceRef, identity_based: bool = False) -> dict[str, Any]:
    """``workspaceblobstore`` as the datastore GET answers (shape of the spec example ``Datastore/get.json``):
    with an account key, or (``identity_based``) none, the caller's own identity reaching storage."""
    credentials = {"credentialsType": "None"} if identity_based else {
        "credentialsType": "AccountKey", "secrets": {"secretsType": "AccountKey"}}
    return {"id": f"{ws.arm_id()}/datastores/{DATASTORE}", "name": DATASTORE,
            "type": "Microsoft.MachineLearningServices/workspaces/datastores",
            "properties": {"description": None, "tags": {}, "properties": {}, "isDefault": True,
                           "credentials": credentials,
                           "datastoreType": "AzureBlob", "accountName": ACCOUNT, "containerName": CONTAINER,
                           "endpoint": STORAGE_SUFFIX, "protocol": "https",
                           "serviceDataAccessAuthIdentity": "WorkspaceSystemAssignedIdentity"},
            "systemData": {"createdAt": "2026-01-05T10:00:00.000Z", "createdBy": "ws1", "createdByType": "Application"}}


@dataclass
class ModelVersion:
    """A stored model version: its body as the service answers it, and its creation order."""

    body: dict[str, Any]
    created: int


class StorageAzure(FakeAzure):
    """``FakeAzure`` whose workspaces have the default datastore ``workspaceblobstore`` and model assets."""

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.models: dict[str, ModelVersion] = {}      # lower-cased version path -> version
            self.identity_based_datastore = False           # True: credentialsType None, no account key handed out

    def _routes(self) -> list[tuple[str, str, Any]]:
        model = _WS + "/models/(?P<model>[^/]+)"
        return [*super()._routes(),
                ("GET", _WS + "/datastores/(?P<ds>[^/]+)$", self._get_datastore),
                ("POST", _WS + "/datastores/(?P<ds>[^/]+)/listsecrets$", self._list_secrets),
                ("GET", model + "$", self._get_model),
                ("GET", model + "/versions$", self._list_model_versions),
                ("PUT", model + "/versions/(?P<ver>[^/]+)$", self._put_model_version)]

    def _workspace(self, path: str) -> WorkspaceRef | None:
        match = re.match(_WS, path)
        if match is None or match.group(0) not in self.workspaces:
            return None
        return WorkspaceRef(*match.group("sub", "rg", "ws"))

    def _get_datastore(self, path: str, ds: str, **_: Any) -> Reply:
        ws = self._workspace(path)
        if ws is None or ds != DATASTORE:
            return 404, arm_error("UserError", f"Could not find datastore {ds}"), {}
        return 200, datastore_body(ws, self.identity_based_datastore), {}

    def _list_secrets(self, path: str, ds: str, **_: Any) -> Reply:
        if self._workspace(path) is None or ds != DATASTORE:
            return 404, arm_error("UserError", f"Could not find datastore {ds}"), {}
        if self.identity_based_datastore:
            return 400, arm_error("UserError", f"Datastore {ds} has no secrets."), {}
        return 200, {"secretsType": "AccountKey", "key": ACCOUNT_KEY}, {}

    def _versions(self, container: str) -> list[ModelVersion]:
        return sorted((v for key, v in self.models.items() if key.startswith(container + "/versions/")),
                      key=lambda v: v.created)

    def _get_model(self, path: str, model: str, **_: Any) -> Reply:
        versions = [int(v.body["name"]) for v in self._versions(path) if v.body["name"].isdigit()]
        if not versions:
            return 404, arm_error("UserError", f"Could not find asset with name {model}"), {}
        return 200, {"id": path, "name": model, "properties": {"latestVersion": str(max(versions)),
                                                               "nextVersion": str(max(versions) + 1)}}, {}

    def _list_model_versions(self, path: str, query: dict[str, str], **_: Any) -> Reply:
        versions = self._versions(path.rsplit("/versions", 1)[0])
        if query.get("$orderBy", "").lower() == "createdtime desc":
            versions.reverse()
        top = int(query.get("$top") or len(versions) or 1)
        return 200, {"value": [v.body for v in versions[:top]]}, {}

    def _put_model_version(self, path: str, model: str, ver: str, body: Any, **_: Any) -> Reply:
        ws = self._workspace(path)
        if ws is None:
            return 404, arm_error("ResourceNotFound", f"Workspace not found: {path}"), {}
        sent = dict((body or {}).get("properties") or {})
        if not sent.get("modelUri"):
            return 400, arm_error("UserError", "modelUri is required."), {}
        existing = self.models.get(path)
        if existing is not None:
            if existing.body["properties"].get("modelUri") != sent["modelUri"]:
                return 400, arm_error("UserError", "Asset paths cannot be updated."), {}
            return 200, existing.body, {}
        created = {"id": f"{ws.arm_id()}/models/{model}/versions/{ver}", "name": ver,
                   "type": "Microsoft.MachineLearningServices/workspaces/models/versions",
                   # the service fills in what the body left out (flavors: {}, as the SDK's own unit tests show)
                   "properties": {"tags": {}, "properties": {}, "isArchived": False, "isAnonymous": False, "flavors": {},
                                  **{k: v for k, v in sent.items() if v is not None}, "provisioningState": "Succeeded"},
                   "systemData": {"createdAt": datetime.now(UTC).isoformat(), "createdBy": "operator",
                                  "createdByType": "User"}}
        self.models[path] = ModelVersion(created, len(self.models))
        return 201, created, {}


class RegisterWorld:
    """A ``StorageAzure`` (cloud ``cloud_name``) and a ``FakeBlobStorage`` behind one test CA whose
    server certificate also names ``*.blob.{STORAGE_SUFFIX}``. A context manager: started inside."""

    def __init__(self, directory: Path, cloud_name: str) -> None:
        self.pki = make_test_pki(directory, (f"*.blob.{STORAGE_SUFFIX}",))
        self.azure = StorageAzure(self.pki, cloud_name)
        self.storage = FakeBlobStorage(self.pki)

    def __enter__(self) -> RegisterWorld:
        self.azure.start()
        self.storage.start()
        tuning = ClientTuning()
        transport = default_transport(tuning, connection_verify=str(self.pki.ca_cert), use_env_settings=False)
        with transport:
            self.cloud = fetch_cloud(self.azure.cloud_name,
                                     f"{self.azure.base_url}/metadata/endpoints?api-version=2022-09-01", transport, tuning)
        return self

    def __exit__(self, *_: object) -> None:
        self.storage.stop()
        self.azure.stop()

    def reset(self, ws: WorkspaceRef) -> None:
        """Workspace ``ws`` with its datastore and no models; an empty container; no faults."""
        self.azure.reset()
        self.azure.add_workspace(ws)
        self.storage.reset()

    def environment(self) -> dict[str, str]:
        """What the operator's machine would set: storage through the proxy, Azure ML direct, the test CA."""
        return {"HTTPS_PROXY": self.storage.proxy_url, "NO_PROXY": "127.0.0.1,localhost",
                "REQUESTS_CA_BUNDLE": str(self.pki.ca_cert)}
