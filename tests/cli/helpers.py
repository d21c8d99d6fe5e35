"""Running ``aml-rollout`` in-process against ``serve``, and the examples made fast enough for a real clock."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from cli.main import main
from rollout.durations import parse_duration
from rollout.plan import MAX_DURATION

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
KEY = "cli-test-key-7c1e"
SPEED = 100                      # an example's 5-minute window lasts 3 s on serve's real clock


@dataclass
class Run:
    """What one ``aml-rollout`` invocation did."""

    code: int
    out: str
    err: str


def cli(*argv: str, url: str | None = None, key: str | None = KEY, stdin: str = "", env: dict[str, str] | None = None) -> Run:
    """Run ``aml-rollout`` in this process (stdout and stderr are not terminals)."""
    out, err = io.StringIO(), io.StringIO()
    head = [*(["--url", url] if url else []), *(["--key", key] if key else [])]
    code = main([*head, *argv], stdin=io.StringIO(stdin), out=out, err=err, env=env or {})
    return Run(code, out.getvalue(), err.getvalue())


def _faster(text: str, minimum: float = 0.0) -> str:
    seconds = max(parse_duration(text, MAX_DURATION) / timedelta(seconds=1) / SPEED, minimum)
    return f"PT{seconds:g}S"


def faster_example(path: Path) -> dict[str, Any]:
    """An example scenario with its times divided by ``SPEED`` and its load multiplied by it, so that
    the same requests per window are judged in 1/SPEED of the time (check intervals: at least 1 s,
    the API's minimum; the API keeps whole seconds of a request's durations, so SPEED divides the
    examples' windows into whole seconds)."""
    data = yaml.safe_load(path.read_text())
    rollout = data["rollout"]
    rollout["observation_window"] = _faster(rollout.get("observation_window", "PT5M"))
    rollout["check_interval"] = _faster(rollout.get("check_interval", "PT1M"), minimum=1.0)
    data["load"]["requests_per_minute"] *= SPEED
    for segments in data.get("health", {}).values():
        for segment in segments:
            segment["from"] = _faster(segment.get("from", "PT0S"))
    for alert in data.get("alerts", []):
        alert["at"] = _faster(alert["at"])
        alert["payload"] = str(path.parent / alert["payload"])
    return data


def deliver_later(url: str, payload: dict[str, Any], after: timedelta) -> threading.Timer:
    """Post an alert to the webhook ``after`` from now (on a timer thread), as Azure Monitor would."""
    from tests.http.helpers import Client

    timer = threading.Timer(after.total_seconds(), lambda: Client(url, KEY).post("/api/alerts", payload))
    timer.start()
    return timer
