"""The real ``DurableOrchestrationClient`` works unchanged against the emulated management API.

Every client call goes through the process's one worker loop (the SDK's shared HTTP session is
bound to one event loop); raw status codes are checked with ``urllib``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import timedelta

import azure.durable_functions as df
import pytest
from azure.durable_functions import OrchestrationRuntimeStatus as Status

from api.instance_query import query_all_instances
from emulator.management_api import ManagementApi
from emulator.worker import WORKER_LOOP


@pytest.fixture
def api(hub):
    with ManagementApi(hub, task_hub_name="AmlRollout") as running:
        yield running


@pytest.fixture
def client(api):
    return df.DurableOrchestrationClient(api.client_binding_json())


@pytest.fixture
def call():
    WORKER_LOOP.acquire()
    yield WORKER_LOOP.run
    WORKER_LOOP.release()


def http(method: str, url: str, body: bytes | None = None, content_type: str | None = None):
    """(status, parsed JSON body or None, headers) of a raw request."""
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status, raw, headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, headers = error.code, error.read(), error.headers
    return status, (json.loads(raw) if raw else None), headers


def test_start_new_then_status_shows_custom_status_output_and_input_as_the_host_does(hub, client, call):
    instance_id = call(client.start_new("listener", "m1", {"endpoint": "ep"}))
    pending = call(client.get_status("m1"))
    hub.run_until_idle()
    running = call(client.get_status("m1"))
    call(client.raise_event("m1", "note", {"reason": "checked"}))
    hub.run_until_idle()
    done = call(client.get_status("m1"))

    assert instance_id == "m1"
    assert pending.runtime_status == Status.Pending
    assert running.runtime_status == Status.Running and running.custom_status == "listening"
    # The client JSON-encodes before sending JSON: the host keeps a JSON string, for input and event data alike.
    assert running.input_ == '{"endpoint": "ep"}'
    assert done.runtime_status == Status.Completed
    assert done.output == {"note": '{"reason": "checked"}', "type": "str"}
    assert done.created_time is not None and done.last_updated_time >= done.created_time


def test_get_status_by_and_all_filter_on_the_server(hub, client, call):
    call(client.start_new("forever", "wait-1", None))
    call(client.start_new("chain", "chain-1", {"n": 2}))
    hub.run_until_idle()

    completed = call(client.get_status_by(runtime_status=[Status.Completed]))
    by_prefix = call(client.get_status_by(instance_id_prefix="wait-"))
    everything = call(client.get_status_all())

    assert [(s.instance_id, s.output) for s in completed] == [("chain-1", [4, 8])]
    assert [s.instance_id for s in by_prefix] == ["wait-1"]
    assert sorted(s.instance_id for s in everything) == ["chain-1", "wait-1"]


def test_terminate_through_the_client_and_the_status_codes_around_it(hub, client, call, api):
    call(client.start_new("forever", "t1", None))
    hub.run_until_idle()
    call(client.terminate("t1", "no longer needed"))
    status = call(client.get_status("t1"))

    assert status.runtime_status == Status.Terminated and status.output == "no longer needed"
    assert http("POST", f"{api.rpc_base_url}instances/t1/terminate?reason=again")[0] == 410
    assert http("POST", f"{api.rpc_base_url}instances/nobody/terminate?reason=x")[0] == 404
    with pytest.raises(Exception, match="No instance with ID 'nobody' found"):
        call(client.terminate("nobody", "x"))


def test_unknown_instances_are_404_and_finished_ones_refuse_events_with_410(hub, client, call, api):
    missing = call(client.get_status("ghost"))
    with pytest.raises(Exception, match="No instance with ID ghost found"):
        call(client.raise_event("ghost", "note", {}))
    call(client.start_new("chain", "c1", {"n": 1}))
    hub.run_until_idle()
    with pytest.raises(Exception, match="Instance with ID c1 is gone"):
        call(client.raise_event("c1", "note", {}))

    assert not missing and missing.runtime_status is None
    assert http("GET", f"{api.rpc_base_url}instances/ghost")[0] == 404


def test_status_codes_follow_the_runtime_status(hub, client, call, api):
    call(client.start_new("forever", "run", None))
    call(client.start_new("broken", "bad", None))
    hub.run_until_idle()

    running_code, running_body, running_headers = http("GET", f"{api.rpc_base_url}instances/run")
    failed_code, failed_body, _ = http("GET", f"{api.rpc_base_url}instances/bad")
    strict_code, _, _ = http("GET", f"{api.rpc_base_url}instances/bad?returnInternalServerErrorOnFailure=true")
    no_input_code, no_input_body, _ = http("GET", f"{api.rpc_base_url}instances/run?showInput=false&showHistory=true")

    assert (running_code, running_body["runtimeStatus"], running_headers["Retry-After"]) == (202, "Running", "5")
    assert running_headers["Location"].endswith("/durabletask/instances/run")
    assert (failed_code, failed_body["output"]) == (200, "Orchestrator function 'broken' failed: bad input")
    assert strict_code == 500
    assert no_input_code == 202 and no_input_body["input"] is None
    assert [e["EventType"] for e in no_input_body["historyEvents"]] == ["ExecutionStarted"]


def test_start_new_refusals_surface_as_client_exceptions(hub, client, call):
    call(client.start_new("forever", "busy", None))
    with pytest.raises(Exception, match="doesn't exist, is disabled, or is not an orchestrator function"):
        call(client.start_new("no_such_orchestrator", "x", None))
    with pytest.raises(Exception, match="already exists"):
        call(client.start_new("forever", "busy", None))
    generated = call(client.start_new("chain", None, {"n": 1}))

    assert len(generated) == 32 and int(generated, 16) >= 0
    assert hub.get_status(generated)["name"] == "chain"


def test_start_answers_202_with_check_status_links(api):
    code, body, headers = http("POST", f"{api.rpc_base_url}orchestrators/forever/linked", b"null", "application/json")

    assert code == 202 and body["id"] == "linked"
    assert body["statusQueryGetUri"] == f"{api.base_url}/instances/linked?taskHub=AmlRollout&connection=Storage"
    assert headers["Location"] == body["statusQueryGetUri"] and headers["Retry-After"] == "10"
    assert body["sendEventPostUri"].endswith("/instances/linked/raiseEvent/{eventName}?taskHub=AmlRollout&connection=Storage")
    assert http("GET", body["statusQueryGetUri"])[:2] == (202, http("GET", f"{api.rpc_base_url}instances/linked")[1])


def test_raise_event_needs_json_content(hub, api):
    hub.start("listener", "j1")
    hub.run_until_idle()

    assert http("POST", f"{api.rpc_base_url}instances/j1/raiseEvent/note", b"plain", "text/plain")[0] == 400
    assert http("POST", f"{api.rpc_base_url}instances/j1/raiseEvent/note", b"{not json", "application/json")[0] == 400
    assert http("POST", f"{api.rpc_base_url}instances/j1/raiseEvent/note", b'{"a": 1}', "application/json")[0] == 202
    hub.run_until_idle()
    assert hub.get_status("j1")["output"] == {"note": {"a": 1}, "type": "dict"}


def test_purge_removes_history_and_answers_404_afterwards(hub, client, call):
    call(client.start_new("chain", "p1", {"n": 1}))
    hub.run_until_idle()

    assert call(client.purge_instance_history("p1")).instances_deleted == 1
    assert call(client.purge_instance_history("p1")).instances_deleted == 0
    assert hub.get_status("p1") is None


def test_a_scheduled_callback_can_raise_events_through_the_client_without_deadlock(hub, client, call, t0):
    hub.start("approval", "cb")
    hub.call_at(t0 + timedelta(minutes=5), lambda: call(client.raise_event("cb", "approve", "yes")))
    assert hub.run(until=lambda: hub.get_status("cb")["runtimeStatus"] == "Completed", max_virtual_seconds=7200)

    output = hub.get_status("cb")["output"]
    assert output["winner"] == "approve" and output["data"] == '"yes"'  # double-encoded by the client, as on the host
    assert output["decided_at"] == (t0 + timedelta(minutes=5)).isoformat()


def test_client_binding_carries_the_urls_the_client_needs(api):
    binding = json.loads(api.client_binding_json())

    assert binding["rpcBaseUrl"] == api.rpc_base_url and binding["rpcBaseUrl"].startswith("http://127.0.0.1:")
    assert binding["taskHubName"] == "AmlRollout"
    assert binding["managementUrls"]["id"] == "INSTANCEID"
    client = df.DurableOrchestrationClient(api.client_binding_json())
    links = client.create_http_management_payload("abc")
    assert links["statusQueryGetUri"] == f"{api.base_url}/instances/abc?taskHub=AmlRollout&connection=Storage"


# --- paging (HttpApiHandler.HandleGetStatusRequestAsync: 100 a page, x-ms-continuation-token) -----------------


def test_the_instance_query_pages_by_100_with_continuation_tokens_as_the_host_does(hub, api, client, call):
    for n in range(250):
        hub.start("forever", f"wait-{n:03d}")
    url = api.rpc_base_url + "instances/?instanceIdPrefix=wait-"

    pages, token = [], None
    while True:
        request = urllib.request.Request(url, headers={"x-ms-continuation-token": token} if token else {})
        with urllib.request.urlopen(request, timeout=5) as response:
            pages.append([s["instanceId"] for s in json.loads(response.read())])
            token = response.headers["x-ms-continuation-token"]
        if not token:
            break

    assert [len(page) for page in pages] == [100, 100, 50]
    assert [i for page in pages for i in page] == [f"wait-{n:03d}" for n in range(250)]
    assert len(http("GET", api.rpc_base_url + "instances/?top=30")[1]) == 30
    # The Python client reads the first page only; the app's own query follows the tokens.
    assert len(call(client.get_status_by(instance_id_prefix="wait-"))) == 100
    everything = call(query_all_instances(client, instance_id_prefix="wait-"))
    assert [s.instance_id for s in everything] == [f"wait-{n:03d}" for n in range(250)]
