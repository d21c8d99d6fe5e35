"""The rollout orchestrator's behaviour, run end to end through the emulator on a virtual clock.

Each test builds a scenario, runs the registered orchestrator through the real Durable replay
engine against the simulated endpoint, and asserts on what happened to traffic and when.
"""

import copy
import json
from pathlib import Path

import pytest

from emulator.scenario import parse_scenario
from emulator.simulate import run_simulation

ROOT = Path(__file__).parent.parent.parent
ALERT = json.loads((ROOT / "examples" / "alerts" / "endpoint-5xx-fired.json").read_text())
BLUE, GREEN = "blue-v1", "green-v2"


def scenario(**overrides):
    """A healthy 3-step rollout (PT5M windows, PT1M checks, 1200 rpm) with ``overrides`` merged in.
    Noise off (``seed: None``): the counts are the exact expectations these tests reason about."""
    data = {
        "seed": None,
        "endpoint": {"name": "fraud-detection-endpoint",
                     "deployments": {BLUE: {"traffic": 100, "instance_count": 3}, GREEN: {"traffic": 0}}},
        "rollout": {"new_deployment": GREEN, "traffic_steps": [10, 50, 100], "observation_window": "PT5M"},
        "load": {"requests_per_minute": 1200},
        "health": {BLUE: [{"from": "PT0S", "error_rate": 0.001, "latency_p99_ms": 120}],
                   GREEN: [{"from": "PT0S", "error_rate": 0.002, "latency_p99_ms": 140}]},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_scenario(data, ROOT / "examples")


def simulate(**overrides):
    return run_simulation(scenario(**overrides))


def traffic_events(result):
    return [(e["at_seconds"], e["traffic"]) for e in result.timeline if e["kind"] == "traffic"]


def alert_payload(**essentials):
    payload = copy.deepcopy(ALERT)
    payload["data"]["essentials"].update(essentials)
    return payload


def test_healthy_rollout_is_promoted_step_by_step():
    result = simulate()
    assert result.outcome == "promoted"
    assert result.to_json()["final_traffic"] == {GREEN: 100}
    assert result.to_json()["steps_completed"] == [10, 50, 100]
    assert traffic_events(result) == [(0.0, {BLUE: 90, GREEN: 10}), (300.0, {BLUE: 50, GREEN: 50}), (600.0, {GREEN: 100})]
    assert result.elapsed_seconds == 900
    checks = [e for e in result.timeline if e["kind"] == "health_check"]
    # The first window needs 223 requests of green for a verdict (rollout.judge.requests_needed): at 10%
    # of 1200 rpm the first check's 120 are inconclusive and say what is missing; every other check passes.
    assert len(checks) == 15 and [c["verdict"] for c in checks] == ["inconclusive"] + ["pass"] * 14
    assert checks[0]["reason"] == "120 requests so far; a verdict needs 103 more (about 0.9 more minutes at the current rate)"
    # each check measures the increment since the previous one: one minute at a time
    assert checks[0]["new"]["requests"] == 120 and checks[0]["old"]["requests"] == 1080
    assert checks[1]["new"]["requests"] == 120 and checks[5]["new"]["requests"] == 600


def test_every_traffic_change_is_in_the_history_with_its_reason():
    record = simulate().record
    assert [(h["kind"], h["traffic"]) for h in record["history"]] == [
        ("step", {BLUE: 90, GREEN: 10}), ("step", {BLUE: 50, GREEN: 50}), ("step", {GREEN: 100})]
    assert record["history"][1]["reason"] == f"step 2/3: {GREEN} to 50%"


def test_error_rate_regression_rolls_back_at_the_next_check():
    result = simulate(health={GREEN: [{"from": "PT0S", "error_rate": 0.002, "latency_p99_ms": 140},
                                      {"from": "PT12M", "error_rate": 0.08}]})
    assert result.outcome == "rolled_back"
    assert traffic_events(result)[-1] == (780.0, {BLUE: 100})
    assert result.record["reason"].startswith("health check failed: regression detected at 95% confidence: error rate (")
    assert result.to_json()["steps_completed"] == [10, 50]


def test_latency_regression_rolls_back():
    result = simulate(rollout={"latency_p99_threshold_ms": 300},
                      health={GREEN: [{"from": "PT0S", "error_rate": 0.0, "latency_p99_ms": 450}]})
    assert result.outcome == "rolled_back"
    assert "regression detected at 95% confidence: p99 latency (" in result.record["reason"]
    # a sequential sign test: each minute over the limit multiplies the evidence by (1.6 + 1.98) / 2 at
    # most, and the test fails at 1 / 0.025 (two tests share the 5%): the 7th minute over it, 420 s
    assert traffic_events(result)[-1] == (420.0, {BLUE: 100})


def test_baseline_comparison_rolls_back_when_new_is_worse_than_old():
    result = simulate(rollout={"error_threshold": 0.05, "max_error_rate_increase": 0.005},
                      health={GREEN: [{"from": "PT0S", "error_rate": 0.02, "latency_p99_ms": 140}]})
    assert result.outcome == "rolled_back"
    # green at 2% against blue's 0.1% + 0.005: caught on the comparison with old, not the 5% threshold,
    # once 7 minutes of evidence clear its share of the 5% (synthetic counts are whole requests)
    assert result.record["reason"].startswith(
        "health check failed: regression detected at 95% confidence: error rate against old (")
    assert result.record["reason"].endswith("error rate 0.0200, old's 0.0011")
    assert traffic_events(result)[-1] == (420.0, {BLUE: 100})


def test_alert_rolls_back_at_its_virtual_time_not_at_the_end_of_the_window():
    result = simulate(alerts=[{"at": "PT7M", "payload": "alerts/endpoint-5xx-fired.json"}])
    assert result.outcome == "rolled_back"
    assert result.record["reason"] == "alert 'fraud-detection-green-5xx' fired"
    assert traffic_events(result)[-1] == (420.0, {BLUE: 100})
    assert result.to_json()["steps_completed"] == [10]
    assert result.record["alerts"][0]["action"] == "rolled back"


def test_resolved_alert_is_recorded_and_changes_nothing():
    result = simulate(alerts=[{"at": "PT7M", "payload": "alerts/endpoint-5xx-resolved.json"}])
    assert result.outcome == "promoted"
    assert [a["action"] for a in result.record["alerts"]] == ["recorded"]
    assert [e["action"] for e in result.timeline if e["kind"] == "alert"] == ["record"]


def test_alert_naming_the_old_deployment_is_recorded_not_acted_on():
    payload = copy.deepcopy(ALERT)
    payload["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"][0]["value"] = BLUE
    result = simulate(alerts=[{"at": "PT7M", "payload": payload}])
    assert result.outcome == "promoted"
    assert result.record["alerts"][0]["action"] == "recorded"


def test_alert_for_another_workspace_changes_nothing():
    payload = copy.deepcopy(ALERT)
    payload["data"]["essentials"]["alertTargetIDs"] = [
        t.replace("mlw-local", "mlw-elsewhere") for t in payload["data"]["essentials"]["alertTargetIDs"]]
    result = simulate(alerts=[{"at": "PT7M", "payload": payload}])
    assert result.outcome == "promoted" and result.record["alerts"] == []
    assert [e["action"] for e in result.timeline if e["kind"] == "alert"] == ["ignore"]


# The SDK warns when events arrive after the orchestrator stopped waiting for them: that is the point here.
@pytest.mark.filterwarnings("ignore:Potential duplicate Task completion")
def test_duplicate_alerts_cause_one_rollback():
    alerts = [{"at": "PT7M", "payload": "alerts/endpoint-5xx-fired.json"}] * 5
    result = simulate(alerts=alerts)
    assert result.outcome == "rolled_back"
    assert [h["kind"] for h in result.record["history"]].count("rollback") == 1


def test_too_little_traffic_rolls_back_at_the_window_end_saying_why():
    result = simulate(load={"requests_per_minute": 30})
    assert result.outcome == "rolled_back"
    # 3 requests a minute against the 223 the first window needs: waiting would take longer than an
    # extension may last (rollout.window.MAX_EXTENSION_WINDOWS), and the reason says what is missing
    assert result.record["reason"] == (
        "too little traffic for a verdict: it would take longer than an extension may last (6 windows, 30 minutes): "
        "15 requests so far; a verdict needs 208 more (about 69.3 more minutes at the current rate)")
    assert traffic_events(result)[-1] == (300.0, {BLUE: 100})


def test_inconclusive_window_extended_once_then_passes():
    # green sees 30/min at 10%: 150 in 5 min, under the 223 the first window needs; the extended window
    # passes at its first conclusive check, 240 requests at 8 minutes (not at its extended end, 10)
    result = simulate(load={"requests_per_minute": 300})
    assert result.outcome == "promoted"
    assert traffic_events(result)[1] == (480.0, {BLUE: 50, GREEN: 50})


def test_pause_holds_the_step_and_resume_restarts_its_window():
    result = simulate(controls=[{"at": "PT2M", "action": "pause"}, {"at": "PT20M", "action": "resume"}])
    assert result.outcome == "promoted"
    assert traffic_events(result)[1] == (1500.0, {BLUE: 50, GREEN: 50})
    kinds = [h["kind"] for h in result.record["history"]]
    assert kinds == ["step", "pause", "resume", "step", "step"]


def test_checks_go_on_while_paused():
    result = simulate(controls=[{"at": "PT1M30S", "action": "pause"}],
                      health={GREEN: [{"from": "PT0S", "error_rate": 0.0, "latency_p99_ms": 140},
                                      {"from": "PT30M", "error_rate": 0.5}]})
    assert result.outcome == "rolled_back"
    # checks every minute from the pause (90 s): the check at 1830 s judges [1770 s, 1830 s), half of it at 50%
    assert traffic_events(result)[-1] == (1830.0, {BLUE: 100})


def test_promote_jumps_to_the_whole_share_now():
    result = simulate(controls=[{"at": "PT3M", "action": "promote", "reason": "on-call says ship it"}])
    assert result.outcome == "promoted" and result.record["reason"] == "on-call says ship it"
    assert traffic_events(result) == [(0.0, {BLUE: 90, GREEN: 10}), (180.0, {GREEN: 100})]


def test_abort_returns_all_traffic_to_the_old_deployment():
    result = simulate(controls=[{"at": "PT6M", "action": "abort"}])
    assert result.outcome == "aborted"
    assert traffic_events(result)[-1] == (360.0, {BLUE: 100})
    assert result.record["history"][-1]["kind"] == "rollback"


def test_metrics_outage_rolls_back_after_three_failed_checks():
    result = simulate(faults=[{"operation": "metrics", "error": "transient"}])
    assert result.outcome == "rolled_back"
    assert result.record["reason"].startswith("health checks failed 3 times in a row")
    assert result.record["baseline"]["verdict"] == "unknown"
    # pre-flight's baseline query is retried 5 times (5 + 10 + 20 + 40 s), then 3 checks a minute apart
    assert traffic_events(result)[-1] == (75.0 + 180.0, {BLUE: 100})


def test_transient_update_failures_are_retried_with_backoff():
    result = simulate(faults=[{"operation": "set_traffic", "error": "transient", "times": 2}])
    assert result.outcome == "promoted"
    assert traffic_events(result)[0] == (15.0, {BLUE: 90, GREEN: 10})   # retried after 5 s, then 10 s


def test_throttling_honours_retry_after():
    result = simulate(faults=[{"operation": "set_traffic", "error": "throttled", "times": 1, "retry_after": 42}])
    assert traffic_events(result)[0] == (42.0, {BLUE: 90, GREEN: 10})


def test_persistent_conflict_fails_and_records_the_attempts():
    result = simulate(faults=[{"operation": "set_traffic", "error": "conflict"}])
    assert result.outcome == "failed"
    assert result.record["reason"] == (f"step 1/3: {GREEN} to 10% failed: simulated: another update is in progress")
    assert traffic_events(result) == [], "traffic was never changed"
    # the failed step is recorded with the traffic read back, then the (no-op) return to the old deployment
    assert [(h["kind"], h["traffic"]) for h in result.record["history"]] == [("step", {BLUE: 100}), ("rollback", {BLUE: 100})]
    assert "update failed" in result.record["history"][0]["reason"]


def test_a_rollback_that_keeps_failing_is_retried_until_it_succeeds():
    result = simulate(faults=[{"operation": "set_traffic", "error": "permission", "from": "PT6M", "until": "PT40M"}],
                      controls=[{"at": "PT7M", "action": "rollback", "reason": "manual"}])
    assert result.outcome == "rolled_back" and result.record["reason"] == "manual"
    at, traffic = traffic_events(result)[-1]
    assert traffic == {BLUE: 100} and 2400 <= at <= 2400 + 300, "retried past the fault, at most 300 s apart"
    assert result.record["rollback"]["attempts"] >= 9 and "last_error" not in result.record["rollback"]


def test_resolve_ends_a_rollback_that_cannot_succeed_with_the_traffic_as_it_is():
    result = simulate(faults=[{"operation": "set_traffic", "error": "conflict", "from": "PT6M"}],
                      controls=[{"at": "PT7M", "action": "rollback", "reason": "manual"},
                                {"at": "PT30M", "action": "resolve", "reason": "ticket 42"}])
    assert result.outcome == "failed"
    assert result.record["reason"].startswith("manual; rollback stopped by a person (ticket 42); green-v2 still holds")
    assert result.to_json()["final_traffic"] == {BLUE: 50, GREEN: 50}, "the traffic as it really is"
    assert result.elapsed_seconds == 1800


def test_someone_else_changing_traffic_fails_without_touching_it():
    result = simulate(changes=[{"at": "PT7M", "traffic": {BLUE: 80, GREEN: 20}}])
    assert result.outcome == "failed"
    assert "traffic changed outside this rollout" in result.record["reason"]
    assert traffic_events(result)[-1][1] == {BLUE: 80, GREEN: 20}
    assert result.record["history"][-1]["kind"] == "drift"


def test_preflight_failure_changes_no_traffic():
    result = simulate(endpoint={"name": "fraud-detection-endpoint", "deployments": {
        BLUE: {"traffic": 100}, GREEN: {"traffic": 0, "provisioning_state": "Failed"}}})
    assert result.outcome == "failed"
    assert result.record["reason"] == "pre-flight failed: new_deployment 'green-v2' is Failed, not Succeeded"
    assert traffic_events(result) == []


def test_a_third_deployment_keeps_its_share():
    result = simulate(endpoint={"name": "fraud-detection-endpoint", "deployments": {
        BLUE: {"traffic": 70}, GREEN: {"traffic": 0}, "shadow-v0": {"traffic": 30}}},
        rollout={"traffic_steps": [35, 70]})
    assert result.outcome == "promoted"
    assert [t for _, t in traffic_events(result)] == [
        {BLUE: 35, GREEN: 35, "shadow-v0": 30}, {GREEN: 70, "shadow-v0": 30}]


def test_mirror_traffic_to_the_new_deployment_is_removed_before_it_takes_live_traffic():
    result = simulate(endpoint={"name": "fraud-detection-endpoint", "deployments": {
        BLUE: {"traffic": 100}, GREEN: {"traffic": 0, "mirror_traffic": 20}}})
    assert result.outcome == "promoted"


def test_bake_time_holds_the_last_step():
    result = simulate(rollout={"bake_time": "PT10M"})
    assert result.outcome == "promoted" and result.elapsed_seconds == 1500


def test_default_steps_when_old_and_new_hold_everything():
    result = simulate(rollout={"traffic_steps": None, "observation_window": "PT2M"})
    assert result.to_json()["steps_completed"] == [10, 25, 50, 75, 100]


def test_a_scenario_runs_the_same_twice():
    once = scenario(faults=[{"operation": "set_traffic", "error": "conflict", "times": 1}])
    first, second = run_simulation(once), run_simulation(once)
    assert traffic_events(first) == traffic_events(second)
    assert traffic_events(first)[0] == (5.0, {BLUE: 90, GREEN: 10})


def test_the_status_stays_within_durables_custom_status_limit_on_a_busy_rollout():
    from rollout.record import MAX_ALERTS_KEPT, STATUS_BUDGET_CHARS

    steps = [5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    # 6000 rpm: the first step's 5% serves the 223 requests its first window needs within 2 minutes
    result = simulate(rollout={"traffic_steps": steps, "observation_window": "PT2M"}, load={"requests_per_minute": 6000},
                      alerts=[{"at": f"PT{m}M", "payload": "alerts/endpoint-5xx-resolved.json"} for m in range(1, 26)],
                      controls=[{"at": f"PT{m}M30S", "action": "pause" if m % 2 else "resume"} for m in range(1, 11)])
    record = result.record
    assert result.outcome == "promoted"
    assert len(json.dumps(record)) < STATUS_BUDGET_CHARS
    assert [h["kind"] for h in record["history"]].count("step") == len(steps), "every traffic change is kept"
    assert record["alerts_received"] == 25 and len(record["alerts"]) == MAX_ALERTS_KEPT
    assert record["alerts"][-1] == {"at": record["alerts"][-1]["at"], "action": "recorded",
                                    "rule": "fraud-detection-green-5xx", "monitor_condition": "Resolved"}


# --- issue 8 §1, as reproduced: control events during pre-flight and during a retry wait ------------


def test_pause_during_a_failing_preflight_then_resume_promotes():
    result = simulate(faults=[{"operation": "get_endpoint", "error": "transient", "times": 1}],
                      controls=[{"at": "PT2S", "action": "pause"}, {"at": "PT4M", "action": "resume"}])
    assert result.outcome == "promoted" and result.record["reason"]
    assert [h["kind"] for h in result.record["history"]][:3] == ["pause", "step", "resume"]


def test_three_resolved_alerts_in_the_same_minute_are_recorded():
    alerts = [{"at": "PT3S", "payload": "alerts/endpoint-5xx-resolved.json"}] * 3
    result = simulate(alerts=alerts, faults=[{"operation": "get_endpoint", "error": "transient", "times": 1}])
    assert result.outcome == "promoted" and result.record["alerts_received"] == 3


def test_an_alert_during_a_throttled_step_update_means_the_step_is_never_applied():
    result = simulate(faults=[{"operation": "set_traffic", "error": "throttled", "retry_after": 15, "from": "PT5M",
                               "until": "PT6M"}],
                      alerts=[{"at": "PT5M8S", "payload": "alerts/endpoint-5xx-fired.json"}],
                      controls=[{"at": "PT5M12S", "action": "abort"}])
    assert result.outcome == "rolled_back" and result.record["reason"] == "alert 'fraud-detection-green-5xx' fired"
    assert [t for _, t in traffic_events(result)] == [{BLUE: 90, GREEN: 10}, {BLUE: 100}], "never 50/50"


# --- issue 11: the old deployment's health at pre-flight (rollout.judge.baseline_judgement) -----------

SICK_BLUE = {BLUE: [{"from": "PT0S", "error_rate": 0.03, "latency_p99_ms": 120}],
             GREEN: [{"from": "PT0S", "error_rate": 0.03, "latency_p99_ms": 140}]}


def test_a_sick_baseline_refuses_to_start_by_default_and_moves_no_traffic():
    result = simulate(health=SICK_BLUE)
    assert result.outcome == "failed"
    assert result.record["reason"].startswith("pre-flight: the old deployment already fails the thresholds "
                                              "(old deployment's error rate 0.0300 (180 errors in 6000 requests)")
    assert "no traffic was changed" in result.record["reason"]
    assert traffic_events(result) == [] and result.record["history"] == []
    assert result.record["baseline"]["verdict"] == "fail" and result.record["baseline"]["old"]["requests"] == 6000


def test_a_sick_baseline_with_proceed_is_judged_against_old_only_and_says_so():
    result = simulate(rollout={"on_unhealthy_baseline": "proceed"}, health=SICK_BLUE)
    assert result.outcome == "promoted", result.record["reason"]     # 3% like old's: no worse than it
    assert result.record["baseline"]["judged"] == "relative to old only (on_unhealthy_baseline: proceed)"
    assert set(result.record["last_health"]["evidence"]) == {"errors_vs_old"}


def test_with_proceed_a_new_deployment_worse_than_the_sick_old_one_still_rolls_back():
    health = {**SICK_BLUE, GREEN: [{"from": "PT0S", "error_rate": 0.10, "latency_p99_ms": 140}]}
    result = simulate(rollout={"on_unhealthy_baseline": "proceed"}, health=health)
    assert result.outcome == "rolled_back"
    assert "error rate against old" in result.record["reason"]


def test_a_healthy_baseline_is_recorded_and_everything_is_judged():
    record = simulate().record
    assert record["baseline"]["verdict"] == "pass" and record["baseline"]["judged"] == "on every threshold"
    assert record["baseline"]["since"] == "2025-12-31T23:55:00+00:00", "the observation window before the start"


def test_every_check_is_summarised_per_step():
    record = simulate(rollout={"bake_time": "PT3M"}).record
    assert [(s["step"], s["phase"], s["checks"], s["verdicts"]) for s in record["step_summaries"]] == [
        (10, "observing", 5, {"inconclusive": 1, "pass": 4}), (50, "observing", 5, {"pass": 5}),
        (100, "observing", 5, {"pass": 5}), (100, "baking", 3, {"pass": 3})]
    assert record["step_summaries"][0]["new"] == [600, 0], "green's requests and errors over the step"
    assert len(record["checks"]) == 18
