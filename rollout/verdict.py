"""The verdict of one health check, shared by the judge (``rollout.judge``), the window
(``rollout.window``) and the legacy judge kept for comparison (``rollout.policy``)."""

from __future__ import annotations

import enum


class Verdict(enum.StrEnum):
    """The outcome of one health check."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
