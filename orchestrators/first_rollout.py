"""A first rollout: the endpoint's first deployment, judged after it gets 100%, rolled back to 0% when it fails.

There is no old deployment to shift from, compare with or give traffic back to. After ``creating``
(``orchestrators.lifecycle``), ``FirstRollout`` gives the new deployment 100% (written, then read
back: ``host.apply``), judges it in the request's ``observation_window`` and ``bake_time`` with the
same judge and window machinery a step uses (``host.observe``: pause, promote, abort and alerts act
as in any window) on the absolute thresholds only, then autoscales it and ends ``promoted``. A
failed verdict, an alert, a revert or an abort returns traffic to what it was before the rollout,
0% everywhere (``host.roll_back``, which never gives up), and ends ``rolled_back`` or ``aborted``
(``failed`` when the write itself failed); the deployment is kept for inspection and the reason
says so. A window that goes on past ``CHECKS_PER_EXECUTION`` checks continues as new as a step's
does (``LifecyclePhases.first_stage`` says which window; ``resume`` takes it up).

Gather, decide, apply: every decision is a pure function of ``rollout.lifecycle_plan``
(``first_rollout_plan``, ``first_rollout_judge``, ``first_rollout_baseline``, ``first_rollout_notes``,
``first_rollout_next``); this module only applies them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generator

from rollout.lifecycle_plan import (
    FirstRolloutStep,
    first_rollout_baseline,
    first_rollout_judge,
    first_rollout_next,
    first_rollout_notes,
    first_rollout_plan,
    first_rollout_record_plan,
)
from rollout.traffic import step_traffic

if TYPE_CHECKING:
    from orchestrators.lifecycle import LifecyclePhases

Gen = Generator[Any, Any, Any]


class FirstRollout:
    """One replay's first rollout, on the lifecycle ``life`` of the rollout ``life.host``."""

    def __init__(self, life: LifecyclePhases) -> None:
        self.life = life
        self.host = life.host

    def notes(self) -> tuple[str, ...]:
        """What the request asked for that cannot apply without an old deployment (for the final reason)."""
        lifecycle, request = self.life.lifecycle, self.host.request
        return first_rollout_notes(lifecycle.mirror is not None, request.traffic_steps, lifecycle.cleanup.mode)

    def start(self, new: str) -> Gen:
        """Set up the plan, the judge and the record; give ``new`` 100%; then its windows. Returns the final
        record, or None when handed over to the next execution."""
        host = self.host
        request = host.request
        before = dict(host.record.traffic)       # what the rollout found: 0% everywhere (is_first_rollout)
        host.plan = first_rollout_plan(new)
        name = host.plan.new
        host.record.plan = first_rollout_record_plan(new)
        host.expected = before
        relative = host.judge_config.max_error_rate_increase is not None or host.judge_config.max_latency_ratio is not None
        host.judge_config = first_rollout_judge(host.judge_config)
        host.record.baseline = first_rollout_baseline(host.judge_config, relative)
        bake = request.bake_time > timedelta(0)
        host.record.step_index, host.record.phase = 0, "shifting"
        host.publish()
        yield from host.notify("started")
        if host.intent is not None and host.intent.action != "promote":
            intent, host.intent = host.intent, None
            return host.finish("aborted" if intent.action == "abort" else "rolled_back",
                               f"{intent.reason}; no traffic was changed ({name} kept for inspection)")
        failure = yield from host.apply(step_traffic(host.plan, 100), "step",
                                        f"the endpoint's first deployment: {name} to 100%", interruptible=True,
                                        expected=before)
        if isinstance(failure, dict):          # drift: someone else set traffic; the final record, left as found
            return failure
        ended, why = ("failed", failure) if failure else ("passed", "")
        if host.intent is not None and (not failure or host.intent.action != "promote"):
            intent, host.intent = host.intent, None
            ended, why = intent.action, intent.reason
        step = first_rollout_next("shift", ended, why, name, bake)
        if step.action == "observe":
            host.record.phase = "observing"
            host.publish()
            yield from host.notify("step")
        return (yield from self.windows(step))

    def resume(self, window: Any) -> Gen:
        """Go on with ``life.first_stage``'s window (``window``, its state) in a continued execution."""
        step = FirstRolloutStep("observe" if self.life.first_stage == "window" else "bake")
        return (yield from self.windows(step, window))

    def windows(self, step: FirstRolloutStep, window: Any = None) -> Gen:
        """Observe the observation window, then the bake, as ``step`` says; then roll back or promote.

        Returns the final record, or None when a window was handed to the next execution
        (``host.hand_over``, with ``life.first_stage`` saying which)."""
        from orchestrators.rollout import HANDOVER  # here: orchestrators.rollout imports orchestrators.lifecycle

        host, life = self.host, self.life
        request = host.request
        assert host.plan is not None
        name, bake = host.plan.new, request.bake_time > timedelta(0)
        if step.action == "observe":
            life.first_stage = "window"
            ended = yield from host.observe(request.observation_window, window)
            if ended.action == HANDOVER:
                return host.hand_over(0, host.window)
            window = None
            if ended.action == "passed":
                host.record.steps_completed.append(100)
            step = first_rollout_next("window", ended.action, ended.reason, name, bake)
        if step.action == "bake":
            life.first_stage = "bake"
            host.record.phase = "baking"
            host.publish()
            ended = yield from host.observe(request.bake_time, window)
            if ended.action == HANDOVER:
                return host.hand_over(0, host.window)
            step = first_rollout_next("bake", ended.action, ended.reason, name, bake)
        life.first_stage = None
        if step.action == "roll_back":
            assert step.outcome is not None
            return (yield from host.roll_back(step.outcome, "; ".join([step.reason, *self.notes()])))
        note = yield from life.apply_autoscale(name)
        return host.finish("promoted", "; ".join([step.reason, *self.notes(), *([note] if note else [])]))
