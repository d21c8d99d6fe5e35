"""ISO 8601 durations (``PT5M``, ``P1DT2H``, ``PT0.5S``) to and from ``timedelta``, parsed by ``isodate``.

``isodate`` does the parsing; this module adds what it leaves open. Only ASCII is read (no
Unicode digits), designators may be lower-case, and there is no sign, no surrounding
whitespace and no trailing newline (isodate's pattern ends in ``$``). Years and months are
refused: their length depends on the calendar. Every duration has an upper bound given by the
caller, so a value too large for ``timedelta`` is "too long", never an ``OverflowError``.
"""

from __future__ import annotations

from datetime import timedelta

import isodate

_EXAMPLE = "an ISO 8601 duration such as 'PT5M'"


def parse_duration(text: object, maximum: timedelta) -> timedelta:
    """Parse an ISO 8601 duration of at most ``maximum``; raise ValueError saying what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"must be {_EXAMPLE}")
    upper = text.upper()
    if not (text.isascii() and text.isprintable()) or not upper.startswith("P") or not any(c.isdigit() for c in text) \
            or upper.endswith("T"):
        raise ValueError(f"is not {_EXAMPLE}")
    try:
        delta = isodate.parse_duration(upper)
    except OverflowError:
        raise ValueError(f"must be at most {format_duration(maximum)}") from None
    except ValueError:   # isodate.ISO8601Error is a ValueError
        raise ValueError(f"is not {_EXAMPLE}") from None
    if not isinstance(delta, timedelta):
        raise ValueError(f"is not {_EXAMPLE} (years and months are not allowed)")
    if delta > maximum:
        raise ValueError(f"must be at most {format_duration(maximum)}")
    return delta


def format_duration(delta: timedelta) -> str:
    """Format as ISO 8601 (``PT1H30M``, ``PT1.5S``, ``PT0S``): ``parse_duration`` reads it back exactly."""
    if not delta:
        return "PT0S"
    return str(isodate.duration_isoformat(delta))
