"""A small client of the app's HTTP API (standard library ``urllib``: the CLI needs nothing more
than JSON over HTTPS), turning every failure into a ``CliError`` sentence.

The function key goes in the ``x-functions-key`` header, never in the URL, so it never shows in
a proxy's log or an error message.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from cli.errors import EXIT_UNREACHABLE, EXIT_USAGE, CliError

DEFAULT_TIMEOUT = 30.0
KEY_HINT = ("pass the app's function key with --key or AML_ROLLOUT_KEY (`./dev serve` prints it; for Azure: "
            "az functionapp keys list -g GROUP -n APP --query functionKeys.default -o tsv)")


@dataclass(frozen=True)
class ApiClient:
    """The API at ``url`` (the app's base URL, e.g. ``http://127.0.0.1:7071``; a trailing ``/api`` is
    accepted) with function key ``key`` (None: send none)."""

    url: str
    key: str | None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def api(self) -> str:
        """The API root, ``<url>/api``."""
        base = self.url.rstrip("/")
        return base if base.endswith("/api") else base + "/api"

    # --- the routes --------------------------------------------------------------------------

    def start(self, request: Any) -> dict[str, Any]:
        """POST /api/rollouts: start a rollout; the 202 body."""
        return self.call("POST", "/rollouts", request)

    def get(self, endpoint: str) -> dict[str, Any]:
        """GET /api/rollouts/{endpoint}: the endpoint's rollout record."""
        return self.call("GET", f"/rollouts/{quote(endpoint, safe='')}")

    def list(self, window: str | None = None) -> dict[str, Any]:
        """GET /api/rollouts: running rollouts and recent ones."""
        return self.call("GET", "/rollouts" + (f"?window={quote(window)}" if window else ""))

    def control(self, endpoint: str, action: str, reason: str | None) -> dict[str, Any]:
        """POST /api/rollouts/{endpoint}/{action} with an optional reason."""
        body = {"reason": reason} if reason else None
        return self.call("POST", f"/rollouts/{quote(endpoint, safe='')}/{quote(action, safe='')}", body)

    def page(self, endpoint: str) -> str:
        """GET /api/rollouts/{endpoint}/view: the rollout's HTML page."""
        return self.call_text("GET", f"/rollouts/{quote(endpoint, safe='')}/view")

    # --- plumbing ----------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """Send a JSON request; the JSON answer, or ``CliError`` describing the failure."""
        text = self.call_text(method, path, body, accept="application/json")
        try:
            return json.loads(text) if text.strip() else None
        except ValueError:
            raise CliError(f"{self.api}{path} did not answer JSON: {text[:80]!r}",
                           "is --url the app's base URL (such as http://127.0.0.1:7071)?", EXIT_UNREACHABLE) from None

    def call_text(self, method: str, path: str, body: Any = None, accept: str = "text/html") -> str:
        """Send a request; the answer's text, or ``CliError`` describing the failure."""
        url = self.api + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": accept, **({"Content-Type": "application/json"} if data is not None else {}),
                   **({"x-functions-key": self.key} if self.key else {})}
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:   # noqa: S310 (http/https only)
                return reply.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            raise http_error(exc.code, exc.read().decode("utf-8", "replace"), method, path,
                             exc.headers.get("Retry-After")) from None
        except (urllib.error.URLError, OSError) as exc:
            raise unreachable(self.url, exc) from None


def check_url(url: str | None) -> str:
    """The base URL, or ``CliError`` when it is missing or not http(s)."""
    if not url:
        raise CliError("no app URL given", "pass --url or set AML_ROLLOUT_URL (`./dev serve` listens on "
                       "http://127.0.0.1:7071; in Azure: https://APP.azurewebsites.net)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"{url!r} is not an http(s) URL", "pass the app's base URL, such as http://127.0.0.1:7071")
    if parts.query:
        raise CliError("the URL has a query string", "pass the function key with --key or AML_ROLLOUT_KEY, "
                       "not in the URL")
    return url


def unreachable(url: str, exc: BaseException) -> CliError:
    """The error for a request that got no HTTP answer."""
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, (TimeoutError, socket.timeout)):
        text = "did not answer in time"
    elif isinstance(reason, ConnectionRefusedError):
        text = "refused the connection"
    elif isinstance(reason, socket.gaierror):
        text = "has a host name that does not resolve"
    else:
        text = f"cannot be reached ({getattr(reason, 'strerror', None) or reason})"
    return CliError(f"{url} {text}", "is the app running at that URL? `./dev serve` prints where it listens; "
                    "set --url or AML_ROLLOUT_URL", EXIT_UNREACHABLE)


def http_error(status: int, text: str, method: str, path: str, retry_after: str | None = None) -> CliError:
    """The error for an HTTP error answer (a problem+json body when the app sent one)."""
    try:
        problem = json.loads(text)
    except ValueError:
        problem = None
    problem = problem if isinstance(problem, dict) else {}
    detail = str(problem.get("detail") or problem.get("title") or "").strip()
    if status in (401, 403):
        return CliError(f"the app refused the function key ({status})", KEY_HINT, EXIT_UNREACHABLE, status)
    if status == 400:
        fields = [f"{e.get('field')}: {e.get('message')}" for e in problem.get("errors") or [] if isinstance(e, dict)]
        what = "; ".join(fields) or detail or "bad request"
        return CliError(f"the app refused the request: {what}", "fix the field(s) named and try again",
                        EXIT_USAGE, status)
    if status == 404:
        if not problem:
            return CliError(f"the app has no route {method} {path.split('?')[0]} (404)",
                            "is --url the app's base URL, and is the app up to date?", EXIT_USAGE, status)
        return CliError(detail or "no such rollout", "`aml-rollout list` shows the rollouts the app knows",
                        EXIT_USAGE, status)
    if status == 409:
        running = problem.get("instance_id")
        hint = (f"`aml-rollout watch {running.removeprefix('rollout-')}` follows it; `aml-rollout abort ...` ends it"
                if running else "`aml-rollout status ENDPOINT` shows where the rollout stands")
        return CliError(detail or "the request conflicts with the rollout's state", hint, EXIT_USAGE, status)
    if status == 413:
        return CliError(detail or "the request is too large", "send a smaller request", EXIT_USAGE, status)
    after = f" (the app asks to retry after {retry_after} s)" if retry_after else ""
    return CliError(f"the app failed to answer {method} {path.split('?')[0]}: {status} {detail}".rstrip() + after,
                    "try again; the app's logs say more", EXIT_UNREACHABLE, status)
