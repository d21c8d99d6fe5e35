"""Recorded metrics for backtesting: replay what deployments really served through the judge.

A scenario's ``recorded_metrics: FILE`` (relative to the scenario) replaces ``load`` and
``health``: each health check reads the recorded minutes instead of synthetic ones. Three
formats, told apart by content:

- **CSV** with the header ``minute,deployment,requests,errors,p99_ms``; ``minute`` is an
  integer offset from the start or an ISO 8601 timestamp; ``p99_ms`` may be empty; lines
  starting with ``#`` are comments.
- **Azure Monitor metrics** as the REST API returns them (``GET .../providers/
  Microsoft.Insights/metrics``, ``interval=PT1M``): ``RequestsPerMinute`` split by
  ``deployment`` and ``statusCode`` (``average`` per minute), optionally ``RequestLatency_P99``
  split by ``deployment``; the adapter's query (``adapters/azure_monitor.py``) asks for
  exactly this, so saving its response is a recording.
- **Log Analytics** query results (``{"tables": [{"columns": [...], "rows": [...]}]}``) with
  columns ``TimeGenerated``, ``DeploymentName``, ``Requests``, ``Errors5xx``, ``ModelErrors``
  and optionally ``P99Ms``: the adapter's summary ``by bin(TimeGenerated, 1m)`` (docs/judge.md
  has the query).

Errors are requests answered 5xx or 424, as the adapters count them. The recording's first
minute is the simulation's minute 0. Minutes are read as the platform adapter reads them:
from the minute a query's start falls in up to the last minute that ended by its end. The
recording is replayed as it happened: the traffic the simulated rollout sets does not change
it, so a backtest is faithful until the simulated rollout departs from the recorded one.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Mapping, Sequence

from emulator.simulated_azure import SimulatedWorkspace
from rollout.model import DeploymentMetrics

CSV_HEADER = ("minute", "deployment", "requests", "errors", "p99_ms")


@dataclass(frozen=True)
class RecordedMinute:
    """What one deployment served in one minute."""

    requests: int
    errors: int
    p99_ms: float | None = None


Recording = Mapping[str, Mapping[int, RecordedMinute]]     # deployment (lower-case) -> minute -> counts
Row = tuple[int | datetime, str, RecordedMinute]


def load_recording(path: Path) -> dict[str, dict[int, RecordedMinute]]:
    """Read a recording in any of the three formats; ``ValueError`` says what is wrong."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot be read: {exc.strerror}") from exc
    if text.lstrip().startswith(("{", "[")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not JSON: {exc}") from exc
        if isinstance(data, Mapping) and "tables" in data:
            return _relative(_log_analytics(data))
        if isinstance(data, Mapping) and "value" in data:
            return _relative(_azure_monitor(data))
        raise ValueError("is JSON but neither Azure Monitor metrics ('value') nor a Log Analytics result ('tables')")
    return _relative(_csv(text))


def _csv(text: str) -> list[Row]:
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header = tuple(cell.strip().lower() for cell in next(reader, []))
    if header != CSV_HEADER:
        raise ValueError(f"CSV header must be {','.join(CSV_HEADER)}, not {','.join(header) or 'empty'}")
    rows: list[Row] = []
    for number, cells in enumerate(reader, 2):
        try:
            minute, deployment, requests, errors, p99 = (cell.strip() for cell in cells)
            counts = RecordedMinute(int(requests), int(errors), float(p99) if p99 else None)
            rows.append((_minute(minute), deployment, counts))
        except ValueError as exc:
            raise ValueError(f"CSV row {number}: {exc}") from exc
        if counts.requests < 0 or not 0 <= counts.errors <= counts.requests:
            raise ValueError(f"CSV row {number}: errors must be between 0 and requests")
    return rows


def _minute(value: str) -> int | datetime:
    if value.lstrip("-").isdigit():
        return int(value)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _azure_monitor(data: Mapping[str, Any]) -> list[Row]:
    requests: dict[tuple[datetime, str], list[float]] = {}
    latency: dict[tuple[datetime, str], float] = {}
    for metric in data.get("value") or []:
        name = str((metric.get("name") or {}).get("value", "")).lower()
        for series in metric.get("timeseries") or []:
            dims = {str((m.get("name") or {}).get("value", "")).lower(): str(m.get("value"))
                    for m in series.get("metadatavalues") or []}
            deployment = dims.get("deployment", "")
            for point in series.get("data") or []:
                if point.get("average") is None:
                    continue            # a minute without data has no value, not zero
                key = (_minute_stamp(point["timeStamp"]), deployment)
                if name == "requestsperminute":
                    totals = requests.setdefault(key, [0.0, 0.0])
                    totals[0] += point["average"]
                    totals[1] += point["average"] if _is_error(dims.get("statuscode")) else 0.0
                elif name == "requestlatency_p99":
                    latency[key] = max(latency.get(key, -math.inf), float(point["average"]))
    if not requests:
        raise ValueError("has no RequestsPerMinute series split by deployment")
    return [(at, deployment, RecordedMinute(round(total), round(failed), latency.get((at, deployment))))
            for (at, deployment), (total, failed) in requests.items()]


def _log_analytics(data: Mapping[str, Any]) -> list[Row]:
    tables = data.get("tables") or []
    if not tables:
        raise ValueError("has no tables")
    columns = [str(c.get("name")) for c in tables[0].get("columns") or []]
    rows: list[Row] = []
    missing = [c for c in ("TimeGenerated", "DeploymentName", "Requests", "Errors5xx", "ModelErrors") if c not in columns]
    if missing:
        raise ValueError(f"Log Analytics result lacks column(s) {', '.join(missing)}")
    for row in tables[0].get("rows") or []:
        record = dict(zip(columns, row, strict=False))
        p99 = record.get("P99Ms")
        counts = RecordedMinute(int(record["Requests"] or 0),
                                int(record["Errors5xx"] or 0) + int(record["ModelErrors"] or 0),
                                None if p99 is None else float(p99))
        rows.append((_minute_stamp(str(record["TimeGenerated"])), str(record["DeploymentName"]), counts))
    return rows


def _minute_stamp(value: str) -> datetime:
    moment = _minute(value)
    if isinstance(moment, int):
        raise ValueError(f"timestamp {value!r} is not ISO 8601")
    return moment.replace(second=0, microsecond=0)


def _is_error(code: str | None) -> bool:
    """5xx or 424 (the model container failed): the adapters' rule."""
    return code is not None and code.strip().isdigit() and (int(code) == 424 or 500 <= int(code) <= 599)


def _relative(rows: Sequence[Row]) -> dict[str, dict[int, RecordedMinute]]:
    """Minute offsets from the recording's first minute; counts of a repeated minute add up."""
    stamps = [at for at, _, _ in rows if isinstance(at, datetime)]
    if stamps and len(stamps) != len(rows):
        raise ValueError("minutes must be all offsets or all timestamps")
    first = min(stamps) if stamps else None
    found: dict[str, dict[int, RecordedMinute]] = {}
    for at, deployment, counts in rows:
        if isinstance(at, datetime):
            assert first is not None
            minute = int((at - first).total_seconds() // 60)
        else:
            minute = at
        minutes = found.setdefault(deployment.lower(), {})
        before = minutes.get(minute)
        if before is not None:
            p99s = [p for p in (before.p99_ms, counts.p99_ms) if p is not None]
            counts = RecordedMinute(before.requests + counts.requests, before.errors + counts.errors,
                                    max(p99s) if p99s else None)
        minutes[minute] = counts
    return found


class RecordedMetrics:
    """``MetricsPort`` answering from a recording; minute 0 is the workspace's start.

    Scenario ``metrics`` faults apply as they do to synthetic metrics.
    """

    def __init__(self, workspace: SimulatedWorkspace, recording: Recording) -> None:
        self.workspace = workspace
        self.recording = recording

    def deployment_metrics(self, endpoint: str, deployments: Sequence[str], start: datetime,
                           end: datetime) -> dict[str, DeploymentMetrics]:
        """Sums over the recorded minutes from the one ``start`` falls in to the last ended by ``end``;
        p99 is the highest minute's."""
        with self.workspace.lock:
            self.workspace.check_fault("metrics")
        origin = self.workspace.started_at
        first = math.floor((start - origin) / timedelta(minutes=1))
        last = math.floor((end - origin) / timedelta(minutes=1))
        found = {}
        for name in deployments:
            minutes = [self.recording.get(name.lower(), {}).get(m) for m in range(first, last)]
            served = [m for m in minutes if m is not None]
            p99s = [m.p99_ms for m in served if m.p99_ms is not None and m.requests]
            requests = sum(m.requests for m in served)
            found[name] = DeploymentMetrics(requests, sum(m.errors for m in served),
                                            max(p99s) if p99s and requests else None)
        return found
