"""``aml-rollout``: start, follow and steer rollouts through the app's HTTP API.

    aml-rollout start FILE|- [--set FIELD=VALUE]... [--wait]
                                               start a rollout (request as YAML or JSON; a scenario file's
                                               ``rollout`` part is used); --set overrides a field of it;
                                               --wait follows it to its outcome
    aml-rollout status ENDPOINT [--json]       where the endpoint's rollout stands
    aml-rollout watch ENDPOINT                 a live view until the outcome
    aml-rollout list [--window PT24H] [--json] running and recent rollouts
    aml-rollout pause|resume|promote|abort|resolve|revert ENDPOINT [--reason TEXT]
    aml-rollout report ENDPOINT -o FILE        the rollout as one self-contained HTML page
    aml-rollout register --workspace SUB/RG/WS [--model FOLDER --model-name NAME]
                [--environment-name NAME --conda-file FILE --image IMAGE]
                                               register a model folder and an environment (your Azure login)

The app's URL comes from ``--url`` or AML_ROLLOUT_URL, its function key from ``--key`` or
AML_ROLLOUT_KEY. Exit codes are listed in ``cli.errors`` (0: done, or promoted).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, TextIO

import yaml

from cli.client import ApiClient, check_url
from cli.config import connection
from cli.errors import EXIT_OK, EXIT_UNREACHABLE, CliError, exit_code_for
from cli.register import AzureRegistrar, Registrar, check_inputs, parse_workspace, register
from cli.summary import describe_traffic, summary_lines
from cli.watch import DEFAULT_INTERVAL, watch

CONTROL_VERBS = ("pause", "resume", "promote", "abort", "resolve", "revert")
TRANSIENT_TRIES = 5       # consecutive failed polls (unreachable, 5xx) a watch rides out before giving up


def parser() -> argparse.ArgumentParser:
    """The argument parser (``aml-rollout --help``)."""
    top = argparse.ArgumentParser(prog="aml-rollout", description=__doc__.splitlines()[0],
                                  epilog="exit codes: 0 done/promoted, 1 rolled back, 2 bad usage or refused request, "
                                         "3 aborted, 4 failed, 5 app unreachable, key refused or app error")
    top.add_argument("--url", help="the app's base URL (default: AML_ROLLOUT_URL)")
    top.add_argument("--key", help="the app's function key (default: AML_ROLLOUT_KEY)")
    top.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each answer (default 30)")
    top.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    verbs = top.add_subparsers(dest="verb", required=True, metavar="VERB")
    start = verbs.add_parser("start", help="start a rollout from a request file (YAML or JSON; - reads stdin)")
    start.add_argument("file")
    start.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="overrides",
                       help="set a top-level field of the request (repeatable); VALUE is read as JSON when it is "
                            "JSON (--set 'traffic_steps=[10, 100]'), as text otherwise (--set new_deployment=green-42)")
    start.add_argument("--wait", action="store_true", help="follow the rollout; exit 0 only when promoted")
    start.add_argument("--interval", type=float, default=DEFAULT_INTERVAL, help="seconds between polls (default 2)")
    status = verbs.add_parser("status", help="where the endpoint's rollout stands")
    status.add_argument("endpoint")
    status.add_argument("--json", action="store_true", help="print the raw record")
    follow = verbs.add_parser("watch", help="follow the endpoint's rollout until its outcome")
    follow.add_argument("endpoint")
    follow.add_argument("--interval", type=float, default=DEFAULT_INTERVAL, help="seconds between polls (default 2)")
    listing = verbs.add_parser("list", help="running rollouts and those started recently")
    listing.add_argument("--window", help="how far back, ISO 8601 (default PT24H, at most P30D)")
    listing.add_argument("--json", action="store_true", help="print the raw answer")
    for verb in CONTROL_VERBS:
        control = verbs.add_parser(verb, help=f"send {verb} to the endpoint's running rollout")
        control.add_argument("endpoint")
        control.add_argument("--reason", help="why (recorded in the rollout's history)")
    report = verbs.add_parser("report", help="write the rollout as one self-contained HTML page")
    report.add_argument("endpoint")
    report.add_argument("-o", "--output", required=True, help="the HTML file to write")
    assets = verbs.add_parser("register", help="register a local model folder and an environment in a workspace "
                                               "(with your Azure login); prints the asset ids")
    assets.add_argument("--workspace", required=True, help="SUBSCRIPTION_ID/RESOURCE_GROUP/WORKSPACE_NAME")
    assets.add_argument("--model", metavar="FOLDER", help="the local model folder to upload")
    assets.add_argument("--model-name", help="the model's name (a new version is registered)")
    assets.add_argument("--description", help="the model's description")
    assets.add_argument("--environment-name", help="the environment's name (a new version is registered)")
    assets.add_argument("--conda-file", help="the environment's conda file")
    assets.add_argument("--image", help="the environment's base Docker image")
    return top


def read_request(name: str, stdin: TextIO) -> Any:
    """The rollout request in a file (``-``: stdin), YAML or JSON. A scenario file (with ``endpoint``
    and ``rollout``) gives its rollout part, for the endpoint it names."""
    try:
        text = stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {name}: {exc.strerror}", "give a rollout request file, or - for stdin") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise CliError(f"{name} is not valid YAML or JSON{at}", "a request is a mapping such as "
                       "{endpoint_name: ep, new_deployment: green}") from None
    if not isinstance(data, dict):
        raise CliError(f"{name} does not hold a mapping", "a request is a mapping such as "
                       "{endpoint_name: ep, new_deployment: green}")
    if isinstance(data.get("rollout"), dict) and isinstance(data.get("endpoint"), dict):
        return {"endpoint_name": data["endpoint"].get("name"), **data["rollout"]}
    return data


def apply_overrides(request: Any, overrides: list[str]) -> Any:
    """``request`` with each ``FIELD=VALUE`` of ``--set`` applied in order (a later one wins): VALUE
    parsed as JSON when it parses, the text itself otherwise. ``CliError`` for one without ``=``."""
    if not overrides:
        return request
    updated = dict(request)
    for item in overrides:
        field, equals, value = item.partition("=")
        if not equals or not field.strip():
            raise CliError(f"--set {item!r} is not FIELD=VALUE", "e.g. --set new_deployment=green-42")
        try:
            updated[field.strip()] = json.loads(value)
        except ValueError:
            updated[field.strip()] = value
    return updated


def _poller(client: ApiClient, endpoint: str, err: TextIO, sleep: Callable[[float], None]) -> Callable[[], dict[str, Any]]:
    """A fetch of the endpoint's record that rides out ``TRANSIENT_TRIES`` failed polls in a row."""

    def fetch() -> dict[str, Any]:
        for attempt in range(1, TRANSIENT_TRIES + 1):
            try:
                return client.get(endpoint)
            except CliError as exc:
                if exc.exit_code != EXIT_UNREACHABLE or exc.status in (401, 403) or attempt == TRANSIENT_TRIES:
                    raise
                print(f"warning: {exc.message}; trying again", file=err, flush=True)
                sleep(2.0 * attempt)
        raise AssertionError("unreachable")

    return fetch


