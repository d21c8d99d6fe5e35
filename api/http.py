"""HTTP routes: start, inspect and steer rollouts, and the Azure Monitor alert webhook.

    POST /api/rollouts                      start a rollout (body: the rollout request)   202 400 409 413 503
    GET  /api/rollouts[?window=PT24H]       running rollouts and those created recently   200 400 503
    GET  /api/rollouts/{endpoint}           the endpoint's rollout: its record            200 400 404 503
    POST /api/rollouts/{endpoint}/{action}  pause | resume | promote | abort | resolve    202 400 404 409 413 503
    POST /api/alerts                        Azure Monitor action-group webhook            200 202 400 413 503

Every route needs a function key (auth level FUNCTION); the alert route takes an Entra ID
token instead when Secure Webhook validation is configured (``api.entra``). Handlers are thin: validate the input,
correlate it with a rollout (endpoint name -> ``rollout.plan.instance_id_for``; nothing in a
body names an instance), hand off to the Durable client. Errors become status codes in one
place, ``api.problems``. ``blueprint(settings)`` registers them; ``settings`` is the provider
``bootstrap.build_app`` was given (the environment in Azure, the emulator's own locally).

One rollout per endpoint: start looks the instance up first and answers 409 while one runs
(``start_new`` would silently replace it). Two starts racing inside one worker are serialised
by a per-endpoint lock; across workers, the host setting
``extensions.durableTask.overridableExistingInstanceStates: NonRunningStates`` makes the task
hub refuse the second ``start_new``, which is then reported as 409 too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Callable, Mapping
from urllib.parse import quote, urlsplit

import azure.durable_functions as df
import azure.functions as func
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

from api.alert_delivery import deliver_alert
from api.entra import AlertValidator, EntraValidator, refuse_unless_entra, validator_for
from api.instance_query import query_all_instances
from api.problems import BACKEND_ERRORS, BackendUnavailable, BodyTooLarge, answers_problems
from api.rollouts import find_rollout, is_running, request_of, runtime_status_name
from rollout.control import OPERATOR_ACTIONS, action_refusal
from rollout.durations import format_duration, parse_duration
from rollout.errors import ActionNotAllowed, FieldProblem, InvalidRequest, RolloutConflict, RolloutNotFound
from rollout.model import WorkspaceRef
from rollout.notify import redact_request
from rollout.plan import NAME_RULE, RolloutRequest, instance_id_for, is_valid_name, parse_request
from rollout.safety import versioned_input
from rollout.wire import RUNNING_STATUSES
from settings import Settings

log = logging.getLogger("aml_rollout.http")

ORCHESTRATOR = "rollout_orchestrator"
INSTANCE_PREFIX = instance_id_for("")            # every rollout's instance id starts with this
MAX_REQUEST_BYTES = 64 * 1024                     # rollout requests and control bodies
DEFAULT_LIST_WINDOW = timedelta(hours=24)
MAX_LIST_WINDOW = timedelta(days=30)
MAX_REASON_CHARS = 500
_AUTH = func.AuthLevel.FUNCTION

# --- routes --------------------------------------------------------------------------------


def blueprint(settings: Callable[[], Settings], alert_auth: func.AuthLevel = _AUTH,
              alert_validator: AlertValidator = validator_for) -> df.Blueprint:
    """The five routes; ``settings()`` is called when a request needs the app's settings, and
    ``alert_validator(settings)`` when an alert arrives (``api.entra``: None, validation off).

    ``alert_auth``: the alert route's auth level, FUNCTION unless Secure Webhook validation is
    configured (``api.entra.alert_auth_level``: ANONYMOUS, and every request must then carry
    Azure Monitor's Entra ID token). A binding's auth level is fixed when the worker indexes the
    app, so this is the one setting read at import."""
    bp = df.Blueprint()

    @bp.route(route="rollouts", methods=["POST"], auth_level=_AUTH)
    @bp.durable_client_input(client_name="client")
    @answers_problems()
    async def start_rollout(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
        return await start(req, client, settings())

    @bp.route(route="rollouts", methods=["GET"], auth_level=_AUTH)
    @bp.durable_client_input(client_name="client")
    @answers_problems()
    async def list_rollouts(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
        return await list_recent(req, client)

    @bp.route(route="rollouts/{endpoint}", methods=["GET"], auth_level=_AUTH)
    @bp.durable_client_input(client_name="client")
    @answers_problems()
    async def get_rollout(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
        return await get(req, client)

    @bp.route(route="rollouts/{endpoint}/{action}", methods=["POST"], auth_level=_AUTH)
    @bp.durable_client_input(client_name="client")
    @answers_problems()
    async def control_rollout(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
        return await control(req, client)

    @bp.route(route="alerts", methods=["POST"], auth_level=alert_auth)
    @bp.durable_client_input(client_name="client")
    @answers_problems(retry_unexpected=True)
    async def alert_webhook(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
        current = settings()
        return await alert(req, client, current, alert_validator(current))

    return bp


async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient, settings: Settings) -> func.HttpResponse:
    """Start a rollout: 202 with its id and where to poll and steer it; 400 naming each bad field;
    409 naming the rollout already running on that endpoint."""
    request = parse_request(read_json(req, MAX_REQUEST_BYTES))
    check_workspace(request.workspace, settings)
    request = replace(request, notify=request.notify + settings.notify_targets)   # the app's defaults
    instance_id = instance_id_for(request.endpoint_name)
    async with _start_lock(instance_id):
        await refuse_if_running(client, request.endpoint_name)
        await _start(client, request)
    log.info("started rollout %s: %s on %s", instance_id, request.new_deployment, request.endpoint_name)
    links = rollout_links(req, request.endpoint_name)
    body = {"id": instance_id, "endpoint_name": request.endpoint_name, "new_deployment": request.new_deployment,
            "status_url": links["status"], "actions": links["actions"], "request": redact_request(request.to_dict())}
    return json_response(202, body, {"Location": links["status"]})


async def list_recent(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Rollouts running now (however old) and those created within ``window`` (ISO 8601, default P1D,
    at most P30D), running first, then newest first."""
    window = _window_param(req)
    since = datetime.now(UTC) - window
    # Every page: the host answers 100 instances a page and get_status_by reads only the first.
    running = await query_all_instances(client, runtime_status=[OrchestrationRuntimeStatus(s) for s in RUNNING_STATUSES],
                                        instance_id_prefix=INSTANCE_PREFIX)
    recent = await query_all_instances(client, created_time_from=since, instance_id_prefix=INSTANCE_PREFIX)
    statuses = _merge(running, recent, since)
    rollouts = [rollout_view(s, rollout_links(req, _endpoint_of(s))) for s in statuses]
    return json_response(200, {"window": format_duration(window), "rollouts": rollouts})


async def get(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """The endpoint's rollout (running or last ended): phase, step, traffic, last health, history, outcome.
    404 when the endpoint never had one."""
    return json_response(200, await rollout_of_route(req, client))


async def rollout_of_route(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> dict[str, Any]:
    """The rollout of the route's ``{endpoint}`` as the API shows it, with its (redacted) request;
    ``RolloutNotFound`` (404) when the endpoint never had one."""
    endpoint = endpoint_param(req)
    status = await find_rollout(client, endpoint)
    if status is None:
        raise RolloutNotFound(f"endpoint {endpoint!r} has no rollout")
    view = rollout_view(status, rollout_links(req, endpoint))
    view["request"] = request_of(status)
    return view


async def control(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Send pause, resume, promote, abort or resolve (optional body ``{"reason": str}``) to the running rollout.
    202 when sent; 404 when nothing runs; 409 when the action does not fit the phase."""
    endpoint, action = endpoint_param(req), action_param(req)
    reason = reason_param(read_json(req, MAX_REQUEST_BYTES, required=False), action)
    status = await find_rollout(client, endpoint)
    if not is_running(status):
        raise RolloutNotFound(_not_running(endpoint, status))
    custom = status.custom_status if isinstance(status.custom_status, dict) else None
    refusal = action_refusal(action, custom)
    if refusal:
        raise ActionNotAllowed(refusal)
    await _raise_control(client, status.instance_id, endpoint, action, reason)
    log.info("sent %s to %s: %s", action, status.instance_id, reason)
    links = rollout_links(req, endpoint)
    body = {"instance_id": status.instance_id, "action": action, "reason": reason, "status_url": links["status"]}
    return json_response(202, body, {"Location": links["status"]})


async def alert(req: func.HttpRequest, client: df.DurableOrchestrationClient, settings: Settings,
                validator: EntraValidator | None) -> func.HttpResponse:
    """Azure Monitor's action-group webhook (common alert schema); ``validator`` checks its
    Entra ID token first (None: Secure Webhook validation off, the function key guards the route).

    202 when the alert was handed to the endpoint's running rollout (rollback, or a note);
    200 with ``done: false`` when nothing was done (no running rollout, outside the managed
    workspaces); 400 when the payload is not JSON or not the common schema; 413 above
    ``Settings.max_alert_bytes``; 503 with Retry-After whenever it cannot be handed over now
    (Azure Monitor retries 503, never 500), including on an unexpected error.
    """
    refusal = await refuse_unless_entra(req, validator)
    if refusal is not None:
        return refusal
    payload = read_json(req, settings.max_alert_bytes)
    outcome = await deliver_alert(payload, client, settings.managed_scope(), settings.workspace)
    done = outcome.decision.action != "ignore"
    return json_response(202 if done else 200, {"done": done, **outcome.to_dict()})


# --- starting --------------------------------------------------------------------------------

_start_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def _start_lock(instance_id: str) -> asyncio.Lock:
    """The lock serialising check-then-start for one instance id inside this worker."""
    lock = _start_locks.get(instance_id)
    if lock is None:
        lock = _start_locks[instance_id] = asyncio.Lock()
    return lock


def check_workspace(workspace: WorkspaceRef | None, settings: Settings) -> None:
    """Refuse a request naming a workspace this app does not manage, or none when the app has no default."""
    scope = settings.managed_scope()
    if workspace is None and settings.workspace is None:
        raise InvalidRequest([FieldProblem("workspace", "is required: the app has no default workspace configured")])
    if workspace is not None and scope.workspace_for(workspace.subscription_id, workspace.resource_group,
                                                     workspace.workspace_name) is None:
        raise InvalidRequest([FieldProblem("workspace", "is not a workspace this app manages")])


async def refuse_if_running(client: Any, endpoint: str) -> None:
    """Raise ``RolloutConflict`` naming the endpoint's running rollout, if it has one."""
    status = await find_rollout(client, endpoint)
    if not is_running(status):
        return
    phase = status.custom_status.get("phase") if isinstance(status.custom_status, dict) else "pending"
    raise RolloutConflict(f"endpoint {endpoint!r} already has a rollout running: {status.instance_id} "
                          f"(phase {phase}); wait for it to end or abort it", status.instance_id)


async def _start(client: Any, request: RolloutRequest) -> None:
    """``start_new``; when the task hub refuses, 409 if a rollout now runs (another worker won the race)."""
    instance_id = instance_id_for(request.endpoint_name)
    try:
        await client.start_new(ORCHESTRATOR, instance_id, versioned_input(request.to_dict()))
    except BACKEND_ERRORS:
        raise
    except Exception as exc:
        await refuse_if_running(client, request.endpoint_name)
        raise BackendUnavailable("the task hub did not start the rollout; try again") from exc


# --- controls --------------------------------------------------------------------------------


async def _raise_control(client: Any, instance_id: str, endpoint: str, action: str, reason: str) -> None:
    """Raise the control event; a rollout that ended meanwhile is a 404, anything else a 503."""
    try:
        await client.raise_event(instance_id, action, {"reason": reason})
    except BACKEND_ERRORS:
        raise
    except Exception as exc:
        status = await find_rollout(client, endpoint)
        if not is_running(status):
            raise RolloutNotFound(_not_running(endpoint, status)) from exc
        raise BackendUnavailable(f"the task hub did not take the {action} event; try again") from exc


def _not_running(endpoint: str, status: Any) -> str:
    if status is None:
        return f"endpoint {endpoint!r} has no rollout"
    record = _record(status)
    ended = record.get("outcome") or runtime_status_name(status)
    return f"endpoint {endpoint!r} has no running rollout; the last one ended: {ended}"


# --- request parsing -------------------------------------------------------------------------


def read_json(req: func.HttpRequest, limit: int, required: bool = True) -> Any:
    """The body as JSON. ``BodyTooLarge`` above ``limit`` bytes; ``InvalidRequest`` (field ``body``)
    when it is not JSON, or empty and ``required`` (an empty optional body gives None)."""
    body = req.get_body() or b""
    if len(body) > limit:
        raise BodyTooLarge(len(body), limit)
    if not body.strip():
        if required:
            raise InvalidRequest([FieldProblem("body", "is empty; send a JSON object")])
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:   # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidRequest([FieldProblem("body", f"is not valid JSON: {exc}")]) from None


def endpoint_param(req: func.HttpRequest) -> str:
    """The ``{endpoint}`` route parameter, checked as an Azure ML endpoint name."""
    endpoint = req.route_params.get("endpoint", "")
    if not is_valid_name(endpoint):
        raise InvalidRequest([FieldProblem("endpoint", NAME_RULE)])
    return endpoint


def action_param(req: func.HttpRequest) -> str:
    """The ``{action}`` route parameter: pause, resume, promote, abort or resolve (case-insensitive)."""
    action = req.route_params.get("action", "").lower()
    if action not in OPERATOR_ACTIONS:
        raise InvalidRequest([FieldProblem("action", f"must be one of {', '.join(OPERATOR_ACTIONS)}")])
    return action


def reason_param(body: Any, action: str) -> str:
    """The optional ``reason`` of a control body (default "<action> requested over HTTP")."""
    if body is None:
        return f"{action} requested over HTTP"
    if not isinstance(body, Mapping):
        raise InvalidRequest([FieldProblem("body", "must be a JSON object such as {\"reason\": \"...\"}")])
    problems = [FieldProblem(str(key), "is not a known field") for key in body if key != "reason"]
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_CHARS):
        problems.append(FieldProblem("reason", f"must be a non-empty string of at most {MAX_REASON_CHARS} characters"))
    if problems:
        raise InvalidRequest(problems)
    return reason.strip() if reason else f"{action} requested over HTTP"


def _window_param(req: func.HttpRequest) -> timedelta:
    text = req.params.get("window")
    if text is None:
        return DEFAULT_LIST_WINDOW
    try:
        return parse_duration(text, MAX_LIST_WINDOW)
    except ValueError as exc:
        raise InvalidRequest([FieldProblem("window", str(exc))]) from None


# --- responses -------------------------------------------------------------------------------


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """A JSON response (datetimes and other odd values as strings)."""
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, headers=headers or {},
                             mimetype="application/json")


def rollout_links(req: func.HttpRequest, endpoint: str) -> dict[str, Any]:
    """Absolute URLs of the endpoint's status and control actions, from the request's own URL
    (scheme, host and route prefix); never with its query string, so never with a key."""
    parts = urlsplit(req.url)
    at = parts.path.lower().find("/rollouts")
    prefix = parts.path[:at] if at >= 0 else "/api"
    host = parts.netloc.rsplit("@", 1)[-1]
    status = f"{parts.scheme}://{host}{prefix}/rollouts/{quote(endpoint)}"
    return {"status": status, "actions": {action: f"{status}/{action}" for action in OPERATOR_ACTIONS}}


def rollout_view(status: Any, links: Mapping[str, Any]) -> dict[str, Any]:
    """A rollout as the API shows it: its instance and runtime status, then its record
    (``RolloutRecord.to_dict``: the output once done, else the custom status), then its links."""
    return {
        "instance_id": status.instance_id,
        "runtime_status": runtime_status_name(status),
        "created_time": _iso(status.created_time),
        "last_updated_time": _iso(status.last_updated_time),
        "endpoint_name": _endpoint_of(status),   # a Pending instance has no record yet
        **_record(status),
        "links": dict(links),
    }


def _record(status: Any) -> dict[str, Any]:
    """The rollout record; an orchestration that failed or was terminated outside the record
    shows as phase ``done``, outcome ``failed``, with the runtime's message."""
    runtime = runtime_status_name(status)
    for candidate in (status.output, status.custom_status):
        if isinstance(candidate, dict) and candidate:
            record = dict(candidate)
            break
    else:
        record = {"phase": "pending" if runtime in RUNNING_STATUSES else "done"}
    if runtime in RUNNING_STATUSES or record.get("outcome"):
        return record
    detail = status.output if isinstance(status.output, str) else ""
    return {**record, "phase": "done", "outcome": "failed",
            "reason": f"orchestration {runtime}" + (f": {detail.strip().splitlines()[0]}" if detail.strip() else "")}


def _merge(running: list[Any], recent: list[Any], since: datetime) -> list[Any]:
    """Running and recent statuses, one per instance, rollouts only, running first then newest first."""
    by_id: dict[str, Any] = {}
    for status in [*recent, *running]:
        instance = status.instance_id or ""
        created = _utc(status.created_time)
        if instance.startswith(INSTANCE_PREFIX) and (is_running(status) or created is None or created >= since):
            by_id[instance] = status
    return sorted(by_id.values(), key=lambda s: (not is_running(s),
                                                 -(_utc(s.created_time) or since).timestamp()))


def _endpoint_of(status: Any) -> str:
    record = _record(status)
    return str(record.get("endpoint_name") or (status.instance_id or "")[len(INSTANCE_PREFIX):])


def _utc(value: Any) -> datetime | None:
    """A datetime as UTC-aware (naive ones are taken to be UTC); None for anything else."""
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None
