"""Run real `syncd serve` processes for integration tests (start, SIGTERM, SIGKILL, restart)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from syncd.auth import mint_token

TEST_SECRET = "test-secret-not-for-production-0123456789"


def free_port() -> int:
    """A port nobody listens on right now (bound by the OS, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_token(
    user: str,
    *,
    roles: Sequence[str] = (),
    ttl: float = 3600.0,
    name: str | None = None,
    email: str | None = None,
    secret: str = TEST_SECRET,
) -> str:
    return mint_token(
        secret, user, name=name or user.title(), email=email, roles=roles, ttl_seconds=ttl
    )


class SyncdProcess:
    """One syncd instance as a child process with its own data folder."""

    def __init__(
        self, data_dir: Path, *, env: Mapping[str, str] | None = None, port: int | None = None
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.extra_env = dict(env or {})
        self.proc: asyncio.subprocess.Process | None = None
        self.log_path = data_dir / f"syncd-{self.port}.log"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The base URL a stock `WebsocketProvider` takes (the note id is appended)."""
        return f"ws://127.0.0.1:{self.port}/ws/notes"

    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"REDIS_URL", "DATABASE_URL", "JWT_SECRET", "JWT_REFRESH_SECRET"}
        }
        env.update(
            {
                "DATABASE_URL": f"sqlite:///{self.data_dir / 'syncd.db'}",
                "JWT_SECRET": TEST_SECRET,
                "SYNCD_DATA_DIR": str(self.data_dir),
                "PORT": str(self.port),
                "HOST": "127.0.0.1",
                "SYNCD_LOG_LEVEL": "info",
            }
        )
        env.update(self.extra_env)
        return env

    async def start(self, *, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "syncd",
            "serve",
            env=self.env(),
            stdout=log,
            stderr=log,
        )
        log.close()
        await self.wait_healthy(timeout)

    async def wait_healthy(self, timeout: float) -> None:
        """Poll /healthz until it answers, the process dies, or `timeout` passes."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.http_url, timeout=1.0) as client:
            while True:
                if self.proc is not None and self.proc.returncode is not None:
                    raise RuntimeError(f"syncd exited early:\n{self.log_tail()}")
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"syncd did not become healthy:\n{self.log_tail()}")
                await asyncio.sleep(0.05)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def stop(self, *, timeout: float = 30.0) -> int:
        """SIGTERM (graceful: connections closed with 1001, rooms stored) and wait."""
        return await self._signal(signal.SIGTERM, timeout)

    async def kill(self) -> int:
        """SIGKILL: no chance to store anything that is not stored already."""
        return await self._signal(signal.SIGKILL, 10.0)

    async def _signal(self, sig: int, timeout: float) -> int:
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise RuntimeError(f"syncd ignored signal {sig}:\n{self.log_tail()}") from None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.http_url, headers=headers, timeout=15.0)
