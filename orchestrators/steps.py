"""The rollout's walk: lifecycle and pre-flight, each step (scale, set traffic, observe), the bake, promotion.

``StepWalk.execute`` runs a rollout (or, after a continue-as-new, the rest of it) from the first
phase to its final record: lifecycle phases before traffic moves (``orchestrators.lifecycle``),
pre-flight and the plan (``rollout.plan.resolve_plan``), the baseline, then each step's traffic
change and observation window, the bake and the lifecycle after promotion. An ending action
received meanwhile (rollback, abort, promote) is carried out at the next decision point
(``act_on_intent``); one received before a step is applied means the step is never applied.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Mapping

from orchestrators.run_state import HANDOVER, Gen, RunState, StepEnd
from rollout.model import DeploymentState, EndpointState
from rollout.plan import PlanRejected, resolve_plan
from rollout.traffic import step_traffic
from rollout.window import WindowState


class StepWalk(RunState):
    """The walk from pre-flight to the final record."""

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
                    return self.finish(outcome_of(self.intent.action), f"{self.intent.reason}; no traffic was changed")
                if created is not None:
                    return self.finish("failed", created[1])
                if self.life.first_rollout_wanted:
                    return (yield from self.life.first_rollout(self.request.new_deployment))
            failure = yield from self.preflight()
            if self.intent is not None and self.intent.action != "promote":
                return self.finish(outcome_of(self.intent.action), f"{self.intent.reason}; no traffic was changed")
            if failure:
                return self.finish("failed", failure)
            assert self.plan is not None
            yield from self.notify("started")
            if self.intent is not None and self.intent.action != "promote":
                return self.finish(outcome_of(self.intent.action), f"{self.intent.reason}; no traffic was changed")
            mirrored = None
            if self.request.lifecycle.mirror is not None:
                mirrored = yield from self.life.mirroring(dict(self.record.traffic), dict(self.mirror), self.plan.new)
            start, window = 0, None
        else:
            start, window = self.restore(carried)
            self.publish()
            if self.life.first_stage is not None:       # a first rollout's window or bake goes on
                return (yield from self.life.resume_first_rollout(window))
            mirrored = None
            if self.life.mirror_stage is not None:      # the mirror's window goes on
                mirrored = yield from self.life.resume_mirroring(window)
                window = None
        if isinstance(mirrored, str) and mirrored == HANDOVER:
            return self.hand_over(0, self.window)
        if isinstance(mirrored, StepEnd):
            return (yield from self.end_early(mirrored))
        if mirrored is not None:
            return self.finish("failed", mirrored[1])
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
        return (yield from self.roll_back(outcome_of(ended.action), ended.reason))

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


def outcome_of(action: str) -> str:
    """The outcome an ending action gives: ``aborted`` for abort, else ``rolled_back``."""
    return "aborted" if action == "abort" else "rolled_back"
