"""The rollout orchestrator: shift traffic step by step, watch health, roll back on its own.

Gather, decide, apply: activities gather facts (endpoint state, metrics), pure functions from
``rollout`` decide (plan, traffic, verdicts, retries, control events), and this module applies
the decision (set traffic, start a durable timer). Every wait is a durable timer raced against
the control events with ``task_any``, so a ``rollback`` raised mid-window acts at once.

Deterministic and replay-safe: no I/O, no clock but ``context.current_utc_datetime``, no
exception types from activities (expected failures come back as ``{"ok": false}`` results).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generator, Mapping

import azure.durable_functions as df

from rollout.control import CONTROL_EVENTS, control_action
from rollout.model import DeploymentMetrics, DeploymentState, EndpointState
from rollout.plan import Plan, PlanRejected, RolloutRequest, parse_request, resolve_plan
from rollout.policy import HealthSample, Verdict, judge
from rollout.record import RolloutRecord
from rollout.retry import retry_delay
from rollout.traffic import describe, mirror_without, rollback_traffic, same_traffic, step_traffic
from rollout.wire import decoded

bp = df.Blueprint()

MAX_HEALTH_CHECK_FAULTS = 3     # consecutive failed health checks before rolling back
Gen = Generator[Any, Any, Any]


@bp.orchestration_trigger(context_name="context")
def rollout_orchestrator(context: df.DurableOrchestrationContext) -> Gen:
    """Run one rollout; the input is a rollout request dict, the output the final record."""
    run = RolloutRun(context)
    return (yield from run.execute())


@dataclass(frozen=True)
class StepEnd:
    """How an observation window ended: passed, or an action (rollback, abort, promote) with why."""

    action: str
    reason: str = ""


class EventInbox:
    """One persistent waiter per control event, replaced only once consumed.

    A waiter stays open across activities, so an event raised while an activity runs is
    kept and handled at the next wait instead of landing on an abandoned task.
    """

    def __init__(self, context: df.DurableOrchestrationContext) -> None:
        self._context = context
        self._waiters: dict[str, Any] = {}

    def waiters(self) -> list[Any]:
        """The open waiters, creating any that were consumed."""
        for name in CONTROL_EVENTS:
            if name not in self._waiters:
                self._waiters[name] = self._context.wait_for_external_event(name)
        return list(self._waiters.values())

    def take_ready(self) -> tuple[str, Any] | None:
        """The first event already received (in ``CONTROL_EVENTS`` order), consuming it."""
        for name in CONTROL_EVENTS:
            task = self._waiters.get(name)
            if task is not None and task.is_completed:
                del self._waiters[name]
                return name, decoded(task.result)
        return None


class RolloutRun:
    """The state of one orchestration episode's replay of a rollout."""

    def __init__(self, context: df.DurableOrchestrationContext) -> None:
        self.context = context
        self.request: RolloutRequest = parse_request(decoded(context.get_input()))
        self.record = RolloutRecord(self.request.to_dict(), context.instance_id, self.now)
        self.inbox = EventInbox(context)
        self.plan: Plan | None = None
        self.expected: dict[str, int] = {}      # traffic this rollout last set (or found at pre-flight)
        self.mirror: dict[str, int] = {}        # mirror traffic as last known

    @property
    def now(self) -> datetime:
        now: datetime = self.context.current_utc_datetime
        return now

    # --- the walk ------------------------------------------------------------------------

    def execute(self) -> Gen:
        """Pre-flight, then each step: drift check, set traffic, observe; then bake."""
        self.publish()
        failure = yield from self.preflight()
        if failure:
            return self.finish("failed", failure)
        assert self.plan is not None
        for index, step in enumerate(self.plan.steps):
            ended = yield from self.run_step(index, step)
            if ended is not None:
                return ended
        return (yield from self.bake())

    def preflight(self) -> Gen:
        """Read the endpoint and its deployments and resolve the plan; returns a failure reason or None."""
        result = yield from self.call_with_retry("preflight", self.endpoint_input())
        if not result["ok"]:
            return f"pre-flight failed: {result['error']['message']}"
        endpoint = EndpointState.from_dict(result["endpoint"])
        deployments = [DeploymentState.from_dict(d) for d in result["deployments"]]
        try:
            self.plan = resolve_plan(self.request, endpoint, deployments)
        except PlanRejected as exc:
            return f"pre-flight failed: {exc}"
        self.record.plan = {"old": self.plan.old, "new": self.plan.new, "steps": list(self.plan.steps),
                            "shared": self.plan.shared}
        self.record.observe(endpoint.traffic)
        self.expected = dict(self.record.traffic)
        self.mirror = dict(endpoint.mirror_traffic)
        return None

    def run_step(self, index: int, step: int) -> Gen:
        """One step; returns the final record when the rollout ends here, else None."""
        assert self.plan is not None
        self.record.step_index, self.record.phase = index, "shifting"
        self.publish()
        drift = yield from self.check_drift()
        if drift is not None:
            return drift
        label = f"step {index + 1}/{len(self.plan.steps)}: {self.plan.new} to {step}%"
        failure = yield from self.apply(step_traffic(self.plan, step), "step", label)
        if failure:
            return (yield from self.abandon(f"{label} failed: {failure}"))
        self.record.phase = "observing"
        self.publish()
        ended = yield from self.observe(self.request.observation_window)
        if ended.action == "passed":
            self.record.steps_completed.append(step)
            return None
        return (yield from self.end_early(ended))

    def bake(self) -> Gen:
        """Hold the last step for ``bake_time`` (watching health), then declare success."""
        if self.request.bake_time > timedelta(0):
            self.record.phase = "baking"
            self.publish()
            ended = yield from self.observe(self.request.bake_time)
            if ended.action != "passed":
                return (yield from self.end_early(ended))
        return self.finish("promoted", f"{self.plan.new if self.plan else ''} healthy at every step")

    def end_early(self, ended: StepEnd) -> Gen:
        """Carry out a rollback, abort or promote decided during observation."""
        if ended.action == "promote":
            return (yield from self.promote(ended.reason))
        outcome = "aborted" if ended.action == "abort" else "rolled_back"
        return (yield from self.roll_back(outcome, ended.reason))

    # --- traffic -----------------------------------------------------------------------------

    def check_drift(self) -> Gen:
        """Fail without touching traffic when someone else changed it; returns the final record or None."""
        result = yield from self.call_with_retry("read_traffic", self.endpoint_input())
        if not result["ok"]:
            return (yield from self.abandon(f"could not read traffic: {result['error']['message']}"))
        found = EndpointState.from_dict(result["endpoint"]).traffic
        if same_traffic(found, self.expected):
            return None
        reason = f"traffic changed outside this rollout: expected {describe(self.expected)}, found {describe(found)}"
        self.record.traffic_change(self.now, "drift", None, found, reason)
        return self.finish("failed", reason + "; traffic left as found")

    def apply(self, target: Mapping[str, int], kind: str, reason: str) -> Gen:
        """Set absolute traffic, read it back and compare; returns a failure reason or None."""
        assert self.plan is not None
        mirror = mirror_without(self.mirror, self.plan.new) if target.get(self.plan.new) else None
        payload = {**self.endpoint_input(), "traffic": dict(target), "mirror_traffic": mirror}
        result = yield from self.call_with_retry("set_traffic", payload)
        endpoint = result.get("endpoint")
        observed = endpoint["traffic"] if isinstance(endpoint, dict) else None
        if not result["ok"]:
            failed = f"{reason} (update failed: {result['error']['message']})"
            self.record.traffic_change(self.now, kind, target, observed, failed)
            return result["error"]["message"]
        if mirror is not None:
            self.mirror = mirror
        self.record.traffic_change(self.now, kind, target, observed, reason)
        self.expected = dict(self.record.traffic)
        if not same_traffic(observed or {}, target):
            return f"traffic read back as {describe(observed or {})}, not {describe(target)}"
        return None

    def roll_back(self, outcome: str, reason: str) -> Gen:
        """Give the old deployment the whole shared share back, then end with ``outcome``."""
        assert self.plan is not None
        self.record.phase = "rolling_back"
        self.publish()
        failure = yield from self.apply(rollback_traffic(self.plan), "rollback", reason)
        if failure:
            return self.finish("failed", f"{reason}; rollback to {self.plan.old} failed: {failure}")
        return self.finish(outcome, reason)

    def promote(self, reason: str) -> Gen:
        """Give the new deployment its whole share now and end as promoted."""
        assert self.plan is not None
        self.record.phase = "shifting"
        failure = yield from self.apply(step_traffic(self.plan, self.plan.shared), "promote", reason)
        if failure:
            return (yield from self.abandon(f"promotion failed: {failure}"))
        return self.finish("promoted", reason)

    def abandon(self, reason: str) -> Gen:
        """A step could not be carried out: return traffic to the old deployment and end as failed."""
        return (yield from self.roll_back("failed", reason))

    # --- observation -------------------------------------------------------------------------

    def observe(self, window: timedelta) -> Gen:
        """Check health every ``check_interval`` until ``window`` ends; returns a ``StepEnd``.

        A failing check ends the window with a rollback. An inconclusive window is extended
        up to ``max_inconclusive_windows`` times, then rolls back. Control events are
        handled the moment they arrive. While paused, checks go on but the window does not end.
        """
        start, extensions, faults = self.now, 0, 0
        deadline = start + window
        while True:
            due = self.now + self.request.check_interval
            open_ended = self.record.paused or self.now >= deadline   # paused, or re-checking after a fault
            event = yield from self.wait_until(due if open_ended else min(due, deadline))
            if event is not None:
                ended, restart = self.handle_event(*event)
                if ended is not None:
                    return ended
                if restart:
                    start, extensions, deadline = self.now, 0, self.now + window
                continue
            verdict, message = yield from self.check_health(start)
            faults = faults + 1 if verdict is None else 0
            if faults >= MAX_HEALTH_CHECK_FAULTS:
                return StepEnd("rollback", f"health checks failed {faults} times in a row: {message}")
            if verdict is Verdict.FAIL:
                return StepEnd("rollback", f"health check failed: {message}")
            if self.record.paused or self.now < deadline or verdict is None:
                continue
            if verdict is Verdict.PASS:
                return StepEnd("passed")
            if extensions >= self.request.max_inconclusive_windows:
                return StepEnd("rollback", f"still inconclusive after {extensions} extra window(s): {message}")
            extensions, deadline = extensions + 1, self.now + window

    def handle_event(self, name: str, payload: Any) -> tuple[StepEnd | None, bool]:
        """Apply a control event; returns (how the window ends or None, whether to restart it)."""
        action, reason = control_action(name, payload, self.record.paused)
        alert = payload.get("alert") if isinstance(payload, dict) else None
        if isinstance(alert, dict):
            self.record.note_alert(self.now, alert, "rolled back" if action == "rollback" else "recorded")
        if action in ("rollback", "abort", "promote"):
            return StepEnd(action, reason), False
        if action in ("pause", "resume"):
            self.record.hold_change(self.now, action, reason)
        self.publish()
        return None, action == "resume"

    def wait_until(self, deadline: datetime) -> Gen:
        """Wait for ``deadline`` or a control event, whichever comes first; returns the event or None."""
        ready = self.inbox.take_ready()
        if ready is not None:
            return ready
        timer = self.context.create_timer(deadline)
        winner = yield self.context.task_any([timer, *self.inbox.waiters()])
        if winner is timer:
            return None
        timer.cancel()
        return self.inbox.take_ready()

    def check_health(self, window_start: datetime) -> Gen:
        """Measure new and old since ``window_start`` and judge; returns (verdict or None on a fault, message)."""
        assert self.plan is not None
        payload = {**self.endpoint_input(), "metrics_source": self.request.metrics_source,
                   "deployments": [self.plan.new, self.plan.old],
                   "start": window_start.isoformat(), "end": self.now.isoformat()}
        result = yield from self.call("check_health", payload)
        if not result["ok"]:
            message = result["error"]["message"]
            self.record.last_health = {"at": self.now.isoformat(), "verdict": "error", "reason": message}
            self.publish()
            return None, message
        metrics = result["metrics"]
        new = DeploymentMetrics.from_dict(metrics[self.plan.new])
        old = DeploymentMetrics.from_dict(metrics[self.plan.old]) if self.plan.old in metrics else None
        judgement = judge(HealthSample(new, old), self.request)
        self.record.last_health = {
            "at": self.now.isoformat(), "window_start": window_start.isoformat(), "step": self.record.current_step(),
            "new": new.to_dict(), "old": None if old is None else old.to_dict(), **judgement.to_dict(),
        }
        self.publish()
        return judgement.verdict, judgement.reason

    # --- activities ----------------------------------------------------------------------------

    def endpoint_input(self) -> dict[str, Any]:
        workspace = self.request.workspace
        return {"endpoint_name": self.request.endpoint_name, "new_deployment": self.request.new_deployment,
                "old_deployment": self.request.old_deployment,
                "workspace": None if workspace is None else workspace.to_dict()}

    def call(self, name: str, payload: Mapping[str, Any]) -> Gen:
        """Call an activity once; an unexpected exception becomes a retryable ``{"ok": false}``."""
        try:
            result = yield self.context.call_activity(name, dict(payload))
        except Exception as exc:  # TaskFailed: the activity raised something unexpected
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return {"ok": False, "error": {"kind": "ActivityFailed", "message": f"{name} raised: {message}",
                                           "retryable": True, "retry_after": None}}
        return result

    def call_with_retry(self, name: str, payload: Mapping[str, Any]) -> Gen:
        """Call an activity, retrying retryable failures on durable timers (``rollout.retry``)."""
        attempt = 0
        while True:
            result = yield from self.call(name, payload)
            attempt += 1
            delay = None if result["ok"] else retry_delay(attempt, result["error"])
            if delay is None:
                return result
            yield self.context.create_timer(self.now + timedelta(seconds=delay))

    # --- status --------------------------------------------------------------------------------

    def publish(self) -> None:
        """Set the custom status to the current record."""
        self.context.set_custom_status(self.record.to_dict())

    def finish(self, outcome: str, reason: str) -> dict[str, Any]:
        record = self.record.finish(self.now, outcome, reason)
        self.context.set_custom_status(record)
        return record
