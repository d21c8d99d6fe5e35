"""The Function App: registers the orchestrator, the activities and the HTTP routes.

Importing this module imports no Azure SDK beyond azure-functions and azure-functions-durable;
the Azure ML and Monitor clients are built on first use (``activities.backend``).
"""

import logging

import azure.durable_functions as df
import azure.functions as func

from activities import bp as activities
from activities.lifecycle import bp as lifecycle_activities
from api.http import bp as http_routes
from orchestrators.rollout import bp as orchestrators

# azure-core logs every request's headers at INFO and azure-ai-ml its telemetry: keep warnings only.
logging.getLogger("azure").setLevel(logging.WARNING)

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(orchestrators)
app.register_functions(activities)
app.register_functions(lifecycle_activities)
app.register_functions(http_routes)
