"""Notifications: who wants to hear about a rollout, what an event says, and its three wire formats.

Pure functions only (no I/O); ``activities.notify`` sends what these build.

A target is ``{url, format, events}``: ``format`` is ``cloudevents`` (default: a CloudEvents 1.0
event in structured JSON mode), ``teams`` (a Microsoft Teams Workflows webhook: a message with
one Adaptive Card) or ``slack`` (a Slack incoming webhook: text plus Block Kit blocks);
``events`` lists the event kinds it wants (default: all of ``EVENT_KINDS``). Targets come from a
rollout request's ``notify`` list and from the app setting ``AML_ROLLOUT_NOTIFY`` (the same
list as JSON: default targets for every rollout).

Webhook URLs carry secrets (a Teams Workflows URL its ``sig`` query parameter, a Slack URL the
path after ``/services/``): ``redact_url`` is what status and logs show instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from rollout.errors import FieldProblem, InvalidRequest

EVENT_KINDS = ("started", "step", "paused", "resumed", "rolled_back", "promoted", "aborted", "failed", "reverted")
FORMATS = ("cloudevents", "teams", "slack")
MAX_TARGETS = 10
CLOUDEVENT_TYPE_PREFIX = "io.github.aml-rollout."
CONTENT_TYPES = {"cloudevents": "application/cloudevents+json; charset=utf-8",
                 "teams": "application/json", "slack": "application/json"}
TITLES = {"started": "Rollout started", "step": "Rollout step", "paused": "Rollout paused",
          "resumed": "Rollout resumed", "rolled_back": "Rollout rolled back", "promoted": "Rollout promoted",
          "aborted": "Rollout aborted", "failed": "Rollout failed", "reverted": "Rollout reverted"}
BAD_NEWS = ("rolled_back", "aborted", "failed", "reverted")


@dataclass(frozen=True)
class NotifyTarget:
    """Where to send which events, in which format."""

    url: str
    format: str = "cloudevents"
    events: tuple[str, ...] = EVENT_KINDS

    def wants(self, kind: str) -> bool:
        """Whether this target asked for events of ``kind``."""
        return kind in self.events

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "format": self.format, "events": list(self.events)}


def parse_targets(value: Any, field: str = "notify") -> tuple[NotifyTarget, ...]:
    """A ``notify`` list as targets; ``InvalidRequest`` naming each bad field (``notify[0].url``...)."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_TARGETS:
        raise InvalidRequest([FieldProblem(field, f"must be a list of at most {MAX_TARGETS} {{url, format, events}}")])
    problems: list[FieldProblem] = []
    targets = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(item, Mapping):
            problems.append(FieldProblem(where, "must be an object {url, format, events}"))
            continue
        problems += [FieldProblem(f"{where}.{key}", "is not a known field") for key in item
                     if key not in ("url", "format", "events")]
        url, fmt, events = item.get("url"), item.get("format", "cloudevents"), item.get("events", list(EVENT_KINDS))
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("https", "http") or not parts.hostname:
            problems.append(FieldProblem(f"{where}.url", "must be an http(s) URL"))
        if fmt not in FORMATS:
            problems.append(FieldProblem(f"{where}.format", f"must be one of {', '.join(FORMATS)}"))
        if not isinstance(events, list) or not events or any(e not in EVENT_KINDS for e in events):
            problems.append(FieldProblem(f"{where}.events", f"must be a non-empty list of {', '.join(EVENT_KINDS)}"))
        elif isinstance(url, str) and fmt in FORMATS:
            targets.append(NotifyTarget(url, fmt, tuple(dict.fromkeys(events))))
    if problems:
        raise InvalidRequest(problems)
    return tuple(targets)


def redact_url(url: str) -> str:
    """A webhook URL fit for status and logs: scheme, host and first path segment only
    (``https://hooks.slack.com/services/…``, ``https://x.logic.azure.com/workflows/…``)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if parts.port:
        host += f":{parts.port}"
    segments = [s for s in parts.path.split("/") if s]
    hidden = len(segments) > 1 or parts.query or parts.fragment
    return f"{parts.scheme}://{host}" + (f"/{segments[0]}" if segments else "") + ("/…" if hidden else "")


def redact_request(request: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A rollout request as it may be shown: each ``notify`` target's URL redacted."""
    if request is None:
        return None
    shown = dict(request)
    if isinstance(shown.get("notify"), list):
        shown["notify"] = [{**t, "url": redact_url(str(t.get("url", "")))} if isinstance(t, Mapping) else t
                           for t in shown["notify"]]
    return shown


# --- the event -------------------------------------------------------------------------------


