"""The alert webhook under ``serve``: alert-to-rollback latency and webhook requests per second.

Latency: ``serve`` in-process with the default scenario, real clock. Each run starts a rollout
over HTTP, waits until its first step is applied (green-v2 at 10%), then POSTs the fired sample
alert (``examples/alerts/endpoint-5xx-fired.json``) and measures from just before the request is
sent until the rollback's traffic update is applied on the simulated endpoint (the
``TrafficChange`` the simulation records). That covers the webhook, the status lookup and the
raised event over the emulated management API, an orchestrator episode through the real replay
engine, and the ``set_traffic`` activity. Prints p50, p99 and max over ``RUNS`` runs.

Throughput: ``python -m emulator serve`` in a subprocess pinned to one core (this process,
generating load over keep-alive connections, is pinned to another when there is one), for
three kinds of alert, ``SECONDS`` each: outside the managed workspace (parsed and answered, no
task hub call), for the managed endpoint with no rollout running (one status lookup), and
resolved alerts recorded on a running rollout (lookup, raised event, and an orchestrator
episode per alert competing for the same core). Not a test: figures for the docs.
"""

from __future__ import annotations

import copy
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator.queue_polling import QueuePolling  # noqa: E402
from emulator.serve import LocalServer, default_scenario  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "200"))
MODEL_RUNS = int(os.environ.get("BENCH_MODEL_RUNS", "10"))
SECONDS = 3.0
CONNECTIONS = 8
KEY = "bench-key"
ENDPOINT = "fraud-detection-endpoint"
FIRED = json.loads((ROOT / "examples" / "alerts" / "endpoint-5xx-fired.json").read_text())
REQUEST = {"endpoint_name": ENDPOINT, "new_deployment": "green-v2", "traffic_steps": [10, 50, 100],
           "observation_window": "PT10M", "check_interval": "PT1M"}


def post(port: int, path: str, body: Any) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", f"{path}?code={KEY}", json.dumps(body), {"Content-Type": "application/json"})
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def wait(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.0005)


# --- latency ------------------------------------------------------------------------------------


def one_rollback(server: LocalServer, port: int, idle: float = 0.0) -> float:
    """Start a rollout, wait for its first step (and ``idle`` seconds more), fire the alert; seconds from
    send to rollback applied."""
    status, body = post(port, "/api/rollouts", REQUEST)
    assert status == 202, body
    changes = server.endpoint.changes
    wait(lambda: changes[-1].traffic.get("green-v2") == 10)
    time.sleep(idle)
    sent_at = datetime.now(UTC)
    status, body = post(port, "/api/alerts", FIRED)
    assert status == 202 and json.loads(body)["action"] == "rollback", body
    wait(lambda: changes[-1].traffic == {"blue-v1": 100} and changes[-1].at >= sent_at, 70.0)
    latency = (changes[-1].at - sent_at).total_seconds()
    instance = f"rollout-{ENDPOINT}"
    wait(lambda: (server.hub.get_status(instance) or {}).get("runtimeStatus") == "Completed", 70.0)
    return latency


def measure_latency() -> None:
    with LocalServer(default_scenario(), key=KEY) as server:
        port = server.http.port
        one_rollback(server, port)   # warm up: imports, the client session
        latencies = sorted(one_rollback(server, port) for _ in range(RUNS))
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(round(0.99 * len(latencies))) - 1)]
    print(f"alert -> rollback applied, real clock, {RUNS} runs: p50 {p50 * 1000:6.1f} ms   "
          f"p99 {p99 * 1000:6.1f} ms   max {latencies[-1] * 1000:6.1f} ms")


def measure_modelled_azure_latency() -> None:
    """The same alert -> rollback with the Azure Storage provider's queue polling modelled
    (``emulator.queue_polling``, the worst case: a message enqueued on another instance), after the
    queues sat idle long enough for the pollers to back off fully: host.json's interval, then (with
    ``BENCH_MODEL_DEFAULT=1``, ~5 minutes) the provider's 30 s default."""
    cases = [("host.json", QueuePolling.from_host_json(ROOT / "host.json", seed=1), 5.0, MODEL_RUNS)]
    if os.environ.get("BENCH_MODEL_DEFAULT") == "1":
        cases.append(("default", QueuePolling(seed=1), 55.0, 3))
    for label, polling, idle, runs in cases:
        with LocalServer(default_scenario(), key=KEY, queue_polling=polling) as server:
            latencies = sorted(one_rollback(server, server.http.port, idle) for _ in range(runs))
        print(f"alert -> rollback applied, Azure queue polling modelled, {label} maxQueuePollingInterval "
              f"{polling.max_interval.total_seconds():g} s, queues idle {idle:g} s, {runs} runs: "
              f"p50 {statistics.median(latencies) * 1000:7.1f} ms   max {latencies[-1] * 1000:7.1f} ms")


# --- throughput ---------------------------------------------------------------------------------


def start_server(core: int) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen([sys.executable, "-m", "emulator", "serve", "--port", "0", "--key", KEY], cwd=ROOT,
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    os.sched_setaffinity(process.pid, {core})
    assert process.stdout is not None
    first = process.stdout.readline()
    port = int(first.split("127.0.0.1:", 1)[1].split("/", 1)[0])
    return process, port


def load(port: int, payload: Any, seconds: float) -> tuple[float, dict[int, int]]:
    """POST ``payload`` over ``CONNECTIONS`` keep-alive connections for ``seconds``; (requests/s, statuses)."""
    body = json.dumps(payload).encode()
    counts: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: dict[int, int] = {}
        while time.monotonic() < deadline:
            connection.request("POST", f"/api/alerts?code={KEY}", body, {"Content-Type": "application/json"})
            reply = connection.getresponse()
            reply.read()
            mine[reply.status] = mine.get(reply.status, 0) + 1
        connection.close()
        with lock:
            for status, n in mine.items():
                counts[status] = counts.get(status, 0) + n

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts.values()) / (time.monotonic() - started), counts


