"""Refresh tokens against a real server: issue, rotate, replay detection, logout."""

from __future__ import annotations

import stat
import time
import uuid

import httpx
import jwt

from tests.support.fixtures import StartServer
from tests.support.server import SyncdProcess, make_token

AUTH = "/api/auth"


async def issue_pair(server: SyncdProcess, user: str = "ann") -> dict[str, object]:
    async with server.client(make_token("crm", roles=["service"])) as api:
        response = await api.post(f"{AUTH}/tokens", json={"userId": user, "name": "Ann"})
    assert response.status_code == 201, response.text
    return response.json()


async def refresh(api: httpx.AsyncClient, token: object) -> httpx.Response:
    return await api.post(f"{AUTH}/refresh", json={"refreshToken": token})


async def test_rotation_gives_a_working_new_pair(syncd: SyncdProcess) -> None:
    first = await issue_pair(syncd)
    assert first["tokenType"] == "Bearer" and first["expiresIn"] > 0
    async with syncd.client() as api:
        rotated = await refresh(api, first["refreshToken"])
        assert rotated.status_code == 200, rotated.text
        second = rotated.json()
        assert second["refreshToken"] != first["refreshToken"]
        third = (await refresh(api, second["refreshToken"])).json()
    for pair in (first, second, third):
        async with syncd.client(str(pair["accessToken"])) as api:
            listed = await api.get("/api/collaborative-notes")
            assert listed.status_code == 200, listed.text
    async with syncd.client(str(third["accessToken"])) as api:
        created = await api.post("/api/collaborative-notes", json={"title": "mine"})
    assert created.json()["createdBy"] == "ann"


async def test_with_no_secrets_configured_both_are_generated(start_syncd: StartServer) -> None:
    server = await start_syncd(env={"JWT_SECRET": ""})
    access_secret = (server.data_dir / "jwt-secret").read_text().strip()
    crm = make_token("crm", roles=["service"], secret=access_secret)
    async with server.client(crm) as api:
        pair = (await api.post(f"{AUTH}/tokens", json={"userId": "ann"})).json()
        assert (await refresh(api, pair["refreshToken"])).status_code == 200
    refresh_secret = server.data_dir / "jwt-refresh-secret"
    assert stat.S_IMODE(refresh_secret.stat().st_mode) == 0o600
    assert refresh_secret.read_text().strip() != access_secret


async def test_a_reused_refresh_token_fails_and_revokes_the_newer_one(syncd: SyncdProcess) -> None:
    first = await issue_pair(syncd)
    other_session = await issue_pair(syncd)
    async with syncd.client() as api:
        second = (await refresh(api, first["refreshToken"])).json()
        replay = await refresh(api, first["refreshToken"])
        assert replay.status_code == 401
        assert replay.json()["error"]["code"] == "unauthorized"
        assert "reused" in replay.json()["error"]["message"]
        newer = await refresh(api, second["refreshToken"])
        assert newer.status_code == 401, newer.text
        # another session of the same user is untouched
        assert (await refresh(api, other_session["refreshToken"])).status_code == 200


async def test_logout_revokes(syncd: SyncdProcess) -> None:
    pair = await issue_pair(syncd)
    async with syncd.client() as api:
        second = (await refresh(api, pair["refreshToken"])).json()
        out = await api.post(f"{AUTH}/logout", json={"refreshToken": second["refreshToken"]})
        assert out.status_code == 204, out.text
        assert (await refresh(api, second["refreshToken"])).status_code == 401


async def test_refresh_refuses_what_is_not_a_live_refresh_token(syncd: SyncdProcess) -> None:
    async with syncd.client() as api:
        access = make_token("ann")
        assert (await refresh(api, access)).status_code == 401  # an access token
        assert (await refresh(api, "not-a-jwt")).status_code == 401
        assert (await refresh(api, 42)).status_code == 422
        assert (await api.post(f"{AUTH}/logout", json={"refreshToken": "x"})).status_code == 401
    async with syncd.client(make_token("ann")) as plain_user:
        denied = await plain_user.post(f"{AUTH}/tokens", json={"userId": "ann"})
        assert denied.status_code == 403
    async with syncd.client() as anonymous:
        assert (await anonymous.post(f"{AUTH}/tokens", json={"userId": "x"})).status_code == 401


async def test_refresh_tokens_carry_the_roles_of_the_pair(syncd: SyncdProcess) -> None:
    async with syncd.client(make_token("crm", roles=["service"])) as api:
        issued = await api.post(
            f"{AUTH}/tokens", json={"userId": "root", "roles": ["admin"], "email": "r@x.io"}
        )
    pair = issued.json()
    async with syncd.client() as api:
        rotated = (await refresh(api, pair["refreshToken"])).json()
    async with syncd.client(str(rotated["accessToken"])) as admin:
        # an admin may issue tokens too
        again = await admin.post(f"{AUTH}/tokens", json={"userId": "bob"})
    assert again.status_code == 201


CRM_REFRESH_SECRET = "crm-refresh-secret-0123456789abcdef"


def crm_refresh_token(user: str, *, ttl: float = 3600.0, **extra: object) -> str:
    """What a CRM back end mints at sign-in: only the contract's claims, no `fam`."""
    claims = {"sub": user, "exp": int(time.time() + ttl), "jti": uuid.uuid4().hex, **extra}
    return jwt.encode(claims, CRM_REFRESH_SECRET, algorithm="HS256")


async def test_a_refresh_token_minted_by_the_crm_rotates_and_its_reuse_revokes_the_family(
    start_syncd: StartServer,
) -> None:
    server = await start_syncd(env={"JWT_REFRESH_SECRET": CRM_REFRESH_SECRET})
    crm_token = crm_refresh_token("ann", name="Ann", email="ann@example.com")
    async with server.client() as api:
        rotated = await refresh(api, crm_token)
        assert rotated.status_code == 200, rotated.text
        pair = rotated.json()
        third = await refresh(api, pair["refreshToken"])
        assert third.status_code == 200, third.text
        replay = await refresh(api, crm_token)
        assert replay.status_code == 401
        assert "reused" in replay.json()["error"]["message"]
        # the replay revoked every token descended from the CRM's one
        assert (await refresh(api, third.json()["refreshToken"])).status_code == 401
        # another sign-in of the same user is a family of its own
        assert (await refresh(api, crm_refresh_token("ann"))).status_code == 200
    async with server.client(str(pair["accessToken"])) as ann:
        created = await ann.post("/api/collaborative-notes", json={"title": "mine"})
    assert created.status_code == 201, created.text
    assert created.json()["createdBy"] == "ann"


async def test_crm_refresh_tokens_are_refused_when_malformed(start_syncd: StartServer) -> None:
    server = await start_syncd(env={"JWT_REFRESH_SECRET": CRM_REFRESH_SECRET})
    async with server.client() as api:
        for token in (
            crm_refresh_token("ann", typ="access"),  # declared for something else
            crm_refresh_token("ann", ttl=-10),  # expired
            crm_refresh_token("a\x00b"),  # a NUL byte in the user id
            crm_refresh_token("x" * 500),  # a user id longer than syncd stores
        ):
            response = await refresh(api, token)
            assert response.status_code == 401, response.text
            assert response.json()["error"]["code"] == "unauthorized"
        logged_out = crm_refresh_token("ann")
        out = await api.post(f"{AUTH}/logout", json={"refreshToken": logged_out})
        assert out.status_code == 204, out.text
        assert (await refresh(api, logged_out)).status_code == 401
    assert "Traceback" not in server.log_tail(200)
