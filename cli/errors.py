"""The CLI's errors and exit codes: every failure is one sentence plus a hint, never a traceback
(unless ``--debug``).

    exit  meaning
    0     done; with ``--wait``/``watch``: the rollout was promoted
    1     the rollout rolled back
    2     bad usage or a request the app refused (400, 404, 409, 413), or a bad file
    3     the rollout was aborted by an operator
    4     the rollout failed (or ended with an outcome this client does not know)
    5     the app cannot be reached, refused the key (401/403), or failed (5xx)
    6     the rollout was promoted, then reverted within its revert window
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ROLLED_BACK = 1
EXIT_USAGE = 2
EXIT_ABORTED = 3
EXIT_FAILED = 4
EXIT_UNREACHABLE = 5
EXIT_REVERTED = 6

OUTCOME_EXIT_CODES = {"promoted": EXIT_OK, "rolled_back": EXIT_ROLLED_BACK, "aborted": EXIT_ABORTED,
                      "failed": EXIT_FAILED, "reverted": EXIT_REVERTED}


def exit_code_for(outcome: str | None) -> int:
    """The exit code of a rollout's outcome (``EXIT_FAILED`` for one not known here)."""
    return OUTCOME_EXIT_CODES.get(outcome or "", EXIT_FAILED)


class CliError(Exception):
    """A failure told as one sentence (``message``), with what to do about it (``hint``)."""

    def __init__(self, message: str, hint: str = "", exit_code: int = EXIT_USAGE, status: int | None = None) -> None:
        super().__init__(message)
        self.message, self.hint, self.exit_code, self.status = message, hint, exit_code, status

    def lines(self) -> list[str]:
        """What the CLI prints on stderr: ``error: <message>`` and, if any, ``hint: <hint>``."""
        return [f"error: {self.message}", *([f"hint: {self.hint}"] if self.hint else [])]
