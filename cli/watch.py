"""``watch``: follow a rollout until its outcome.

On a terminal, a live view (rich): phase and step as a progress bar across the steps, the traffic
split, the last check's numbers against the thresholds, the time to the next step, the alerts.
Elsewhere (a CI log), one plain line whenever something changes. Either way it ends with the
final line, and the caller exits with the outcome's code.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Callable, Mapping, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from cli.summary import check_lines, describe_traffic, final_line, headline, next_step_at, step_position, summary_lines

DEFAULT_INTERVAL = 2.0
Fetch = Callable[[], dict[str, Any]]


def view_renderable(view: Mapping[str, Any], now: datetime) -> Panel:
    """The live view of one record."""
    done, total = step_position(view)
    plan = view.get("plan") or {}
    steps = "  ".join(f"[{'bold green' if i < done else 'dim'}]{s}%[/]" for i, s in enumerate(plan.get("steps") or []))
    bar = ProgressBar(total=max(total, 1), completed=done, width=40,
                      complete_style="red" if view.get("outcome") in ("rolled_back", "aborted", "failed") else "green")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    progress = Table.grid(padding=(0, 2))
    progress.add_row(bar, Text.from_markup(f"{done}/{total}  {steps}"))
    grid.add_row("step", progress)
    grid.add_row("traffic", describe_traffic(view.get("traffic")))
    checks = check_lines(view)
    grid.add_row("last check", "\n".join(checks))
    due = next_step_at(view)
    if due is not None:
        seconds = max(0, int((due - now).total_seconds()))
        grid.add_row("next step", f"in {seconds // 60}m{seconds % 60:02d}s at the earliest")
    alerts = view.get("alerts") or []
    grid.add_row("alerts", f"{view.get('alerts_received', 0)} received" +
                 "".join(f"\n{a.get('at', '')[11:19]} {a.get('rule')} {a.get('monitor_condition')} -> {a.get('action')}"
                         for a in alerts[-3:]))
    if view.get("outcome"):
        grid.add_row("outcome", final_line(view))
    return Panel(Group(Text(headline(view), style="bold"), grid), title="aml-rollout", title_align="left", expand=False)


def _signature(view: Mapping[str, Any]) -> tuple[Any, ...]:
    health = view.get("last_health") or {}
    return (view.get("phase"), view.get("paused"), view.get("step_index"), tuple(sorted((view.get("traffic") or {}).items())),
            health.get("at"), view.get("alerts_received"), view.get("outcome"))


def plain_line(view: Mapping[str, Any], now: datetime) -> str:
    """One log line for a change: time, headline, traffic, last verdict."""
    health = view.get("last_health") or {}
    verdict = f"; last check {health.get('verdict')}: {health.get('reason')}" if health else ""
    return f"{now.strftime('%H:%M:%S')} {headline(view)}; traffic {describe_traffic(view.get('traffic'))}{verdict}"


def watch(fetch: Fetch, out: TextIO, *, live: bool, interval: float = DEFAULT_INTERVAL,
          sleep: Callable[[float], None] = time.sleep, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> dict[str, Any]:
    """Poll ``fetch`` every ``interval`` seconds until the record has an outcome; returns that record.

    ``live``: draw the rich view on ``out`` (a terminal); otherwise print a plain line per change.
    The final line is printed in both cases.
    """
    view = fetch()
    if live:
        console = Console(file=out)
        with Live(view_renderable(view, now()), console=console, auto_refresh=False, transient=False) as screen:
            while not view.get("outcome"):
                sleep(interval)
                view = fetch()
                screen.update(view_renderable(view, now()), refresh=True)
    else:
        seen = None
        while True:
            if _signature(view) != seen:
                seen = _signature(view)
                print(plain_line(view, now()), file=out, flush=True)
            if view.get("outcome"):
                break
            sleep(interval)
            view = fetch()
    print(final_line(view), file=out, flush=True)
    return view


__all__ = ["watch", "view_renderable", "plain_line", "summary_lines"]
