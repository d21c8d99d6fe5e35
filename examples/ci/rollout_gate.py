#!/usr/bin/env python3
"""CI gate: start a rollout on a deployed aml-rollout app, wait for it to end, pass only if promoted.

    python examples/ci/rollout_gate.py --app-url https://func-....azurewebsites.net \\
        --request rollout.json [--timeout PT2H] [--poll-seconds 30]

The function key is read from the environment variable named by ``--key-env`` (default
``AML_ROLLOUT_FUNCTION_KEY``), never from the command line, and never printed. The request is
the rollout request JSON (README "The rollout request"); ``--set field=value`` overrides or adds
top-level fields (``--set new_deployment=green-42``), values parsed as JSON when they are JSON.

Exit status: 0 the rollout ended ``promoted``; 1 it ended otherwise (rolled back, aborted,
failed) or the app refused it (400, 409: another rollout runs on the endpoint); 2 bad arguments;
3 the app could not be reached or answered nonsense, or the timeout passed (the rollout goes on:
the message says where to watch it). Standard library only, so any runner with Python 3.9+ can
run it without installing anything.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from typing import Any

PROMOTED = "promoted"
UNREACHABLE = 3


class GateError(Exception):
    """The app could not be asked, or answered something this script cannot use."""


def parse_duration(text: str) -> float:
    """Seconds in an ISO 8601 duration of hours, minutes and seconds (``PT2H``, ``PT90S``)."""
    match = re.fullmatch(r"PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?", text.strip().upper())
    if not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as PT2H or PT90S")
    hours, minutes, seconds = (float(group or 0) for group in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def call(method: str, url: str, key: str, body: Any = None, timeout: float = 60.0) -> tuple[int, Any]:
    """One request with the key in the x-functions-key header; (status, JSON body or None)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"x-functions-key": key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (https or loopback URL)
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise GateError(f"{method} {url.split('?')[0]}: {exc}") from None
    try:
        return status, json.loads(raw) if raw.strip() else None
    except ValueError:
        raise GateError(f"{method} {url}: answered {status} with a body that is not JSON") from None


def problem_text(body: Any) -> str:
    """The readable part of a problem+json answer."""
    if not isinstance(body, dict):
        return str(body)
    errors = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in body.get("errors") or [] if isinstance(e, dict))
    return " ".join(filter(None, [body.get("title"), body.get("detail"), errors]))


def start(app_url: str, key: str, request: dict[str, Any]) -> str:
    """POST /api/rollouts; the status URL of the started rollout. Exits 1 when the app refuses it."""
    status, body = call("POST", f"{app_url}/api/rollouts", key, request)
    if status == 202 and isinstance(body, dict) and body.get("status_url"):
        print(f"rollout {body.get('instance_id')} started on {request.get('endpoint_name')}", flush=True)
        return str(body["status_url"])
    if status == 401:
        raise GateError("401: the function key was refused")
    if status in (400, 409, 413):
        print(f"the app refused the rollout ({status}): {problem_text(body)}", file=sys.stderr)
        raise SystemExit(1)
    raise GateError(f"POST /api/rollouts answered {status}: {problem_text(body)}")


def wait(status_url: str, key: str, timeout: float, poll: float) -> dict[str, Any]:
    """Poll the status URL until the rollout has an outcome; its view. Prints each change of phase/step."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        status, view = call("GET", status_url, key)
        if status == 200 and isinstance(view, dict):
            if view.get("outcome"):
                return view
            now = (view.get("phase"), view.get("current_step"), json.dumps(view.get("traffic"), sort_keys=True))
            if now != last:
                print(f"  phase {now[0]}, step {now[1]}, traffic {now[2]}", flush=True)
                last = now
        elif status not in (503,):
            raise GateError(f"GET {status_url} answered {status}: {problem_text(view)}")
        if time.monotonic() >= deadline:
            raise GateError(f"the rollout has not ended after {timeout:.0f} s; it goes on: watch {status_url}")
        time.sleep(poll)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--app-url", required=True, help="https://<app>.azurewebsites.net (no /api)")
    parser.add_argument("--request", required=True, help="rollout request JSON file")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a request field")
    parser.add_argument("--key-env", default="AML_ROLLOUT_FUNCTION_KEY", help="variable holding the function key")
    parser.add_argument("--timeout", type=parse_duration, default=parse_duration("PT2H"))
    parser.add_argument("--poll-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    key = os.environ.get(args.key_env, "")
    if not key:
        parser.error(f"set the function key in ${args.key_env}")
    try:
        with open(args.request, encoding="utf-8") as handle:
            request = json.load(handle)
    except (OSError, ValueError) as exc:
        parser.error(f"--request: {exc}")
    if not isinstance(request, dict):
        parser.error("--request: the rollout request must be a JSON object")
    for item in args.set:
        field, sep, value = item.partition("=")
        if not sep or not field:
            parser.error(f"--set {item!r}: write FIELD=VALUE")
        try:
            request[field] = json.loads(value)
        except ValueError:
            request[field] = value
    try:
        view = wait(start(args.app_url.rstrip("/"), key, request), key, args.timeout, args.poll_seconds)
    except GateError as exc:
        print(f"rollout gate: {exc}", file=sys.stderr)
        return UNREACHABLE
    outcome, reason = view.get("outcome"), view.get("reason")
    print(f"outcome: {outcome}: {reason}; final traffic {json.dumps(view.get('final_traffic'), sort_keys=True)}")
    return 0 if outcome == PROMOTED else 1


if __name__ == "__main__":
    sys.exit(main())
