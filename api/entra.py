"""Secure Webhook (Entra ID) for ``POST /api/alerts``: validate the token Azure Monitor sends.

An action group webhook with ``useAadAuth`` (a "Secure Webhook") calls the alert route with
``Authorization: Bearer <token>``, a token Entra ID issued to Azure Monitor's "AZNS AAD Webhook"
application for *your* app registration, carrying that registration's app role
``ActionGroupsSecureWebhook``. This module is the app-level check of that token (App Service
Authentication is not used: see docs/azure.md, "Alert webhook authentication").

It is on when the settings name a tenant and at least one audience
(``AML_ROLLOUT_ALERT_AUTH_TENANT_ID``, ``AML_ROLLOUT_ALERT_AUTH_AUDIENCE``). Then the alert route
is registered with auth level ANONYMOUS (Azure Monitor sends no function key; ``alert_auth_level``)
and every request must carry a token that:

- is a JWT signed with RS256 by one of the tenant's current signing keys, fetched from
  ``https://<authority>/<tenant>/discovery/v2.0/keys`` (cached; refetched for an unknown ``kid``);
- is a v2.0 token of that tenant: ``iss`` is ``https://<authority>/<tenant>/v2.0`` (set
  ``requestedAccessTokenVersion: 2`` on the app registration);
- has an ``aud`` among the configured audiences (the application id and/or its id URI);
- is within ``nbf``/``exp`` (60 s leeway for clock skew);
- names Azure Monitor's application (``azp``, or ``appid``) ``461e8683-5575-4561-ac7f-899cc907d62a``;
- holds the app role ``ActionGroupsSecureWebhook`` in ``roles``.

Anything else is answered 401 (``WWW-Authenticate: Bearer``) before the body is read; the reason
is logged, never the token. When the signing keys cannot be fetched the answer is 503 with
``Retry-After``, which Azure Monitor retries. With the setting off, nothing changes: the route
keeps auth level FUNCTION and this module is not consulted. PyJWT (and ``cryptography``) are
imported only once validation is on, so ``import function_app`` does not pay for them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import azure.functions as func

from api.problems import DEFAULT_RETRY_AFTER, problem
from settings import Settings, load_settings

log = logging.getLogger("aml_rollout.entra")

# Azure Monitor's multi-tenant application that calls Secure Webhooks ("AZNS AAD Webhook"), and
# the app role it must hold on your registration (Microsoft's "Action groups" documentation).
AZURE_MONITOR_APP_ID = "461e8683-5575-4561-ac7f-899cc907d62a"
SECURE_WEBHOOK_ROLE = "ActionGroupsSecureWebhook"
LEEWAY_SECONDS = 60
ALGORITHMS = ["RS256"]

# Sign-in authority per cloud (the names AML_ROLLOUT_CLOUD takes); other clouds are not supported
# for Secure Webhooks here.
AUTHORITY_HOSTS = {
    "azurecloud": "login.microsoftonline.com",
    "azureusgovernment": "login.microsoftonline.us",
    "azurechinacloud": "login.chinacloudapi.cn",
}


class SigningKeys(Protocol):
    """Where the public key that signed a token comes from."""

    def key_for(self, token: str) -> Any:
        """The key that verifies ``token`` (by its ``kid``); raises ``jwt.PyJWKClientError`` when unknown."""
        ...


class JwksSigningKeys:
    """The tenant's published signing keys (PyJWT's ``PyJWKClient``: cached, refetched for an unknown kid)."""

    def __init__(self, jwks_url: str) -> None:
        import jwt

        self.url = jwks_url
        self._client = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=3600, timeout=10)

    def key_for(self, token: str) -> Any:
        return self._client.get_signing_key_from_jwt(token).key


class KeysUnavailable(Exception):
    """The signing keys could not be fetched (network, or the document is not a key set)."""


@dataclass(frozen=True)
class EntraValidator:
    """Checks Secure Webhook tokens for one tenant and a set of audiences."""

    tenant_id: str
    audiences: tuple[str, ...]
    issuer: str
    keys: SigningKeys

    def check(self, authorization: str | None) -> str | None:
        """None when ``authorization`` carries a valid token, else why not (no secret in it).
        Raises ``KeysUnavailable`` when the signing keys cannot be had."""
        import jwt

        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return "no bearer token"
        try:
            key = self.keys.key_for(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise KeysUnavailable(str(exc)) from None
        except (jwt.PyJWKClientError, jwt.InvalidTokenError) as exc:
            return f"no signing key for the token: {exc}"
        try:
            claims = jwt.decode(token, key, algorithms=ALGORITHMS, audience=list(self.audiences), issuer=self.issuer,
                                leeway=LEEWAY_SECONDS, options={"require": ["exp", "iss", "aud"]})
        except jwt.InvalidTokenError as exc:
            return f"invalid token: {type(exc).__name__}: {exc}"
        caller = claims.get("azp") or claims.get("appid")
        if caller != AZURE_MONITOR_APP_ID:
            return f"the token was issued to application {caller!r}, not Azure Monitor's"
        roles = claims.get("roles")
        if not isinstance(roles, list) or SECURE_WEBHOOK_ROLE not in roles:
            return f"the token lacks the app role {SECURE_WEBHOOK_ROLE}"
        return None


AlertValidator = Callable[[Settings], "EntraValidator | None"]
"""What checks the alert route's tokens, given the app's settings (None: validation off).
``bootstrap.build_app`` takes one (default ``validator_for``); the emulator's tests pass their own,
whose signing keys are not Entra ID's."""

