"""The new deployment's spec and the endpoint's, in Azure ML's managed online deployment YAML names.

``parse_deployment_spec`` and ``parse_endpoint_spec`` validate the request's ``deployment`` and
``endpoint`` objects and raise ``InvalidRequest`` naming every bad field (``deployment.model``,
``deployment.request_settings.request_timeout_ms``...). ``spec_differences`` compares a spec with
a deployment that already exists, so that a rollout uses it as is when it matches and refuses it
otherwise (a deployment holding traffic is never silently rebuilt).

Assets are references only: the app runs inside Azure Functions and cannot upload local files.
Accepted forms (what azure-ai-ml accepts and sends without uploading):

- ``azureml:<name>:<version>`` (a workspace asset; azure-ai-ml turns it into the workspace ARM id
  locally, so a wrong name fails at the service, not here);
- ``azureml://registries/<registry>/<models|environments|codes>/<name>/versions/<version>``;
- a full ARM id ``/subscriptions/.../workspaces/<ws>/<models|environments|codes>/<name>/versions/<v>``.

Anything that looks like a local path is refused with "register it first". An environment may
instead be ``{image, conda_file}``, where ``conda_file`` is the conda YAML's *content* (a string
as an object: ``{name, channels, dependencies}``), never a file name.

Defaults: ``instance_count`` 1, ``app_insights_enabled`` false, every other optional field unset
(Azure's own defaults then apply: request timeout 5000 ms, 1 concurrent request per instance,
probes as the service sets them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from rollout.errors import FieldProblem, InvalidRequest

MAX_INSTANCES_PER_DEPLOYMENT = 50
"""Azure ML's documented limit of instances per managed online deployment (how-to-manage-quotas)."""
MAX_REQUEST_TIMEOUT_MS = 180_000
"""The largest ``request_timeout_ms`` managed online endpoints allow."""
AUTH_MODES = ("key", "aml_token", "aad_token")

_KINDS = {"model": "models", "environment": "environments", "code": "codes"}
_NAME_PART = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}"
_SHORT = re.compile(rf"^azureml:(?P<name>{_NAME_PART})(?::(?P<version>{_NAME_PART})|@(?P<label>{_NAME_PART}))$")
_REGISTRY = re.compile(
    rf"^azureml://registries/(?P<registry>{_NAME_PART})/(?P<kind>models|environments|codes)/(?P<name>{_NAME_PART})"
    rf"/(?:versions/(?P<version>{_NAME_PART})|labels/(?P<label>{_NAME_PART}))$", re.IGNORECASE)
_ARM = re.compile(
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.machinelearningservices/workspaces/[^/]+"
    rf"/(?P<kind>models|environments|codes)/(?P<name>{_NAME_PART})/versions/(?P<version>{_NAME_PART})$", re.IGNORECASE)
_INSTANCE_TYPE = re.compile(r"^Standard_[A-Za-z0-9_]+$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOCAL_HINT = ("is a local path: the app runs in Azure Functions and cannot upload it. Register it first "
               "(az ml {kind} create ...) and give its asset id, such as azureml:{example}")
_EXAMPLES = {"model": "fraud-model:2", "environment": "sklearn-env:1", "code": "scoring-code:1"}


@dataclass(frozen=True)
class AssetRef:
    """An Azure ML asset reference, comparable however it was spelt.

    ``registry`` is None for a workspace asset; ``version`` or ``label`` is set. ``text`` is the
    reference as given (what is sent to azure-ai-ml).
    """

    kind: str
    name: str
    version: str | None
    label: str | None = None
    registry: str | None = None
    text: str = field(default="", compare=False)

    def key(self) -> tuple[str, str, str | None, str | None, str | None]:
        """What identifies the asset: names compared case-insensitively (ARM ids are)."""
        return (self.kind, self.name.lower(), self.version, self.label, (self.registry or "").lower() or None)


