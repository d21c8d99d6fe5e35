"""Per-module mutation scores from ``mutmut results --all true`` (see bench/mutation.sh)."""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict

LINE = re.compile(r"^\s*(?P<module>[\w.]+)\.x[ε_]?\w*__mutmut_\d+: (?P<status>.+?)\s*$")


def main(path: str) -> None:
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    with open(path, encoding="utf-8") as results:
        lines = results.read().splitlines()
    for line in lines:
        match = LINE.match(line)
        if match:
            by_module[match["module"]][match["status"]] += 1
    print(f"{'module':<22} {'killed':>7} {'survived':>9} {'other':>6} {'score':>7}")
    totals: Counter[str] = Counter()
    for module in sorted(by_module):
        counts = by_module[module]
        totals.update(counts)
        _row(module, counts)
    _row("total", totals)


def _row(name: str, counts: Counter[str]) -> None:
    killed = counts["killed"] + counts["timeout"]
    survived = counts["survived"] + counts["no tests"]
    other = sum(counts.values()) - killed - survived
    score = killed / (killed + survived) if killed + survived else 1.0
    print(f"{name:<22} {killed:>7} {survived:>9} {other:>6} {score:>7.1%}")


if __name__ == "__main__":
    main(sys.argv[1])
