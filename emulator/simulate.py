"""``python -m emulator simulate SCENARIO [--json] [--real-clock] [--azure] [--seed N] [--runs N] [--report FILE]``: run rollouts.

The app's registered functions run unchanged (``bootstrap.build_app`` with the scenario's simulated
backend, the composition ``function_app`` uses with Azure's): the orchestrator through the real
``azure-functions-durable`` replay engine (``emulator.taskhub``), the activities against the
simulated Azure ML endpoint and synthetic metrics of the scenario. Alerts are delivered at
their virtual time through the webhook's own routing (``api.alert_delivery``) and a real
``DurableOrchestrationClient`` talking to the emulated management API; operator controls
through the same client. Exit status: 0 promoted, 1 rolled back / aborted / failed, 2 bad scenario
or a function_app.py the Python worker would refuse to index (its own message is printed).

``--real-clock``: run on the wall clock instead: every wait takes its real time and times are
offsets from the moment the run starts. ``--azure``: the activities use
``AzureBackend(load_settings().azure)`` (the cloud and workspace the ``AML_ROLLOUT_*`` settings
name) instead of the simulated endpoint, and the scenario's ``endpoint.deployments`` may be left
out. ``--azure`` needs ``--real-clock``: on the virtual clock steps would follow each other with
no real time passing and every check would read metrics for virtual minutes that hold no data,
so a real endpoint's traffic would move and roll back within seconds; it is refused (exit 2).
Only a caller handing ``main`` the clock its cloud runs on (a fake of Azure in a test) runs
``--azure`` virtually. See "Running the emulator against a cloud" in docs/azure.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import azure.durable_functions as df

from api.alert_delivery import deliver_alert
from bootstrap import build_app, provide
from emulator.clock import Clock, RealClock, VirtualClock
from emulator.management_api import ManagementApi
from emulator.recorded import RecordedMetrics
from emulator.scenario import Scenario, load_scenario, report_problems
from emulator.simulated_azure import SimulatedBackend, SimulatedWorkspace, SyntheticMetrics, TrafficChange
from emulator.simulated_lifecycle import configure
from emulator.taskhub import TaskHub
from emulator.worker import APP_SCRIPT, WORKER_LOOP, load_app, refusal
from rollout.alerts import ManagedScope
from rollout.durations import format_duration
from rollout.errors import InvalidRequest
from rollout.plan import instance_id_for
from rollout.ports import Backend, MetricsPort
from rollout.safety import versioned_input
from rollout.traffic import describe
from rollout.wire import RUNNING_STATUSES
from settings import Settings, load_settings

SIMULATION_START = datetime(2026, 1, 1, tzinfo=UTC)
MAX_VIRTUAL_DAYS = 30
ORCHESTRATOR = "rollout_orchestrator"


@dataclass
class SimulationResult:
    """What a simulation produced: the orchestration's final record and a timeline of events."""

    record: dict[str, Any]
    runtime_status: str
    elapsed_seconds: float
    timeline: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)     # the orchestration history last replayed

    @property
    def outcome(self) -> str:
        return self.record.get("outcome") or "failed"

    def exit_code(self) -> int:
        return 0 if self.outcome == "promoted" else 1

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object."""
        return {
            "outcome": self.outcome,
            "reason": self.record.get("reason"),
            "final_traffic": self.record.get("final_traffic") or self.record.get("traffic") or {},
            "steps_completed": self.record.get("steps_completed", []),
            "phases": self.record.get("phases", []),
            "elapsed_seconds": self.elapsed_seconds,
            "timeline": self.timeline,
        }


def build_workspace(scenario: Scenario, now: Callable[[], datetime]) -> SimulatedBackend:
    """The simulated workspace, endpoint and metrics a scenario describes."""
    workspace = SimulatedWorkspace(scenario.workspace, now, scenario.update_seconds)
    if scenario.endpoint_exists:
        endpoint = workspace.add_endpoint(scenario.endpoint_name, scenario.deployments, scenario.traffic,
                                          scenario.mirror_traffic)
        endpoint.provisioning_state = scenario.endpoint_provisioning_state
    workspace.faults.extend(dataclasses.replace(fault) for fault in scenario.faults)   # the world counts them down
    metrics: MetricsPort = SyntheticMetrics(workspace, scenario.requests_per_minute, scenario.health, scenario.seed) \
        if scenario.recorded is None else RecordedMetrics(workspace, scenario.recorded)
    backend = SimulatedBackend(workspace, metrics)
    if scenario.lifecycle is not None:
        configure(backend.lifecycle(None), scenario.lifecycle)
        if isinstance(metrics, SyntheticMetrics):
            metrics.count_mirrored = scenario.lifecycle.mirror_in_metrics
    return backend


class Timeline:
    """Collects timeline events (``at_seconds``, ``kind``, details) as the simulation runs."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.events: list[dict[str, Any]] = []
        self._last_check: str | None = None
        self._phase_events: list[dict[str, Any]] = []

    def add(self, at: datetime, kind: str, **details: Any) -> None:
        self.events.append({"at_seconds": (at - self.start).total_seconds(), "kind": kind, **details})

    def on_hub_record(self, record: dict[str, Any]) -> None:
        """Turn the task hub's custom-status updates into health-check events (one per check)."""
        status = record.get("custom_status")
        if record.get("kind") != "custom_status" or not isinstance(status, dict):
            return
        self._on_phase(status)
        health = status.get("last_health")
        if not health or health.get("at") == self._last_check:
            return
        self._last_check = health["at"]
        self.add(datetime.fromisoformat(health["at"]), "health_check", step=health.get("step"),
                 verdict=health.get("verdict"), reason=health.get("reason"), new=health.get("new"),
                 old=health.get("old"), error_rate=health.get("error_rate"))

    def _on_phase(self, status: dict[str, Any]) -> None:
        """One ``phase`` event per lifecycle phase (``record.phases``) at its start, its figures kept up to date."""
        phases = [entry for entry in status.get("phases") or [] if isinstance(entry, dict) and entry.get("started_at")]
        for index, entry in enumerate(phases):
            details = {k: v for k, v in entry.items() if k not in ("started_at", "phase")}
            if index < len(self._phase_events):
                self._phase_events[index].update(details)
                continue
            self.add(datetime.fromisoformat(entry["started_at"]), "phase", phase=entry.get("phase"), **details)
            self._phase_events.append(self.events[-1])

    def sorted(self) -> list[dict[str, Any]]:
        return sorted(self.events, key=lambda e: e["at_seconds"])