def parse_asset(value: Any, kind: str) -> AssetRef:
    """An asset reference of ``kind`` ("model", "environment" or "code"); ValueError naming the problem."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a {kind} asset id such as azureml:{_EXAMPLES[kind]}")
    text = value.strip()
    short = _SHORT.match(text)
    if short:
        return AssetRef(kind, short["name"], short["version"], short["label"], None, text)
    for pattern, registry in ((_REGISTRY, True), (_ARM, False)):
        found = pattern.match(text)
        if found:
            if found["kind"].lower() != _KINDS[kind]:
                raise ValueError(f"names a {found['kind'].lower()} asset, not a {kind}")
            label = found.groupdict().get("label")
            return AssetRef(kind, found["name"], found["version"], label,
                            found["registry"] if registry else None, text)
    if _looks_local(text):
        raise ValueError(_LOCAL_HINT.format(kind=kind, example=_EXAMPLES[kind]))
    raise ValueError(f"{text!r} is not a {kind} asset id: use azureml:<name>:<version>, "
                     f"azureml://registries/<registry>/{_KINDS[kind]}/<name>/versions/<version> or an ARM id")


def _looks_local(text: str) -> bool:
    """Anything not spelt as an Azure ML reference is taken for a local path (``./model``, ``model.pkl``, ``C:\\m``)."""
    return not text.lower().startswith("azureml:")


@dataclass(frozen=True)
class InlineEnvironment:
    """An environment given as a base image plus conda YAML content (azure-ai-ml registers it anonymously).

    ``conda_file`` is the conda file's content as an object (what azure-ai-ml takes and reads back).
    """

    image: str
    conda_file: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class CodeConfiguration:
    """The scoring code: a registered code asset and the scoring script's path inside it."""

    code: AssetRef
    scoring_script: str


@dataclass(frozen=True)
class RequestSettings:
    """Per-request limits; None leaves Azure's default (5000 ms, 1 request per instance, 500 ms queue wait)."""

    request_timeout_ms: int | None = None
    max_concurrent_requests_per_instance: int | None = None
    max_queue_wait_ms: int | None = None


@dataclass(frozen=True)
class Probe:
    """A liveness or readiness probe (seconds and counts); None leaves Azure's default."""

    initial_delay: int | None = None
    period: int | None = None
    timeout: int | None = None
    failure_threshold: int | None = None
    success_threshold: int | None = None


@dataclass(frozen=True)
class DeploymentSpec:
    """A managed online deployment to create (or to find unchanged)."""

    model: AssetRef
    environment: AssetRef | InlineEnvironment
    instance_type: str
    instance_count: int = 1
    code_configuration: CodeConfiguration | None = None
    request_settings: RequestSettings | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    environment_variables: Mapping[str, str] | None = None
    app_insights_enabled: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The wire form (YAML field names), accepted back by ``parse_deployment_spec``."""
        env = self.environment
        out: dict[str, Any] = {
            "model": self.model.text,
            "environment": env.text if isinstance(env, AssetRef) else _drop_none(
                {"image": env.image, "conda_file": None if env.conda_file is None else dict(env.conda_file)}),
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
            "app_insights_enabled": self.app_insights_enabled,
        }
        if self.code_configuration is not None:
            out["code_configuration"] = {"code": self.code_configuration.code.text,
                                         "scoring_script": self.code_configuration.scoring_script}
        for name in ("request_settings", "liveness_probe", "readiness_probe"):
            value = getattr(self, name)
            if value is not None:
                out[name] = _drop_none(vars(value))
        if self.environment_variables is not None:
            out["environment_variables"] = dict(self.environment_variables)
        return out


@dataclass(frozen=True)
class EndpointSpec:
    """How to create the endpoint when it does not exist: ``auth_mode`` (default "key") and a description."""

    auth_mode: str = "key"
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"auth_mode": self.auth_mode, "description": self.description}


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# --- parsing ---------------------------------------------------------------------------------


class _Problems:
    """Collects field problems under a prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.found: list[FieldProblem] = []

    def add(self, name: str, message: str) -> None:
        self.found.append(FieldProblem(self.prefix + name, message))

    def parse(self, data: Mapping[str, Any], name: str, parse: Callable[[Any], Any], required: bool = False) -> Any:
        """``parse(data[name])``, or None when absent (a problem when required) or bad."""
        if data.get(name) is None:
            if required:
                self.add(name, "is required")
            return None
        try:
            return parse(data[name])
        except ValueError as exc:
            self.add(name, str(exc))
            return None

    def unknown(self, data: Mapping[str, Any], known: tuple[str, ...], where: str = "") -> None:
        for key in data:
            if key not in known:
                self.add(where + str(key), "is not a known field")


