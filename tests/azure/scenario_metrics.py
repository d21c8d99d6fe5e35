"""Azure Monitor's metrics answers for ``ScenarioAzure``: the per-minute series a scenario's world yields.

``metrics_problem`` refuses what this fake cannot answer as Azure would (and what Azure refuses: a
``statusCode`` split of the latency metric without ``ValidateDimensions=false``);
``request_series``/``latency_series`` build ``RequestsPerMinute`` and ``RequestLatency_P99``
time series from per-minute (requests, errors, p99) per deployment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tests.azure.fake_azure import fixture

METRICS_TEMPLATE = fixture("metrics_list_RequestsPerMinute_RequestLatency_P99_by_deployment_statusCode.SYNTHETIC.json")
METRIC_DIMENSIONS = {"requestsperminute": ("deployment", "statuscode"), "requestlatency_p99": ("deployment",)}
"""The dimensions each metric has (of those this fake splits by), by lower-cased metric name."""
ERROR_CODES = (("500", 0.75), ("424", 0.25))
"""How errors are answered: status code and share of the errors."""
def _minute(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def metrics_problem(query: dict[str, str]) -> str | None:
    """Why this fake cannot answer the metrics query as Azure would (None when it can)."""
    names = [n for n in query.get("metricnames", "").split(",") if n]
    unknown = [n for n in names if n.lower() not in METRIC_DIMENSIONS]
    if not names or unknown:
        return f"Failed to find metric configuration for metric(s): {', '.join(unknown) or '(none)'}"
    if "timespan" not in query or "/" not in query["timespan"]:
        return "timespan must be start/end"
    if query.get("interval", "PT1M").upper() != "PT1M":
        return "the scenario fake answers interval PT1M only"
    if "average" not in query.get("aggregation", "average").lower().split(","):
        return "the scenario fake answers the average aggregation only"
    split = split_dimensions(query.get("$filter", ""))
    unsupported = [d for d in split if not any(d in dims for dims in METRIC_DIMENSIONS.values())]
    if unsupported:
        return f"the scenario fake splits by deployment and statusCode only, not {', '.join(unsupported)}"
    if query.get("ValidateDimensions", "true").lower() != "false":
        for name in names:
            missing = [d for d in split if d not in METRIC_DIMENSIONS[name.lower()]]
            if missing:
                return f"Metric: {name} does not support requested dimension combination: {', '.join(missing)}"
    return None


def split_dimensions(text: str) -> list[str]:
    """Dimensions a ``$filter`` splits by (``name eq '*'``), lower-cased, in order."""
    return [name.lower() for name in re.findall(r"(\w+)\s+eq\s+'\*'", text)]


def _dimension(name: str, localized: str, value: str) -> dict[str, Any]:
    return {"name": {"value": name, "localizedValue": localized}, "value": value}


_LOCALIZED = {"deployment": "deployment", "statuscode": "statusCode"}


def _points(minutes: Sequence[datetime], values: Sequence[float | None]) -> list[dict[str, Any]]:
    """One data point per minute; a minute without a value has no ``average``, as Azure answers."""
    return [{"timeStamp": _minute(m), **({} if v is None else {"average": v})} for m, v in zip(minutes, values, strict=True)]


def request_series(per_minute: dict[str, list[tuple[float, float, float | None]]], minutes: Sequence[datetime],
                    dims: Sequence[str]) -> list[dict[str, Any]]:
    """``RequestsPerMinute`` series for each split combination with requests in the timespan."""
    found: dict[tuple[tuple[str, str], ...], list[float]] = {}

    def add(key: tuple[tuple[str, str], ...], index: int, count: float) -> None:
        found.setdefault(key, [0.0] * len(minutes))[index] += count

    for deployment, served in per_minute.items():
        for index, (requests, errors, _) in enumerate(served):
            if requests <= 0:
                continue
            by_code = [("200", requests - errors)] + [(code, errors * share) for code, share in ERROR_CODES]
            for code, count in by_code:
                if count <= 0:
                    continue
                key = tuple((d, deployment if d == "deployment" else code) for d in dims)
                add(key, index, count)
    return [{"metadatavalues": [_dimension(d, _LOCALIZED[d], v) for d, v in key],
             "data": _points(minutes, [v if v > 0 else None for v in values])} for key, values in found.items()]


def latency_series(per_minute: dict[str, list[tuple[float, float, float | None]]], minutes: Sequence[datetime],
                    dims: Sequence[str]) -> list[dict[str, Any]]:
    """``RequestLatency_P99`` per deployment (or, unsplit, the highest of them) for minutes with requests."""
    def p99s(chosen: Sequence[str]) -> list[float | None]:
        values = []
        for index in range(len(minutes)):
            found = [per_minute[n][index][2] for n in chosen if per_minute[n][index][0] > 0]
            values.append(max((v for v in found if v is not None), default=None))
        return values

    if "deployment" not in dims:
        values = p99s(list(per_minute))
        return [{"metadatavalues": [], "data": _points(minutes, values)}] if any(v is not None for v in values) else []
    series = []
    for deployment in per_minute:
        values = p99s([deployment])
        if any(v is not None for v in values):
            series.append({"metadatavalues": [_dimension("deployment", "deployment", deployment)],
                           "data": _points(minutes, values)})
    return series
