"""Continue as new: keep each execution's history bounded, carrying everything the next one needs.

At every step boundary, and after ``CHECKS_PER_EXECUTION`` checks inside a window, an execution
continues as new (``hand_over``) when every event received has been taken and nothing is left to
act on; the next execution takes up the carried state (``restore``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from orchestrators.run_state import RunState
from rollout.judge import JudgeConfig, JudgeState
from rollout.plan import Plan
from rollout.record import RolloutRecord
from rollout.safety import versioned_input
from rollout.window import WindowState, window_from_dict, window_to_dict

CHECKS_PER_EXECUTION = 5        # health checks one execution makes before it continues as new (a 5-minute window)


class Handover(RunState):
    """Continue as new and take up what was carried."""

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
        lifecycle's state (its instance plan, and which lifecycle window goes on: a first rollout's
        ``first_stage``, the mirror's ``mirror_stage``; ``LifecyclePhases.carried``).

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
            "life": self.life.carried(),
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
        self.life.restore(carried.get("life") or {})
        window = carried.get("window")
        return int(carried["step_index"]), None if window is None else window_from_dict(window)
