"""What importing the Azure adapters costs at start-up, against what their first use costs.

Each measurement runs in a fresh interpreter (so nothing is cached in ``sys.modules``), RUNS
times; the median is printed. Measured:

- ``import function_app``: what a Functions host pays when it indexes the app (should import
  no Azure SDK beyond azure-functions / azure-functions-durable);
- ``import adapters.azure_backend``: the backend module alone (should import no Azure SDK);
- first ``AzureBackend.endpoints(...)``: imports azure-ai-ml and azure-identity, builds the
  credential (``DefaultAzureCredential``, not yet asked for a token) and the ``MLClient``;
- first ``metrics(..., "platform")`` and ``metrics(..., "log_analytics")``: the Monitor clients
  (and, measured separately, a first ``metrics`` call before any ``endpoints``: azure-ai-ml is
  not imported for it).

No network is used: the public cloud needs no metadata and no request is sent. Not a test:
figures for docs/azure.md.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5

PROBE = r"""
import json, sys, time
def mark(label, started, before):
    azure = sorted(m for m in sys.modules if m.startswith("azure."))
    out[label] = {"seconds": time.perf_counter() - started, "modules": len(sys.modules) - before,
                  "azure_ml": "azure.ai.ml" in sys.modules, "monitor": "azure.mgmt.monitor" in sys.modules,
                  "azure_modules": len(azure)}
out = {}
TARGET = sys.argv[1]
if TARGET == "function_app":
    before, started = len(sys.modules), time.perf_counter()
    import function_app  # noqa: F401
    mark("import function_app", started, before)
elif TARGET == "metrics_first":
    from adapters.azure_backend import AzureBackend, AzureSettings
    backend = AzureBackend(AzureSettings("00000000-0000-0000-0000-000000000000", "rg", "ws"))
    before, started = len(sys.modules), time.perf_counter()
    backend.metrics(None, "platform")
    mark("first metrics(platform), no ML yet", started, before)
else:
    before, started = len(sys.modules), time.perf_counter()
    from adapters.azure_backend import AzureBackend, AzureSettings
    mark("import adapters.azure_backend", started, before)
    backend = AzureBackend(AzureSettings("00000000-0000-0000-0000-000000000000", "rg", "ws",
                                         log_analytics_workspace_id="11111111-0000-0000-0000-000000000000"))
    before, started = len(sys.modules), time.perf_counter()
    backend.endpoints(None)
    mark("first endpoints() (MLClient)", started, before)
    before, started = len(sys.modules), time.perf_counter()
    backend.metrics(None, "platform")
    mark("first metrics(platform)", started, before)
    before, started = len(sys.modules), time.perf_counter()
    backend.metrics(None, "log_analytics")
    mark("first metrics(log_analytics)", started, before)
    before, started = len(sys.modules), time.perf_counter()
    backend.endpoints(None); backend.metrics(None, "platform")
    mark("later calls (cached ports)", started, before)
print(json.dumps(out))
"""


def run(target: str) -> dict[str, dict[str, float]] | str:
    """One fresh interpreter measuring ``target``; the error text when it fails."""
    done = subprocess.run([sys.executable, "-c", PROBE, target], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        return done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(target: str) -> None:
    results = [run(target) for _ in range(RUNS)]
    failures = [r for r in results if isinstance(r, str)]
    if failures:
        print(f"{target}: could not be measured: {failures[0]}")
        return
    measured = [r for r in results if isinstance(r, dict)]
    for label in measured[0]:
        rows = [r[label] for r in measured]
        seconds = statistics.median(row["seconds"] for row in rows)
        print(f"{label:36} {seconds * 1000:8.1f} ms  {int(statistics.median(row['modules'] for row in rows)):5d} modules"
              f"  azure.* loaded: {int(rows[0]['azure_modules']):4d}  azure.ai.ml: {bool(rows[0]['azure_ml'])!s:5}"
              f"  azure.mgmt.monitor: {bool(rows[0]['monitor'])}")


def main() -> None:
    print(f"python {sys.version.split()[0]}, median of {RUNS} fresh interpreters each")
    measure("function_app")
    measure("adapters")
    measure("metrics_first")


if __name__ == "__main__":
    main()
