"""What the in-process cost scripts share (`flush_cost.py`, `read_cost.py`,
`inbound_cost.py`): a transport that drops what it is given, a lean connection made over
it as `syncd serve` makes one, and the instruction count of a run under callgrind."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import subprocess
from typing import Any


class NullTransport(asyncio.Transport):
    """Takes everything written and drops it (a C transport's `write` costs about as much
    Python as this one's call), so a lean connection can be made through its handshake."""

    def __init__(self) -> None:
        super().__init__()
        self.protocol: Any = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 3001)}.get(name, default)

    def write(self, data: Any) -> None:
        pass

    def writelines(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


_KEY = base64.b64encode(b"0123456789abcdef")
_REQUEST = (
    b"GET /ws/notes/n1 HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\n"
    b"connection: Upgrade\r\nsec-websocket-key: " + _KEY + b"\r\nsec-websocket-version: 13\r\n\r\n"
)


async def lean_handshake(app: Any) -> NullTransport:
    """Run `app` (which accepts and adopts the socket) behind `syncd serve`'s lean HTTP
    upgrade over a `NullTransport`; returns it, its `protocol` the adopted
    `LeanWebSocketProtocol`."""
    import uvicorn
    from uvicorn.server import ServerState

    from syncd.transport.lean_protocol import LeanWebSocketProtocol
    from syncd.transport.lean_upgrade import LeanHttpToolsProtocol

    config = uvicorn.Config(app, ws=LeanWebSocketProtocol, lifespan="off", log_level="error")
    config.load()
    state = ServerState()
    transport = NullTransport()
    http = LeanHttpToolsProtocol(config, state, {})
    http.connection_made(transport)
    http.data_received(_REQUEST)
    await asyncio.gather(*state.tasks)
    return transport


def callgrind(command: list[str]) -> tuple[int, str]:
    """Run `command` (a Python script and its arguments) under callgrind: (instructions
    collected, its stdout). A fixed hash seed: str hashes decide dict layouts, which moved
    the counts by ~3%."""
    valgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [*valgrind, *command], capture_output=True, text=True, check=True, env=environment
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr}")
    return int(found.group(1)), done.stdout