def _follow(client: ApiClient, endpoint: str, interval: float, out: TextIO, err: TextIO,
            sleep: Callable[[float], None]) -> int:
    view = watch(_poller(client, endpoint, err, sleep), out, live=out.isatty(), interval=interval, sleep=sleep)
    return exit_code_for(view.get("outcome"))


def run(args: argparse.Namespace, client: ApiClient, stdin: TextIO, out: TextIO, err: TextIO,
        sleep: Callable[[float], None] = time.sleep) -> int:
    """Carry out one parsed command; returns the exit code (``CliError`` for failures)."""
    if args.verb == "start":
        started = client.start(apply_overrides(read_request(args.file, stdin), args.overrides))
        endpoint = started.get("endpoint_name", "?")
        print(f"started {started.get('id')}: {started.get('new_deployment')} on {endpoint}", file=out, flush=True)
        if not args.wait:
            print(f"follow it: aml-rollout watch {endpoint}", file=out)
            return EXIT_OK
        return _follow(client, endpoint, args.interval, out, err, sleep)
    if args.verb == "status":
        view = client.get(args.endpoint)
        print(json.dumps(view, indent=2) if args.json else "\n".join(summary_lines(view)), file=out)
        return EXIT_OK
    if args.verb == "watch":
        return _follow(client, args.endpoint, args.interval, out, err, sleep)
    if args.verb == "list":
        answer = client.list(args.window)
        if args.json:
            print(json.dumps(answer, indent=2), file=out)
            return EXIT_OK
        rollouts = answer.get("rollouts") or []
        print(f"{len(rollouts)} rollout(s) running or started within {answer.get('window')}", file=out)
        for r in rollouts:
            state = r.get("outcome") or f"{r.get('phase')}{' (paused)' if r.get('paused') else ''}"
            print(f"  {r.get('endpoint_name')}: {r.get('new_deployment')}  {state}  "
                  f"traffic {describe_traffic(r.get('final_traffic') or r.get('traffic'))}  started {r.get('created_time')}",
                  file=out)
        return EXIT_OK
    if args.verb in CONTROL_VERBS:
        return _control(client, args.verb, args.endpoint, args.reason, out)
    if args.verb == "report":
        from report import render_report

        page = render_report(client.get(args.endpoint))
        try:
            Path(args.output).write_text(page, encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot write {args.output}: {exc.strerror}", "choose a writable path") from None
        print(f"wrote {args.output} ({len(page.encode())} bytes)", file=out)
        return EXIT_OK
    raise CliError(f"unknown verb {args.verb!r}", "see aml-rollout --help")


def _control(client: ApiClient, verb: str, endpoint: str, reason: str | None, out: TextIO) -> int:
    answer = client.control(endpoint, verb, reason)
    print(f"sent {verb} to {answer.get('instance_id')}: {answer.get('reason')}", file=out)
    return EXIT_OK


def run_register(args: argparse.Namespace, out: TextIO, registrar: Registrar | None = None) -> int:
    """``register``: check the inputs, then register with ``registrar`` (default: Azure, your login)."""
    workspace = parse_workspace(args.workspace)
    check_inputs(args.model, args.model_name, args.environment_name, args.conda_file, args.image)
    register(registrar or AzureRegistrar(workspace), args.model, args.model_name, args.description,
             args.environment_name, args.conda_file, args.image, out)
    return EXIT_OK


def main(argv: list[str] | None = None, stdin: TextIO | None = None, out: TextIO | None = None,
         err: TextIO | None = None, env: dict[str, str] | None = None, registrar: Registrar | None = None) -> int:
    """The ``aml-rollout`` console script: returns the exit code. ``registrar``: what ``register``
    uses instead of Azure (a test's fake)."""
    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    args = parser().parse_args(argv)
    try:
        if args.verb == "register":
            return run_register(args, out, registrar)
        url, key = connection(args.url, args.key, env)
        client = ApiClient(check_url(url), key, timeout=args.timeout)
        return run(args, client, stdin, out, err)
    except CliError as exc:
        if args.debug:
            traceback.print_exc(file=err)
        print("\n".join(exc.lines()), file=err)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted (the rollout goes on; `aml-rollout status ENDPOINT` shows it)", file=err)
        return 130
    except Exception as exc:   # a defect of this client: say so in one line unless --debug
        if args.debug:
            traceback.print_exc(file=err)
        print(f"error: unexpected {type(exc).__name__}: {exc}\nhint: run again with --debug for the traceback",
              file=err)
        return EXIT_UNREACHABLE


def console() -> None:
    """The ``aml-rollout`` entry point."""
    sys.exit(main())
