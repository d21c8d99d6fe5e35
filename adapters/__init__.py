"""The Azure side of the app: the only package that imports Azure SDKs, and only when first used.

- ``adapters.azure_backend``: ``AzureBackend`` and ``AzureSettings`` (imports no SDK).
- ``adapters.azure_ml``: a package over azure-ai-ml (the only importer of ``azure.ai.ml``): ``endpoints``
  (``EndpointPort``), ``lifecycle`` (``LifecyclePort``), ``assets`` (``aml-rollout register``).
- ``adapters.azure_monitor``: ``MetricsPort`` over azure-mgmt-monitor and azure-monitor-query
  (the only importer of the Monitor clients).
- ``adapters.azure_common``: clouds, timeouts and retries, error translation (azure-core only).

See docs/azure.md.
"""
