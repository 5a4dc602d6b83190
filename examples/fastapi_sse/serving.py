"""Serve the application with uvicorn on a thread of its own: for the demo, and for tests, which need a real
server (an in-process ASGI transport buffers whole responses and never disconnects mid-stream)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

__all__ = ["serving"]


@contextmanager
def serving(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """The base URL of ``app`` served by uvicorn on ``host``:``port`` (0: a free port) until the block ends."""
    # In-flight streams get two seconds to end once the block is left; then uvicorn cancels them. No WebSocket
    # route, so no WebSocket protocol: uvicorn 0.34's imports websockets' deprecated legacy API when websockets
    # is installed (google-genai installs it), which warns.
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2, ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the application did not start: uvicorn logged why above")
            time.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(10)
