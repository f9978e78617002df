"""Configuration that users rely on, against real `syncd` processes: the data folder,
the token command's output, several CORS origins."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.support.fixtures import StartServer, create_note
from tests.support.server import SyncdProcess, make_token


async def test_the_data_dir_holds_the_default_sqlite_file(start_syncd: StartServer) -> None:
    # no DATABASE_URL: the database is SYNCD_DATA_DIR/syncd.db, not ./syncd-data/syncd.db
    server = await start_syncd(env={"DATABASE_URL": ""}, name="datadir")
    note = await create_note(server, content="kept here")
    database = server.data_dir / "syncd.db"
    assert database.is_file() and database.stat().st_size > 0
    await server.restart()
    async with server.client(make_token("owner")) as api:
        body = (await api.get(f"/api/collaborative-notes/{note['id']}")).json()
    assert body["content"] == "kept here"


async def test_the_token_command_prints_the_token_and_nothing_else(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncd",
        "token",
        "alice",
        "--name",
        "Alice",
        env={"SYNCD_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr
    assert stderr == b""
    lines = stdout.decode().splitlines()
    assert len(lines) == 1 and lines[0].count(".") == 2  # one JWT
    assert (tmp_path / "jwt-secret").is_file()


async def test_frontend_url_takes_several_origins(start_syncd: StartServer) -> None:
    server: SyncdProcess = await start_syncd(
        env={"FRONTEND_URL": "https://crm.example, https://staging.crm.example/"}, name="cors"
    )
    async with server.client() as api:
        for origin, allowed in (
            ("https://crm.example", True),
            ("https://staging.crm.example", True),
            ("https://evil.example", False),
        ):
            response = await api.options(
                "/api/collaborative-notes",
                headers={
                    "origin": origin,
                    "access-control-request-method": "POST",
                    "access-control-request-headers": "authorization, content-type",
                },
            )
            if allowed:
                assert response.status_code == 200, (origin, response.text)
                assert response.headers["access-control-allow-origin"] == origin
            else:
                assert response.status_code == 400
                assert "access-control-allow-origin" not in response.headers
            simple = await api.get("/healthz", headers={"origin": origin})
            assert (simple.headers.get("access-control-allow-origin") == origin) is allowed


async def test_per_ip_limits_behind_a_proxy_use_the_forwarded_address(
    start_syncd: StartServer,
) -> None:
    # uvicorn believes X-Forwarded-For from the addresses in FORWARDED_ALLOW_IPS (here the
    # balancer is this host); the addresses are documentation ones, only ever a header
    limits = {"SYNCD_RATE_LIMIT_REST_IP": "3/minute"}
    trusting = await start_syncd(env={**limits, "FORWARDED_ALLOW_IPS": "127.0.0.1"}, name="lb")
    wary = await start_syncd(env={**limits, "FORWARDED_ALLOW_IPS": "192.0.2.254"}, name="no-lb")
    for server, shared in ((trusting, False), (wary, True)):
        async with server.client(make_token("owner")) as api:

            async def status(client_ip: str) -> int:
                headers = {"x-forwarded-for": client_ip}
                response = await api.get("/api/notifications", headers=headers)
                return response.status_code

            assert [await status("192.0.2.1") for _ in range(3)] == [200, 200, 200]
            assert await status("192.0.2.1") == 429
            # another client behind the same balancer has budget of its own, unless the
            # balancer is not trusted: then every client is the balancer
            assert await status("192.0.2.2") == (429 if shared else 200)
