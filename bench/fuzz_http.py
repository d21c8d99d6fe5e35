"""The generated-request properties of tests/http/test_generated_bodies.py, at length.

The test suite runs them with about 30 examples each (seconds); this runs them with many more
against ``serve`` on loopback and prints how long that took. Usage::

    ./dev python bench/fuzz_http.py [EXAMPLES]       # default 2000 per property
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    examples = sys.argv[1] if len(sys.argv) > 1 else "2000"
    env = {**os.environ, "AML_ROLLOUT_FUZZ_EXAMPLES": examples}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
                             "tests/http/test_generated_bodies.py", "tests/azure/test_name_rule.py"],
                            cwd=ROOT, env=env, check=False)
    print(f"fuzz_http: {examples} examples per property, exit {result.returncode}, "
          f"{time.perf_counter() - started:.0f} s")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
