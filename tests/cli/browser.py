"""Headless Chromium from the Debian packages (``apt-get install chromium``), one fresh profile per run."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium() -> str:
    """The browser's path; fails (never skips) when it is not installed."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "headless Chromium is needed: apt-get install chromium"
    return path


def _run(*args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="aml-rollout-chromium-") as profile:
        done = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=90, check=True)
    return done.stdout


def dump_dom(url: str) -> str:
    """The DOM of the page at ``url`` after it loaded, as HTML."""
    return _run("--dump-dom", url)


def screenshot(url: str, path: Path, width: int = 960, height: int = 1000) -> Path:
    """A PNG of the page at ``url``."""
    _run(f"--screenshot={path}", f"--window-size={width},{height}", "--hide-scrollbars", url)
    return path
