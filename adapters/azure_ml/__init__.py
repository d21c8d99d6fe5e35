"""The Azure ML adapter: the only code of the app that imports ``azure.ai.ml``, split by responsibility.

- ``adapters.azure_ml.endpoints``: ``build_ml_client`` (one ``MLClient`` per workspace) and
  ``AzureMLEndpoints``, the ``EndpointPort`` (endpoints, deployments, traffic);
- ``adapters.azure_ml.lifecycle``: ``AzureMLLifecycle``, the ``LifecyclePort`` (create, scale,
  delete, operations, logs, quota), ``OperationUrls`` and ``build_operation_reader``;
- ``adapters.azure_ml.assets``: ``user_ml_client``, ``register_model`` and ``register_environment``
  for ``aml-rollout register`` on an operator's machine.

Importing the package imports azure-ai-ml (``AzureBackend`` does so on first use only). Every
name other modules use is re-exported here.
"""

from __future__ import annotations

from adapters.azure_ml.assets import (
    REGISTER_ROLE_HINT,
    STORAGE_UPLOAD_HINT,
    register_environment,
    register_model,
    user_ml_client,
)
from adapters.azure_ml.endpoints import AzureMLEndpoints, build_ml_client, deployment_state, endpoint_state
from adapters.azure_ml.lifecycle import (
    ANONYMOUS_ENVIRONMENT,
    AzureMLLifecycle,
    OperationUrls,
    build_operation_reader,
)

__all__ = [
    "ANONYMOUS_ENVIRONMENT", "REGISTER_ROLE_HINT", "AzureMLEndpoints", "AzureMLLifecycle", "OperationUrls",
    "build_ml_client", "build_operation_reader", "deployment_state", "endpoint_state", "register_environment",
    "register_model", "user_ml_client", "STORAGE_UPLOAD_HINT",
]