def run_simulation(scenario: Scenario, backend: Backend | None = None,
                   clock: Clock | None = None, observer: Callable[[dict[str, Any]], None] | None = None) -> SimulationResult:
    """Run the scenario's rollout to its end, on ``clock`` (default: a virtual clock at ``SIMULATION_START``).

    The scenario's times are offsets from ``clock.now()`` at the start; a ``RealClock`` makes every
    wait take its real time. ``backend`` defaults to the scenario's simulated workspace; pass
    another (the Azure adapters pointed at a cloud, say) with the ``clock`` its world runs on to
    run the same scenario through it. The app is ``bootstrap.build_app`` given that backend; the
    task hub indexes it with the Python worker's code (``emulator.worker.registered_functions``).
    ``observer``: also given every task hub record (``TaskHub.observe``).
    """
    assert scenario.rollout is not None
    clock = clock or VirtualClock(SIMULATION_START)
    start = clock.now()
    backend = backend or build_workspace(scenario, clock.now)
    timeline = Timeline(start)
    app = build_app(backend=provide(backend), settings=provide(Settings(workspace=scenario.workspace)))
    hub = TaskHub(app, clock)
    hub.observe(timeline.on_hub_record)
    if observer is not None:
        hub.observe(observer)
    api = ManagementApi(hub)
    api.start()
    loop = WORKER_LOOP.acquire()
    try:
        client = _Client(df.DurableOrchestrationClient(api.client_binding_json()), loop)
        instance = instance_id_for(scenario.rollout.endpoint_name)
        hub.start(ORCHESTRATOR, instance, versioned_input(scenario.rollout.to_dict()))
        _schedule_world(scenario, hub, client, backend, timeline, instance, clock, start)
        hub.run(until=lambda: _finished(hub, instance), max_virtual_seconds=MAX_VIRTUAL_DAYS * 86400)
        status = hub.get_status(instance) or {}
        history = hub.history(instance)
    finally:
        WORKER_LOOP.release()
        api.stop()
    result = _result(status, _traffic_changes(backend, scenario), timeline, clock.now(), start)
    result.history = history
    return result