def _object(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError("must be an object")
    return value


def _int(low: int, high: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be between {low} and {high}" if high is not None else f"must be at least {low}")
        return value
    return parse


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _instance_type(value: Any) -> str:
    if not isinstance(value, str) or not _INSTANCE_TYPE.match(value):
        raise ValueError("must be an Azure VM size such as Standard_DS3_v2")
    return value


def _scoring_script(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or value.startswith(("/", "\\")) or ".." in value.split("/"):
        raise ValueError("must be the scoring script's relative path inside the code asset, such as score.py")
    return value


def _environment_variables(value: Any) -> dict[str, str]:
    found = _object(value)
    for key, item in found.items():
        if not isinstance(key, str) or not _ENV_VAR.match(key):
            raise ValueError(f"{key!r} is not an environment variable name (letters, digits, _; not starting with a digit)")
        if not isinstance(item, str):
            raise ValueError(f"the value of {key!r} must be a string (quote it)")
    return dict(found)


_REQUEST_SETTINGS = ("request_timeout_ms", "max_concurrent_requests_per_instance", "max_queue_wait_ms")
_PROBE = ("initial_delay", "period", "timeout", "failure_threshold", "success_threshold")
_PROBE_LOW = {"initial_delay": 0, "period": 1, "timeout": 1, "failure_threshold": 1, "success_threshold": 1}
_DEPLOYMENT_FIELDS = ("model", "environment", "code_configuration", "instance_type", "instance_count",
                      "request_settings", "liveness_probe", "readiness_probe", "environment_variables",
                      "app_insights_enabled")


def _environment(problems: _Problems, value: Any) -> AssetRef | InlineEnvironment | None:
    if not isinstance(value, Mapping):
        ref: AssetRef | None = problems.parse({"environment": value}, "environment",
                                              lambda v: parse_asset(v, "environment"))
        return ref
    problems.unknown(value, ("image", "conda_file"), "environment.")
    image = value.get("image")
    if not isinstance(image, str) or not image.strip():
        problems.add("environment.image", "is required (a container image such as "
                                          "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest)")
        return None
    conda = value.get("conda_file")
    if conda is not None and not isinstance(conda, Mapping):
        problems.add("environment.conda_file", "must be the conda file's content as an object (name, channels, "
                                               "dependencies), not a file name: the app cannot read local files")
        return None
    return InlineEnvironment(image.strip(), None if conda is None else dict(conda))


def _code_configuration(problems: _Problems, value: Any) -> CodeConfiguration | None:
    if not isinstance(value, Mapping):
        problems.add("code_configuration", "must be an object with code and scoring_script")
        return None
    problems.unknown(value, ("code", "scoring_script"), "code_configuration.")
    outer = problems.prefix
    problems.prefix = outer + "code_configuration."
    code = problems.parse(value, "code", lambda v: parse_asset(v, "code"), required=True)
    script = problems.parse(value, "scoring_script", _scoring_script, required=True)
    problems.prefix = outer
    return None if code is None or script is None else CodeConfiguration(code, script)


def _settings(problems: _Problems, name: str, value: Any, fields: tuple[str, ...],
              parsers: Mapping[str, Callable[[Any], int]]) -> dict[str, int | None] | None:
    if not isinstance(value, Mapping):
        problems.add(name, "must be an object")
        return None
    problems.unknown(value, fields, name + ".")
    outer = problems.prefix
    problems.prefix = outer + name + "."
    parsed = {key: problems.parse(value, key, parsers[key]) for key in fields}
    problems.prefix = outer
    return parsed


def parse_deployment_spec(data: Any, prefix: str = "deployment.") -> DeploymentSpec:
    """Validate a ``deployment`` object; ``InvalidRequest`` names every bad field (under ``prefix``)."""
    if not isinstance(data, Mapping):
        raise InvalidRequest([FieldProblem(prefix.rstrip("."), "must be an object")])
    problems = _Problems(prefix)
    problems.unknown(data, _DEPLOYMENT_FIELDS)
    model = problems.parse(data, "model", lambda v: parse_asset(v, "model"), required=True)
    environment = None
    if data.get("environment") is None:
        problems.add("environment", "is required (an asset id, or image and conda_file)")
    else:
        environment = _environment(problems, data["environment"])
    instance_type = problems.parse(data, "instance_type", _instance_type, required=True)
    count = problems.parse(data, "instance_count", _int(1, MAX_INSTANCES_PER_DEPLOYMENT))
    code = None if data.get("code_configuration") is None else _code_configuration(problems, data["code_configuration"])
    request = None
    if data.get("request_settings") is not None:
        values = _settings(problems, "request_settings", data["request_settings"], _REQUEST_SETTINGS, {
            "request_timeout_ms": _int(1, MAX_REQUEST_TIMEOUT_MS),
            "max_concurrent_requests_per_instance": _int(1),
            "max_queue_wait_ms": _int(0),
        })
        request = None if values is None else RequestSettings(**values)
    probes: dict[str, Probe | None] = {}
    for name in ("liveness_probe", "readiness_probe"):
        probes[name] = None
        if data.get(name) is not None:
            values = _settings(problems, name, data[name], _PROBE, {k: _int(low) for k, low in _PROBE_LOW.items()})
            probes[name] = None if values is None else Probe(**values)
    variables = problems.parse(data, "environment_variables", _environment_variables)
    insights = problems.parse(data, "app_insights_enabled", _bool)
    if problems.found:
        raise InvalidRequest(problems.found)
    return DeploymentSpec(model, environment, instance_type, 1 if count is None else count, code, request,  # type: ignore[arg-type]
                          probes["liveness_probe"], probes["readiness_probe"], variables, bool(insights))


def parse_endpoint_spec(data: Any, prefix: str = "endpoint.") -> EndpointSpec:
    """Validate an ``endpoint`` object (``auth_mode``: key, aml_token or aad_token; ``description``)."""
    if not isinstance(data, Mapping):
        raise InvalidRequest([FieldProblem(prefix.rstrip("."), "must be an object")])
    problems = _Problems(prefix)
    problems.unknown(data, ("auth_mode", "description"))

    def auth(value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in AUTH_MODES:
            raise ValueError(f"must be one of {', '.join(AUTH_MODES)}")
        return value.lower()

    def description(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return value

    mode = problems.parse(data, "auth_mode", auth)
    text = problems.parse(data, "description", description)
    if problems.found:
        raise InvalidRequest(problems.found)
    return EndpointSpec(mode or "key", text)


# --- comparing with a deployment that exists -----------------------------------------------


@dataclass(frozen=True)
class ObservedDeployment:
    """An existing deployment as Azure describes it, for ``spec_differences``.

    ``environment`` is the environment's id, or, for an anonymous (inline) environment, its image
    and conda content as read back. Settings Azure filled in with its defaults are present here.
    """

    model: str
    environment: str | InlineEnvironment
    instance_type: str
    code: str | None = None
    scoring_script: str | None = None
    request_settings: RequestSettings | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    environment_variables: Mapping[str, str] = field(default_factory=dict)
    app_insights_enabled: bool = False


def _same_asset(ref: AssetRef, observed: str | None, kind: str) -> bool:
    if observed is None:
        return False
    try:
        other = parse_asset(observed, kind)
    except ValueError:
        return False
    return ref.key() == other.key()


def _unset_or_equal(wanted: object | None, seen: object | None) -> bool:
    """Fields the spec leaves out (None) are Azure's to default; the others must match, except where the
    read-back does not know the value (None: see ``AzureMLLifecycle.read_deployment``)."""
    if wanted is None:
        return True
    if seen is None:
        return False
    return all(value is None or getattr(seen, name) is None or getattr(seen, name) == value
               for name, value in vars(wanted).items())


def spec_differences(spec: DeploymentSpec, observed: ObservedDeployment) -> list[str]:
    """The spec's fields that differ from the existing deployment (empty: the same spec).

    ``instance_count`` is not compared: scaling and autoscale change it. Settings the spec leaves
    out are not compared either (Azure fills them in with its defaults).
    """
    found = []
    if not _same_asset(spec.model, observed.model, "model"):
        found.append(f"model: wanted {spec.model.text}, the deployment has {observed.model}")
    env = spec.environment
    if isinstance(env, AssetRef):
        same_env = isinstance(observed.environment, str) and _same_asset(env, observed.environment, "environment")
    else:
        seen = observed.environment
        same_env = isinstance(seen, InlineEnvironment) and seen.image == env.image and (
            dict(seen.conda_file or {}) == dict(env.conda_file or {}))
    if not same_env:
        found.append("environment: differs from the deployment's")
    if spec.instance_type.lower() != observed.instance_type.lower():
        found.append(f"instance_type: wanted {spec.instance_type}, the deployment has {observed.instance_type}")
    code = spec.code_configuration
    if code is not None and not (_same_asset(code.code, observed.code, "code")
                                 and code.scoring_script == observed.scoring_script):
        found.append("code_configuration: differs from the deployment's")
    for name in ("request_settings", "liveness_probe", "readiness_probe"):
        if not _unset_or_equal(getattr(spec, name), getattr(observed, name)):
            found.append(f"{name}: differs from the deployment's")
    if spec.environment_variables is not None and dict(spec.environment_variables) != dict(observed.environment_variables):
        found.append("environment_variables: differ from the deployment's")
    if spec.app_insights_enabled != observed.app_insights_enabled:
        found.append(f"app_insights_enabled: wanted {str(spec.app_insights_enabled).lower()}, "
                     f"the deployment has {str(observed.app_insights_enabled).lower()}")
    return found
