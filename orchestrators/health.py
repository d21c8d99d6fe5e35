"""Health: the baseline before any traffic moves, and each observation window's checks.

Gather, decide, apply: each check gathers the metrics since the previous one (``check_health``),
``rollout.judge`` judges the increment with the evidence carried over the whole rollout, and
``rollout.window.next_action`` says continue, extend, pass or roll back. Pause and resume hold
and restart a window; an ending action ends it at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from orchestrators.handover import CHECKS_PER_EXECUTION
from orchestrators.run_state import HANDOVER, Gen, RunState, StepEnd
from rollout.judge import Increment, JudgeConfig, baseline_judgement, judge_increment, new_window
from rollout.model import DeploymentMetrics
from rollout.record import clip
from rollout.verdict import Verdict
from rollout.window import Action, CheckResult, ControlEvent, WindowState, next_action, next_wake, open_window


class HealthWatch(RunState):
    """The baseline and the observation windows."""

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

    def observe(self, length: timedelta, resume: WindowState | None = None) -> Gen:
        """Check health every ``check_interval`` until the window ends; returns a ``StepEnd``.

        Gather, decide, apply: each check gathers the increment since the previous check
        (``check_health``), ``rollout.judge`` judges it with the evidence carried over the whole
        rollout, and ``rollout.window.next_action`` says continue, extend, pass or roll back.
        Control events are handled the moment they arrive: an ending action ends the window,
        ``pause`` holds it (checks go on), ``resume`` restarts it. ``resume``: a window an earlier
        execution opened. After ``CHECKS_PER_EXECUTION`` checks of this execution a window that goes
        on ends with ``HANDOVER`` (``self.window`` is its state) when nothing is left to act on;
        every caller (steps, bake, mirror, a first rollout's windows) carries that state over.
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
            if self.checks_this_execution >= CHECKS_PER_EXECUTION and self.may_hand_over():
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
        old = (DeploymentMetrics.from_dict(metrics[self.plan.old])      # old is new: a first rollout, no old
               if self.plan.old in metrics and self.plan.old != self.plan.new else None)
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
                "deployments": list(dict.fromkeys([self.plan.new, self.plan.old])), "start": start.isoformat(),
                "end": end.isoformat()}
