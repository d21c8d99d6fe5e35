"""One rollout as a self-contained HTML page (``render_report``): no script, no network."""

from report.html import render_report

__all__ = ["render_report"]