_lock = threading.Lock()
_validators: dict[tuple[str, tuple[str, ...], str], EntraValidator] = {}


def validator_for(settings: Settings) -> EntraValidator | None:
    """The validator the settings ask for (cached per tenant, audiences and cloud, with the
    tenant's published signing keys), or None when off."""
    if not settings.alert_auth_tenant_id or not settings.alert_auth_audiences:
        return None
    return _validator(settings.alert_auth_tenant_id, settings.alert_auth_audiences, settings.cloud)


def _validator(tenant: str, audiences: tuple[str, ...], cloud: str) -> EntraValidator:
    host = AUTHORITY_HOSTS.get(cloud.lower())
    if host is None:
        raise ValueError(f"Secure Webhook validation supports the clouds {sorted(AUTHORITY_HOSTS)}, not {cloud!r}")
    with _lock:
        found = _validators.get((tenant, audiences, cloud))
        if found is None:
            keys = JwksSigningKeys(f"https://{host}/{tenant}/discovery/v2.0/keys")
            found = _validators[(tenant, audiences, cloud)] = EntraValidator(
                tenant, audiences, f"https://{host}/{tenant}/v2.0", keys)
        return found


async def refuse_unless_entra(req: func.HttpRequest, validator: EntraValidator | None) -> func.HttpResponse | None:
    """None when Secure Webhook validation is off (``validator`` None) or the request's token passes;
    else the 401 (or 503 when the signing keys cannot be fetched) to answer."""
    if validator is None:
        return None
    try:
        why = await asyncio.to_thread(validator.check, req.headers.get("Authorization"))
    except KeysUnavailable as exc:
        log.warning("alert refused for now: the Entra ID signing keys cannot be fetched: %s", exc)
        return problem(503, "keys-unavailable", "Signing keys unavailable",
                       "the Entra ID signing keys cannot be fetched now; try again",
                       {"Retry-After": str(DEFAULT_RETRY_AFTER)})
    if why is None:
        return None
    log.warning("alert refused: %s", why)
    return problem(401, "unauthenticated", "Unauthenticated",
                   "this route needs an Entra ID token from an Azure Monitor Secure Webhook",
                   {"WWW-Authenticate": "Bearer"})


def alert_auth_level(settings: Settings | None = None) -> func.AuthLevel:
    """ANONYMOUS when Secure Webhook validation is configured (Azure Monitor sends a token, no
    key), FUNCTION otherwise, and when the settings cannot be read (the route then answers with
    the settings error, as every route does)."""
    try:
        settings = settings or load_settings()
    except ValueError:
        return func.AuthLevel.FUNCTION
    configured = bool(settings.alert_auth_tenant_id and settings.alert_auth_audiences)
    return func.AuthLevel.ANONYMOUS if configured else func.AuthLevel.FUNCTION
