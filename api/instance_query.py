"""Every page of a Durable instance query: what ``DurableOrchestrationClient.get_status_by`` leaves out.

The host answers ``GET instances/`` with at most 100 instances (``OrchestrationStatusQueryCondition
.PageSize``) and the next page's ``x-ms-continuation-token`` response header
(``HttpApiHandler.HandleGetStatusRequestAsync``, azure-functions-durable-extension 2.13.7). The
Python client (azure-functions-durable 1.7.0) sends no token and drops the headers, so
``get_status_by`` returns the first page only. ``query_all_instances`` sends the same request
through the client's own HTTP session, then follows the tokens until a page comes back without one
(absent or empty).
"""

from __future__ import annotations

from datetime import datetime

import aiohttp
import azure.durable_functions as df
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus
from azure.durable_functions.models.RpcManagementOptions import RpcManagementOptions
from azure.durable_functions.models.utils import http_utils

CONTINUATION_HEADER = "x-ms-continuation-token"


async def query_all_instances(client: df.DurableOrchestrationClient, created_time_from: datetime | None = None,
                              runtime_status: list[OrchestrationRuntimeStatus] | None = None,
                              instance_id_prefix: str | None = None) -> list[DurableOrchestrationStatus]:
    """``client.get_status_by(...)`` over every page. Raises ``Exception`` with the client's message for a
    status other than 200 (as ``get_status_by`` does), and ``RuntimeError`` if the host repeats a token."""
    options = RpcManagementOptions(created_time_from=created_time_from, runtime_status=runtime_status,
                                   instance_id_prefix=instance_id_prefix)
    url = options.to_url(client._orchestration_bindings.rpc_base_url)
    statuses: list[DurableOrchestrationStatus] = []
    token: str | None = None
    seen: set[str] = set()
    while True:
        status, body, token = await _get_page(url, token)
        if status != 200:
            raise Exception(f"The operation failed with an unexpected status code {status}")
        statuses += [DurableOrchestrationStatus.from_json(item) for item in body]
        if not token:
            return statuses
        if token in seen:
            raise RuntimeError(f"the task hub repeated continuation token {token!r}")
        seen.add(token)


async def _get_page(url: str, token: str | None) -> tuple[int, list[dict], str | None]:
    session = await http_utils._get_session()
    headers = {CONTINUATION_HEADER: token} if token else {}
    try:
        async with session.get(url, headers=headers) as response:
            body = await response.json(content_type=None) if response.status == 200 else []
            return response.status, body, response.headers.get(CONTINUATION_HEADER)
    except (aiohttp.ClientError, OSError):
        await http_utils._handle_request_error()  # as the client's own requests do
        raise
