"""Small socket helpers shared by the project's servers (the venue, the metrics endpoint)."""

from __future__ import annotations

import trio


async def check_bindable(host: str, port: int) -> None:
    """Raise OSError now if ``host:port`` is taken: hypercorn would leave its socket behind.

    Port 0 (any free port) always binds, so it is not probed.
    """
    if port == 0:
        return
    with trio.socket.socket() as probe:
        probe.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
        await probe.bind((host, port))
