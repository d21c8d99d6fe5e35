"""``python -m emulator simulate|serve ...``: the embedded local runtime."""

from __future__ import annotations

import sys

USAGE = """usage: python -m emulator simulate SCENARIO [--json] [--real-clock] [--azure] [--seed N] [--runs N] [--report FILE]
       python -m emulator serve [--port 7071] [--scenario FILE] [--key KEY] [--azure]"""


def main(argv: list[str]) -> int:
    """Dispatch to the sub-command."""
    if not argv or argv[0] not in ("simulate", "serve"):
        print(USAGE, file=sys.stderr)
        return 2
    if argv[0] == "simulate":
        from emulator.simulate import main as simulate

        return simulate(argv[1:])
    from emulator.serve import main as serve

    return serve(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
