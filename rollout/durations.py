"""ISO 8601 durations (``PT5M``, ``P1DT2H``, ``PT0.5S``) to and from ``timedelta``.

Years and months are refused: their length depends on the calendar, and a rollout window
measured in months is a mistake anyway.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration; raise ValueError naming the problem."""
    if not isinstance(text, str):
        raise ValueError("must be an ISO 8601 duration string such as 'PT5M'")
    match = _DURATION.match(text.strip().upper())
    if match is None:
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as 'PT5M' (years and months are not allowed)")
    parts = {name: float(value) for name, value in match.groupdict().items() if value}
    return timedelta(**parts)


def format_duration(delta: timedelta) -> str:
    """Format as ISO 8601 (``PT1H30M``), the inverse of ``parse_duration`` for whole seconds."""
    total = int(delta.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    date = f"{days}D" if days else ""
    if not time and not date:
        return "PT0S"
    return f"P{date}" + (f"T{time}" if time else "")
