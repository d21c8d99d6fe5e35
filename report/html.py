"""The rollout report: one HTML page with an inline SVG timeline and the numbers behind it.

Hand-written SVG rather than a plotting library: the page must be self-contained (no script, no
network) and is also served by the deployed app, which should not ship a plotting stack for
three small charts. Three panels share the time axis: traffic share of both deployments, error
rate of each at every check (threshold dashed), p99 latency (threshold dashed when set); step
boundaries, pauses (shaded), alerts and the outcome are drawn across all three.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any, Mapping

from report.timeline import Timeline, build_timeline

WIDTH, LEFT, RIGHT, PANEL, GAP, TOP = 880, 70, 20, 130, 40, 20
NEW_COLOUR, OLD_COLOUR = "#2e7d32", "#1565c0"
MARK_COLOURS = {"step": "#888", "alert": "#d32f2f", "rollback": "#d32f2f", "promote": "#2e7d32",
                "drift": "#ef6c00", "outcome": "#000"}
STYLE = """body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px;margin:0 0 4px}
.outcome{font-size:16px;margin:8px 0 16px}.promoted{color:#2e7d32}.rolled_back,.failed,.aborted{color:#c62828}
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
td:first-child,th:first-child,td.text{text-align:left}svg text{font:11px system-ui,sans-serif}"""


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class _Panel:
    """One chart panel: maps (time, value) into its box."""

    def __init__(self, index: int, end: float, top_value: float) -> None:
        self.y0 = TOP + index * (PANEL + GAP)
        self.end, self.top_value = max(end, 1.0) * 1.08, top_value or 1.0     # room after the last event
        self.last = max(end, 1.0)

    def x(self, at: float) -> float:
        return round(LEFT + (WIDTH - LEFT - RIGHT) * at / self.end, 1)

    def y(self, value: float) -> float:
        return round(self.y0 + PANEL - PANEL * min(value, self.top_value) / self.top_value, 1)


def _polyline(points: list[tuple[float, float]], colour: str, cls: str, dashed: bool = False) -> str:
    if not points:
        return ""
    dash = ' stroke-dasharray="5 4"' if dashed else ""
    text = " ".join(f"{x},{y}" for x, y in points)
    return f'<polyline class="{cls}" points="{text}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'


def _axes(panel: _Panel, title: str, ticks: list[tuple[float, str]]) -> list[str]:
    parts = [f'<rect x="{LEFT}" y="{panel.y0}" width="{WIDTH - LEFT - RIGHT}" height="{PANEL}" fill="none" stroke="#ccc"/>',
             f'<text x="{LEFT}" y="{panel.y0 - 5}" font-weight="bold">{escape(title)}</text>']
    for value, label in ticks:
        parts.append(f'<text x="{LEFT - 6}" y="{panel.y(value) + 4}" text-anchor="end">{escape(label)}</text>')
    return parts


def _steps(points: list[tuple[float, int, int]], panel: _Panel, which: int) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for i, point in enumerate(points):
        if out:
            out.append((panel.x(point[0]), out[-1][1]))
        out.append((panel.x(point[0]), panel.y(point[which])))
        if i == len(points) - 1:
            out.append((panel.x(panel.end), panel.y(point[which])))
    return out


def _metric_panel(line: Timeline, panel: _Panel, new_key: str, old_key: str, threshold: float | None,
                  fmt: str) -> list[str]:
    parts = []
    for key, colour, cls in ((new_key, NEW_COLOUR, "new"), (old_key, OLD_COLOUR, "old")):
        points = [(panel.x(c.at), panel.y(getattr(c, key))) for c in line.checks if getattr(c, key) is not None]
        parts.append(_polyline(points, colour, f"{cls}-{new_key.split('_')[1]}"))
        parts.extend(f'<circle class="check" cx="{x}" cy="{y}" r="3" fill="{colour}"/>' for x, y in points)
    if threshold is not None:
        y = panel.y(float(threshold))
        parts.append(f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" stroke="#c62828" '
                     f'stroke-dasharray="6 4"/><text x="{WIDTH - RIGHT - 4}" y="{y - 4}" text-anchor="end" '
                     f'fill="#c62828">threshold {format(float(threshold), fmt)}</text>')
    return parts


def chart_svg(line: Timeline) -> str:
    """The three panels as one inline SVG."""
    traffic = _Panel(0, line.end, 100)
    rates = [v for c in line.checks for v in (c.new_rate, c.old_rate) if v is not None]
    top_rate = max([*rates, float(line.error_threshold or 0)]) * 1.25 or 0.01
    errors = _Panel(1, line.end, top_rate)
    p99s = [v for c in line.checks for v in (c.new_p99, c.old_p99) if v is not None]
    latency = _Panel(2, line.end, max([*p99s, float(line.p99_threshold or 0)]) * 1.25 or 100.0)
    height = TOP + 3 * (PANEL + GAP)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="timeline" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
             f'height="{height}" role="img" aria-label="rollout timeline">']
    for start, end in line.pauses:
        for panel in (traffic, errors, latency):
            parts.append(f'<rect class="pause" x="{panel.x(start)}" y="{panel.y0}" width="{panel.x(end) - panel.x(start)}"'
                         f' height="{PANEL}" fill="#fff3cd"><title>paused {_clock(start)} to {_clock(end)}</title></rect>')
    parts += _axes(traffic, f"traffic share: {line.new} (green), {line.old} (blue)", [(0, "0%"), (50, "50%"), (100, "100%")])
    parts.append(_polyline(_steps(line.traffic, traffic, 1), NEW_COLOUR, "traffic-new"))
    parts.append(_polyline(_steps(line.traffic, traffic, 2), OLD_COLOUR, "traffic-old", dashed=True))
    parts += _axes(errors, "error rate at each check", [(0, "0"), (top_rate / 1.25, f"{top_rate / 1.25:.3f}")])
    parts += _metric_panel(line, errors, "new_rate", "old_rate", line.error_threshold, ".3f")
    top_p99 = latency.top_value / 1.25
    parts += _axes(latency, "p99 latency (ms) at each check", [(0, "0"), (top_p99, f"{top_p99:.0f}")])
    parts += _metric_panel(line, latency, "new_p99", "old_p99", line.p99_threshold, ".0f")
    for i, mark in enumerate(sorted(line.marks, key=lambda m: m.at)):
        x, colour = traffic.x(mark.at), MARK_COLOURS.get(mark.kind, "#555")
        anchor = "end" if x > WIDTH - 160 else "start"
        label_y = TOP + 12 + 13 * (i % 4)
        parts.append(f'<line class="mark {mark.kind}" x1="{x}" x2="{x}" y1="{TOP}" y2="{height - GAP}" stroke="{colour}" '
                     f'stroke-dasharray="{"2 3" if mark.kind == "step" else "none"}"><title>{escape(mark.label)} at '
                     f'{_clock(mark.at)}</title></line><text class="label" x="{x + (3 if anchor == "start" else -3)}" '
                     f'y="{label_y}" '
                     f'text-anchor="{anchor}" fill="{colour}">{escape(mark.label)}</text>')
    for at in (0.0, traffic.last / 2, traffic.last):
        parts.append(f'<text x="{traffic.x(at)}" y="{height - GAP + 16}" text-anchor="middle">+{_clock(at)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _number(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _checks_table(line: Timeline) -> str:
    rows = "".join(
        f"<tr><td>+{_clock(c.at)}</td><td>{escape(str(c.step))}%</td><td class='text'>{escape(c.verdict)}</td>"
        f"<td>{_number(c.new_requests, 'd')}</td><td>{_number(c.new_rate, '.4f')}</td><td>{_number(c.new_p99, '.0f')}</td>"
        f"<td>{_number(c.old_requests, 'd')}</td><td>{_number(c.old_rate, '.4f')}</td><td>{_number(c.old_p99, '.0f')}</td></tr>"
        for c in line.checks)
    return (f"<table id='checks'><tr><th>time</th><th>step</th><th>verdict</th><th>{escape(line.new)} requests</th>"
            f"<th>error rate</th><th>p99 ms</th><th>{escape(line.old)} requests</th><th>error rate</th><th>p99 ms</th></tr>"
            f"{rows}</table>")


def _events_table(view: Mapping[str, Any], line: Timeline) -> str:
    def at(text: Any) -> str:
        try:
            return "+" + _clock((datetime.fromisoformat(str(text)) - line.start).total_seconds())
        except ValueError:
            return "?"
    rows = [(e.get("at"), e.get("kind"), e.get("reason")) for e in view.get("history") or []]
    rows += [(a.get("at"), "alert", f"{a.get('rule')} {a.get('monitor_condition')}: {a.get('action')}")
             for a in view.get("alerts") or []]
    body = "".join(f"<tr><td>{at(t)}</td><td class='text'>{escape(str(k))}</td><td class='text'>{escape(str(r))}</td></tr>"
                   for t, k, r in sorted(rows, key=lambda r: str(r[0])))
    return f"<table id='events'><tr><th>time</th><th>event</th><th>reason</th></tr>{body}</table>"


def render_report(view: Mapping[str, Any], refresh_seconds: int | None = None, now: datetime | None = None) -> str:
    """The page for one rollout record (``GET /api/rollouts/{endpoint}``'s body, or a simulation's
    record with its ``request``). ``refresh_seconds``: reload the page that often while the rollout
    has no outcome (the served page); None: never (a file)."""
    line = build_timeline(view, now)
    title = f"Rollout of {line.new} on {view.get('endpoint_name')}"
    if line.outcome:
        state = (f"<div class='outcome {escape(line.outcome)}' id='outcome'>{escape(line.outcome)}: "
                 f"{escape(str(line.reason))}</div>")
    else:
        state = (f"<div class='outcome' id='outcome'>running: {escape(str(view.get('phase')))}"
                 f"{' (paused)' if view.get('paused') else ''}, step {escape(str(view.get('current_step')))}%</div>")
    refresh = f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">' if refresh_seconds and not line.outcome else ""
    traffic = ", ".join(f"{escape(k)} {v}%" for k, v in (view.get("final_traffic") or view.get("traffic") or {}).items())
    note = " (the newest checks only)" if len(line.checks) >= 24 else ""
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>{refresh}<title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
            f"<div>started {escape(str(view.get('started_at')))}; traffic now: <span id='traffic'>{traffic}</span>; "
            f"alerts received: {escape(str(view.get('alerts_received', 0)))}</div>{state}{chart_svg(line)}"
            f"<h2>Health checks{note}</h2>{_checks_table(line)}<h2>Events</h2>{_events_table(view, line)}</body></html>")
