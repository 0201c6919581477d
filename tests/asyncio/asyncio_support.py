"""Helpers of the asyncio suite: a heartbeat that measures loop stalls, a slow WSDL server."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import threading
import time
from collections.abc import Iterator

MESSAGE = 23541
CONTACT = 33457


class Heartbeat:
    """Ticks every 5 ms on the running loop; ``worst`` is the longest late wake-up (s)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _beat(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, time.perf_counter() - before - 0.005)
            self.ticks += 1

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.create_task(self._beat())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.contextmanager
def slow_wsdl_server(delay: float) -> Iterator[str]:
    """Serves the bundled wsdl/ folder on 127.0.0.1, each reply ``delay`` seconds late;
    yields the WSDL's URL."""
    from engage_soap.resources import bundled_wsdl

    folder = bundled_wsdl().parent

    class Slow(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:
            time.sleep(delay)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{bundled_wsdl().name}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
