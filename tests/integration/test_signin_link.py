"""Sign-in links for the web app: `syncd token USER --link`, and the link an embedded
`syncd serve` with a generated secret prints at start. A link signs in once."""

from __future__ import annotations

import asyncio
import getpass
import re
import sys

import jwt

from tests.support.fixtures import StartServer
from tests.support.server import SyncdProcess

LINK = re.compile(r"http://127\.0\.0\.1:(\d+)/#signin=([\w.-]+)")


async def _spend(server: SyncdProcess, token: str) -> tuple[int, dict]:
    async with server.client() as api:
        response = await api.post("/api/auth/refresh", json={"refreshToken": token})
    return response.status_code, response.json()


async def test_a_link_from_the_command_line_signs_its_user_in_once(
    start_syncd: StartServer,
) -> None:
    server = await start_syncd()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syncd",
        "token",
        "ann",
        "--name",
        "Ann Lee",
        "--link",
        env=server.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    found = LINK.fullmatch(out.decode().strip().splitlines()[-1])
    assert proc.returncode == 0 and found and int(found[1]) == server.port
    status, pair = await _spend(server, found[2])
    assert status == 200
    claims = jwt.decode(pair["accessToken"], options={"verify_signature": False})
    assert claims["sub"] == "ann" and claims["name"] == "Ann Lee"
    status, body = await _spend(server, found[2])
    assert status == 401 and body["error"]["code"]


async def test_an_embedded_server_with_a_generated_secret_prints_a_link_at_start(
    start_syncd: StartServer,
) -> None:
    generated = await start_syncd(env={"JWT_SECRET": ""}, name="generated")
    found = LINK.search(generated.log_path.read_text())
    assert found and int(found[1]) == generated.port
    status, pair = await _spend(generated, found[2])
    assert status == 200
    claims = jwt.decode(pair["accessToken"], options={"verify_signature": False})
    assert claims["sub"] == getpass.getuser()

    configured = await start_syncd(name="configured")  # JWT_SECRET set: a CRM signs users in
    assert "#signin=" not in configured.log_path.read_text()