def rollout_event(kind: str, record: Mapping[str, Any], at: str) -> dict[str, Any]:
    """What an event says, from the rollout record (``RolloutRecord.to_dict``) at time ``at`` (ISO 8601)."""
    assert kind in EVENT_KINDS, kind
    plan = record.get("plan") or {}
    health = record.get("last_health") or None
    return {
        "kind": kind, "at": at, "instance_id": record.get("instance_id"),
        "endpoint_name": record.get("endpoint_name"), "new_deployment": record.get("new_deployment"),
        "old_deployment": plan.get("old"), "steps": plan.get("steps"), "step_index": record.get("step_index"),
        "current_step": record.get("current_step"), "traffic": record.get("traffic") or {},
        "phase": record.get("phase"), "outcome": record.get("outcome"),
        "reason": record.get("reason") if record.get("outcome") else _last_reason(record),
        "health": None if health is None else {key: health.get(key) for key in
                                               ("at", "verdict", "reason", "new", "old", "error_rate")},
    }


def _last_reason(record: Mapping[str, Any]) -> str | None:
    history = record.get("history") or []
    return history[-1].get("reason") if history else None


def _traffic_text(traffic: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} {share}%" for name, share in traffic.items()) or "none"


def _title(event: Mapping[str, Any]) -> str:
    step = f" to {event['current_step']}%" if event["kind"] == "step" and event.get("current_step") is not None else ""
    return f"{TITLES[event['kind']]}{step}: {event.get('new_deployment')} on {event.get('endpoint_name')}"


def _facts(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    facts = [("Endpoint", str(event.get("endpoint_name"))),
             ("Deployments", f"{event.get('new_deployment')} replacing {event.get('old_deployment') or '?'}"),
             ("Traffic", _traffic_text(event.get("traffic") or {}))]
    if event.get("steps"):
        facts.append(("Steps", " → ".join(f"{s}%" for s in event["steps"])))
    health = event.get("health") or {}
    new = health.get("new") or {}
    if new:
        rate = f"{new['errors'] / new['requests']:.4f}" if new.get("requests") else "-"
        p99 = "-" if new.get("latency_p99_ms") is None else f"{new['latency_p99_ms']:.0f} ms"
        facts.append(("Last check", f"{health.get('verdict')}: {new.get('requests')} requests, error rate {rate}, "
                                    f"p99 {p99}"))
    return facts


# --- formats ---------------------------------------------------------------------------------


def cloudevent(event: Mapping[str, Any]) -> dict[str, Any]:
    """CloudEvents 1.0, structured mode: the event in ``data``; ``id`` is the same for the same
    event sent again (receivers de-duplicate on source + id)."""
    return {"specversion": "1.0", "type": CLOUDEVENT_TYPE_PREFIX + str(event["kind"]),
            "source": f"/aml-rollout/endpoints/{event.get('endpoint_name')}",
            "id": f"{event.get('instance_id')}/{event['kind']}/{event.get('at')}",
            "time": event.get("at"), "subject": str(event.get("endpoint_name")),
            "datacontenttype": "application/json", "data": dict(event)}


def teams_message(event: Mapping[str, Any]) -> dict[str, Any]:
    """A Teams Workflows webhook body: a message with one Adaptive Card (1.4)."""
    colour = "attention" if event["kind"] in BAD_NEWS else ("good" if event["kind"] == "promoted" else "default")
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4",
            "body": [{"type": "TextBlock", "text": _title(event), "weight": "bolder", "size": "medium", "color": colour,
                      "wrap": True},
                     {"type": "TextBlock", "text": str(event.get("reason") or ""), "wrap": True},
                     {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(event)]}]}
    return {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                                "contentUrl": None, "content": card}]}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(event: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook body: ``text`` (the notification's fallback) and Block Kit blocks."""
    title, reason = _title(event), _slack_escape(str(event.get("reason") or ""))
    return {"text": f"{title}: {reason}",
            "blocks": [{"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
                       {"type": "section", "text": {"type": "mrkdwn", "text": reason or " "}},
                       {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{_slack_escape(v)}"}
                                                      for k, v in _facts(event)]}]}


def body_for(fmt: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of ``event`` in format ``fmt``."""
    return {"cloudevents": cloudevent, "teams": teams_message, "slack": slack_message}[fmt](event)


def notification_payload(kind: str, record: Mapping[str, Any], targets: tuple[NotifyTarget, ...],
                         at: str) -> dict[str, Any] | None:
    """The ``send_notifications`` activity's input for event ``kind``, or None when no target wants it
    (the orchestrator then calls nothing)."""
    wanted = [target.to_dict() for target in targets if target.wants(kind)]
    if not wanted:
        return None
    return {"event": rollout_event(kind, record, at), "targets": wanted}
