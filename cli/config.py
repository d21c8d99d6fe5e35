"""The CLI's one place that reads the environment.

    AML_ROLLOUT_URL   the app's base URL (``--url`` wins), e.g. http://127.0.0.1:7071 or https://APP.azurewebsites.net
    AML_ROLLOUT_KEY   its function key (``--key`` wins)
"""

from __future__ import annotations

import os
from typing import Mapping

URL_VARIABLE, KEY_VARIABLE = "AML_ROLLOUT_URL", "AML_ROLLOUT_KEY"


def connection(url: str | None, key: str | None, env: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """(URL, key): the flags when given, else the environment's values (None when neither)."""
    env = os.environ if env is None else env
    return url or env.get(URL_VARIABLE) or None, key or env.get(KEY_VARIABLE) or None
