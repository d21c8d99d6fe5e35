"""The Function App: the orchestrator, the activities and the HTTP routes, built by ``bootstrap``.

Importing this module reads no setting and imports no Azure SDK beyond azure-functions and
azure-functions-durable: the settings are read and the Azure ML and Monitor clients built on
first use (``bootstrap.azure_defaults``).
"""

import logging

from bootstrap import azure_defaults, build_app

# azure-core logs every request's headers at INFO and azure-ai-ml its telemetry: keep warnings only.
logging.getLogger("azure").setLevel(logging.WARNING)

backend, settings = azure_defaults()
app = build_app(backend=backend, settings=settings)
