"""``aml-rollout`` verbs against ``serve``: what each prints and exits with, and errors as sentences."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from cli.main import apply_overrides
from emulator.serve import LocalServer
from tests.cli.helpers import KEY, cli

ENDPOINT = "fraud-detection-endpoint"
REQUEST = {"endpoint_name": ENDPOINT, "new_deployment": "green-v2", "traffic_steps": [10, 50, 100],
           "observation_window": "PT60S", "check_interval": "PT1S", "min_requests": 1}


def wait_for(server: LocalServer, predicate_text: str, timeout: float = 10.0) -> str:
    """``status`` output once it contains ``predicate_text``."""
    deadline = time.monotonic() + timeout
    while True:
        run = cli("status", ENDPOINT, url=server.url)
        if predicate_text in run.out or time.monotonic() > deadline:
            return run.out
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_start_from_stdin_then_status_pause_resume_abort_and_list(server: LocalServer) -> None:
    started = cli("start", "-", url=server.url, stdin=json.dumps(REQUEST))
    assert started.code == 0, started.err
    assert started.out.splitlines() == [f"started rollout-{ENDPOINT}: green-v2 on {ENDPOINT}",
                                        f"follow it: aml-rollout watch {ENDPOINT}"]
    status = wait_for(server, "last check: pass")
    assert status.splitlines()[0] == f"{ENDPOINT}: green-v2 replacing blue-v1, observing step 1/3 (10%)"
    assert "  traffic:    blue-v1 90% / green-v2 10%" in status
    assert "error rate" in status and "(max 0.01)" in status and "next step:  in " in status
    assert cli("pause", ENDPOINT, "--reason", "look at the logs", url=server.url).out == \
        f"sent pause to rollout-{ENDPOINT}: look at the logs\n"
    assert "(paused)" in wait_for(server, "(paused)")
    assert cli("resume", ENDPOINT, url=server.url).code == 0
    assert cli("abort", ENDPOINT, "--reason", "wrong model", url=server.url).code == 0
    done = wait_for(server, "outcome:")
    assert "  outcome:    aborted: wrong model; traffic blue-v1 100%" in done
    raw = json.loads(cli("status", ENDPOINT, "--json", url=server.url).out)
    assert [e["kind"] for e in raw["history"]] == ["step", "pause", "resume", "rollback"]
    assert raw["history"][1]["reason"] == "look at the logs"
    listed = cli("list", url=server.url)
    assert listed.out.splitlines()[0] == "1 rollout(s) running or started within P1D"
    assert f"  {ENDPOINT}: green-v2  aborted  traffic blue-v1 100%" in listed.out
    assert server.endpoint.traffic == {"blue-v1": 100}


def test_watch_of_a_finished_rollout_prints_its_final_line_and_exits_with_its_code(server: LocalServer) -> None:
    assert cli("start", "-", url=server.url, stdin=json.dumps(REQUEST)).code == 0
    wait_for(server, "last check")
    cli("abort", ENDPOINT, url=server.url)
    wait_for(server, "outcome:")
    run = cli("watch", ENDPOINT, url=server.url)
    assert run.code == 3
    assert run.out.splitlines()[-1] == "aborted: abort requested over HTTP; traffic blue-v1 100%"


def test_a_second_start_names_the_running_rollout(server: LocalServer) -> None:
    assert cli("start", "-", url=server.url, stdin=json.dumps(REQUEST)).code == 0
    again = cli("start", "-", url=server.url, stdin=json.dumps(REQUEST))
    assert again.code == 2 and again.out == ""
    error, hint = again.err.splitlines()
    assert error.startswith(f"error: endpoint '{ENDPOINT}' already has a rollout running: rollout-{ENDPOINT} (phase ")
    assert hint == f"hint: `aml-rollout watch {ENDPOINT}` follows it; `aml-rollout abort ...` ends it"
    cli("abort", ENDPOINT, url=server.url)


def test_set_overrides_fields_of_the_request_file_before_it_is_sent(server: LocalServer, tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps({**REQUEST, "endpoint_name": "placeholder", "new_deployment": "placeholder"}))
    run = cli("start", str(request), "--set", f"endpoint_name={ENDPOINT}", "--set", "new_deployment=green-v2",
              "--set", "traffic_steps=[50, 100]", url=server.url)
    assert run.code == 0, run.err
    raw = json.loads(cli("status", ENDPOINT, "--json", url=server.url).out)
    assert raw["new_deployment"] == "green-v2" and raw["request"]["traffic_steps"] == [50, 100]
    cli("abort", ENDPOINT, url=server.url)


@pytest.mark.parametrize("overrides, expected", [
    pytest.param([], {"a": 1}, id="none"),
    pytest.param(["b=green-42"], {"a": 1, "b": "green-42"}, id="text-when-not-json"),
    pytest.param(["a=[10, 100]"], {"a": [10, 100]}, id="json-list-replaces"),
    pytest.param(["a=0.05"], {"a": 0.05}, id="json-number"),
    pytest.param(["a=x=y"], {"a": "x=y"}, id="first-equals-splits"),
    pytest.param(["a=2", "a=3"], {"a": 3}, id="later-wins"),
])
def test_set_values_are_json_when_they_parse_and_text_otherwise(overrides: list[str], expected: dict[str, object]) -> None:
    assert apply_overrides({"a": 1}, overrides) == expected


@pytest.mark.parametrize("item", [pytest.param("new_deployment", id="no-equals"), pytest.param("=green", id="no-field")])
def test_a_set_without_field_and_value_is_refused_before_any_request(item: str) -> None:
    run = cli("start", "-", "--set", item, url="http://127.0.0.1:9", stdin=json.dumps(REQUEST))
    assert run.code == 2 and run.err.splitlines()[0] == f"error: --set {item!r} is not FIELD=VALUE"


def test_a_bad_request_lists_every_bad_field_on_one_line(server: LocalServer, tmp_path: Path) -> None:
    request = tmp_path / "bad.yaml"
    request.write_text("endpoint_name: x\nnew_deployment: green-v2\ntraffic_steps: [10, 500]\ncolour: blue\n")
    run = cli("start", str(request), url=server.url)
    assert run.code == 2
    error, hint = run.err.splitlines()
    assert error.startswith("error: the app refused the request: colour: is not a known field; endpoint_name: must be ")
    assert "; traffic_steps: " in error
    assert hint == "hint: fix the field(s) named and try again"
    assert cli("list", url=server.url).out.startswith("0 rollout(s)")     # nothing was started


@pytest.mark.parametrize("argv, key, code, first_line", [
    pytest.param(["list"], "wrong", 5, "error: the app refused the function key (401)", id="bad-key"),
    pytest.param(["list"], None, 5, "error: the app refused the function key (401)", id="no-key"),
    pytest.param(["status", "other-endpoint"], KEY, 2, "error: endpoint 'other-endpoint' has no rollout", id="unknown-endpoint"),
    pytest.param(["pause", ENDPOINT], KEY, 2, f"error: endpoint '{ENDPOINT}' has no rollout", id="nothing-to-pause"),
    pytest.param(["revert", ENDPOINT], KEY, 2, f"error: endpoint '{ENDPOINT}' has no rollout", id="nothing-to-revert"),
    pytest.param(["resolve", ENDPOINT], KEY, 2, f"error: endpoint '{ENDPOINT}' has no rollout", id="nothing-to-resolve"),
    pytest.param(["start", "/no/such/file.yaml"], KEY, 2, "error: cannot read /no/such/file.yaml: No such file or directory",
                 id="missing-file"),
])
def test_errors_are_one_sentence_and_a_hint(server: LocalServer, argv: list[str], key: str | None, code: int,
                                            first_line: str) -> None:
    run = cli(*argv, url=server.url, key=key)
    assert run.code == code
    lines = run.err.splitlines()
    assert lines[0] == first_line and lines[1].startswith("hint: ") and len(lines) == 2


def test_the_key_and_url_come_from_the_environment_when_not_given(server: LocalServer) -> None:
    run = cli("list", url=None, key=None, env={"AML_ROLLOUT_URL": server.url, "AML_ROLLOUT_KEY": KEY})
    assert run.code == 0 and run.out.startswith("0 rollout(s)")


def test_unreachable_url_is_a_sentence_and_a_traceback_only_with_debug() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = cli("list", url=url)
    assert run.code == 5
    assert run.err.splitlines() == [f"error: {url} refused the connection",
                                    "hint: is the app running at that URL? `./dev serve` prints where it listens; set "
                                    "--url or AML_ROLLOUT_URL"]
    debug = cli("--debug", "list", url=url)
    assert "Traceback (most recent call last)" in debug.err and debug.err.endswith(run.err)


@pytest.mark.parametrize("url, message", [
    pytest.param(None, "error: no app URL given", id="missing"),
    pytest.param("127.0.0.1:7071", "error: '127.0.0.1:7071' is not an http(s) URL", id="no-scheme"),
    pytest.param("http://127.0.0.1:7071/?code=abc", "error: the URL has a query string", id="key-in-url"),
])
def test_a_bad_url_is_refused_before_any_request(url: str | None, message: str) -> None:
    run = cli("list", url=url)
    assert run.code == 2 and run.err.splitlines()[0] == message


@pytest.mark.parametrize("outcome, code", [
    pytest.param("promoted", 0, id="promoted"),
    pytest.param("rolled_back", 1, id="rolled-back"),
    pytest.param("aborted", 3, id="aborted"),
    pytest.param("failed", 4, id="failed"),
    pytest.param("reverted", 6, id="reverted"),
    pytest.param("something-new", 4, id="unknown-outcome"),
])
def test_each_outcome_has_its_documented_exit_code(outcome: str, code: int) -> None:
    from cli.errors import exit_code_for

    assert exit_code_for(outcome) == code
