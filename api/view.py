"""The rollout's page: ``GET /api/rollouts/{endpoint}/view`` (function key, as every route).

The same HTML as ``aml-rollout report`` (``report.render_report``) for the endpoint's rollout,
running or last ended. While it runs the page reloads itself every ``REFRESH_SECONDS``; the
function key travels in the page's own URL (``?code=``), so a browser keeps it across reloads.
The page holds no script and loads nothing: its Content-Security-Policy forbids it. Errors are
the API's problem responses (404 when the endpoint never had a rollout).
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

from api.http import endpoint_param, rollout_links, rollout_view
from api.problems import answers_problems
from api.rollouts import find_rollout, request_of
from report import render_report
from rollout.errors import RolloutNotFound

bp = df.Blueprint()
REFRESH_SECONDS = 5
PAGE_HEADERS = {"Cache-Control": "no-store",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                "X-Content-Type-Options": "nosniff"}


@bp.route(route="rollouts/{endpoint}/view", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@answers_problems()
async def view_rollout(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The endpoint's rollout as an HTML page; 404 when it never had one."""
    endpoint = endpoint_param(req)
    status = await find_rollout(client, endpoint)
    if status is None:
        raise RolloutNotFound(f"endpoint {endpoint!r} has no rollout")
    view = rollout_view(status, rollout_links(req, endpoint))
    view["request"] = request_of(status)
    return func.HttpResponse(render_report(view, refresh_seconds=REFRESH_SECONDS), status_code=200,
                             mimetype="text/html", charset="utf-8", headers=dict(PAGE_HEADERS))
