"""The rollout orchestrator: shift traffic step by step, watch health, roll back on its own.

Gather, decide, apply: activities gather facts (endpoint state, metrics), pure functions from
``rollout`` decide (plan, traffic, verdicts, retries, control events), and this module applies
the decision (set traffic, start a durable timer). Every wait (activity calls, retry timers,
window timers) is raced against the control events (``orchestrators.waiting``), so an event acts
at the next decision point and never lands on no waiter. A rollback or abort received before a
step is applied means the step is never applied. A rollback never gives up: it is retried with
backoff until traffic is safe or a person sends ``resolve``.

Deterministic and replay-safe: no I/O, no clock but ``context.current_utc_datetime``, no
exception types from activities (expected failures come back as ``{"ok": false}`` results).
An instance started by another orchestration version is not replayed (``orchestrators.redeploy``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Generator, Mapping

import azure.durable_functions as df

from orchestrators.lifecycle import LifecyclePhases
from orchestrators.redeploy import after_redeploy
from orchestrators.waiting import EventInbox, wait_for
from rollout.control import ENDING_ACTIONS, Intent, control_action, merge_intent
from rollout.judge import Increment, JudgeConfig, JudgeState, baseline_judgement, judge_increment, new_window
from rollout.model import DeploymentMetrics, DeploymentState, EndpointState
from rollout.notes import notes_in
from rollout.notify import notification_payload, redact_url
from rollout.plan import Plan, PlanRejected, RolloutRequest, parse_request, resolve_plan
from rollout.record import RolloutRecord, clip
from rollout.retry import retry_delay, rollback_retry_delay
from rollout.safety import can_replay, carried_of, holds_traffic, rollback_from, split_input, versioned_input
from rollout.traffic import describe, mirror_without, rollback_traffic, same_traffic, step_traffic
from rollout.verdict import Verdict
from rollout.window import (
    Action,
    CheckResult,
    ControlEvent,
    WindowState,
    next_action,
    next_wake,
    open_window,
    window_from_dict,
    window_to_dict,
)
from rollout.wire import decoded

bp = df.Blueprint()

Gen = Generator[Any, Any, Any]
CHECKS_PER_EXECUTION = 5        # health checks one execution makes before it continues as new (a 5-minute window)
HANDOVER = "handover"           # a step or window handed to the next execution (continue_as_new)


@bp.orchestration_trigger(context_name="context")
def rollout_orchestrator(context: df.DurableOrchestrationContext) -> Gen:
    """Run one rollout; the input is ``rollout.safety.versioned_input(request)``, the output the final record."""
    raw = decoded(context.get_input())
    version, request, rollback_only = split_input(raw)
    if not can_replay(version):
        return (yield from after_redeploy(context, version, request))
    run = RolloutRun(context, parse_request(request))
    run.raw_request = request
    if rollback_only is not None:
        ended = yield from run.rollback_only(rollback_only)
    else:
        ended = yield from run.execute(carried_of(raw))
    if ended is None:                   # handed over (continue as new)
        return None
    return (yield from run.notify_outcome(ended))


@dataclass(frozen=True)
class StepEnd:
    """How an observation window ended: passed, or an action (rollback, abort, promote) with why."""

    action: str
    reason: str = ""


class RolloutRun:
    """The state of one orchestration episode's replay of a rollout."""

    def __init__(self, context: df.DurableOrchestrationContext, request: RolloutRequest,
                 inbox: EventInbox | None = None) -> None:
        self.context = context
        self.request = request
        self.record = RolloutRecord(self.request.to_dict(), context.instance_id, self.now)
        self.inbox = inbox or EventInbox(context)
        self.plan: Plan | None = None
        self.expected: dict[str, int] = {}      # traffic this rollout last set (or found at pre-flight)
        self.mirror: dict[str, int] = {}        # mirror traffic as last known
        self.intent: Intent | None = None       # an ending action received, not yet carried out
        self.resolution: str | None = None      # a person's resolve, while a rollback is retried
        self.holds = 0                          # pause/resume changes received (a window re-plans on each)
        self.restart_window = False
        self.life = LifecyclePhases(self)
        self.judge_config = JudgeConfig.from_request(request)
        self.judge_state = JudgeState()         # the judge's evidence, carried over the whole rollout
        self.last_check_at: datetime | None = None   # where the next check's increment starts
        self.raw_request: Mapping[str, Any] = request.to_dict()   # the input's request, as given
        self.checks_this_execution = 0
        self.window: WindowState | None = None  # the window being observed (carried on a handover)
        self.notices: list[dict[str, Any]] = []  # notifications due (pause, resume), not sent yet

    @property
    def now(self) -> datetime:
        now: datetime = self.context.current_utc_datetime
        return now

    # --- the walk ------------------------------------------------------------------------

    def execute(self, carried: Mapping[str, Any] | None = None) -> Gen:
        """Lifecycle (create, mirror), pre-flight, then each step: scale, set traffic (its read is the
        drift check), observe; then bake and the lifecycle after promotion.

        The history stays bounded: at every step boundary, and after ``CHECKS_PER_EXECUTION`` checks
        inside a window, the execution continues as new (``hand_over``), carrying everything the
        next one needs; ``carried`` is that state when this execution is such a continuation.
        """
        if carried is None:
            self.publish()
            if self.life.needs_creating:
                created = yield from self.life.creating(self.request.new_deployment, self.request.old_deployment)
                if self.intent is not None and self.intent.action != "promote":
                    return self.finish(_outcome(self.intent.action), f"{self.intent.reason}; no traffic was changed")
                if created is not None:
                    return self.finish("failed", created[1])
                if self.life.first_rollout_wanted:
                    return (yield from self.life.first_rollout(self.request.new_deployment))
            failure = yield from self.preflight()
            if self.intent is not None and self.intent.action != "promote":
                return self.finish(_outcome(self.intent.action), f"{self.intent.reason}; no traffic was changed")
            if failure:
                return self.finish("failed", failure)
            assert self.plan is not None
            yield from self.notify("started")
            if self.intent is not None and self.intent.action != "promote":
                return self.finish(_outcome(self.intent.action), f"{self.intent.reason}; no traffic was changed")
            if self.request.lifecycle.mirror is not None:
                mirrored = yield from self.life.mirroring(dict(self.record.traffic), dict(self.mirror), self.plan.new)
                if isinstance(mirrored, StepEnd):
                    return (yield from self.end_early(mirrored))
                if mirrored is not None:
                    return self.finish("failed", mirrored[1])
            start, window = 0, None
        else:
            start, window = self.restore(carried)
            self.publish()
        assert self.plan is not None
        for index in range(start, len(self.plan.steps)):
            ended = yield from self.run_step(index, self.plan.steps[index], window)
            window = None
            if ended == HANDOVER:
                return self.hand_over(index, self.window)
            if ended is not None:
                return ended
            if self.may_hand_over():
                return self.hand_over(index + 1, None)
        ended = yield from self.bake(window)
        return self.hand_over(len(self.plan.steps), self.window) if ended == HANDOVER else ended

    # --- continue as new -------------------------------------------------------------------------

    def may_hand_over(self) -> bool:
        """Whether this execution may continue as new now: every event received so far taken, and
        none left to act on (an ending action is carried out here, not handed over) and no
        notification due (``notices`` are sent here, never carried over)."""
        for name, payload in self.inbox.take_ready():
            self.receive(name, payload)
        return self.intent is None and self.resolution is None and not self.notices

    def hand_over(self, step_index: int, window: WindowState | None) -> None:
        """Continue as new at ``step_index`` (``len(steps)``: the bake), in ``window`` when mid-window,
        carrying the plan, the record, the traffic expected, the judge's evidence, the holds and the
        lifecycle's instance plan.

        Events raised after this are not lost: the Durable Task Framework carries the ones it
        processes after the ``ContinueAsNew`` action into the next execution
        (``TaskOrchestrationContext.HandleEventRaisedEvent``, ``BehaviorOnContinueAsNew.Carryover``,
        Azure Storage's default), and those still queued are delivered to it.
        """
        assert self.plan is not None
        carried = {
            "step_index": step_index, "window": None if window is None else window_to_dict(window),
            "plan": {"old": self.plan.old, "new": self.plan.new, "steps": list(self.plan.steps),
                     "shared": self.plan.shared, "others": dict(self.plan.others)},
            "record": self.record.snapshot(), "expected": dict(self.expected), "mirror": dict(self.mirror),
            "judge": self.judge_state.to_dict(), "relative_only": self.judge_config.relative_only,
            "last_check_at": None if self.last_check_at is None else self.last_check_at.isoformat(),
            "holds": self.holds, "restart_window": self.restart_window,
            "life": {"instances": list(self.life.instances), "current_instances": self.life.current_instances},
        }
        self.context.continue_as_new(versioned_input(self.raw_request, carried=carried))

    def restore(self, carried: Mapping[str, Any]) -> tuple[int, WindowState | None]:
        """Take up what ``hand_over`` carried; returns the step index and the window to resume."""
        plan = carried["plan"]
        self.plan = Plan(str(plan["old"]), str(plan["new"]), tuple(plan["steps"]), int(plan["shared"]),
                         dict(plan.get("others") or {}))
        self.record = RolloutRecord.restore(carried["record"])
        self.expected, self.mirror = dict(carried["expected"]), dict(carried["mirror"])
        self.judge_state = JudgeState.from_dict(carried["judge"])
        self.judge_config = JudgeConfig.from_request(self.request, relative_only=bool(carried["relative_only"]))
        at = carried.get("last_check_at")
        self.last_check_at = None if at is None else datetime.fromisoformat(at)
        self.holds, self.restart_window = int(carried["holds"]), bool(carried["restart_window"])
        life = carried.get("life") or {}
        self.life.instances = tuple(int(n) for n in life.get("instances", ()))
        self.life.current_instances = int(life.get("current_instances", 0))
        window = carried.get("window")
        return int(carried["step_index"]), None if window is None else window_from_dict(window)

    def preflight(self) -> Gen:
        """Read the endpoint and its deployments and resolve the plan; returns a failure reason or None."""
        result = yield from self.call_with_retry("preflight", self.endpoint_input(), interruptible=True)
        if not result["ok"]:
            return f"pre-flight failed: {result['error']['message']}"
        endpoint = EndpointState.from_dict(result["endpoint"])
        deployments = [DeploymentState.from_dict(d) for d in result["deployments"]]
        self.record.observe(endpoint.traffic)
        try:
            self.plan = resolve_plan(self.request, endpoint, deployments)
        except PlanRejected as exc:
            return f"pre-flight failed: {exc}"
        self.record.plan = {"old": self.plan.old, "new": self.plan.new, "steps": list(self.plan.steps),
                            "shared": self.plan.shared}
        self.expected = dict(self.record.traffic)
        self.mirror = dict(endpoint.mirror_traffic)
        return (yield from self.check_baseline())

    def check_baseline(self) -> Gen:
        """Measure the old deployment over the last ``observation_window`` before any traffic moves
        (``rollout.judge.baseline_judgement``); returns a failure reason or None.

        When old already fails the thresholds: ``on_unhealthy_baseline: refuse`` (the default) ends
        the rollout here; ``proceed`` judges new relative to old only, and the record says so. A
        baseline that cannot be measured (the query fails, old served nothing) is recorded as
        unknown and new is judged on every threshold.
        """
        assert self.plan is not None
        start = self.now - self.request.observation_window
        payload = {**self.metrics_input(start, self.now), "deployments": [self.plan.old]}
        result = yield from self.call_with_retry("check_health", payload, interruptible=True)
        if not result["ok"]:
            self.record.baseline = {"verdict": "unknown", "reason": clip(f"could not measure {self.plan.old}: "
                                                                         f"{result['error']['message']}")}
            return None
        old = DeploymentMetrics.from_dict(result["metrics"][self.plan.old])
        judgement = baseline_judgement(old, self.judge_config)
        verdict = "unknown" if judgement.verdict is Verdict.INCONCLUSIVE else judgement.verdict.value
        self.record.baseline = {"verdict": verdict, "since": start.isoformat(), "old": old.to_dict(),
                                "reason": clip(judgement.reason), "judged": "on every threshold"}
        if judgement.verdict is not Verdict.FAIL:
            return None
        if self.request.on_unhealthy_baseline == "refuse":
            return (f"pre-flight: the old deployment already fails the thresholds ({judgement.reason}); "
                    "no traffic was changed (on_unhealthy_baseline: proceed rolls out judged against old only)")
        self.judge_config = JudgeConfig.from_request(self.request, relative_only=True)
        self.record.baseline["judged"] = "relative to old only (on_unhealthy_baseline: proceed)"
        return None

    def run_step(self, index: int, step: int, window: WindowState | None = None) -> Gen:
        """One step; returns the final record when the rollout ends here, ``HANDOVER`` when the
        window goes on in the next execution, else None. ``window``: resume observing it (the step's
        traffic was set by an earlier execution)."""
        assert self.plan is not None
        if window is not None:
            self.record.step_index, self.record.phase = index, "observing"
            return (yield from self.step_observed(step, window))
        self.record.step_index, self.record.phase = index, "shifting"
        self.publish()
        if self.intent is not None:
            return (yield from self.act_on_intent())
        scaled = yield from self.life.scale_for_step(index, self.plan.new)
        if self.intent is not None:
            return (yield from self.act_on_intent())
        if scaled is not None:
            return (yield from self.abandon(f"scaling {self.plan.new} before step {index + 1} failed: {scaled[1]}"))
        self.record.phase = "shifting"
        label = f"step {index + 1}/{len(self.plan.steps)}: {self.plan.new} to {step}%"
        failure = yield from self.apply(step_traffic(self.plan, step), "step", label, interruptible=True,
                                        expected=self.expected)
        if isinstance(failure, dict):       # drift: the final record, traffic left as found
            return failure
        if self.intent is not None:
            return (yield from self.act_on_intent())
        if failure:
            return (yield from self.abandon(f"{label} failed: {failure}"))
        self.record.phase = "observing"
        self.publish()
        yield from self.notify("step")
        return (yield from self.step_observed(step, None))

    def step_observed(self, step: int, window: WindowState | None) -> Gen:
        """Observe the step's window (or resume ``window``) and act on how it ended."""
        ended = yield from self.observe(self.request.observation_window, window)
        if ended.action == HANDOVER:
            return HANDOVER
        if ended.action == "passed":
            self.record.steps_completed.append(step)
            return None
        return (yield from self.end_early(ended))

    def bake(self, window: WindowState | None = None) -> Gen:
        """Hold the last step for ``bake_time`` (watching health), then declare success; ``HANDOVER``
        when the bake goes on in the next execution."""
        if self.request.bake_time > timedelta(0):
            self.record.phase = "baking"
            self.publish()
            ended = yield from self.observe(self.request.bake_time, window)
            if ended.action == HANDOVER:
                return HANDOVER
            if ended.action != "passed":
                return (yield from self.end_early(ended))
        return (yield from self.life.after_promotion(f"{self.plan.new if self.plan else ''} healthy at every step"))

    def act_on_intent(self) -> Gen:
        """Carry out the ending action received while waiting for something else."""
        assert self.intent is not None
        intent, self.intent = self.intent, None
        return (yield from self.end_early(StepEnd(intent.action, intent.reason)))

    def end_early(self, ended: StepEnd) -> Gen:
        """Carry out a rollback, abort or promote decided during observation."""
        if ended.action == "promote":
            return (yield from self.promote(ended.reason))
        return (yield from self.roll_back(_outcome(ended.action), ended.reason))

    # --- traffic -----------------------------------------------------------------------------

    def check_drift(self) -> Gen:
        """Fail without touching traffic when someone else changed it; returns the final record or None."""
        result = yield from self.call_with_retry("read_traffic", self.endpoint_input(), interruptible=True)
        if not result["ok"]:
            if self.intent is not None:
                return None
            return (yield from self.abandon(f"could not read traffic: {result['error']['message']}"))
        found = EndpointState.from_dict(result["endpoint"]).traffic
        if same_traffic(found, self.expected):
            return None
        reason = f"traffic changed outside this rollout: expected {describe(self.expected)}, found {describe(found)}"
        self.record.traffic_change(self.now, "drift", None, found, reason)
        return self.finish("failed", reason + "; traffic left as found")

    def apply(self, target: Mapping[str, int], kind: str, reason: str, interruptible: bool = False,
              expected: Mapping[str, int] | None = None) -> Gen:
        """Set absolute traffic, read it back and compare; returns a failure reason or None.

        ``interruptible``: a rollback, abort (or promote) received during a retry wait stops the retries.
        ``expected``: the traffic this rollout last set; when the endpoint's own read finds other traffic
        (drift, ``TrafficDrift``), nothing is written and the rollout ends ``failed`` with traffic left as
        found: the final record is returned instead of a reason.
        """
        assert self.plan is not None
        mirror = mirror_without(self.mirror, self.plan.new) if target.get(self.plan.new) else None
        payload = {**self.endpoint_input(), "traffic": dict(target), "mirror_traffic": mirror,
                   "expected": None if expected is None else dict(expected)}
        result = yield from self.call_with_retry("set_traffic", payload, interruptible=interruptible)
        observed = _traffic_of(result)
        if not result["ok"] and result["error"].get("kind") == "TrafficDrift":
            found = observed or {}
            drift = f"traffic changed outside this rollout: expected {describe(self.expected)}, found {describe(found)}"
            self.record.traffic_change(self.now, "drift", None, found, drift)
            return self.finish("failed", drift + "; traffic left as found")
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

    def roll_back(self, outcome: str, reason: str, from_current: bool = False) -> Gen:
        """Give the old deployment the whole shared share back, then end with ``outcome``.

        Never gives up: every failure (or a read-back that differs) is tried again after
        ``rollout.retry.rollback_retry_delay``, publishing phase ``rolling_back`` with the last error,
        until traffic is as intended or a person sends ``resolve``. ``from_current``: each try first
        reads traffic and moves the new deployment's share as found (``rollout.safety.rollback_from``).
        """
        assert self.plan is not None
        self.record.phase, self.intent = "rolling_back", None
        self.publish()
        attempt = 0
        while True:
            result, goal = yield from self.rollback_attempt(from_current)
            attempt += 1
            if result is None:
                self.record.rollback_succeeded()
                return self.finish(outcome, f"{reason}; {self.plan.new} holds no traffic")
            observed = _traffic_of(result)
            if result["ok"] and same_traffic(observed or {}, goal):
                self.record.traffic_change(self.now, "rollback", goal, observed, reason)
                self.record.rollback_succeeded()
                return self.finish(outcome, reason)
            if observed is not None:
                self.record.observe(observed)
            error = dict(result["error"]) if not result["ok"] else {
                "message": f"traffic read back as {describe(observed or {})}, not {describe(goal)}"}
            if self.resolution is not None:
                return (yield from self.resolve(outcome, reason))
            delay = rollback_retry_delay(attempt, error)
            self.record.rollback_attempt_failed(self.now, attempt, str(error.get("message")),
                                                self.now + timedelta(seconds=delay))
            self.publish()
            timer = self.context.create_timer(self.now + timedelta(seconds=delay))
            if not (yield from self.wait(timer, stop=lambda: self.resolution is not None)):
                timer.cancel()
                return (yield from self.resolve(outcome, reason))

    def rollback_attempt(self, from_current: bool) -> Gen:
        """One try: (the ``set_traffic`` result, or a failed read's, and the traffic aimed at); (None,
        traffic) when a read finds the new deployment already holding none."""
        assert self.plan is not None
        goal = rollback_traffic(self.plan)
        if from_current:
            read = yield from self.call("read_traffic", self.endpoint_input())
            if not read["ok"]:
                return read, goal
            found = EndpointState.from_dict(read["endpoint"]).traffic
            self.record.observe(found)
            if not holds_traffic(found, self.plan.new):
                return None, dict(found)
            goal = rollback_from(found, self.plan.old, self.plan.new)
        payload = {**self.endpoint_input(), "traffic": goal, "mirror_traffic": None}
        result = yield from self.call("set_traffic", payload)
        return result, goal

    def resolve(self, outcome: str, reason: str) -> Gen:
        """A person stopped a failing rollback: read traffic once and end, saying what it is."""
        assert self.plan is not None
        result = yield from self.call("read_traffic", self.endpoint_input())
        found = EndpointState.from_dict(result["endpoint"]).traffic if result["ok"] else None
        by = f"rollback stopped by a person ({self.resolution})"
        if found is None:
            self.record.traffic_change(self.now, "resolve", None, None, f"{by}; traffic could not be read")
            return self.finish("failed", f"{reason}; {by}; traffic could not be read: {result['error']['message']}")
        self.record.traffic_change(self.now, "resolve", None, found, by)
        if holds_traffic(found, self.plan.new):
            return self.finish("failed", f"{reason}; {by}; {self.plan.new} still holds traffic: {describe(found)}")
        return self.finish(outcome, f"{reason}; {by}; traffic is safe: {describe(found)}")

    def rollback_only(self, spec: Mapping[str, Any]) -> Gen:
        """Return traffic of an endpoint whose last rollout ended unsafe (``rollout.safety.ended_unsafe``),
        or of an instance a redeploy stopped, from the traffic as found."""
        plan = spec.get("plan") or {}
        self.plan = Plan(str(plan["old"]), str(plan["new"]), tuple(plan.get("steps") or ()), int(plan["shared"]))
        self.record.plan = dict(plan)
        return (yield from self.roll_back("rolled_back", str(spec.get("reason") or "rollback requested"),
                                          from_current=True))

    def promote(self, reason: str) -> Gen:
        """Give the new deployment its whole share now and end as promoted (a rollback received meanwhile wins)."""
        assert self.plan is not None
        self.record.phase = "shifting"
        drift = yield from self.check_drift()        # also lets events queued behind the promote in
        if drift is not None:
            return drift
        if self.intent is not None:
            return (yield from self.act_on_intent())
        failure = yield from self.apply(step_traffic(self.plan, self.plan.shared), "promote", reason,
                                        interruptible=True)
        if self.intent is not None:
            return (yield from self.act_on_intent())
        if failure:
            return (yield from self.abandon(f"promotion failed: {failure}"))
        return (yield from self.life.after_promotion(reason))

    def abandon(self, reason: str) -> Gen:
        """A step could not be carried out: return traffic to the old deployment and end as failed."""
        return (yield from self.roll_back("failed", reason))

    # --- observation -------------------------------------------------------------------------

    def observe(self, length: timedelta, resume: WindowState | None = None, may_hand_over: bool = True) -> Gen:
        """Check health every ``check_interval`` until the window ends; returns a ``StepEnd``.

        Gather, decide, apply: each check gathers the increment since the previous check
        (``check_health``), ``rollout.judge`` judges it with the evidence carried over the whole
        rollout, and ``rollout.window.next_action`` says continue, extend, pass or roll back.
        Control events are handled the moment they arrive: an ending action ends the window,
        ``pause`` holds it (checks go on), ``resume`` restarts it. ``resume``: a window an earlier
        execution opened. After ``CHECKS_PER_EXECUTION`` checks of this execution a window that goes
        on ends with ``HANDOVER`` (``self.window`` is its state) when nothing is left to act on,
        unless ``may_hand_over`` is False (a lifecycle phase's window, such as the mirror's, whose
        state is not carried over: it runs to its end in this execution).
        """
        if resume is not None:
            window = resume
        else:
            window = open_window(self.now, length, paused=self.record.paused)
            self.judge_state = new_window(self.judge_state)
            if self.last_check_at is None:       # the first window: measure from the first step's change
                self.last_check_at = self.now
        self.restart_window = False
        while True:
            if self.intent is not None:
                intent, self.intent = self.intent, None
                return StepEnd(intent.action, intent.reason)
            if self.notices:
                yield from self.send_notices()
                continue
            window = self.follow_holds(window)
            timer = self.context.create_timer(next_wake(window, self.now, self.request.check_interval))
            if not (yield from self.wait(timer, stop=self.state_changed_since(self.holds))):
                timer.cancel()
                continue
            result = yield from self.check_health()
            window = self.follow_holds(window)
            if self.intent is not None:
                continue
            decision = next_action(window, self.now, result, self.request.max_inconclusive_windows)
            window = decision.state
            if decision.action is Action.ROLLBACK:
                return StepEnd("rollback", decision.reason)
            if decision.action is Action.PASS:
                return StepEnd("passed")
            self.checks_this_execution += 1
            if may_hand_over and self.checks_this_execution >= CHECKS_PER_EXECUTION and self.may_hand_over():
                self.window = self.follow_holds(window)
                return StepEnd(HANDOVER)

    def follow_holds(self, window: WindowState) -> WindowState:
        """The window after the pauses and resumes received since it was last asked
        (``rollout.window.next_action``); a resume also restarts the judge's window counters."""
        if self.restart_window:
            self.restart_window = False
            window = next_action(window, self.now, ControlEvent("resume"), 0).state
            self.judge_state = new_window(self.judge_state)
        if self.record.paused and not window.paused:
            window = next_action(window, self.now, ControlEvent("pause"), 0).state
        return window

    def state_changed_since(self, holds: int) -> Callable[[], bool]:
        """A ``stop`` for a window timer: an ending action arrived, or the rollout was paused or resumed."""
        return lambda: self.intent is not None or self.holds != holds

    def receive(self, name: str, payload: Any) -> None:
        """Take one control event: record notes and holds now, keep an ending action as the intent."""
        action, reason = control_action(name, payload, self.record.paused)
        rolling_back = self.record.phase in ("rolling_back", "done")     # done: only the final notification left
        for alert, count in notes_in(payload):
            acted = action == "rollback" and not rolling_back
            self.record.note_alert(self.now, alert, "rolled back" if acted else "recorded", count)
        if action in ENDING_ACTIONS and not rolling_back:
            self.intent = merge_intent(self.intent, action, reason)
        elif action == "resolve" and rolling_back:
            self.resolution = clip(reason)
        elif action in ("pause", "resume") and not rolling_back:
            self.record.hold_change(self.now, action, reason)
            self.holds += 1
            self.restart_window = self.restart_window or action == "resume"
            self.due("paused" if action == "pause" else "resumed")
        self.publish()

    def check_health(self) -> Gen:
        """Gather what new and old served since the previous check and judge it; returns a
        ``rollout.window.CheckResult`` (verdict None when the check itself failed)."""
        assert self.plan is not None
        start = self.last_check_at or self.now
        result = yield from self.call("check_health", self.metrics_input(start, self.now))
        if not result["ok"]:
            message = result["error"]["message"]
            self.record.last_health = {"at": self.now.isoformat(), "step": self.record.current_step(),
                                       "verdict": "error", "reason": clip(message)}
            self.publish()
            return CheckResult(None, message)
        self.last_check_at = self.now
        metrics = result["metrics"]
        new = DeploymentMetrics.from_dict(metrics[self.plan.new])
        old = DeploymentMetrics.from_dict(metrics[self.plan.old]) if self.plan.old in metrics else None
        minutes = max((self.now - start).total_seconds() / 60, 1e-9)
        self.judge_state, judgement = judge_increment(self.judge_state, Increment(new, old, minutes),
                                                      self.judge_config)
        self.record.last_health = {
            "at": self.now.isoformat(), "since": start.isoformat(), "step": self.record.current_step(),
            "new": new.to_dict(), "old": None if old is None else old.to_dict(), **judgement.to_dict(),
        }
        self.publish()
        return CheckResult(judgement.verdict, judgement.reason, judgement.needed_minutes)

    def metrics_input(self, start: datetime, end: datetime) -> dict[str, Any]:
        assert self.plan is not None
        return {**self.endpoint_input(), "metrics_source": self.request.metrics_source,
                "deployments": [self.plan.new, self.plan.old], "start": start.isoformat(), "end": end.isoformat()}

    # --- activities and waits --------------------------------------------------------------------

    def endpoint_input(self) -> dict[str, Any]:
        workspace = self.request.workspace
        return {"endpoint_name": self.request.endpoint_name, "new_deployment": self.request.new_deployment,
                "old_deployment": self.request.old_deployment,
                "workspace": None if workspace is None else workspace.to_dict()}

    def wait(self, task: Any, stop: Callable[[], bool] | None = None, abandonable: bool = False) -> Gen:
        """``orchestrators.waiting.wait_for`` with this run's inbox and ``receive``."""
        return (yield from wait_for(self.context, self.inbox, task, self.receive, stop, abandonable))

    def call(self, name: str, payload: Mapping[str, Any]) -> Gen:
        """Call an activity once, racing the control events; an unexpected exception becomes a
        retryable ``{"ok": false}``."""
        task = self.context.call_activity(name, dict(payload))
        yield from self.wait(task)
        result = task.result
        if isinstance(result, Exception):   # TaskFailed: the activity raised something unexpected
            text = str(result).strip()
            message = text.splitlines()[0] if text else type(result).__name__
            return {"ok": False, "error": {"kind": "ActivityFailed", "message": f"{name} raised: {message}",
                                           "retryable": True, "retry_after": None}}
        return result

    def call_with_retry(self, name: str, payload: Mapping[str, Any], interruptible: bool = False) -> Gen:
        """Call an activity, retrying retryable failures on durable timers (``rollout.retry``).

        Each retry wait races the control events. ``interruptible``: once a rollback, abort or
        promote has been received, no further try is made and the last failure is returned.
        """
        attempt = 0
        while True:
            result = yield from self.call(name, payload)
            attempt += 1
            delay = None if result["ok"] else retry_delay(attempt, result["error"])
            if delay is None or (interruptible and self.intent is not None):
                return result
            timer = self.context.create_timer(self.now + timedelta(seconds=delay))
            stop = (lambda: self.intent is not None) if interruptible else None
            if not (yield from self.wait(timer, stop)):
                timer.cancel()
                return result

    # --- notifications ----------------------------------------------------------------------------

    def due(self, kind: str) -> None:
        """Queue event ``kind``'s notification (as the record says now) for the next ``send_notices``."""
        payload = notification_payload(kind, self.record.to_dict(), self.request.notify, self.now.isoformat())
        if payload is not None:
            self.notices.append(payload)

    def notify(self, kind: str) -> Gen:
        """Send event ``kind`` now (with any queued before it), unless an ending action is waiting."""
        self.due(kind)
        yield from self.send_notices()

    def send_notices(self) -> Gen:
        """Send the queued notifications, one ``send_notifications`` activity each, in order.

        Each send is raced against the control events and given up the moment an ending action
        (rollback, abort, promote) is received: the caller acts on it at once, never after the send.
        A send given up on (its activity may still run) and those not started are recorded as not
        waited for. Nothing is raised: a failed delivery is only recorded.
        """
        while self.notices and self.intent is None:
            payload = self.notices.pop(0)
            task = self.context.call_activity("send_notifications", payload)
            if (yield from self.wait(task, stop=lambda: self.intent is not None, abandonable=True)):
                self.note_sent(payload, task.result)
            else:
                self.note_unsent(payload, "not waited for: a rollback, abort or promote came first")
        for payload in self.notices:
            self.note_unsent(payload, "not sent: a rollback, abort or promote came first")
        self.notices = []

    def notify_outcome(self, output: Mapping[str, Any]) -> Gen:
        """After the outcome's traffic is in place: send the notifications still due and the outcome's
        (waiting for each to end: nothing is left to protect), then return the final record with them."""
        if output.get("outcome") is None:
            return output
        self.due(str(output["outcome"]))
        if not self.notices:
            return output
        for payload in self.notices:
            task = self.context.call_activity("send_notifications", payload)
            yield from self.wait(task)
            self.note_sent(payload, task.result)
        self.notices = []
        self.context.set_custom_status(self.record.to_dict())
        return {**output, "notifications": list(self.record.notifications)}

    def note_sent(self, payload: Mapping[str, Any], result: Any) -> None:
        """Record a send's result (an activity that raised is recorded as not delivered) and publish."""
        if not isinstance(result, Mapping):   # TaskFailed: send_notifications never raises, but a host can fail it
            self.note_unsent(payload, f"send_notifications failed: {str(result).strip().splitlines()[:1]}")
            return
        self.record.note_notifications(result)
        self.publish()

    def note_unsent(self, payload: Mapping[str, Any], why: str) -> None:
        event = payload["event"]
        self.record.note_notifications({"sent": [
            {"at": self.now.isoformat(), "event": event["kind"], "target": redact_url(str(t["url"])),
             "format": t["format"], "delivered": None, "attempts": None, "error": why}
            for t in payload["targets"]]})
        self.publish()

    # --- status --------------------------------------------------------------------------------

    def publish(self) -> None:
        """Set the custom status to the current record."""
        self.context.set_custom_status(self.record.to_dict())

    def finish(self, outcome: str, reason: str) -> dict[str, Any]:
        """End: the custom status is the bounded record, the output the full one (container logs included)."""
        output = self.record.finish(self.now, outcome, reason)
        self.context.set_custom_status(self.record.to_dict())
        return output


def _outcome(action: str) -> str:
    return "aborted" if action == "abort" else "rolled_back"


def _traffic_of(result: Mapping[str, Any]) -> dict[str, int] | None:
    endpoint = result.get("endpoint")
    return dict(endpoint["traffic"]) if isinstance(endpoint, dict) else None
