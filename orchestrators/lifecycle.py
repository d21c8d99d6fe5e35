"""The lifecycle phases of a rollout: creating, mirroring, scaling, autoscale and cleaning_up.

``LifecyclePhases`` runs inside the rollout orchestrator (``orchestrators.rollout.RolloutRun``,
its ``host``) with the same rules: activities gather, pure functions from ``rollout`` decide
(``lifecycle_plan``, ``capacity``, ``operation``, ``cleanup``), and every wait is a durable timer
raced against the control events (``host.wait``). Long Azure operations are started by one
activity and polled by another on durable timers until ``rollout.operation.next_step`` ends them.

Phases, each recorded in ``record.phases`` with its times and figures:

- ``creating``: inspect the endpoint, the new deployment and the quota; refuse a different spec
  or a plan the quota cannot cover (before anything is created or any traffic moves); create the
  endpoint and the deployment when missing and wait for them (``create_timeout``). A failed
  creation ends the rollout ``failed`` with Azure's error and the last 100 lines of both
  containers' logs in the record.
- ``mirroring``: mirror ``percent`` of live traffic to the new deployment for ``window`` and judge
  it with the same policy, then remove the mirror. A failure rolls back before any user traffic.
  A long window continues as new as a step's does (``mirror_stage``; ``resume_mirroring``).
- ``scaling``: before each step, scale the new deployment to the planned instances and wait.
- after promotion: apply ``autoscale`` to the new deployment; then ``cleaning_up``: wait
  ``revert_window`` (a ``revert`` gives the old deployment its traffic back, outcome
  ``reverted``), remove the old deployment's autoscale setting and scale it down or delete it.

A first rollout (no old deployment) runs in ``orchestrators.first_rollout`` after ``creating``:
100% to the new deployment, judged in its window and bake on the absolute thresholds, rolled back
to 0% everywhere (the traffic before it) on a failed verdict, an alert or an abort; ``capacity``
then sizes nothing (``rollout.lifecycle_plan.first_rollout_capacity``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Generator, Mapping

from orchestrators.first_rollout import FirstRollout
from rollout.capacity import CapacityRejected, QuotaUsage, VmSize, mirror_plan
from rollout.cleanup import cleanup_decision
from rollout.lifecycle_plan import (
    capacity_decision,
    creation_decision,
    first_rollout_capacity,
    first_rollout_judge,
    is_first_rollout,
)
from rollout.operation import LOG_LINES, NOT_FOUND, Observed, next_step, watch
from rollout.plan import DEFAULT_STEPS
from rollout.record import clip

Gen = Generator[Any, Any, Any]
MIRROR_SOURCE = ("the new deployment's requests, errors and p99 in the request's metrics_source, split by deployment "
                 "(Azure does not document that mirrored requests are counted there; with none counted the window "
                 "stays inconclusive and the rollout rolls back, never passes)")


class LifecyclePhases:
    """The lifecycle state of one rollout's replay (no I/O: every fact comes from an activity)."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.lifecycle = host.request.lifecycle
        self.instances: tuple[int, ...] = ()
        self.current_instances = 0
        self.first_rollout_wanted = False
        """Set by ``creating``: the endpoint had no old deployment (``rollout.lifecycle_plan.is_first_rollout``)."""
        self.first_stage: str | None = None
        """A first rollout's window being observed (``window`` or ``bake``), carried over a continue-as-new."""
        self.mirror_stage: dict[str, Any] | None = None
        """The mirror's window being observed (``{"traffic": live traffic}``), carried over a continue-as-new."""

    def carried(self) -> dict[str, Any]:
        """What the next execution needs of the lifecycle (``host.hand_over``)."""
        return {"instances": list(self.instances), "current_instances": self.current_instances,
                "first_stage": self.first_stage, "mirror_stage": self.mirror_stage}

    def restore(self, life: Mapping[str, Any]) -> None:
        """Take up ``carried()`` in a continued execution (after ``host.restore``, whose judge it narrows again
        on a first rollout)."""
        self.instances = tuple(int(n) for n in life.get("instances", ()))
        self.current_instances = int(life.get("current_instances", 0))
        stage = life.get("first_stage")
        self.first_stage = str(stage) if stage else None
        mirror = life.get("mirror_stage")
        self.mirror_stage = dict(mirror) if isinstance(mirror, Mapping) else None
        if self.first_stage is not None:
            self.first_rollout_wanted = True
            self.host.judge_config = first_rollout_judge(self.host.judge_config)

    @property
    def needs_creating(self) -> bool:
        """Whether the rollout starts with the ``creating`` phase (a deployment spec or pre-scaling asked for)."""
        return self.lifecycle.deployment is not None or self.lifecycle.capacity is not None

    # --- records -------------------------------------------------------------------------------

    def begin(self, phase: str, **details: Any) -> dict[str, Any]:
        """Enter ``phase``: publish it and open its entry in ``record.phases``."""
        entry = {"phase": phase, "started_at": self.host.now.isoformat(), "ended_at": None, **details}
        self.host.record.phase = phase
        self.host.record.phases.append(entry)
        self.host.publish()
        return entry

    def end(self, entry: dict[str, Any], outcome: str, **details: Any) -> None:
        """Close a phase entry; free text (Azure's messages can be long) is clipped as the record clips it."""
        clipped = {k: clip(v) if isinstance(v, str) else v for k, v in details.items()}
        entry.update(ended_at=self.host.now.isoformat(), outcome=outcome, **clipped)
        self.host.publish()

    # --- waiting -------------------------------------------------------------------------------

    def wait(self, deadline: datetime) -> Gen:
        """Wait until ``deadline`` racing the control events (``host.wait``); hold on while paused.

        Returns True when the wait ended because an ending action (rollback, abort, promote) is
        now the host's intent, False when the deadline passed. The intent is left for the host
        to carry out.
        """
        host = self.host
        while host.intent is None:
            if host.now >= deadline and not host.record.paused:
                return False
            until = host.now + timedelta(hours=1) if host.record.paused else deadline
            timer = host.context.create_timer(until)
            if not (yield from host.wait(timer, stop=host.state_changed_since(host.holds))):
                timer.cancel()
        return True

    def watch_operation(self, kind: str, target: str, start: str, payload: dict[str, Any],
                        timeout: timedelta, instances: int | None = None) -> Gen:
        """Start a long operation and poll it on durable timers.

        Returns ``("succeeded", detail, None)``, ``("failed", reason, logs)`` or ``("interrupted", ...)``
        when an ending action arrived (the host's intent; Azure carries on with the operation).
        """
        started = yield from self.host.call_with_retry(start, payload, interruptible=True)
        if self.host.intent is not None:
            return "interrupted", "an ending action arrived", None
        if not started["ok"]:
            return "failed", started["error"]["message"], None
        operation = watch(kind, target, self.host.now, timeout, instances)
        poll = {**self.host.endpoint_input(), "kind": kind, "deployment_name": target,
                "operation_url": started.get("operation_url")}
        while True:
            result = yield from self.host.call_with_retry("operation_poll", poll, interruptible=True)
            if self.host.intent is not None:
                return "interrupted", "an ending action arrived", None
            if not result["ok"]:
                return "failed", result["error"]["message"], None
            step = next_step(operation, Observed.from_dict(result["observed"]), self.host.now)
            if step.action == "succeeded":
                return "succeeded", step.reason, None
            if step.action == "failed":
                logs = None
                if step.fetch_logs:
                    with_logs = yield from self.host.call_with_retry("operation_poll", {**poll, "log_lines": LOG_LINES})
                    logs = with_logs.get("logs") if with_logs["ok"] else None
                return "failed", step.reason, logs
            assert step.poll_at is not None
            if (yield from self.wait(step.poll_at)):
                return "interrupted", "an ending action arrived", None

    # --- creating ------------------------------------------------------------------------------

    def creating(self, new: str, old: str | None) -> Gen:
        """Inspect, check the spec and the quota, create what is missing. Returns None or ``(outcome, reason)``."""
        life = self.lifecycle
        spec = life.deployment
        entry = self.begin("creating", deployment=new)
        base = self.host.endpoint_input()
        inspect = yield from self.host.call_with_retry("lifecycle_inspect", {
            **base, "instance_type": None if spec is None else spec.instance_type})
        if not inspect["ok"]:
            return self.fail(entry, f"pre-flight failed: {inspect['error']['message']}")
        endpoint_state, new_state = inspect["endpoint"]["state"], inspect["new_status"]["state"]
        differences: list[str] = []
        if spec is not None and new_state != NOT_FOUND:
            check = yield from self.host.call_with_retry("spec_check", {**base, "deployment_name": new,
                                                                        "deployment": spec.to_dict()})
            if not check["ok"]:
                return self.fail(entry, f"pre-flight failed: {check['error']['message']}")
            differences = check["differences"]
        decision = creation_decision(endpoint_state, new_state, new, spec is not None, differences,
                                     life.endpoint is not None)
        entry["decision"] = decision.to_dict()
        if decision.refusal:
            return self.fail(entry, f"pre-flight failed: {decision.refusal}")
        refusal = yield from self.plan_capacity(entry, endpoint_state, new_state, inspect, old)
        if refusal:
            return self.fail(entry, f"pre-flight failed: {refusal}")
        if decision.create_endpoint:
            assert spec is not None
            assert life.endpoint is not None
            ended = yield from self.operation(entry, "create_endpoint", base["endpoint_name"], "create_endpoint_start", {
                **base, "endpoint": life.endpoint.to_dict()}, life.create_timeout)
            if ended:
                return ended
        if decision.create_deployment:
            assert spec is not None
            ended = yield from self.operation(entry, "create", new, "create_deployment_start", {
                **base, "deployment_name": new, "deployment": spec.to_dict()}, life.create_timeout)
            if ended:
                return ended
        self.end(entry, "succeeded")
        return None

    def plan_capacity(self, entry: dict[str, Any], endpoint_state: str, new_state: str, inspect: dict[str, Any],
                      old: str | None) -> Gen:
        """Plan instances per step and check the quota; returns a refusal or None."""
        life = self.lifecycle
        spec = life.deployment
        if spec is None and life.capacity is None:
            return None
        old_instances, old_share, held = 0, 100, 0
        if endpoint_state != NOT_FOUND:
            found = yield from self.host.call_with_retry("preflight", self.host.endpoint_input())
            if not found["ok"]:
                return str(found["error"]["message"])
            traffic = {k.lower(): v for k, v in (found["endpoint"].get("traffic") or {}).items()}
            self.host.record.observe(traffic)
            deployments = {d["name"].lower(): d for d in found["deployments"]}
            new = self.host.request.new_deployment.lower()
            self.first_rollout_wanted = is_first_rollout(endpoint_state, traffic, list(deployments), new, old)
            chosen = (old or "").lower() or max((n for n in traffic if n != new), key=lambda n: traffic[n], default="")
            old_instances = int(deployments.get(chosen, {}).get("instance_count", 0))
            old_share = int(traffic.get(chosen, 0)) or 100
            held = int(deployments.get(new, {}).get("instance_count", 0)) if new_state != NOT_FOUND else 0
            instance_count = spec.instance_count if spec is not None else max(1, held)
            instance_type = spec.instance_type if spec is not None else deployments.get(new, {}).get("instance_type")
        else:
            self.first_rollout_wanted = is_first_rollout(endpoint_state, {}, [], self.host.request.new_deployment, old)
            instance_count = spec.instance_count if spec is not None else 1
            instance_type = spec.instance_type if spec is not None else None
        self.current_instances = held or instance_count
        steps = self.host.request.traffic_steps or DEFAULT_STEPS
        size = inspect.get("vm_size")
        if size is None and instance_type and spec is None:
            more = yield from self.host.call_with_retry("lifecycle_inspect", {**self.host.endpoint_input(),
                                                                               "instance_type": instance_type})
            size = more.get("vm_size") if more["ok"] else None
            inspect = more if more["ok"] else inspect
        usages = [QuotaUsage.from_dict(u) for u in inspect.get("usages") or []]
        vm = None if size is None else VmSize.from_dict(size)
        ceiling = None if life.autoscale is None else life.autoscale.max_instances
        if self.first_rollout_wanted:
            decision = first_rollout_capacity(life.capacity, instance_count, held, vm, usages, life.autoscale is not None,
                                              ceiling)
            entry["capacity"] = {**decision.to_dict(), "old_instances": None, "old_share": None}
        else:
            decision = capacity_decision(life.capacity, steps, old_instances, old_share, instance_count, held, vm, usages,
                                         ceiling)
            entry["capacity"] = {**decision.to_dict(), "old_instances": old_instances, "old_share": old_share}
        self.instances = decision.instances
        return decision.refusal

    def operation(self, entry: dict[str, Any], kind: str, target: str, start: str, payload: dict[str, Any],
                  timeout: timedelta, instances: int | None = None) -> Gen:
        """Run one long operation inside ``entry``; returns None or ``(outcome, reason)`` to end the rollout."""
        began = self.host.now
        status, reason, logs = yield from self.watch_operation(kind, target, start, payload, timeout, instances)
        entry.setdefault("operations", []).append({"kind": kind, "target": target, "started_at": began.isoformat(),
                                                   "ended_at": self.host.now.isoformat(), "result": status,
                                                   "detail": clip(reason)})
        if status == "succeeded":
            self.host.publish()
            return None
        if logs is not None:
            entry["logs"] = {name: [clip(line) or "" for line in lines] for name, lines in logs.items()}
        if status == "failed":
            return self.fail(entry, reason)
        self.end(entry, "interrupted", reason=f"{self.host.intent.action} received; {kind} of {target!r} left to Azure")
        return "interrupted", reason

    def fail(self, entry: dict[str, Any], reason: str) -> tuple[str, str]:
        self.end(entry, "failed", reason=reason)
        return "failed", reason

    # --- mirroring -----------------------------------------------------------------------------

    def mirror_payload(self, traffic: dict[str, int], mirror: dict[str, int]) -> dict[str, Any]:
        return {**self.host.endpoint_input(), "traffic": dict(traffic), "mirror_traffic": dict(mirror)}

    def mirroring(self, traffic: dict[str, int], mirror: dict[str, int], new: str) -> Gen:
        """Mirror, observe, unmirror. Returns None (passed), a ``StepEnd`` (rollback, abort, promote), ``(outcome,
        reason)`` (failed), or ``HANDOVER``: the window goes on in the next execution (``resume_mirroring``)."""
        spec = self.lifecycle.mirror
        assert spec is not None
        entry = self.begin("mirroring", percent=spec.percent, window_s=spec.window.total_seconds(), judged_on=MIRROR_SOURCE)
        try:
            target = mirror_plan(traffic, mirror, new, spec.percent)
        except CapacityRejected as exc:
            return self.fail(entry, f"pre-flight failed: {exc}")
        result = yield from self.host.call_with_retry("set_traffic", self.mirror_payload(traffic, target))
        if not result["ok"]:
            return self.fail(entry, f"mirroring failed: {result['error']['message']}")
        self.host.record.traffic_change(self.host.now, "mirror", traffic, result["endpoint"]["traffic"],
                                        f"mirror {spec.percent}% of live traffic to {new}")
        self.host.mirror = dict(target)
        return (yield from self.mirror_window(entry, traffic, new, None))

    def resume_mirroring(self, window: Any) -> Gen:
        """Go on with the mirror's window (``window``, its state) in a continued execution: ``mirroring``'s
        result. The phase's entry is the record's last ``mirroring`` (carried with it); the live traffic is
        ``mirror_stage``'s."""
        assert self.mirror_stage is not None
        traffic = {str(k): int(v) for k, v in self.mirror_stage["traffic"].items()}
        entry = next(p for p in reversed(self.host.record.phases) if p.get("phase") == "mirroring")
        return (yield from self.mirror_window(entry, traffic, self.host.plan.new, window))

    def mirror_window(self, entry: dict[str, Any], traffic: dict[str, int], new: str, window: Any) -> Gen:
        """Observe the mirror's window (resume ``window`` when given), then remove the mirror and say how it
        ended; ``HANDOVER`` when the window goes on in the next execution (``mirror_stage`` carries the live
        traffic, ``host.mirror`` the mirror, the record the phase's entry)."""
        from orchestrators.run_state import HANDOVER  # here: orchestrators.run_state imports this module

        spec = self.lifecycle.mirror
        assert spec is not None
        self.mirror_stage = {"traffic": dict(traffic)}
        ended = yield from self.host.observe(spec.window, window)
        if ended.action == HANDOVER:
            return HANDOVER
        self.mirror_stage = None
        removed = yield from self.host.call_with_retry("set_traffic", self.mirror_payload(traffic, {}))
        if removed["ok"]:
            self.host.mirror = {}
            self.host.record.traffic_change(self.host.now, "unmirror", traffic, removed["endpoint"]["traffic"],
                                            "mirror removed")
        self.end(entry, ended.action, reason=ended.reason, mirror_removed=bool(removed["ok"]))
        if not removed["ok"] and ended.action == "passed":
            return "failed", f"could not remove the mirror: {removed['error']['message']}"
        if ended.action in ("rollback", "abort"):
            return type(ended)(ended.action, f"mirroring: {ended.reason} (no user request was served by {new})")
        return None if ended.action == "passed" else ended

    # --- scaling -------------------------------------------------------------------------------

    def scale_for_step(self, index: int, new: str) -> Gen:
        """Before step ``index``: scale the new deployment to the planned instances. Returns None or an end."""
        if self.lifecycle.capacity is None or index >= len(self.instances):
            return None
        wanted = self.instances[index]
        if wanted <= self.current_instances:
            return None
        entry = self.begin("scaling", step_index=index, from_instances=self.current_instances, to_instances=wanted)
        ended = yield from self.operation(entry, "scale", new, "scale_start", {
            **self.host.endpoint_input(), "deployment_name": new, "instance_count": wanted},
            self.lifecycle.scale_timeout, instances=wanted)
        if ended is None:
            self.current_instances = wanted
            self.end(entry, "succeeded")
        return ended

    # --- after promotion -----------------------------------------------------------------------

    def apply_autoscale(self, new: str) -> Gen:
        """Put the autoscale setting on the promoted deployment; returns a note for the record: why it failed, or
        the ``creating`` phase's warning that the quota cannot cover autoscale's ``max_instances``."""
        if self.lifecycle.autoscale is None:
            return None
        entry = self.begin("autoscaling", deployment=new)
        result = yield from self.host.call_with_retry("autoscale_apply", {
            **self.host.endpoint_input(), "deployment_name": new, "autoscale": self.lifecycle.autoscale.to_dict(),
            "instance_count": max(self.current_instances, 1)})
        if result["ok"]:
            self.end(entry, "succeeded", setting=result["setting"], capacity=result["capacity"])
            warned = next((p["capacity"]["autoscale_warning"] for p in self.host.record.phases
                           if p.get("phase") == "creating" and (p.get("capacity") or {}).get("autoscale_warning")), None)
            return None if warned is None else f"warning: {warned}"
        self.end(entry, "failed", reason=result["error"]["message"])
        return f"autoscale not applied: {result['error']['message']}"

    def after_promotion(self, reason: str) -> Gen:
        """The new deployment holds its whole share: autoscale it, then (cleanup scale_down or delete) keep the
        old deployment warm for the revert window, honour a revert, and clean up. Returns the final record."""
        host = self.host
        notes = []
        note = yield from self.apply_autoscale(host.plan.new)
        if note:
            notes.append(note)
        if self.lifecycle.cleanup.mode == "keep":
            return host.finish("promoted", "; ".join([reason, *notes]))
        deadline = host.now + self.lifecycle.cleanup.revert_window
        entry = self.begin("cleaning_up", revert_until=deadline.isoformat(), cleanup=self.lifecycle.cleanup.mode)
        host.record.revert_until = deadline.isoformat()
        host.publish()
        while (yield from self.wait(deadline)):
            intent, host.intent = host.intent, None
            if intent.action in ("revert", "rollback", "abort"):
                host.record.revert_until = None
                self.end(entry, "reverted", reason=intent.reason)
                return (yield from host.roll_back("reverted", f"reverted after promotion: {intent.reason}"))
        host.record.revert_until = None
        entry["revert_window_ended"] = host.now.isoformat()
        note = yield from self.clean_up(entry, host.plan.old)
        if note:
            notes.append(note)
        return host.finish("promoted", "; ".join([reason, *notes]))

    def first_rollout(self, new: str) -> Gen:
        """The endpoint's first deployment (``first_rollout_wanted``): ``orchestrators.first_rollout.FirstRollout``."""
        return (yield from FirstRollout(self).start(new))

    def resume_first_rollout(self, window: Any) -> Gen:
        """Go on with a first rollout's ``first_stage`` window (``window``, its state) in a continued execution."""
        return (yield from FirstRollout(self).resume(window))

    def clean_up(self, entry: dict[str, Any], old: str) -> Gen:
        """Apply ``cleanup`` to the old deployment; returns a note for the record (None: nothing went wrong)."""
        base = self.host.endpoint_input()
        found = yield from self.host.call_with_retry("preflight", base)
        if not found["ok"]:
            self.end(entry, "failed", reason=found["error"]["message"])
            return f"cleanup skipped: {found['error']['message']}"
        deployments = {d["name"].lower(): d for d in found["deployments"]}
        old_now = deployments.get(old.lower())
        decision = cleanup_decision(self.lifecycle.cleanup, old, found["endpoint"]["traffic"],
                                    found["endpoint"].get("mirror_traffic") or {},
                                    None if old_now is None else int(old_now["instance_count"]))
        entry["decision"] = decision.to_dict()
        if decision.remove_autoscale:
            removed = yield from self.host.call_with_retry("autoscale_remove", {**base, "deployment_name": old})
            entry["old_autoscale_removed"] = bool(removed.get("removed")) if removed["ok"] else removed["error"]["message"]
        note = None
        if decision.action in ("scale", "delete"):
            kind = "scale" if decision.action == "scale" else "delete"
            payload = {**base, "deployment_name": old}
            if kind == "scale":
                payload["instance_count"] = decision.instances
            status, reason, _ = yield from self.watch_operation(
                kind, old, f"{kind}_start", payload, self.lifecycle.scale_timeout, decision.instances)
            entry["operation"] = {"kind": kind, "result": status, "detail": clip(reason)}
            if status != "succeeded":
                note = f"cleanup of {old!r} did not complete: {reason}"
        self.end(entry, "failed" if note else "succeeded", reason=note or decision.reason)
        return note
