"""Durable task-hub storage in one SQLite file (stdlib ``sqlite3``), so that instances survive a crash.

The Azure Storage provider keeps an instance's history in a table (one row per event, appended
per episode), its status in another, and its pending messages in queues until the episode that
consumes them commits. ``SqliteStore`` keeps the same in one file: ``history`` rows appended as an
execution grows (an episode never re-encodes what is stored), one ``instances`` row per instance
(status, custom status, output, and the inbox of messages not yet consumed), and ``extras`` for
state outside the hub that must survive with it (the simulated endpoints' traffic under ``serve``).

The task hub saves an instance under its lock after every change - start, a delivered message,
an episode's commit, terminate - so a crash loses at most the episode in flight; its messages are
still in the stored inbox and are delivered again, as the host redelivers queue messages whose
work item never completed. On load, the hub re-creates what the host's queues would still hold:
a timer for every ``TimerCreated`` not yet fired, an activity run for every ``TaskScheduled`` not
yet completed (activities run at least once, as on Azure).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from emulator.instance import Instance
from emulator.simulated_azure import SimulatedWorkspace, TrafficChange

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (instance_id TEXT PRIMARY KEY, execution_id TEXT NOT NULL, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS history (instance_id TEXT NOT NULL, execution_id TEXT NOT NULL, seq INTEGER NOT NULL,
                                    event TEXT NOT NULL, PRIMARY KEY (instance_id, seq));
CREATE TABLE IF NOT EXISTS extras (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SqliteStore:
    """Instances, their histories and ``extras`` in the SQLite file at ``path`` (created when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._written: dict[str, tuple[str, int]] = {}  # instance id -> (execution id, events stored)
        self._snapshots: dict[str, Callable[[], Any]] = {}

    def load(self) -> list[Instance]:
        """Every stored instance, with its history."""
        with self._lock:
            instances = []
            for instance_id, execution_id, state in self._db.execute("SELECT * FROM instances").fetchall():
                rows = self._db.execute("SELECT event FROM history WHERE instance_id = ? AND execution_id = ? "
                                        "ORDER BY seq", (instance_id, execution_id)).fetchall()
                instance = _instance_from(json.loads(state), [json.loads(row[0]) for row in rows])
                self._written[instance_id] = (execution_id, len(rows))
                instances.append(instance)
            return instances

    def save(self, instance: Instance) -> None:
        """Store ``instance``: its row, the history events not stored yet, and every tracked extra; one transaction."""
        with self._lock:
            execution, stored = self._written.get(instance.instance_id, ("", 0))
            self._db.execute("BEGIN")
            try:
                if execution != instance.execution_id or stored > len(instance.history):
                    self._db.execute("DELETE FROM history WHERE instance_id = ?", (instance.instance_id,))
                    stored = 0
                self._db.executemany(
                    "INSERT INTO history VALUES (?, ?, ?, ?)",
                    [(instance.instance_id, instance.execution_id, seq, json.dumps(event, ensure_ascii=False))
                     for seq, event in enumerate(instance.history[stored:], start=stored)])
                self._db.execute("INSERT OR REPLACE INTO instances VALUES (?, ?, ?)",
                                 (instance.instance_id, instance.execution_id, json.dumps(_state_of(instance))))
                for key, snapshot in self._snapshots.items():
                    self._db.execute("INSERT OR REPLACE INTO extras VALUES (?, ?)", (key, json.dumps(snapshot())))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._written[instance.instance_id] = (instance.execution_id, len(instance.history))

    def delete(self, instance_id: str) -> None:
        """Forget a purged instance."""
        with self._lock:
            self._db.execute("DELETE FROM history WHERE instance_id = ?", (instance_id,))
            self._db.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,))
            self._written.pop(instance_id, None)

    def track(self, key: str, snapshot: Callable[[], Any]) -> None:
        """Store ``snapshot()`` (a JSON value) under ``key`` with every ``save``."""
        self._snapshots[key] = snapshot

    def extra(self, key: str) -> Any:
        """The value last stored under ``key``, or None."""
        with self._lock:
            row = self._db.execute("SELECT value FROM extras WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


_TIMES = ("created_at", "last_updated_at")
_FIELDS = ("instance_id", "name", "input", "execution_id", "status", "custom_status", "output", "suspended_from")


def _state_of(instance: Instance) -> dict[str, Any]:
    state: dict[str, Any] = {name: getattr(instance, name) for name in _FIELDS}
    state.update({name: getattr(instance, name).isoformat() for name in _TIMES})
    state["inbox"] = list(instance.inbox)
    return state


def _instance_from(state: dict[str, Any], history: list[dict[str, Any]]) -> Instance:
    instance = Instance(**{name: state[name] for name in _FIELDS if name not in ("suspended_from",)},
                        created_at=datetime.fromisoformat(state["created_at"]),
                        last_updated_at=datetime.fromisoformat(state["last_updated_at"]))
    instance.suspended_from = state.get("suspended_from")
    instance.history = history
    instance.inbox = deque(state.get("inbox") or [])
    return instance


SIMULATED_TRAFFIC = "simulated_traffic"
"""The ``extras`` key of the simulated endpoints' traffic (``serve`` without ``--azure``)."""


def keep_simulated_traffic(store: SqliteStore, workspace: SimulatedWorkspace) -> None:
    """Put back the traffic ``store`` last saved for the simulated endpoints of ``workspace`` (Azure ML keeps
    it across a restart of ours), and save it with every later change."""
    saved = store.extra(SIMULATED_TRAFFIC) or {}
    with workspace.lock:
        for name, state in saved.items():
            endpoint = workspace.endpoints.get(name)
            if endpoint is not None and state["traffic"] != endpoint.traffic:
                endpoint.traffic, endpoint.mirror_traffic = dict(state["traffic"]), dict(state["mirror"])
                endpoint.changes.append(TrafficChange(workspace.now(), dict(endpoint.traffic),
                                                      dict(endpoint.mirror_traffic), "restored"))

    def snapshot() -> dict[str, Any]:
        with workspace.lock:
            return {name: {"traffic": e.traffic, "mirror": e.mirror_traffic} for name, e in workspace.endpoints.items()}

    store.track(SIMULATED_TRAFFIC, snapshot)