def measure_throughput() -> None:
    cores = sorted(os.sched_getaffinity(0))
    server_core, client_cores = cores[0], set(cores[1:]) or {cores[0]}
    os.sched_setaffinity(0, client_cores)
    process, port = start_server(server_core)
    try:
        unmanaged = copy.deepcopy(FIRED)
        unmanaged["data"]["essentials"]["alertTargetIDs"] = [
            "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-RG/providers"
            "/microsoft.storage/storageaccounts/test-storageAccount"]
        resolved = copy.deepcopy(FIRED)
        resolved["data"]["essentials"].update(monitorCondition="Resolved", resolvedDateTime="2026-01-01T00:09:00Z")
        load(port, unmanaged, 0.5)   # warm up
        shared = "shares the server's core" if client_cores == {server_core} else f"on core(s) {sorted(client_cores)}"
        print(f"webhook throughput: server pinned to core {server_core}, load {shared}, "
              f"{CONNECTIONS} keep-alive connections, {SECONDS:.0f} s each")
        for label, payload in (("outside the managed workspace (no task hub call)", unmanaged),
                               ("managed endpoint, no rollout running (1 lookup)", FIRED)):
            rate, counts = load(port, payload, SECONDS)
            print(f"  {label:<58} {rate:7.0f} req/s  {counts}")
        status, body = post(port, "/api/rollouts", REQUEST)
        assert status == 202, body
        rate, counts = load(port, resolved, SECONDS)
        print(f"  {'running rollout, resolved alert recorded (event + episode)':<58} {rate:7.0f} req/s  {counts}")
    finally:
        process.terminate()
        process.wait(10)


# --- a burst of alerts must not delay a rollback ------------------------------------------------------

BURST = int(os.environ.get("BENCH_BURST", "2000"))
BURST_CONNECTIONS = 16


def burst_payloads(count: int) -> list[Any]:
    """``count`` mixed alerts: Resolved and Fired-for-the-old-deployment notes on the running rollout
    (distinct alert ids, some repeated as Azure Monitor retries do), alerts outside the managed
    workspace, and alerts for an endpoint with no rollout."""
    kinds = []
    for n in range(count):
        payload = copy.deepcopy(FIRED)
        essentials = payload["data"]["essentials"]
        essentials["alertId"] = f"{essentials['alertId']}-{n % 500}"
        kind = n % 4
        if kind == 0:
            essentials.update(monitorCondition="Resolved", resolvedDateTime="2026-01-01T00:09:00Z")
        elif kind == 1:
            payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"][0]["value"] = "blue-v1"
        elif kind == 2:
            essentials["alertTargetIDs"] = ["/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/"
                                            "test-RG/providers/microsoft.storage/storageaccounts/test-storageAccount"]
        else:
            essentials["alertTargetIDs"] = [essentials["alertTargetIDs"][0].replace(ENDPOINT, "other-endpoint")]
        kinds.append(payload)
    return kinds


def measure_burst() -> None:
    """A bounded burst of ``BURST`` mixed alerts over ``BURST_CONNECTIONS`` keep-alive connections to an
    in-process ``serve``; half-way through, the Fired alert for the new deployment. Prints the time from
    sending that alert to the rollback applied on the simulated endpoint (target: under 2 s), how long the
    burst took, and how many ``alert`` events the notes became."""
    payloads = burst_payloads(BURST)
    with LocalServer(default_scenario(), key=KEY) as server:
        port = server.http.port
        status, body = post(port, "/api/rollouts", REQUEST)
        assert status == 202, body
        changes = server.endpoint.changes
        wait(lambda: changes[-1].traffic.get("green-v2") == 10)
        bodies = [json.dumps(p).encode() for p in payloads]
        next_index, lock, statuses = [0], threading.Lock(), {}
        fired_at: list[datetime] = []

        def worker() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            while True:
                with lock:
                    index = next_index[0]
                    next_index[0] += 1
                if index >= len(bodies):
                    break
                if index == len(bodies) // 2:
                    fired_at.append(datetime.now(UTC))
                    code, _ = post(port, "/api/alerts", FIRED)
                    assert code == 202
                connection.request("POST", f"/api/alerts?code={KEY}", bodies[index], {"Content-Type": "application/json"})
                reply = connection.getresponse()
                reply.read()
                with lock:
                    statuses[reply.status] = statuses.get(reply.status, 0) + 1
            connection.close()

        started = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(BURST_CONNECTIONS)]
        for thread in threads:
            thread.start()
        wait(lambda: bool(fired_at) and changes[-1].traffic == {"blue-v1": 100}, timeout=600)
        latency = (changes[-1].at - fired_at[0]).total_seconds()
        for thread in threads:
            thread.join()
        took = time.monotonic() - started
        history = server.hub.history(f"rollout-{ENDPOINT}")
        events = sum(1 for e in history if e.get("EventType") == 15 and e.get("Name") == "alert")
    print(f"burst of {BURST} mixed alerts ({BURST_CONNECTIONS} connections, {took:.1f} s, answers {statuses}): "
          f"fired alert -> rollback applied {latency * 1000:.0f} ms (target < 2000 ms); "
          f"record-only notes became {events} alert event(s)")


def main() -> None:
    if sys.argv[1:] == ["burst"]:
        measure_burst()
        return
    measure_latency()
    measure_modelled_azure_latency()
    measure_throughput()
    measure_burst()


if __name__ == "__main__":
    main()
