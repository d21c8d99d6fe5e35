"""Secure Webhook (Entra ID) on the alert route: the token checks, over real HTTP and real JWKS fetches.

Tokens are signed with an RSA key made here; its public half is published as a JWKS document on
a loopback HTTP server, fetched by the production ``JwksSigningKeys`` (PyJWT's ``PyJWKClient``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from api.entra import AZURE_MONITOR_APP_ID, SECURE_WEBHOOK_ROLE, EntraValidator, JwksSigningKeys, KeysUnavailable, validator_for
from emulator.scenario import parse_scenario
from emulator.serve import LocalServer
from rollout.model import WorkspaceRef
from settings import Settings, load_settings
from tests.http.helpers import ENDPOINT, FIXTURES, KEY, OLD, SCENARIO, WORKSPACE, Client, alert
from tests.infra.templates import ROOT

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
APP_ID = "6f1c0d7e-0000-4000-8000-00000000a1e7"
APP_URI = "api://aml-rollout-alerts"
ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"
FIRED = "ml_endpoint_metric_alert_deployment_dimension_fired.SYNTHETIC.json"

SIGNING = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Jwks:
    """A loopback server publishing a JWKS document; counts the fetches."""

    def __init__(self) -> None:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(SIGNING.public_key()))
        self.document: Any = {"keys": [{**public, "kid": "key-1", "use": "sig", "alg": "RS256"}]}
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                owner.fetches += 1
                body = json.dumps(owner.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/{TENANT}/discovery/v2.0/keys"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    published = Jwks()
    yield published
    published.close()


@pytest.fixture
def validator(jwks: Jwks) -> EntraValidator:
    return EntraValidator(TENANT, (APP_ID, APP_URI), ISSUER, JwksSigningKeys(jwks.url))


def token(key: Any = SIGNING, kid: str = "key-1", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": APP_ID, "azp": AZURE_MONITOR_APP_ID, "roles": [SECURE_WEBHOOK_ROLE],
            "iat": now, "nbf": now, "exp": now + 3600, "tid": TENANT, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="RS256", headers={"kid": kid})


def test_a_token_from_azure_monitor_for_this_app_passes(validator: EntraValidator) -> None:
    assert validator.check(f"Bearer {token()}") is None
    assert validator.check(f"bearer {token(aud=APP_URI)}") is None
    assert validator.check(f"Bearer {token(azp=None, appid=AZURE_MONITOR_APP_ID)}") is None


@pytest.mark.parametrize(("header", "why"), [
    pytest.param(None, "no bearer token", id="no-header"),
    pytest.param("Basic dXNlcjpwYXNz", "no bearer token", id="not-bearer"),
    pytest.param("Bearer ", "no bearer token", id="empty-token"),
    pytest.param("Bearer not.a.jwt", "no signing key", id="garbage"),
    pytest.param(lambda: f"Bearer {token(aud='api://someone-else')}", "InvalidAudienceError", id="other-audience"),
    pytest.param(lambda: f"Bearer {token(iss='https://sts.windows.net/' + TENANT + '/')}", "InvalidIssuerError",
                 id="v1-issuer"),
    pytest.param(lambda: f"Bearer {token(iss='https://login.microsoftonline.com/other-tenant/v2.0')}",
                 "InvalidIssuerError", id="other-tenant"),
    pytest.param(lambda: f"Bearer {token(exp=int(time.time()) - 120)}", "ExpiredSignatureError", id="expired"),
    pytest.param(lambda: f"Bearer {token(nbf=int(time.time()) + 600)}", "ImmatureSignatureError", id="not-yet-valid"),
    pytest.param(lambda: f"Bearer {token(exp=None)}", "MissingRequiredClaimError", id="no-expiry"),
    pytest.param(lambda: f"Bearer {token(key=OTHER)}", "InvalidSignatureError", id="signed-by-another-key"),
    pytest.param(lambda: f"Bearer {token(kid='key-2')}", "no signing key", id="unknown-kid"),
    pytest.param(lambda: f"Bearer {token(azp='11111111-2222-3333-4444-555555555555')}", "not Azure Monitor",
                 id="other-caller"),
    pytest.param(lambda: f"Bearer {token(roles=['SomethingElse'])}", SECURE_WEBHOOK_ROLE, id="no-role"),
    pytest.param(lambda: f"Bearer {token(roles=None)}", SECURE_WEBHOOK_ROLE, id="no-roles-claim"),
])
def test_anything_else_is_refused_saying_why(validator: EntraValidator, header: Any, why: str) -> None:
    reason = validator.check(header() if callable(header) else header)
    assert reason is not None and why in reason


def test_an_unsigned_token_is_refused(validator: EntraValidator) -> None:
    unsigned = jwt.encode({"iss": ISSUER, "aud": APP_ID, "exp": int(time.time()) + 60}, None, algorithm="none",
                          headers={"kid": "key-1"})
    reason = validator.check(f"Bearer {unsigned}")
    assert reason is not None and "InvalidAlgorithmError" in reason


def test_signing_keys_are_fetched_once_and_cached(jwks: Jwks, validator: EntraValidator) -> None:
    for _ in range(3):
        assert validator.check(f"Bearer {token()}") is None
    assert jwks.fetches == 1


def test_unreachable_signing_keys_are_not_a_refusal(jwks: Jwks) -> None:
    jwks.close()
    with pytest.raises(KeysUnavailable):
        EntraValidator(TENANT, (APP_ID,), ISSUER, JwksSigningKeys(jwks.url)).check(f"Bearer {token()}")


def test_settings_turn_validation_on_with_tenant_and_audience() -> None:
    settings = load_settings({"AML_ROLLOUT_ALERT_AUTH_TENANT_ID": f" {TENANT} ",
                              "AML_ROLLOUT_ALERT_AUTH_AUDIENCE": f"{APP_ID}, {APP_URI},"})
    assert settings.alert_auth_tenant_id == TENANT and settings.alert_auth_audiences == (APP_ID, APP_URI)
    assert load_settings({}).alert_auth_audiences == () and load_settings({}).alert_auth_tenant_id is None


@pytest.mark.parametrize("environment, issuer, jwks_url", [
    pytest.param({}, None, None, id="off-without-settings"),
    pytest.param({"AML_ROLLOUT_ALERT_AUTH_TENANT_ID": TENANT}, None, None, id="off-without-audience"),
    pytest.param({"AML_ROLLOUT_ALERT_AUTH_TENANT_ID": TENANT, "AML_ROLLOUT_ALERT_AUTH_AUDIENCE": APP_ID}, ISSUER,
                 f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys", id="public-cloud"),
    pytest.param({"AML_ROLLOUT_ALERT_AUTH_TENANT_ID": TENANT, "AML_ROLLOUT_ALERT_AUTH_AUDIENCE": APP_ID,
                  "AML_ROLLOUT_CLOUD": "AzureUSGovernment"}, f"https://login.microsoftonline.us/{TENANT}/v2.0",
                 f"https://login.microsoftonline.us/{TENANT}/discovery/v2.0/keys", id="us-government"),
])
def test_the_default_validator_is_built_from_the_settings_once(environment: dict[str, str], issuer: str | None,
                                                               jwks_url: str | None) -> None:
    settings = load_settings(environment)
    built = validator_for(settings)
    if issuer is None:
        assert built is None
        return
    assert built is not None and built.issuer == issuer and built.audiences == (APP_ID,)
    assert isinstance(built.keys, JwksSigningKeys) and built.keys.url == jwks_url
    assert validator_for(load_settings(environment)) is built


# --- over HTTP ----------------------------------------------------------------------------------


@pytest.fixture
def server(validator: EntraValidator) -> Iterator[LocalServer]:
    settings = Settings(workspace=WorkspaceRef.from_dict(WORKSPACE), alert_auth_tenant_id=TENANT,
                        alert_auth_audiences=(APP_ID, APP_URI))
    # the validator the settings ask for, with the loopback JWKS instead of Entra ID's keys
    local = LocalServer(parse_scenario(SCENARIO, FIXTURES, require_rollout=False), key=KEY, settings=settings,
                        alert_validator=lambda asked: validator if asked.alert_auth_tenant_id else None).start()
    yield local
    local.stop()


def _start(api: Client) -> None:
    body = {"endpoint_name": ENDPOINT, "new_deployment": "green", "traffic_steps": [10, 100],
            "observation_window": "PT30S", "check_interval": "PT1S", "min_requests": 1}
    assert api.post("/api/rollouts", body).status == 202
    api.wait_until_shifting()


def test_alert_without_a_token_is_401_and_changes_nothing(server: LocalServer) -> None:
    api = Client(server.url)
    _start(api)
    refused = api.post("/api/alerts", alert(FIRED))
    assert refused.status == 401 and refused.header("WWW-Authenticate") == "Bearer"
    assert refused.json()["type"].endswith("unauthenticated")
    assert api.status()["phase"] != "done" and server.endpoint.traffic[OLD] == 90


def test_alert_with_azure_monitors_token_rolls_back(server: LocalServer) -> None:
    api = Client(server.url)
    _start(api)
    handed = api.post("/api/alerts", alert(FIRED), headers={"Authorization": f"Bearer {token()}"})
    assert handed.status == 202, handed.body
    assert api.wait_until_done()["outcome"] == "rolled_back"


def test_other_routes_ignore_tokens_and_still_need_the_key(server: LocalServer) -> None:
    api = Client(server.url)
    assert api.get("/api/rollouts", key=None, headers={"Authorization": f"Bearer {token()}"}).status == 401
    assert api.get("/api/rollouts").status == 200


def test_with_entra_settings_only_the_alert_route_is_registered_without_a_key() -> None:
    probe = ("import sys\nfrom function_app import app\nfrom emulator.worker import registered_functions\n"
             "import json\nlevels = {f.get_function_name(): str(b.auth_level) for f in registered_functions(app) "
             "for b in f.get_bindings() if b.type == 'httpTrigger'}\n"
             "print(json.dumps({**levels, 'jwt imported': str('jwt' in sys.modules)}))")
    levels = {}
    for configured in (False, True):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AML_ROLLOUT_ALERT_AUTH")}
        if configured:
            env.update(AML_ROLLOUT_ALERT_AUTH_TENANT_ID=TENANT, AML_ROLLOUT_ALERT_AUTH_AUDIENCE=APP_ID)
        done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        levels[configured] = json.loads(done.stdout.strip().splitlines()[-1])
    assert levels[False].pop("jwt imported") == "False"          # import function_app does not pay for PyJWT
    assert levels[True].pop("jwt imported") == "False"           # nor with Entra on, until a token arrives
    assert set(levels[False].values()) == {"FUNCTION"}
    assert levels[True].pop("alert_webhook") == "ANONYMOUS"
    assert set(levels[True].values()) == {"FUNCTION"}
