"""A webhook receiver on loopback: records what it is sent and answers as scripted."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """``script``: the statuses to answer in order (the last one repeats); ``hang``: seconds to wait before answering."""

    script: list[int] = field(default_factory=lambda: [200])
    hang: float = 0.0
    retry_after: str | None = None
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.received.append(Received(self.path, dict(self.headers), body))
                if owner.hang:
                    time.sleep(owner.hang)
                status = owner.script[min(len(owner.received), len(owner.script)) - 1]
                self.send_response(status)
                if owner.retry_after is not None:
                    self.send_header("Retry-After", owner.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
