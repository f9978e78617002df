"""Throwaway Postgres and Redis servers for tests, and per-test isolation helpers.

Session fixtures in `tests/conftest.py` use a server given by environment
(`SYNCD_TEST_DATABASE_URL`, `SYNCD_TEST_REDIS_URL`) or start their own with
the helpers here. Tests that stop, kill or restart a server always start
their own (`start_postgres`, `start_redis`): a shared server is never
stopped, flushed or dropped.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

START_TIMEOUT = 30.0


class ServiceUnavailable(RuntimeError):
    """A test service could not be started; the message says what to install."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(check: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise ServiceUnavailable(f"{what} did not come up within {timeout:.0f}s")


# Postgres


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        versions = sorted(
            glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
            key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
        )
        found = versions[-1] if versions else None
    if found is None:
        raise ServiceUnavailable(
            f"PostgreSQL server binary {name!r} not found: install the PostgreSQL server "
            "(e.g. `apt-get install postgresql`) or set SYNCD_TEST_DATABASE_URL"
        )
    return found


class PostgresServer:
    """A Postgres cluster in a temporary folder, on a free port, trust auth.

    `fsync` is off for speed: that only matters for an OS crash, so a killed
    server (`kill()`) still recovers everything it committed. (Not
    `synchronous_commit = off`: that acknowledges commits whose WAL is still
    in shared memory, which a `kill -9` loses.) The postmaster runs as our
    own child rather than detached by pg_ctl, so `kill()` can wait for it to
    be gone: with pg_ctl, a start right after a kill -9 failed on a
    postmaster.pid that still named a live-looking pid.
    """

    def __init__(self, base_dir: Path) -> None:
        # initdb and postgres refuse to run as root: run them as the
        # `postgres` OS user, in a folder that user can reach (pytest's tmp
        # folders are private to root).
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            self.root = Path(tempfile.mkdtemp(prefix="syncd-pg-"))
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        else:
            self.root = base_dir / "postgres"
            self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.root / "data"
        self.log_file = self.root / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._process: subprocess.Popen[bytes] | None = None
        initdb = [_pg_bin("initdb"), "-D", str(self.data_dir), "-U", "postgres", "-A", "trust"]
        done = subprocess.run(
            [*initdb, "-E", "UTF8", "--locale=C", "--no-sync"],
            capture_output=True,
            text=True,
            check=False,
            **self._as_user(),
        )
        if done.returncode != 0:
            raise ServiceUnavailable(f"initdb failed:\n{done.stdout}{done.stderr}")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\nfsync = off\n"
                "full_page_writes = off\nmax_connections = 200\n"
            )
        atexit.register(self.close)

    def _as_user(self) -> dict[str, str]:
        return {"user": self._user} if self._user else {}

    def _ready(self) -> bool:
        probe = [_pg_bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"]
        return subprocess.run(probe, check=False).returncode == 0

    def start(self) -> None:
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [_pg_bin("postgres"), "-D", str(self.data_dir)],
                stdout=log,
                stderr=log,
                start_new_session=True,
                **self._as_user(),
            )
        process = self._process
        _wait_for(lambda: process.poll() is not None or self._ready(), "postgres")
        if process.poll() is not None:
            log_tail = self.log_file.read_text(errors="replace")[-2000:]
            raise ServiceUnavailable(f"postgres exited with {process.returncode}:\n{log_tail}")

    def stop(self) -> None:
        """Fast shutdown (SIGINT): sessions are ended, nothing committed is lost."""
        self._end(signal.SIGINT)

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends (one process group): a crash."""
        self._end(signal.SIGKILL)

    def _end(self, sig: int) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if sig == signal.SIGKILL:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
        process.wait(timeout=60)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and delete the cluster (idempotent)."""
        atexit.unregister(self.close)
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(base_dir: Path) -> PostgresServer:
    """initdb and start a throwaway server; call `.close()` when done."""
    server = PostgresServer(base_dir)
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def with_database(url: str, database: str) -> str:
    """`url` pointing at another database on the same server."""
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def create_database(server_url: str, prefix: str = "syncd_t_") -> str:
    """Create an empty database on the server; return its URL."""
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_asyncpg_dsn(server_url), timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(server_url, name)


async def drop_database(url: str) -> None:
    """Drop the database `url` names, ending its sessions first."""
    name = make_url(url).database
    conn = await asyncpg.connect(_asyncpg_dsn(with_database(url, "postgres")), timeout=10)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()


# Redis


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A `redis-server` on a free port, with its files in `root`; with `unix_socket`, also
    on a unix socket (`unix_url`), in a short directory of its own (a socket path is
    limited to ~100 bytes, which a pytest tmp path can exceed)."""

    def __init__(
        self,
        root: Path,
        *,
        appendonly: bool,
        appendfsync: str | None = None,
        unix_socket: bool = False,
    ) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise ServiceUnavailable(
                "redis-server not found: install Redis (e.g. `apt-get install redis-server`) "
                "or set SYNCD_TEST_REDIS_URL"
            )
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.appendonly = appendonly
        #: None keeps Redis's default (`everysec`); `always` fsyncs before each reply
        self.appendfsync = appendfsync
        self.socket = None
        if unix_socket:
            self.socket = Path(tempfile.mkdtemp(prefix="redis-")) / "redis.sock"
        self.unix_url = f"unix://{self.socket}" if self.socket is not None else None
        self._process: subprocess.Popen[bytes] | None = None
        atexit.register(self.close)

    def start(self) -> None:
        args = [
            str(self.binary),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.root),
            "--save",
            "",
            "--daemonize",
            "no",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--logfile",
            str(self.root / "redis.log"),
        ]
        if self.appendfsync is not None:
            args += ["--appendfsync", self.appendfsync]
        if self.socket is not None:
            args += ["--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, start_new_session=True)
        process = self._process
        _wait_for(lambda: _redis_ping(self.port) or process.poll() is not None, "redis-server")
        if process.poll() is not None:
            log = (self.root / "redis.log").read_text(errors="replace")[-2000:]
            raise ServiceUnavailable(f"redis-server exited with {process.returncode}:\n{log}")

    def stop(self) -> None:
        """SIGTERM: Redis shuts down cleanly (the AOF is flushed)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        self._end(signal.SIGKILL)

    def _end(self, sig: int) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(sig)
            self._process.wait(timeout=30)
        self._process = None

    def restart(self) -> None:
        """Stop (if running) and start again, same port and files."""
        self.stop()
        self.start()

    def close(self) -> None:
        atexit.unregister(self.close)
        self.kill()
        if self.socket is not None:
            shutil.rmtree(self.socket.parent, ignore_errors=True)


def start_redis(
    base_dir: Path,
    *,
    appendonly: bool = True,
    appendfsync: str | None = None,
    unix_socket: bool = False,
) -> RedisServer:
    """Start a throwaway Redis (persisting to an AOF by default); `.close()` when done.

    `appendfsync="always"` makes every acknowledged write survive a `kill()` of Redis; with
    the default `everysec`, a kill can lose what was written in the last second or so.
    `unix_socket`: also listen on a unix socket, `server.unix_url`.
    """
    server = RedisServer(
        base_dir / f"redis-{uuid.uuid4().hex[:8]}",
        appendonly=appendonly,
        appendfsync=appendfsync,
        unix_socket=unix_socket,
    )
    server.start()
    return server
