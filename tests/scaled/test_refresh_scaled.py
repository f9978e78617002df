"""Refresh tokens in scaled mode: records in Redis, so rotating on one instance and
replaying on another is caught."""

from __future__ import annotations

from tests.support.fixtures import StartServer
from tests.support.server import make_token


async def test_a_token_rotated_on_a_and_replayed_on_b_revokes_the_family(
    start_scaled: StartServer,
) -> None:
    a, b = await start_scaled(name="a"), await start_scaled(name="b")
    async with a.client(make_token("crm", roles=["service"])) as crm:
        first = (await crm.post("/api/auth/tokens", json={"userId": "ann"})).json()
    async with a.client() as on_a, b.client() as on_b:
        second = await on_b.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})
        assert second.status_code == 200, second.text
        replay = await on_a.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})
        assert replay.status_code == 401
        newer = second.json()["refreshToken"]
        assert (
            await on_b.post("/api/auth/refresh", json={"refreshToken": newer})
        ).status_code == 401
    async with b.client(str(second.json()["accessToken"])) as api:
        assert (await api.get("/api/collaborative-notes")).status_code == 200


async def test_a_crm_minted_refresh_token_replayed_on_another_instance_revokes_the_family(
    start_scaled: StartServer,
) -> None:
    from tests.integration.test_refresh import CRM_REFRESH_SECRET, crm_refresh_token

    env = {"JWT_REFRESH_SECRET": CRM_REFRESH_SECRET}
    a, b = await start_scaled(name="a", env=env), await start_scaled(name="b", env=env)
    crm_token = crm_refresh_token("ann")
    async with a.client() as on_a, b.client() as on_b:
        first = await on_a.post("/api/auth/refresh", json={"refreshToken": crm_token})
        assert first.status_code == 200, first.text
        replay = await on_b.post("/api/auth/refresh", json={"refreshToken": crm_token})
        assert replay.status_code == 401
        newer = first.json()["refreshToken"]
        assert (
            await on_a.post("/api/auth/refresh", json={"refreshToken": newer})
        ).status_code == 401