class _Client:
    """Runs ``DurableOrchestrationClient`` calls from synchronous code on the process's worker loop
    (the SDK keeps one aiohttp session per process, bound to one loop)."""

    def __init__(self, client: df.DurableOrchestrationClient, loop: asyncio.AbstractEventLoop) -> None:
        self.client, self.loop = client, loop

    def run(self, make: Callable[[df.DurableOrchestrationClient], Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(make(self.client), self.loop).result(timeout=30)


def _schedule_world(scenario: Scenario, hub: TaskHub, client: _Client, backend: Backend,
                    timeline: Timeline, instance: str, clock: Clock, start: datetime) -> None:
    """Schedule the scenario's alerts, operator controls and outside traffic changes."""
    scope = ManagedScope((scenario.workspace,))
    for alert in scenario.alerts:
        def deliver(payload: Any = alert.payload, source: str = alert.source) -> None:
            outcome = client.run(lambda c: deliver_alert(payload, c, scope, scenario.workspace))
            timeline.add(clock.now(), "alert", source=source, **outcome.to_dict())
        hub.call_at(start + alert.at, deliver)
    for control in scenario.controls:
        def send(action: str = control.action, reason: str = control.reason) -> None:
            client.run(lambda c: c.raise_event(instance, action, {"reason": reason}))
            timeline.add(clock.now(), "control", action=action, reason=reason)
        hub.call_at(start + control.at, send)
    for change in scenario.changes:
        def apply(traffic: Any = change.traffic) -> None:
            if isinstance(backend, SimulatedBackend):
                backend.workspace.update_traffic(scenario.endpoint_name, traffic, None, by="someone else")
            else:
                backend.endpoints(scenario.workspace).set_traffic(scenario.endpoint_name, traffic)
        hub.call_at(start + change.at, apply)


def _traffic_changes(backend: Backend, scenario: Scenario) -> list[TrafficChange] | None:
    """The endpoint's own record of traffic changes when simulated; None elsewhere (the timeline
    then shows the rollout's history of what it set and read back)."""
    if isinstance(backend, SimulatedBackend):
        found = backend.workspace.endpoints.get(scenario.endpoint_name.lower())
        return [] if found is None else found.changes     # an endpoint never created changed no traffic
    return None


def _finished(hub: TaskHub, instance: str) -> bool:
    status = hub.get_status(instance)
    return status is not None and status.get("runtimeStatus") not in RUNNING_STATUSES


def _result(status: dict[str, Any], changes: list[TrafficChange] | None, timeline: Timeline,
            now: datetime, start: datetime) -> SimulationResult:
    output = status.get("output")
    record = output if isinstance(output, dict) else {
        "outcome": "failed", "reason": f"orchestration {status.get('runtimeStatus', 'did not finish')}: {output}",
        **(status.get("customStatus") or {}),
    }
    history = [entry for entry in record.get("history", []) if entry.get("traffic") is not None]
    if changes is None:
        for entry in history:
            timeline.add(datetime.fromisoformat(entry["at"]), "traffic", traffic=entry["traffic"], by="read back",
                         reason=entry["reason"])
        changes = []
    reasons: dict[str, list[str]] = {}
    for entry in history:     # several changes may share a moment (a mirror removed, then a step)
        reasons.setdefault(entry["at"], []).append(entry["reason"])
    for change in changes:
        if change.by == "setup":
            continue
        fallback = "set by the rollout" if change.by == "aml-rollout" else f"changed outside the rollout ({change.by})"
        found = reasons.get(change.at.isoformat()) or []
        timeline.add(change.at, "traffic", traffic=dict(change.traffic), by=change.by,
                     mirror=dict(change.mirror_traffic), reason=found.pop(0) if found else fallback)
    ended = datetime.fromisoformat(record["ended_at"]) if record.get("ended_at") else now
    timeline.add(ended, "outcome", outcome=record.get("outcome") or "failed", reason=record.get("reason"))
    return SimulationResult(record, str(status.get("runtimeStatus")), (ended - start).total_seconds(),
                            timeline.sorted())


# --- human output ---------------------------------------------------------------------------


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"+{hours:d}:{minutes:02d}:{secs:02d}"


def _metrics(name: str, m: dict[str, Any] | None) -> str:
    if not m:
        return f"{name}: -"
    p99 = "-" if m.get("latency_p99_ms") is None else f"{m['latency_p99_ms']:.0f} ms"
    rate = f"{m['errors'] / m['requests']:.4f}" if m.get("requests") else "-"
    return f"{name}: {m['requests']} req, {m['errors']} err ({rate}), p99 {p99}"


def render(scenario: Scenario, result: SimulationResult) -> str:
    """The readable timeline."""
    request = scenario.rollout
    assert request is not None
    plan = result.record.get("plan") or {}
    steps = " -> ".join(f"{s}%" for s in plan.get("steps", request.traffic_steps or ()))
    lines = [f"Rollout of {request.new_deployment} on {request.endpoint_name}"
             f" (steps {steps or 'default'}, window {format_duration(request.observation_window)},"
             f" check every {format_duration(request.check_interval)})"]
    old, new = plan.get("old") or "no old deployment", plan.get("new", request.new_deployment)
    for event in result.timeline:
        lines.append(f"  {_clock(event['at_seconds'])}  {_describe_event(event, old, new)}")
    lines.append(f"Outcome: {result.outcome} - {result.record.get('reason')}")
    for entry in result.record.get("phases") or []:
        for container, log in (entry.get("logs") or {}).items() if isinstance(entry.get("logs"), dict) else ():
            if isinstance(log, list) and log:
                lines.append(f"Last lines of {container}'s log ({len(log)} in the record):")
                lines.extend(f"    {line}" for line in log[-5:])
    lines.append(f"Final traffic: {describe(result.to_json()['final_traffic'])}"
                 f"   steps completed: {result.record.get('steps_completed', [])}"
                 f"   virtual time: {timedelta(seconds=int(result.elapsed_seconds))}")
    return "\n".join(lines)


def _describe_event(event: dict[str, Any], old: str, new: str) -> str:
    kind = event["kind"]
    if kind == "traffic":
        mirror = event.get("mirror") or {}
        shown = describe(event["traffic"]) + "".join(f" (mirror {n}={p})" for n, p in mirror.items())
        return f"traffic   {shown:<28} {event['reason']}"
    if kind == "phase":
        return f"phase     {event.get('phase')}: {_phase_summary(event)}"
    if kind == "health_check":
        return (f"check     {_metrics(new, event.get('new'))}; {_metrics(old, event.get('old'))}"
                f" -> {event['verdict']}: {event['reason']}")
    if kind == "alert":
        alert = event["alert"]
        return f"alert     {alert.get('rule')} {alert.get('monitor_condition')} -> {event['action']}: {event['reason']}"
    if kind == "control":
        return f"control   {event['action']}: {event['reason']}"
    return f"{kind:<9} {event.get('outcome', '')}: {event.get('reason', '')}"


def _phase_summary(event: dict[str, Any]) -> str:
    """One line of a lifecycle phase's figures."""
    phase = event.get("phase")
    if phase == "creating":
        decision, capacity = event.get("decision") or {}, event.get("capacity") or {}
        made = [what for what, key in (("endpoint", "create_endpoint"), ("deployment", "create_deployment"))
                if decision.get(key)]
        text = f"create {' and '.join(made)}" if made else "nothing to create"
        if capacity:
            text += (f"; instances per step {capacity.get('instances')}, quota needs {capacity.get('needed_cores')} "
                     f"cores, {capacity.get('free_cores')} free")
        return text
    if phase == "mirroring":
        minutes = int(event.get("window_s") or 0) // 60
        return f"{event.get('percent')}% mirrored for {minutes} min, judged on {event.get('judged_on')}"
    if phase == "scaling":
        step = int(event.get("step_index") or 0) + 1
        return f"{event.get('from_instances')} -> {event.get('to_instances')} instances before step {step}"
    if phase == "autoscaling":
        return f"autoscale on {event.get('deployment')}"
    if phase == "cleaning_up":
        return f"cleanup {event.get('cleanup')} after the revert window (until {event.get('revert_until')})"
    return ""


def cloud_backend(scenario: Scenario, settings: Settings | None = None) -> tuple[Backend, Scenario]:
    """``--azure``: the Azure adapters the settings name (``load_settings()`` when None), and the scenario
    moved to the settings' workspace.

    The backend is ``AzureBackend(settings.azure)``, with ``DefaultAzureCredential``. The workspace
    is the configured one (``AML_ROLLOUT_SUBSCRIPTION_ID``, ``_RESOURCE_GROUP``, ``_WORKSPACE_NAME``,
    required); a scenario naming no workspace takes it, so that its alerts are routed for it. Raises
    ``ValueError`` when the workspace is not configured, or the scenario names another one.
    """
    from dataclasses import replace

    from adapters.azure_backend import AzureBackend
    from emulator.scenario import DEFAULT_WORKSPACE

    settings = settings or load_settings()
    workspace = settings.workspace
    if workspace is None:
        raise ValueError("--azure needs the workspace: set AML_ROLLOUT_SUBSCRIPTION_ID, AML_ROLLOUT_RESOURCE_GROUP "
                         "and AML_ROLLOUT_WORKSPACE_NAME")
    if scenario.workspace not in (DEFAULT_WORKSPACE, workspace):
        raise ValueError(f"the scenario names workspace {scenario.workspace.workspace_name!r}, the settings "
                         f"{workspace.workspace_name!r}: leave it out of the scenario or make them the same")
    return AzureBackend(settings.azure), replace(scenario, workspace=workspace)


VIRTUAL_AZURE_REFUSED = (
    "--azure: refusing to change a real endpoint on the virtual clock: steps would follow each other with no real "
    "time passing and every health check would read metrics for virtual minutes that hold no data. Add --real-clock "
    "(every wait then takes its real time), or use serve --azure")


def _many_runs(scenario: Scenario, runs: int, as_json: bool) -> int:
    """Run the scenario ``runs`` times, seeds counting up from its own, and print how often each
    outcome happened; exit 0 only when every run was promoted."""
    first = scenario.seed if scenario.seed is not None else 0
    results = [(first + n, run_simulation(replace(scenario, seed=first + n))) for n in range(runs)]
    counts: dict[str, int] = {}
    for _, result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    if as_json:
        print(json.dumps({"runs": runs, "outcomes": counts, "results": [
            {"seed": seed, "outcome": r.outcome, "reason": r.record.get("reason")} for seed, r in results]}, indent=2))
    else:
        print(f"{runs} runs, seeds {first}..{first + runs - 1}: "
              + ", ".join(f"{outcome} {count} ({count / runs:.0%})" for outcome, count in sorted(counts.items())))
        for seed, result in results:
            print(f"  seed {seed}: {result.outcome} - {result.record.get('reason')}")
    return 0 if counts.get("promoted", 0) == runs else 1


def main(argv: list[str], clock: VirtualClock | None = None) -> int:
    """Entry point of ``python -m emulator simulate``.

    ``clock``: the virtual clock to run on (default: a new one at ``SIMULATION_START``, or the wall
    clock with ``--real-clock``); a test hands the one its fake cloud runs on, and only then does
    ``--azure`` run without ``--real-clock``. ``--seed`` replaces the scenario's seed; ``--runs N``
    runs it N times (seeds counting up) and prints how often each outcome happened.
    """
    parser = argparse.ArgumentParser(prog="python -m emulator simulate", description=__doc__.splitlines()[0])
    parser.add_argument("scenario", help="scenario file (YAML or JSON)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the timeline")
    parser.add_argument("--real-clock", action="store_true",
                        help="run on the wall clock: every wait takes its real time (needed with --azure)")
    parser.add_argument("--report", metavar="FILE",
                        help="also write the rollout as one self-contained HTML page (a single run only)")
    parser.add_argument("--azure", action="store_true",
                        help="act on the endpoint and read the metrics of the Azure ML workspace the AML_ROLLOUT_* "
                             "settings name (docs/azure.md), not the scenario's simulated endpoint; needs --real-clock")
    parser.add_argument("--seed", type=int, help="seed for the synthetic metrics' noise (default: the scenario's)")
    parser.add_argument("--runs", type=int, default=1, help="run N times with seeds seed, seed+1, ... and count outcomes")
    args = parser.parse_args(argv)
    try:
        scenario = load_scenario(args.scenario, simulated_endpoint=not args.azure)
    except InvalidRequest as exc:
        report_problems(str(args.scenario), exc, sys.stderr)
        return 2
    if args.runs < 1 or (args.runs > 1 and (args.azure or args.real_clock)):
        print("--runs: must be at least 1, and more than 1 only on the simulated endpoint and virtual clock "
              "(not --azure or --real-clock)", file=sys.stderr)
        return 2
    if args.azure and not args.real_clock and clock is None:
        print(VIRTUAL_AZURE_REFUSED, file=sys.stderr)
        return 2
    run_clock: Clock | None = clock or (RealClock() if args.real_clock else None)
    if args.seed is not None:
        scenario = replace(scenario, seed=args.seed)
    backend: Backend | None = None
    if args.azure:
        try:
            backend, scenario = cloud_backend(scenario)
        except ValueError as exc:
            print(f"--azure: {exc}", file=sys.stderr)
            return 2
        workspace = scenario.workspace
        pace = "waits take their real time" if clock is None else "on the clock the caller's cloud runs on"
        print(f"--azure: endpoint {scenario.endpoint_name} of workspace {workspace.subscription_id}/"
              f"{workspace.resource_group}/{workspace.workspace_name}; the scenario's deployments, load, health and "
              f"faults are not used; {pace} (docs/azure.md)", file=sys.stderr)
    try:
        load_app()      # function_app.py as deployed, through the Python worker's own indexing
    except Exception as exc:   # the worker fails indexing on any exception, and so does this
        print(refusal(APP_SCRIPT, exc), file=sys.stderr)
        return 2
    if args.runs > 1:
        return _many_runs(scenario, args.runs, args.json)
    result = run_simulation(scenario, backend=backend, clock=run_clock)
    print(json.dumps(result.to_json(), indent=2) if args.json else render(scenario, result))
    if args.report:
        from report import render_report

        assert scenario.rollout is not None
        Path(args.report).write_text(render_report({**result.record, "request": scenario.rollout.to_dict()}), "utf-8")
    return result.exit_code()
