"""Azure's REST shapes for the deployment lifecycle, to and from the simulated world's own types.

Used by ``tests/azure/scenario_lifecycle.py``: the spellings the SDK sends (``authMode``,
``containerType``), a deployment PUT's body as the ``DeploymentSpec`` the world creates, and
the world's errors as Azure's error bodies (``OutOfQuota``: ``BadRequest`` with the quota text in
``details[0]``, code ``InferencingClientCreateDeploymentFailed``).
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from rollout.deployment_spec import (
    AssetRef,
    CodeConfiguration,
    DeploymentSpec,
    InlineEnvironment,
    Probe,
    RequestSettings,
    parse_asset,
)
from rollout.errors import AzureError, ResourceNotFound, UpdateConflict
from tests.azure.fake_azure import Reply, arm_error

AUTH_MODES = {"key": "key", "amltoken": "aml_token", "aadtoken": "aad_token"}
"""REST ``authMode`` (lower-cased) -> the SDK's and the spec's spelling."""
CONTAINER_TYPES = {"inferenceserver": "inference-server", "storageinitializer": "storage-initializer"}
"""REST ``containerType`` (lower-cased) -> the spelling ``get_logs`` takes."""
_CODE = re.compile(r"^(?P<code>[A-Za-z]+): (?P<rest>.*)$", re.DOTALL)
_DETAIL = re.compile(r"^(?P<message>.*?) \((?P<code>[A-Za-z]+): (?P<detail>.*)\)$", re.DOTALL)


def lifecycle_error(code: str, message: str) -> dict[str, Any]:
    """Azure's error object for the world's ``(code, message)``: a trailing ``(Code: detail)`` (how the
    world writes OutOfQuota's ``details[0]``) becomes ``details``."""
    inner = _DETAIL.match(message)
    if inner is None:
        return {"code": code, "message": message}
    return {"code": code, "message": inner["message"],
            "details": [{"code": inner["code"], "message": inner["detail"]}]}


def conflict_reply(error: UpdateConflict) -> Reply:
    """Azure's 409 for a write while another operation on the resource runs: ``Conflict``/"Conflict" with
    ``details[0]`` ``OperationDuplicationConflict`` (as azure-core rendered a real one in Azure/carnegie-mop
    ``doc/troubleshooting/model_wrapper/AmlEndpoint.md``), its text the world's."""
    headers = {} if not error.retry_after else {"Retry-After": str(math.ceil(error.retry_after))}
    return 409, {"error": {"code": "Conflict", "message": "Conflict", "details": [
        {"code": "OperationDuplicationConflict", "message": str(error)}]}}, headers


def world_error_reply(error: AzureError) -> Reply:
    """The HTTP answer for what the world's lifecycle raised; ``ServiceError`` messages read ``Code: text``."""
    if isinstance(error, ResourceNotFound):
        return 404, arm_error("ResourceNotFound", str(error)), {}
    if isinstance(error, UpdateConflict):
        return conflict_reply(error)
    found = _CODE.match(str(error))
    code, text = (found["code"], found["rest"]) if found else ("BadRequest", str(error))
    return 400, {"error": lifecycle_error(code, text)}, {}


def _seconds(text: Any) -> int | None:
    """``PT10S`` -> 10 (the SDK sends probe times as whole seconds)."""
    if text is None:
        return None
    match = re.fullmatch(r"PT(\d+(?:\.\d+)?)S", str(text))
    if match is None:
        raise ValueError(f"{text!r} is not a duration in seconds")
    return int(float(match[1]))


def _millis(text: Any) -> int | None:
    return None if text is None else int(round(float(str(text)[2:-1]) * 1000))


def _probe(body: Any) -> Probe | None:
    if not isinstance(body, dict):
        return None
    return Probe(_seconds(body.get("initialDelay")), _seconds(body.get("period")), _seconds(body.get("timeout")),
                 body.get("failureThreshold"), body.get("successThreshold"))



def deployment_spec(body: Any, environments: dict[str, dict[str, Any]]) -> DeploymentSpec:
    """The ``DeploymentSpec`` a deployment create PUT's body describes (KeyError/ValueError when it is not one);
    ``environments`` (path -> body) holds the anonymous environment versions the SDK registered."""
    props = body["properties"]
    if props.get("endpointComputeType") != "Managed":
        raise ValueError("endpointComputeType must be Managed")
    if not isinstance(body["sku"]["capacity"], int) or "location" not in body:
        raise ValueError("sku.capacity (an integer) and location are required")
    environment: AssetRef | InlineEnvironment = parse_asset(props["environmentId"], "environment")
    registered = environments.get(str(props["environmentId"]).lower())
    if registered is not None and registered["properties"].get("isAnonymous"):
        conda = registered["properties"].get("condaFile")
        environment = InlineEnvironment(str(registered["properties"]["image"]),
                                        None if conda is None else yaml.safe_load(conda))
    code = props.get("codeConfiguration")
    rs = props.get("requestSettings")
    return DeploymentSpec(
        model=parse_asset(props["model"], "model"), environment=environment, instance_type=props["instanceType"],
        instance_count=body["sku"]["capacity"],
        code_configuration=None if code is None else CodeConfiguration(parse_asset(code["codeId"], "code"),
                                                                       code["scoringScript"]),
        request_settings=None if rs is None else RequestSettings(
            _millis(rs.get("requestTimeout")), rs.get("maxConcurrentRequestsPerInstance"),
            _millis(rs.get("maxQueueWait"))),
        liveness_probe=_probe(props.get("livenessProbe")), readiness_probe=_probe(props.get("readinessProbe")),
        environment_variables=props.get("environmentVariables"),
        app_insights_enabled=bool(props.get("appInsightsEnabled")))

