"""The Function App: the orchestrator, the activities and the HTTP routes, built by ``bootstrap``.

Importing this module imports no Azure SDK beyond azure-functions and azure-functions-durable,
and reads one setting only: whether the alert route takes Secure Webhook (Entra ID) tokens
instead of a function key (``api.entra.alert_auth_level``), since a binding's auth level is fixed
when the worker indexes the app. Every other setting is read, and the Azure ML and Monitor
clients are built, on first use (``bootstrap.azure_defaults``).
"""

import logging

from api.entra import alert_auth_level
from bootstrap import azure_defaults, build_app

# azure-core logs every request's headers at INFO and azure-ai-ml its telemetry: keep warnings only.
logging.getLogger("azure").setLevel(logging.WARNING)

backend, settings = azure_defaults()
app = build_app(backend=backend, settings=settings, alert_auth=alert_auth_level())
