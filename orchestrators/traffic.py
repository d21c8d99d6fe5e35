"""Traffic: set it (absolute weights, read back), detect drift, roll back until traffic is safe.

Write, then read back: every change is one ``set_traffic`` with the whole split, whose result
is the endpoint read after the write. Traffic someone else changed (drift) is left as found and
the rollout ends ``failed``. A rollback never gives up: it is retried with backoff
(``rollout.retry.rollback_retry_delay``) until traffic is as intended or a person sends
``resolve``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Mapping

from orchestrators.run_state import Gen, RunState
from rollout.model import EndpointState
from rollout.retry import rollback_retry_delay
from rollout.safety import holds_traffic, rollback_from, rollback_plan
from rollout.traffic import describe, mirror_without, rollback_traffic, same_traffic


class TrafficControl(RunState):
    """Traffic changes, drift, rollbacks."""

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
        or of an instance a redeploy stopped, from the traffic as found (a first rollout's: to 0%,
        ``rollout.safety.rollback_plan``)."""
        plan = spec.get("plan") or {}
        self.plan = rollback_plan(plan)         # a first rollout's: back to 0% everywhere
        self.record.plan = dict(plan)
        return (yield from self.roll_back("rolled_back", str(spec.get("reason") or "rollback requested"),
                                          from_current=True))


def _traffic_of(result: Mapping[str, Any]) -> dict[str, int] | None:
    endpoint = result.get("endpoint")
    return dict(endpoint["traffic"]) if isinstance(endpoint, dict) else None
